"""One path for one stack: the single-stack wrapper and a run over many stacks run terraform
through the same code, so they share the stack lock, the init fingerprint, the saved plan's
one reading and the command line's one classification."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_terraform import FakeRepo
from filelock import FileLock
from helpers import LiveRepo, StateBackend, cli_environ, run_cli

from tfrun import cli, tfargs
from tfrun.discovery import Repository
from tfrun.errors import ExitCode
from tfrun.run import locks

STACK = "staging-eu-west-1/network"
PROD = "prod-eu-west-1/network"


@pytest.fixture
def fake_repo(tmp_path: Path) -> FakeRepo:
    return FakeRepo(tmp_path)


def _spans(repo: FakeRepo, command: str) -> list[tuple[float, float]]:
    """When each run of `command` started and ended (the fake's one clock)."""
    starts = {r["pid"]: r["t"] for r in repo.records("start") if r["args"][0] == command}
    ends = {r["pid"]: r["t"] for r in repo.records("exit") if r["pid"] in starts}
    return sorted((starts[pid], ends[pid]) for pid in starts)


def test_one_stack_waits_for_a_run_all_applying_it(fake_repo: FakeRepo) -> None:
    """The defect: `tfrun apply STACK` started terraform in a stack that a `run-all apply`
    was still applying. Now the second waits for the first, and says for whom."""
    fake_repo.fake(STACK, {"changes": {"add": 1}, "apply": {"sleep": 5}})
    many = subprocess.Popen(
        [sys.executable, "-m", "tfrun", "run-all", "apply", "--env", "staging", "--yes"],
        cwd=fake_repo.live,
        env=cli_environ(fake_repo.env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "apply" not in fake_repo.commands():
            assert time.monotonic() < deadline, "the run-all never started its apply"
            time.sleep(0.05)
        one = run_cli(["apply", STACK, "--yes"], fake_repo.live, fake_repo.env)
    finally:
        _out, err = many.communicate(timeout=60)
    assert many.returncode == 0, err
    one.assert_success()
    assert "waiting for terraform apply (pid" in one.stderr, (fake_repo.records(), one)
    first, second = _spans(fake_repo, "apply")
    assert second[0] >= first[1], "the second apply started while the first was running"


def test_one_stack_gives_up_after_lock_timeout_without_starting_terraform(
    fake_repo: FakeRepo,
) -> None:
    stack = Repository(fake_repo.live).stack(fake_repo.live / STACK)
    path = locks.stack_lock_path(stack)
    path.parent.mkdir(parents=True)
    path.with_name(path.name + ".owner").write_text("tfrun (pid 1, apply, since 12:00:00)\n")
    with FileLock(path):
        result = run_cli(["plan", STACK, "--lock-timeout", "0.3"], fake_repo.live, fake_repo.env)
    result.assert_exit(int(ExitCode.STACK_FAILED))
    assert "tfrun (pid 1, apply, since 12:00:00) is working in this stack" in result.stderr
    assert "--lock-timeout" in result.stderr
    assert fake_repo.records() == []


def test_alternating_commands_in_a_stack_init_once(fake_repo: FakeRepo) -> None:
    """The defect: the fingerprint hashed the binary as given on one path and resolved on the
    other, so `output` and `validate --json` re-ran init on every call."""
    stack_dir = fake_repo.live / STACK
    report = fake_repo.live.parent / "v.json"
    for _ in range(2):
        run_cli(["output", "-raw", "vpc_id"], stack_dir, fake_repo.env).assert_success()
        run_cli(["validate", "--json", str(report)], stack_dir, fake_repo.env).assert_success()
    assert fake_repo.commands() == ["init", "output", "validate", "output", "validate"]


def test_a_saved_plan_is_read_once_and_the_command_classified_once(
    fake_repo: FakeRepo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Applying a saved plan on a protected stack: the rename guard and the safety rules look
    at the same plan, read by one `terraform show -json`, and the command line is classified
    once for the whole run."""
    for name, value in fake_repo.env.items():
        monkeypatch.setenv(name, value)
    (fake_repo.live / PROD / "tfplan").write_text("fake plan", encoding="utf-8")
    classified: list[str] = []
    real_classify = tfargs.classify

    def counting(command: str, *args: Any, **kwargs: Any) -> tfargs.Operation:
        classified.append(command)
        return real_classify(command, *args, **kwargs)

    monkeypatch.setattr(tfargs, "classify", counting)
    monkeypatch.chdir(fake_repo.live)
    # No terminal on a laptop: refused after both looked at the plan.
    assert cli.main(["apply", PROD, "--yes", "tfplan"]) == ExitCode.REFUSED
    assert "protected-apply-needs-terminal" in capsys.readouterr().err
    assert fake_repo.commands() == ["show"]
    assert classified == ["apply"]


@pytest.fixture
def slow_apply_repo(
    make_repo: Any, state_backend: StateBackend, tf_env: dict[str, str]
) -> Iterator[LiveRepo]:
    yield make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            f"live/{STACK}/main.tf": """
                resource "terraform_data" "slow" {
                  input = "v1"
                  provisioner "local-exec" {
                    command = "sleep 4"
                  }
                }
            """,
        }
    )


@pytest.mark.slow
def test_one_stack_waits_for_a_run_all_applying_it_with_real_terraform(
    slow_apply_repo: LiveRepo, state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    live = slow_apply_repo.live
    many = subprocess.Popen(
        [sys.executable, "-m", "tfrun", "run-all", "apply", "--yes"],
        cwd=live,
        env=cli_environ(tf_env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The run-all holds the stack from before init until its apply ends (the sleep).
        owner = live / locks.LOCKS_DIR / f"{STACK}.lock.owner"
        deadline = time.monotonic() + 60
        while not owner.exists():
            assert time.monotonic() < deadline, "the run-all never took the stack lock"
            time.sleep(0.05)
        one = run_cli(["apply", STACK, "--yes", "-no-color"], live, tf_env)
    finally:
        out, err = many.communicate(timeout=300)
    assert many.returncode == 0, out + err
    one.assert_success()
    assert "waiting for terraform " in one.stderr and "started by tfrun pid" in one.stderr
    # One of them created the resource and the other found it: the run-all (a reviewed apply)
    # planned again when the other's apply had made its saved plan stale.
    state = state_backend.read_json("staging/eu-west-1/network.tfstate")
    (made,) = [r for r in state["resources"] if r["type"] == "terraform_data"]
    assert len(made["instances"]) == 1
    assert ("0 added" in one.stdout) or ("its state changed since it was planned" in err), (
        one.stdout + err
    )


def _start_args(fake_repo: FakeRepo) -> list[list[str]]:
    return [r["args"] for r in fake_repo.records("start")]


def test_backend_settings_changed_in_place_reinit_with_reconfigure(fake_repo: FakeRepo) -> None:
    """`use_lockfile` added after the stack was initialised: the state stays where it was,
    so the next init takes the new backend with -reconfigure instead of failing."""
    stack_dir = fake_repo.live / STACK
    run_cli(["output", "-raw", "vpc_id"], stack_dir, fake_repo.env).assert_success()
    root = fake_repo.live / "tfrun.hcl"
    root.write_text(root.read_text().replace("  encrypt = true\n", "  use_lockfile = true\n"))
    run_cli(["output", "-raw", "vpc_id"], stack_dir, fake_repo.env).assert_success()
    run_cli(["output", "-raw", "vpc_id"], stack_dir, fake_repo.env).assert_success()
    inits = [args for args in _start_args(fake_repo) if args[0] == "init"]
    assert len(inits) == 2, _start_args(fake_repo)
    assert "-reconfigure" not in inits[0]
    assert "-reconfigure" in inits[1]


def test_a_moved_state_stops_the_stack_until_the_person_chooses(fake_repo: FakeRepo) -> None:
    """The state key's pattern changed after init: tfrun neither copies the state nor
    silently starts from an empty one; it names both places and the two commands."""
    stack_dir = fake_repo.live / STACK
    run_cli(["output", "-raw", "vpc_id"], stack_dir, fake_repo.env).assert_success()
    root = fake_repo.live / "tfrun.hcl"
    root.write_text(
        root.read_text().replace("  encrypt = true\n", '  key = "v2/{env}/{stack}.tfstate"\n')
    )
    before = len(fake_repo.records("start"))
    moved = run_cli(["output", "-raw", "vpc_id"], stack_dir, fake_repo.env)
    moved.assert_exit(int(ExitCode.STACK_FAILED))
    assert (
        "moved from s3://acme-tfstate/staging/eu-west-1/network.tfstate in eu-west-1 to "
        "s3://acme-tfstate/v2/staging/network.tfstate in eu-west-1" in moved.stderr
    ), moved.stderr
    assert "'tfrun init -migrate-state'" in moved.stderr
    assert len(fake_repo.records("start")) == before, "terraform ran in a moved stack"
    run_cli(["init", "-migrate-state"], stack_dir, fake_repo.env).assert_success()
    run_cli(["output", "-raw", "vpc_id"], stack_dir, fake_repo.env).assert_success()
    assert [args[0] for args in _start_args(fake_repo)][before:] == ["init", "output"]
    assert "-reconfigure" not in _start_args(fake_repo)[before]
