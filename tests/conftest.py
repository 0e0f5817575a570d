"""The test harness: every test runs with a throwaway home and no CI or AWS variables, and
tests that need real parts get them here: one moto server for the session (under
pytest-xdist: for each worker), a terraform CLI config that installs the aws provider from a
local mirror, a fresh state bucket and lock table per test, and repositories built from dicts.

Missing real parts (moto, terraform, the provider mirror) fail the tests that need them,
loudly: a suite that skips them would pass while testing nothing.

A test that runs real terraform or gitlab-ci-local must be marked slow (`pytest -m "not slow"`
is the development loop); the guard below fails one that is not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from helpers import (
    EXAMPLES,
    PROVIDER_MIRROR_VARIABLE,
    REPO_ROOT,
    SLOW_MARKER,
    SPAWN_EVENTS,
    LiveRepo,
    StateBackend,
    build_wheel,
    cli_config_text,
    find_provider_mirror,
    is_isolated_variable,
    live_root_of,
    mirror_candidates,
    real_tools,
    retarget_state,
    started_tool,
    terraform_shim_text,
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
# Hypothesis' 200 ms deadline times the machine as much as the code: next to xdist workers
# running terraform (or on a busy CI runner) one slow example fails a correct property. Only
# the deadline goes; example counts and strategies stay as each test sets them. Loaded here,
# before any test module builds its own settings on top of the default.
hypothesis.settings.register_profile("tfrun", deadline=None)
hypothesis.settings.load_profile("tfrun")
# Two workers can pick the same free port for their moto servers (it is free when picked and
# taken only when bound); the loser's server exits and a new port is tried.
MOTO_START_ATTEMPTS = 3


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
# Real tools only in tests marked slow.
#
# Marks rot: a new test that runs real terraform without `slow` would quietly make the fast
# loop slow again. So every start of real terraform or gitlab-ci-local is noticed, two ways:
# an audit hook on this process's own process starts (an absolute path, or a PATH a test built
# itself, are seen too), and a `terraform` at the front of PATH that notes each run before it
# becomes the real one (terraform started by the tfrun CLI or a gitlab-ci-local job, which this
# process cannot watch). A test that is not marked slow and started one fails.

REAL_TOOLS = real_tools(REAL_ENVIRON)


class _RealToolRuns:
    """Starts of real tools not yet looked at: those the audit hook saw in this process, and
    the lines the terraform shim appended to its log. Tests run one at a time in a process
    (xdist workers are processes, each with its own shim and log), so they are the current
    test's."""

    def __init__(self) -> None:
        self.seen_here: list[str] = []
        self.shim_log: Path | None = None
        self.offset = 0

    def forget(self) -> None:
        self.seen_here.clear()
        self.offset = self.shim_log.stat().st_size if self.shim_log else 0

    def take(self) -> list[str]:
        runs, self.seen_here = self.seen_here, []
        if self.shim_log is not None:
            with self.shim_log.open("rb") as file:
                file.seek(self.offset)
                data = file.read()
            self.offset += len(data)
            runs += data.decode(errors="replace").splitlines()
        return runs


_RUNS = _RealToolRuns()


def _watch_process_starts(event: str, args: tuple[Any, ...]) -> None:
    # Audit hooks see every open and import too; this must stay cheap and must never raise,
    # or it would break the process start (or file open) it is watching.
    if event not in SPAWN_EVENTS:
        return
    try:
        started = started_tool(event, args, REAL_TOOLS, os.environ)
        if started is not None:
            _RUNS.seen_here.append(f"{os.getcwd()}: {started}")
    except Exception:
        return


# An audit hook cannot be removed, so it is added once per process, when pytest loads this file.
sys.addaudithook(_watch_process_starts)


def _fail_unless_slow(item: pytest.Item, runs: list[str]) -> None:
    if not runs or item.get_closest_marker(SLOW_MARKER) is not None:
        return
    shown = "".join(f"\n  {run}" for run in runs[:5])
    if len(runs) > 5:
        shown += f"\n  ... and {len(runs) - 5} more"
    pytest.fail(
        f"{item.nodeid} ran real terraform or gitlab-ci-local but is not marked {SLOW_MARKER}, "
        "so the fast loop (pytest -m 'not slow') would run it. Add @pytest.mark.slow to the "
        "test, or pytestmark = pytest.mark.slow to a module of such tests "
        "(tests/fake_terraform.py is the fast stand-in). It ran:" + shown,
        pytrace=False,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    # Checked here, right after a test that passed, so the test itself is reported FAILED
    # (`yield` raises for one that failed); runs in fixture teardowns, and those of a test
    # that failed anyway, are left to the fixture below.
    yield
    _fail_unless_slow(item, _RUNS.take())


@pytest.fixture(scope="session")
def _terraform_shim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path] | None:
    """(folder to put first on PATH, its log of terraform runs); None without terraform."""
    real = shutil.which("terraform", path=REAL_ENVIRON.get("PATH"))
    if real is None:
        return None
    folder = tmp_path_factory.mktemp("terraform-shim")
    log = folder / "runs.log"
    log.touch()
    shim = folder / "bin" / "terraform"
    shim.parent.mkdir()
    shim.write_text(terraform_shim_text(real, log), encoding="utf-8")
    shim.chmod(0o755)
    return shim.parent, log


@pytest.fixture(autouse=True)
def _real_tools_only_in_slow_tests(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    _terraform_shim: tuple[Path, Path] | None,
) -> Iterator[None]:
    if _terraform_shim is not None:
        folder, _RUNS.shim_log = _terraform_shim
        monkeypatch.setenv("PATH", os.pathsep.join([str(folder), os.environ.get("PATH", "")]))
    _RUNS.forget()
    yield
    # Torn down after the test's other function fixtures (set up after this autouse one), so
    # terraform run in one of them counts against the test that asked for it.
    _fail_unless_slow(request.node, _RUNS.take())


# ---------------------------------------------------------------------------------------------
# The sandbox.


@pytest.fixture(scope="session")
def moto_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sandbox.Sandbox]:
    """One moto server on 127.0.0.1 for the whole session, stopped at the end even on failure.
    Under pytest-xdist each worker is a session of its own, so each has its own server (and
    port, state folder and AWS config files under its own temporary folder)."""
    for attempt in range(1, MOTO_START_ATTEMPTS + 1):
        try:
            box = sandbox.start_server(tmp_path_factory.mktemp("moto"))
            break
        except sandbox.SandboxError as exc:
            if attempt == MOTO_START_ATTEMPTS:
                pytest.fail(f"moto's server did not start: {exc}", pytrace=False)
        except TfrunError as exc:
            pytest.fail(
                f"The test suite needs moto's server (pip install -e '.[dev]'): {exc}",
                pytrace=False,
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
    applies them anew (the server is this process's, and a process runs one test at a time,
    so no other test's resources are lost)."""
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
    # Per session, so per xdist worker: terraform's plugin cache is not safe for concurrent
    # writers, and tfrun's cache lock does not cover terraform run by a test directly. Each
    # worker copies the provider once.
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


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tfrun's wheel, built offline from this checkout (helpers.build_wheel)."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))
