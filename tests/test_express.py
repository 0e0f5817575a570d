"""The laptop wrapper's short way (tfrun/express.py): a read-only command that a full run
prepared a moment ago runs as terraform itself; anything that could make the full run do
something else is seen, and the full run happens again."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_terraform import STACK_REL, FakeRepo
from helpers import StateBackend, root_hcl, run_cli

from tfrun import express
from tfrun.run.folder import RUNS_DIR


@pytest.fixture
def repo(tmp_path: Path) -> FakeRepo:
    return FakeRepo(tmp_path)


def settle(live: Path) -> None:
    """Files written a minute ago: a full run remembers only inputs older than its start."""
    past = time.time() - 60
    for folder, _dirs, names in os.walk(live):
        for name in names:
            os.utime(os.path.join(folder, name), (past, past))


def last_log(live: Path) -> str:
    runs = sorted((live / RUNS_DIR).iterdir())
    [log] = list(runs[-1].rglob("*.log"))
    return log.read_text(encoding="utf-8")


def output_twice(repo: FakeRepo, *args: str) -> tuple[str, str]:
    """A full run, then the same command again; the logs of both."""
    stack = repo.live / STACK_REL
    first = run_cli(["output", *args], stack, repo.env).assert_success()
    first_log = last_log(repo.live)
    second = run_cli(["output", *args], stack, repo.env).assert_success()
    assert second.stdout == first.stdout
    assert express.NOTE not in first_log
    assert express.NOTE in last_log(repo.live), "the second run was a full run too"
    return first_log, last_log(repo.live)


def test_the_same_read_only_command_runs_as_terraform_itself(repo: FakeRepo) -> None:
    settle(repo.live)
    _full, short = output_twice(repo, "-json")
    assert short.startswith(f"$ {repo.shim} output -json\n")
    # The second command was terraform's alone: no init, the same arguments, and in the
    # stack's folder.
    assert repo.commands() == ["init", "output", "output"]
    starts = repo.records("start")
    assert starts[1]["args"] == starts[2]["args"]
    assert starts[2]["cwd"] == str(repo.live / STACK_REL)


def test_terraforms_exit_status_is_the_commands(repo: FakeRepo) -> None:
    repo.fake(STACK_REL, {"output": {"exit": 1}})
    settle(repo.live)
    stack = repo.live / STACK_REL
    run_cli(["output", "nope"], stack, repo.env).assert_exit(1)
    run_cli(["output", "nope"], stack, repo.env).assert_exit(1)
    assert express.NOTE in last_log(repo.live)


def _edit_keeping_mtime(path: Path) -> None:
    before = path.stat()
    path.write_text(path.read_text() + "\n# edited\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


CHANGES: dict[str, Callable[[FakeRepo], object]] = {
    "root config edited": lambda r: (r.live / "tfrun.hcl").write_text(
        (r.live / "tfrun.hcl").read_text().replace('repo = "infra"', 'repo = "infra2"')
    ),
    "edit that keeps the mtime": lambda r: _edit_keeping_mtime(r.live / "tfrun.hcl"),
    "stack config added": lambda r: (r.live / STACK_REL / "stack.hcl").write_text(
        'tags = { Team = "net" }\n'
    ),
    "config added between root and stack": lambda r: (
        r.live / "staging-eu-west-1" / "tfrun.hcl"
    ).write_text('tags = { Team = "net" }\n'),
    "stack file added": lambda r: (r.live / STACK_REL / "extra.tf").write_text("locals {}\n"),
    "stack file renamed": lambda r: (r.live / STACK_REL / "main.tf").rename(
        r.live / STACK_REL / "network.tf"
    ),
    "generated file removed": lambda r: (r.live / STACK_REL / "provider.tf").unlink(),
    "init marker removed": lambda r: (
        r.live / STACK_REL / ".terraform" / "tfrun-init.json"
    ).unlink(),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_means_the_full_run_again(repo: FakeRepo, change: str) -> None:
    settle(repo.live)
    output_twice(repo)
    CHANGES[change](repo)
    run_cli(["output"], repo.live / STACK_REL, repo.env).assert_success()
    assert express.NOTE not in last_log(repo.live), change
    # What the full run prepares is as the change says.
    provider = (repo.live / STACK_REL / "provider.tf").read_text()
    if change == "root config edited":
        assert '"infra2"' in provider
    if "config added" in change:
        assert "Team" in provider


@pytest.mark.parametrize(
    "environment",
    [{"TF_CLI_ARGS": "-no-color"}, {"AWS_PROFILE": "other"}, {express.SETTING: "0"}],
    ids=["terraform variable", "aws profile", "turned off"],
)
def test_another_environment_means_the_full_run(
    repo: FakeRepo, environment: dict[str, str]
) -> None:
    settle(repo.live)
    output_twice(repo)
    run_cli(["output"], repo.live / STACK_REL, {**repo.env, **environment}).assert_success()
    assert express.NOTE not in last_log(repo.live)


def _record(repo: FakeRepo) -> Path:
    [record] = list((repo.live / express.RECORDS).iterdir())
    return record


@pytest.mark.parametrize(
    "tamper",
    [
        {"code": "another tfrun"},
        {"until": 0},
        {"format": 0},
        {"sandbox_pid": 2**22 + 12345},  # a sandbox whose server is gone
    ],
    ids=["other version", "identities due", "other format", "sandbox gone"],
)
def test_a_record_that_no_longer_holds_is_not_used(
    repo: FakeRepo, tamper: dict[str, object]
) -> None:
    settle(repo.live)
    output_twice(repo)
    record = _record(repo)
    record.write_text(json.dumps({**json.loads(record.read_text()), **tamper}))
    run_cli(["output"], repo.live / STACK_REL, repo.env).assert_success()
    assert express.NOTE not in last_log(repo.live)


def test_a_broken_record_is_not_used(repo: FakeRepo) -> None:
    settle(repo.live)
    output_twice(repo)
    _record(repo).write_text("{not json")
    run_cli(["output"], repo.live / STACK_REL, repo.env).assert_success()
    assert express.NOTE not in last_log(repo.live)


def test_a_held_stack_lock_is_waited_for_by_the_full_run(repo: FakeRepo) -> None:
    settle(repo.live)
    output_twice(repo)
    lock = repo.live / ".tfrun" / "locks" / f"{STACK_REL}.lock"
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    (lock.parent / f"{lock.name}.owner").write_text("terraform apply (pid 1)\n")
    release = threading.Timer(1.5, os.close, (fd,))
    release.start()
    try:
        waited = run_cli(["output"], repo.live / STACK_REL, repo.env).assert_success()
    finally:
        release.join()
    assert "waiting for terraform apply (pid 1)" in waited.stderr
    assert express.NOTE not in last_log(repo.live)


def test_commands_that_write_are_never_short(repo: FakeRepo) -> None:
    settle(repo.live)
    stack = repo.live / STACK_REL
    for _ in range(2):
        run_cli(["apply", "--yes"], stack, repo.env).assert_success()
        run_cli(["state", "rm", "x"], stack, repo.env).assert_success()
    assert not (repo.live / express.RECORDS).exists()


def test_never_in_ci(repo: FakeRepo) -> None:
    settle(repo.live)
    env = {**repo.env, "GITLAB_CI": "true", "CI": "true"}
    for _ in range(2):
        run_cli(["output"], repo.live / STACK_REL, env).assert_success()
    assert not (repo.live / express.RECORDS).exists()
    assert express.NOTE not in last_log(repo.live)


def test_an_input_written_just_before_the_full_run_is_not_trusted(repo: FakeRepo) -> None:
    """The full run may have read it before or after that write: its signature proves
    nothing, so the next command runs in full too."""
    settle(repo.live)
    (repo.live / STACK_REL / "main.tf").write_text('output "vpc_id" { value = "vpc-9" }\n')
    for _ in range(2):
        run_cli(["output"], repo.live / STACK_REL, repo.env).assert_success()
        assert express.NOTE not in last_log(repo.live)


def test_a_stack_with_hooks_for_the_command_is_never_short(tmp_path: Path) -> None:
    """terraform alone would leave the hooks out: every run is a full run, and runs them."""
    ran = tmp_path / "ran"
    hook = (
        f'after_hook "count" {{\n  commands = ["output"]\n  execute = ["{sys.executable}", '
        f"\"-c\", \"open({str(ran)!r}, 'a').write('x')\"]\n}}\n"
    )
    repo = FakeRepo(tmp_path, {f"{STACK_REL}/stack.hcl": hook})
    settle(repo.live)
    for _ in range(3):
        run_cli(["output"], repo.live / STACK_REL, repo.env).assert_success()
        assert express.NOTE not in last_log(repo.live)
    assert ran.read_text() == "xxx"
    assert not list((repo.live / express.RECORDS).glob("*.json"))
    # A hook of another command does not stop the short way.
    (repo.live / STACK_REL / "stack.hcl").write_text(hook.replace('"output"', '"apply"'))
    settle(repo.live)
    output_twice(repo)


def test_a_var_file_added_or_removed_up_the_tree_means_the_full_run(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path, {"tfrun.hcl": root_hcl() + 'var_files = ["{env}.tfvars"]\n'})
    stack = repo.live / STACK_REL
    settle(repo.live)
    for _ in range(2):
        run_cli(["plan"], stack, repo.env).assert_success()
    assert express.NOTE in last_log(repo.live)
    assert "-var-file" not in last_log(repo.live)
    for added in (repo.live / "staging.tfvars", repo.live / "staging-eu-west-1/staging.tfvars"):
        added.write_text('size = "m"\n')
        settle(repo.live)
        run_cli(["plan"], stack, repo.env).assert_success()
        log = last_log(repo.live)
        assert express.NOTE not in log
        assert f"-var-file={os.path.relpath(added, stack)}" in log
        run_cli(["plan"], stack, repo.env).assert_success()
        assert express.NOTE in last_log(repo.live)
    (repo.live / "staging.tfvars").unlink()
    run_cli(["plan"], stack, repo.env).assert_success()
    log = last_log(repo.live)
    assert express.NOTE not in log
    assert "-var-file=../staging.tfvars" in log and "../../staging.tfvars" not in log


def test_a_full_run_that_may_not_be_repeated_forgets_the_record(repo: FakeRepo) -> None:
    settle(repo.live)
    output_twice(repo)
    run_cli(["output", "--timeout", "5m"], repo.live / STACK_REL, repo.env).assert_success()
    assert _record(repo).exists()  # another command line: not remembered, the first kept
    # terraform crashes in a full run (an input changed): nothing of the last one is kept.
    repo.fake(STACK_REL, {"output": {"die_by": "SIGSEGV"}})
    (repo.live / STACK_REL / "main.tf").write_text('output "vpc_id" { value = "vpc-9" }\n')
    settle(repo.live)
    run_cli(["output"], repo.live / STACK_REL, repo.env).assert_exit(139)
    assert not list((repo.live / express.RECORDS).iterdir())


@pytest.mark.slow
def test_real_terraform_output_and_plan_through_the_short_way(
    examples_copy: Path, state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    network = examples_copy / "staging-eu-west-1/network"
    run_cli(["apply", "--yes", "-no-color"], network, tf_env).assert_success()
    settle(examples_copy)
    for command in (["output", "-json"], ["plan", "-no-color", "-detailed-exitcode"]):
        full = run_cli(command, network, tf_env).assert_success()
        assert express.NOTE not in last_log(examples_copy)
        short = run_cli(command, network, tf_env).assert_success()
        assert express.NOTE in last_log(examples_copy)
        if command[0] == "output":
            assert json.loads(short.stdout) == json.loads(full.stdout)
        else:
            assert "No changes." in short.stdout
    # A tag added in config reaches the generated provider, and the plan shows it.
    stack_hcl = network / "stack.hcl"
    text = stack_hcl.read_text() if stack_hcl.exists() else ""
    stack_hcl.write_text(text + '\ntags = { CostCentre = "net-42" }\n')
    changed = run_cli(["plan", "-no-color", "-detailed-exitcode"], network, tf_env)
    changed.assert_exit(2)
    assert "net-42" in changed.stdout
    assert express.NOTE not in last_log(examples_copy)
