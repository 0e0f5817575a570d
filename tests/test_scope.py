"""A run never reaches past what the user named: shared state keys, a folder's protection,
symbolic links, filters that match nothing, and the stacks a destroy leaves without state.
Each repro goes through the real CLI with the fake terraform; nothing may run or be written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_terraform import PROD_REL, STACK_REL, FakeRepo
from helpers import LiveRepo, StateBackend, run_cli

from tfrun.errors import ExitCode

PROD_KEY = "prod/eu-west-1/network.tfstate"
SHADOW = "staging-eu-west-1/shadow"
GENERATED = ("backend.tf", "provider.tf")


def _generated(folder: Path) -> list[str]:
    return sorted(name for name in GENERATED if (folder / name).exists())


@pytest.fixture
def shadow(tmp_path: Path) -> FakeRepo:
    """A staging stack whose stack.hcl points its state at prod's network."""
    return FakeRepo(
        tmp_path,
        {
            f"{SHADOW}/main.tf": 'output "x" { value = 1 }\n',
            f"{SHADOW}/stack.hcl": f'key = "{PROD_KEY}"\n',
        },
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["state", "rm", "module.vpc.aws_vpc.this", SHADOW],
        ["destroy", "--yes", SHADOW],
        ["force-unlock", "-force", "1234", SHADOW],
        ["plan", SHADOW],
        ["run-all", "apply", "--yes", "--env", "staging"],
    ],
    ids=["state-rm", "destroy", "force-unlock", "plan", "run-all-apply"],
)
def test_a_stack_sharing_prods_state_is_refused_naming_both(
    shadow: FakeRepo, argv: list[str]
) -> None:
    result = run_cli(argv, shadow.live, shadow.env)
    result.assert_exit(int(ExitCode.REFUSED))
    assert SHADOW in result.stderr and PROD_REL in result.stderr
    assert f"s3://acme-tfstate/{PROD_KEY}" in result.stderr
    assert "one-state-per-stack" in result.stderr
    assert shadow.records() == []
    assert _generated(shadow.live / SHADOW) == []


def test_a_constant_state_key_refuses_every_run(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    root = repo.live / "tfrun.hcl"
    root.write_text(
        root.read_text().replace("  encrypt = true\n", '  encrypt = true\n  key = "all.tfstate"\n')
    )
    result = run_cli(["run-all", "apply", "--yes"], repo.live, repo.env)
    result.assert_exit(int(ExitCode.REFUSED))
    assert "s3://acme-tfstate/all.tfstate" in result.stderr
    assert repo.records() == []


def test_generate_refuses_shared_state_before_writing(shadow: FakeRepo) -> None:
    result = run_cli(["generate"], shadow.live, shadow.env)
    result.assert_exit(int(ExitCode.REFUSED))
    assert _generated(shadow.live / SHADOW) == [] and _generated(shadow.live / PROD_REL) == []


def test_an_env_override_in_a_protected_folder_is_an_error(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path, {f"{PROD_REL}/stack.hcl": 'env = "staging"\n'})
    result = run_cli(["destroy", "--yes", PROD_REL], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "Protection follows the folder" in result.stderr
    assert "stack.hcl" in result.stderr and "'prod'" in result.stderr
    assert repo.records() == []


def test_an_env_override_outside_protected_folders_still_works(tmp_path: Path) -> None:
    repo = FakeRepo(
        tmp_path,
        {
            "shared-services/tools/main.tf": 'output "x" { value = 1 }\n',
            "shared-services/tools/stack.hcl": 'env = "prod"\n',
        },
    )
    # Moved into prod by its config: protected from then on.
    result = run_cli(["destroy", "--yes", "shared-services/tools"], repo.live, repo.env)
    result.assert_exit(int(ExitCode.REFUSED))
    assert "protected environment 'prod'" in result.stderr


@pytest.fixture
def twin(tmp_path: Path) -> FakeRepo:
    """staging-eu-west-1/twin is a symbolic link to prod's network."""
    repo = FakeRepo(tmp_path)
    (repo.live / "staging-eu-west-1/twin").symlink_to("../prod-eu-west-1/network")
    return repo


def test_a_linked_folder_is_the_stack_it_links_to(twin: FakeRepo) -> None:
    run_cli(["plan", "staging-eu-west-1/twin"], twin.live, twin.env).assert_success()
    backend = (twin.live / PROD_REL / "backend.tf").read_text()
    assert f'key            = "{PROD_KEY}"' in backend or PROD_KEY in backend
    assert [Path(r["cwd"]).name for r in twin.records("start")] == ["network", "network"]
    # Its protection too.
    result = run_cli(["destroy", "--yes", "staging-eu-west-1/twin"], twin.live, twin.env)
    result.assert_exit(int(ExitCode.REFUSED))
    assert PROD_REL in result.stderr


def test_an_environment_run_does_not_follow_a_link_into_prod(twin: FakeRepo) -> None:
    result = run_cli(["run-all", "destroy", "--env", "staging", "--yes"], twin.live, twin.env)
    result.assert_success()
    touched = {os.path.realpath(r["cwd"]) for r in twin.records("start")}
    assert touched == {str((twin.live / STACK_REL).resolve())}
    assert _generated(twin.live / PROD_REL) == []


def test_a_link_outside_the_live_root_is_never_a_stack(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "main.tf").write_text('output "x" { value = 1 }\n')
    repo = FakeRepo(tmp_path)
    (repo.live / "staging-eu-west-1/outside").symlink_to(outside)
    for argv in (["generate"], ["run-all", "plan"], ["graph"], ["check"]):
        result = run_cli(argv, repo.live, repo.env)
        assert "outside the live root" in result.stderr, (argv, result)
    assert sorted(p.name for p in outside.iterdir()) == ["main.tf"]
    assert all("elsewhere" not in r["cwd"] for r in repo.records())
    named = run_cli(["plan", "staging-eu-west-1/outside"], repo.live, repo.env)
    named.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "elsewhere" in named.stderr
    assert all("elsewhere" not in r["cwd"] for r in repo.records())


@pytest.mark.parametrize("command", [["generate"], ["graph"], ["check"], ["run-all", "plan"]])
def test_dangling_and_looping_links_are_skipped_with_a_warning(
    tmp_path: Path, command: list[str]
) -> None:
    repo = FakeRepo(tmp_path)
    env_dir = repo.live / "staging-eu-west-1"
    (env_dir / "gone").symlink_to("nothing-here")
    (env_dir / "loop1").symlink_to("loop2")
    (env_dir / "loop2").symlink_to("loop1")
    result = run_cli(command, repo.live, repo.env)
    assert "unexpected error" not in result.stderr, result
    assert result.exit_code in (0, 1), result  # check may find unpinned stacks: exit 1
    assert "gone: skipped" in result.stderr and "does not exist" in result.stderr
    assert "loop1: skipped" in result.stderr


def test_a_looping_link_named_on_the_command_line_is_an_error(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    env_dir = repo.live / "staging-eu-west-1"
    (env_dir / "loop1").symlink_to("loop2")
    (env_dir / "loop2").symlink_to("loop1")
    result = run_cli(["generate", "staging-eu-west-1/loop1"], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "unexpected error" not in result.stderr


def test_an_unknown_environment_is_named_with_the_known_ones(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    result = run_cli(["run-all", "plan", "--env", "stagin"], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "--env stagin" in result.stderr and "known: prod, staging" in result.stderr
    assert "Did you mean staging?" in result.stderr
    region = run_cli(["run-all", "plan", "--region", "eu-west-9"], repo.live, repo.env)
    region.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "known: eu-west-1" in region.stderr and "Did you mean eu-west-1?" in region.stderr
    unlike = run_cli(["run-all", "plan", "--env", "qa"], repo.live, repo.env)
    unlike.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "known: prod, staging" in unlike.stderr and "Did you mean" not in unlike.stderr
    assert repo.records() == []


def test_every_command_finds_the_live_root_from_the_repositorys_top(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)  # tmp_path/live is the live root; tmp_path is the top
    graph = run_cli(["graph"], tmp_path, repo.env).assert_success()
    assert STACK_REL in graph.stdout and PROD_REL in graph.stdout
    run_cli(["check"], tmp_path, repo.env)  # findings are fine, "no stacks" is not
    assert "no stacks" not in run_cli(["check"], tmp_path, repo.env).stderr


def test_a_selection_of_no_stacks_is_a_usage_error_everywhere(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    empty = repo.live / "staging-eu-west-1" / "nothing"
    empty.mkdir()
    for argv in (["graph", str(empty)], ["generate", str(empty)], ["check", str(empty)]):
        result = run_cli(argv, repo.live, repo.env)
        result.assert_exit(int(ExitCode.BAD_CONFIG))
        assert "no stacks here or below" in result.stderr
    run_all = run_cli(["run-all", "plan", str(empty)], repo.live, repo.env)
    run_all.assert_exit(int(ExitCode.BAD_CONFIG))


CONSUMERS = {
    "staging-eu-west-1/platform/main.tf": 'output "x" { value = 1 }\n',
    "staging-eu-west-1/platform/stack.hcl": 'dependencies = ["../network"]\n',
    "shared-services/iam/main.tf": 'output "role" { value = "r" }\n',
    "prod-eu-west-1/platform/main.tf": 'output "x" { value = 1 }\n',
    "prod-eu-west-1/platform/stack.hcl": 'dependencies = ["../../shared-services/iam"]\n',
}


def test_a_destroy_names_the_stacks_that_read_what_it_destroys(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path, CONSUMERS)
    result = run_cli(["destroy", "--yes", STACK_REL], repo.live, repo.env)
    result.assert_success()
    assert "warning: staging-eu-west-1/platform reads the state of " in result.stderr
    assert repo.commands() == ["init", "destroy"]


def test_a_destroy_that_a_protected_stack_reads_is_refused_on_a_laptop(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path, CONSUMERS)
    result = run_cli(["destroy", "--yes", "shared-services/iam"], repo.live, repo.env)
    result.assert_exit(int(ExitCode.REFUSED))
    assert "prod-eu-west-1/platform reads shared-services/iam" in result.stderr
    assert repo.records() == []
    # In a GitLab manual job, where destroying a protected stack may run, it is a warning.
    ci = {**repo.env, "GITLAB_CI": "true", "CI_JOB_MANUAL": "true"}
    allowed = run_cli(["destroy", "--yes", "shared-services/iam"], repo.live, ci)
    allowed.assert_success()
    assert "warning: prod-eu-west-1/platform reads the state of shared-services/iam" in (
        allowed.stderr
    )


@pytest.mark.slow
def test_a_shadow_stack_cannot_remove_prods_resources_with_real_terraform(
    make_repo: object, state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    assert callable(make_repo)
    repo: LiveRepo = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            f"live/{PROD_REL}/main.tf": 'resource "terraform_data" "vpc" {\n  input = "v"\n}\n',
            f"live/{SHADOW}/main.tf": 'resource "terraform_data" "vpc" {\n  input = "v"\n}\n',
        }
    )
    ci = {**tf_env, "GITLAB_CI": "true", "CI_JOB_MANUAL": "true"}
    run_cli(["apply", "--yes", PROD_REL], repo.live, ci).assert_success()
    # Then someone points the staging stack at prod's state.
    (repo.live / SHADOW / "stack.hcl").write_text(f'key = "{PROD_KEY}"\n')
    result = run_cli(["state", "rm", "terraform_data.vpc", SHADOW], repo.live, ci)
    result.assert_exit(int(ExitCode.REFUSED))
    state = state_backend.read_json(PROD_KEY)
    assert [r["name"] for r in state["resources"]] == ["vpc"]


def test_a_key_that_its_fields_make_no_path_is_an_error(tmp_path: Path) -> None:
    """`{account_id}` of an environment without one renders empty: "/eu-west-1/x"."""
    repo = FakeRepo(tmp_path, {"tfrun.hcl": ""})
    (repo.live / "tfrun.hcl").write_text(
        'state {\n  bucket = "b"\n  region = "eu-west-1"\n  key = "{account_id}/{stack}"\n}\n'
        "environments {\n  staging = {}\n  prod = {}\n}\n"
    )
    result = run_cli(["plan", STACK_REL], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "its state key '/network'" in result.stderr
    assert repo.records() == []
