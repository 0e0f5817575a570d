"""The test harness: every test runs with a throwaway home and no CI or AWS variables, and
tests that need real parts get them here: one moto server for the session, a terraform CLI
config that installs the aws provider from a local mirror, a fresh state bucket and lock
table per test, and repositories built from dicts.

Missing real parts (moto, terraform, the provider mirror) fail the tests that need them,
loudly: a suite that skips them would pass while testing nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from helpers import (
    EXAMPLES,
    PROVIDER_MIRROR_VARIABLE,
    REPO_ROOT,
    LiveRepo,
    StateBackend,
    cli_config_text,
    find_provider_mirror,
    is_isolated_variable,
    live_root_of,
    mirror_candidates,
    retarget_state,
    write_tree,
)

from tfrun import sandbox
from tfrun.config import ROOT_FILE, build, load_file
from tfrun.errors import TfrunError

# Read before any test changes the environment: the harness needs the real PATH, home and
# mirror setting even though tests do not see them.
REAL_ENVIRON = dict(os.environ)
TEST_REGION = "eu-west-1"
TEST_PROFILES = ("default", "prod", "staging", "shared")


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """No test sees the real home, CI, AWS credentials or terraform settings. CI runs the suite
    with CI=true; a test that needs CI sets it itself."""
    for name in list(os.environ):
        if is_isolated_variable(name):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    # Tests that make commits need an identity; a real user's git config must not apply.
    (home / ".gitconfig").write_text(
        "[user]\n\tname = tfrun tests\n\temail = tests@tfrun.invalid\n"
        "[init]\n\tdefaultBranch = main\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return home


# ---------------------------------------------------------------------------------------------
# The sandbox.


@pytest.fixture(scope="session")
def moto_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sandbox.Sandbox]:
    """One moto server on 127.0.0.1 for the whole session, stopped at the end even on failure."""
    try:
        box = sandbox.start_server(tmp_path_factory.mktemp("moto"))
    except TfrunError as exc:
        pytest.fail(
            f"The test suite needs moto's server (pip install -e '.[dev]'): {exc}", pytrace=False
        )
    try:
        yield box
    finally:
        sandbox.stop(box)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def state_backend(moto_sandbox: sandbox.Sandbox) -> StateBackend:
    """A fresh state bucket and lock table of this test on the shared sandbox, with the
    prod/staging/shared profiles defined. `.root_hcl()` writes a tfrun.hcl that uses them;
    `.object_keys()`, `.read_json(key)`, `.lock_items()` look inside.

    moto is reset first: the examples' IAM roles and buckets have fixed names, and each test
    applies them anew (tests run one at a time, so no other test's resources are lost)."""
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_sandbox.endpoint}/moto-api/reset", method="POST"),
        timeout=10,
    ).close()
    backend = StateBackend(
        sandbox=moto_sandbox,
        bucket=_unique("tfrun-test"),
        region=TEST_REGION,
        lock_table=_unique("tfrun-test-locks"),
    )
    sandbox.provision(
        moto_sandbox, backend.bucket, backend.region, backend.lock_table, TEST_PROFILES
    )
    return backend


# ---------------------------------------------------------------------------------------------
# Terraform.


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    found = shutil.which("terraform", path=REAL_ENVIRON.get("PATH"))
    if found is None:
        pytest.fail(
            "terraform is not on PATH, and this test runs real terraform against the sandbox. "
            "Install terraform (>= 1.6) and run the tests again.",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def plugin_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plugin-cache")


@pytest.fixture(scope="session")
def provider_mirror() -> Path:
    mirror = find_provider_mirror(REAL_ENVIRON)
    if mirror is None:
        named = REAL_ENVIRON.get(PROVIDER_MIRROR_VARIABLE)
        searched = (
            f"{PROVIDER_MIRROR_VARIABLE}={named}"
            if named
            else ", ".join(str(p) for p in mirror_candidates(REAL_ENVIRON))
        )
        pytest.fail(
            "No terraform provider mirror with hashicorp/aws was found (searched: "
            f"{searched}), and tests that run terraform have no network. Make one with "
            "'terraform providers mirror DIR' in a folder that requires hashicorp/aws, then "
            f"set {PROVIDER_MIRROR_VARIABLE}=DIR.",
            pytrace=False,
        )
    return mirror


@pytest.fixture(scope="session")
def terraform_cli_config(
    tmp_path_factory: pytest.TempPathFactory,
    terraform_bin: str,
    provider_mirror: Path,
    plugin_cache_dir: Path,
) -> Path:
    """A terraform CLI config file: aws from the mirror, nothing from the network, and the
    session's plugin cache."""
    path = tmp_path_factory.mktemp("terraform") / "terraform.rc"
    path.write_text(cli_config_text(provider_mirror, plugin_cache_dir), encoding="utf-8")
    return path


@pytest.fixture
def tf_env(
    monkeypatch: pytest.MonkeyPatch,
    moto_sandbox: sandbox.Sandbox,
    terraform_cli_config: Path,
    plugin_cache_dir: Path,
) -> dict[str, str]:
    """The environment to run tfrun or terraform with against the sandbox; it is also set in
    this process (monkeypatch), so in-process calls see the same."""
    env = dict(os.environ)
    env.update(moto_sandbox.environ())
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(terraform_cli_config),
            # tfrun sets its own cache dir unless this is set; per-test homes would each copy
            # the 700 MB provider.
            "TF_PLUGIN_CACHE_DIR": str(plugin_cache_dir),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
    )
    for name, value in env.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    return env


# ---------------------------------------------------------------------------------------------
# Repositories.


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., LiveRepo]:
    """`make_repo({"live/tfrun.hcl": ..., "live/prod-eu-west-1/network/main.tf": ...},
    git=False)` writes the files under tmp_path/infra and returns `LiveRepo(top, live)`;
    with git=True the tree is also one commit on branch main."""

    def make(files: Mapping[str, str | bytes], *, git: bool = False) -> LiveRepo:
        top = tmp_path / "infra"
        write_tree(top, files)
        if git:
            for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
                subprocess.run(["git", *argv], cwd=top, check=True, capture_output=True)
        return LiveRepo(top=top, live=live_root_of(top, files))

    return make


@pytest.fixture
def examples_copy(tmp_path: Path, state_backend: StateBackend) -> Path:
    """A copy of examples/ in tmp_path whose state goes to this test's bucket and lock table
    (`state_backend`); returns the copy's live root."""
    live_file = EXAMPLES / "live" / ROOT_FILE
    if not live_file.is_file():
        pytest.fail(f"{live_file.relative_to(REPO_ROOT)} does not exist yet.", pytrace=False)
    copy = tmp_path / "examples"
    shutil.copytree(
        EXAMPLES,
        copy,
        ignore=shutil.ignore_patterns(".terraform", ".tfrun", "*.tfplan", "tfplan"),
    )
    live = copy / "live"
    config = build([(live_file, load_file(live_file, is_root=True, is_stack=False))], live_file)
    if config.state.region != state_backend.region:
        pytest.fail(
            f"{live_file} keeps state in {config.state.region}, but the test bucket and lock "
            f"table are made in {state_backend.region}; make TEST_REGION in conftest.py match.",
            pytrace=False,
        )
    renames = {str(config.state.bucket): state_backend.bucket}
    if config.state.dynamodb_table:
        renames[config.state.dynamodb_table] = state_backend.lock_table
    retarget_state(copy, renames)
    profiles = {env.profile for env in config.environments.values() if env.profile}
    sandbox.provision(
        state_backend.sandbox,
        state_backend.bucket,
        state_backend.region,
        state_backend.lock_table,
        profiles | set(TEST_PROFILES),
    )
    return live
