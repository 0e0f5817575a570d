"""The role-assumption chain: generated assume_role blocks, session names, and the identity
check before a run (moto's STS on loopback; an SSO profile with no token needs no network)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from fake_terraform import PROD_REL, STACK_REL, FakeRepo
from helpers import LiveRepo, StateBackend, root_hcl, run_cli, write_tree

from tfrun import auth, generate, sandbox
from tfrun.discovery import Repository
from tfrun.errors import ExitCode
from tfrun.hcl import parse_text

AUTH = """
auth {
  role_name      = "TerraformAdmin"
  laptop_profile = "company-sso"
}
"""
STATE_ROLE = "arn:aws:iam::111111111111:role/TerraformState"
MOTO_ACCOUNT = "123456789012"  # moto's default account, where the sandbox creates things


def _live(tmp_path: Path, extra: str = AUTH, state_role: bool = True) -> Repository:
    text = root_hcl(extra=extra)
    state = f'  encrypt = true\n  role_arn = "{STATE_ROLE}"\n'
    if state_role:
        text = text.replace("  encrypt = true\n", state)
    write_tree(
        tmp_path / "live",
        {
            "tfrun.hcl": text,
            f"{STACK_REL}/main.tf": 'output "x" { value = 1 }\n',
            f"{PROD_REL}/main.tf": 'output "x" { value = 1 }\n',
            "staging-eu-west-1/app/main.tf": 'output "x" { value = 1 }\n',
            "staging-eu-west-1/app/stack.hcl": 'remote_state = { network = "../network" }\n',
        },
    )
    return Repository(tmp_path / "live")


def _files(repo: Repository, rel: str, environ: dict[str, str]) -> dict[str, dict[str, object]]:
    stack = repo.stack(repo.root / rel)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CI", "GITLAB_CI", "USER"):
            patch.delenv(name, raising=False)
        for name, value in environ.items():
            patch.setenv(name, value)
        rendered = generate.render(repo, stack, endpoint=None)
    return {f.path.name: parse_text(f.content, f.path) for f in rendered}


def test_a_laptop_starts_from_its_sso_profile_and_assumes_each_accounts_role(
    tmp_path: Path,
) -> None:
    repo = _live(tmp_path)
    files = _files(repo, STACK_REL, {"USER": "alice"})
    [provider] = files["provider.tf"]["provider"]
    aws = provider["aws"]
    assert aws["profile"] == "company-sso"
    [assume] = aws["assume_role"]
    assert assume["role_arn"] == "arn:aws:iam::333333333333:role/TerraformAdmin"
    assert assume["session_name"] == "alice@staging.network"
    [backend] = files["backend.tf"]["terraform"][0]["backend"]
    s3 = backend["s3"]
    assert s3["profile"] == "company-sso"
    assert s3["assume_role"]["role_arn"] == STATE_ROLE  # an argument in a backend, not a block
    app = _files(repo, "staging-eu-west-1/app", {"USER": "alice"})
    [read] = app["remote_state.tf"]["data"]
    config = read["terraform_remote_state"]["network"]["config"]
    assert config["assume_role"]["role_arn"] == STATE_ROLE


def test_ci_starts_from_its_own_credentials_and_names_the_job(tmp_path: Path) -> None:
    repo = _live(tmp_path)
    files = _files(repo, PROD_REL, {"GITLAB_CI": "true", "CI_JOB_ID": "4242"})
    aws = files["provider.tf"]["provider"][0]["aws"]
    assert "profile" not in aws
    assert aws["assume_role"][0]["session_name"] == "gitlab-job-4242@prod.network"
    assert aws["assume_role"][0]["role_arn"] == "arn:aws:iam::222222222222:role/TerraformAdmin"


def test_without_roles_the_profiles_stay_as_they_were(tmp_path: Path) -> None:
    repo = _live(tmp_path, extra="", state_role=False)
    aws = _files(repo, STACK_REL, {})["provider.tf"]["provider"][0]["aws"]
    assert aws["profile"] == "staging" and "assume_role" not in aws


def test_session_names_fit_awss_limits(tmp_path: Path) -> None:
    stack = _live(tmp_path).stack(tmp_path / "live" / STACK_REL)
    name = auth.session_name("jo hn/" + "x" * 80, stack)
    assert len(name) == auth.SESSION_NAME_MAX
    assert all(c.isalnum() or c in "_+=,.@-" for c in name)


def test_a_role_arn_that_is_no_role_arn_is_a_config_error(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    root = repo.live / "tfrun.hcl"
    root.write_text(
        root.read_text().replace(
            'profile = "staging" }', 'profile = "staging", role_arn = "TerraformAdmin" }'
        )
    )
    result = run_cli(["plan", STACK_REL], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "role_arn" in result.stderr and repo.records() == []


SSO_CONFIG = """
[profile company-sso]
sso_session = company
sso_account_id = 111111111111
sso_role_name = Admin
region = eu-west-1

[sso-session company]
sso_start_url = https://company.awsapps.example/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access
"""


def test_an_expired_sso_login_is_one_paragraph_and_nothing_runs(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    root = repo.live / "tfrun.hcl"
    root.write_text(root.read_text() + AUTH)
    aws_config = tmp_path / "aws-config"
    aws_config.write_text(textwrap.dedent(SSO_CONFIG))
    env = {**repo.env, "AWS_CONFIG_FILE": str(aws_config), "AWS_EC2_METADATA_DISABLED": "true"}
    result = run_cli(["run-all", "plan"], repo.live, env, timeout=120)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "SSO login of profile company-sso is missing or has expired" in result.stderr
    assert "aws sso login --sso-session company" in result.stderr
    assert repo.records() == []
    assert not (repo.live / STACK_REL / "backend.tf").exists()
    # --skip-auth-check goes ahead (terraform is the fake here).
    run_cli(["plan", STACK_REL, "--skip-auth-check"], repo.live, env).assert_success()


@pytest.fixture
def moto_env(moto_sandbox: sandbox.Sandbox, state_backend: StateBackend) -> dict[str, str]:
    return {**moto_sandbox.environ(), "AWS_DEFAULT_REGION": "eu-west-1"}


def test_preflight_assumes_each_role_once_and_caches(
    tmp_path: Path, moto_sandbox: sandbox.Sandbox, moto_env: dict[str, str]
) -> None:
    repo = _live(tmp_path, extra=AUTH.replace("company-sso", "staging"))
    stacks = repo.stacks()
    needed = auth.identities(stacks, {})
    assert {(i.role_arn, i.envs) for i in needed} == {
        ("arn:aws:iam::333333333333:role/TerraformAdmin", ("staging",)),
        ("arn:aws:iam::222222222222:role/TerraformAdmin", ("prod",)),
        (STATE_ROLE, ("state",)),
    }
    checked = auth.preflight(repo.root, needed, moto_sandbox.endpoint, moto_env)
    arns = {c.arn for c in checked}
    assert "arn:aws:sts::333333333333:assumed-role/TerraformAdmin/" in " ".join(arns)
    assert not any(c.cached for c in checked)
    again = auth.preflight(repo.root, needed, moto_sandbox.endpoint, moto_env)
    assert all(c.cached for c in again)
    cache = json.loads((repo.root / auth.CACHE_FILE).read_text())
    assert len(cache) == 3


def test_a_role_in_another_account_than_the_config_says_is_refused(
    tmp_path: Path, moto_sandbox: sandbox.Sandbox, moto_env: dict[str, str]
) -> None:
    wrong = 'role_arn = "arn:aws:iam::999999999999:role/TerraformAdmin"'
    repo = _live(tmp_path, extra=AUTH.replace("company-sso", "staging"), state_role=False)
    root = repo.root / "tfrun.hcl"
    root.write_text(
        root.read_text().replace('profile = "staging" }', f'profile = "staging", {wrong} }}')
    )
    stacks = Repository(repo.root).stacks()
    staging = [s for s in stacks if s.env == "staging"]
    with pytest.raises(auth.AuthError) as refused:
        auth.preflight(repo.root, auth.identities(staging, {}), moto_sandbox.endpoint, moto_env)
    message = str(refused.value)
    assert "in account 999999999999" in message and "333333333333" in message


@pytest.mark.slow
def test_a_stack_applies_through_the_role_chain_with_real_terraform(
    make_repo: object, state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    assert callable(make_repo)
    extra = AUTH.replace("company-sso", "staging")
    # moto keeps each account's tables apart: the state role is in the account that holds the
    # sandbox's bucket and lock table, as it would be in AWS.
    state_role = f"arn:aws:iam::{MOTO_ACCOUNT}:role/TerraformState"
    root = state_backend.root_hcl(extra=extra).replace(
        "  encrypt = true\n", f'  encrypt = true\n  role_arn = "{state_role}"\n'
    )
    repo: LiveRepo = make_repo(
        {
            "live/tfrun.hcl": root,
            f"live/{STACK_REL}/main.tf": (
                'data "aws_caller_identity" "me" {}\n'
                'output "arn" { value = data.aws_caller_identity.me.arn }\n'
            ),
            "live/staging-eu-west-1/app/stack.hcl": 'remote_state = { network = "../network" }\n',
            "live/staging-eu-west-1/app/main.tf": (
                'output "seen" { value = data.terraform_remote_state.network.outputs.arn }\n'
            ),
        }
    )
    env = {**tf_env, "USER": "alice"}
    run_cli(["run-all", "apply", "--yes", "-no-color"], repo.live, env).assert_success()
    outputs = run_cli(["output", "-json"], repo.live / STACK_REL, env).assert_success()
    arn = json.loads(outputs.stdout)["arn"]["value"]
    assert arn.startswith("arn:aws:sts::333333333333:assumed-role/TerraformAdmin/")
    assert arn.endswith("alice@staging.network")
    seen = run_cli(["output", "-json"], repo.live / "staging-eu-west-1/app", env)
    assert json.loads(seen.assert_success().stdout)["seen"]["value"] == arn


@pytest.mark.slow
def test_a_gitlab_job_applies_from_a_web_identity_token_with_real_terraform(
    make_repo: object, state_backend: StateBackend, tf_env: dict[str, str], tmp_path: Path
) -> None:
    """As the generated GitLab job runs: no keys, no profile, only `AWS_ROLE_ARN` and the
    OIDC token file; terraform (and tfrun's preflight) start from that web identity and then
    assume the environment's role, with the job in the session name."""
    assert callable(make_repo)
    repo: LiveRepo = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(extra=AUTH),
            f"live/{STACK_REL}/main.tf": (
                'data "aws_caller_identity" "me" {}\n'
                'output "arn" { value = data.aws_caller_identity.me.arn }\n'
            ),
        }
    )
    token = tmp_path / "gitlab_oidc_token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6YWNtZS9pbmZyYSJ9.c2ln")
    env = {
        name: value
        for name, value in tf_env.items()
        if name not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        and name not in ("AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")
    }
    env.update(
        {
            "GITLAB_CI": "true",
            "CI": "true",
            "CI_JOB_ID": "4242",
            "AWS_ROLE_ARN": f"arn:aws:iam::{MOTO_ACCOUNT}:role/GitLabTerraform",
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        }
    )
    applied = run_cli(["apply", STACK_REL, "--yes", "-no-color"], repo.live, env)
    applied.assert_success()
    outputs = run_cli(["output", "-json"], repo.live / STACK_REL, env).assert_success()
    arn = json.loads(outputs.stdout)["arn"]["value"]
    assert arn == (
        "arn:aws:sts::333333333333:assumed-role/TerraformAdmin/gitlab-job-4242@staging.network"
    )
    # Without the token there is no identity at all: the preflight says so before terraform.
    token.unlink()
    refused = run_cli(["plan", STACK_REL, "-no-color"], repo.live, env)
    refused.assert_exit(int(ExitCode.BAD_CONFIG))
    said = " ".join(refused.stderr.split())
    assert f"web identity (AWS_ROLE_ARN {env['AWS_ROLE_ARN']}, token file {token})" in said, said
    assert "Nothing ran" in refused.stderr


def test_whoami_shows_each_identity_through_the_chain(
    tmp_path: Path, moto_sandbox: sandbox.Sandbox, moto_env: dict[str, str]
) -> None:
    repo = _live(tmp_path, extra=AUTH.replace("company-sso", "staging"))
    env = {**moto_env, "TFRUN_AWS_ENDPOINT": moto_sandbox.endpoint, "COLUMNS": "300"}
    result = run_cli(["whoami"], repo.root, env).assert_success()
    assert "arn:aws:sts::222222222222:assumed-role/TerraformAdmin/" in result.stdout
    assert "arn:aws:sts::111111111111:assumed-role/TerraformState/" in result.stdout
    assert result.stdout.count(" ok ") + result.stdout.count(" ok\n") >= 3
