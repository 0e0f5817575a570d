"""Fault injection: one stack's trouble never hurts another, and tfrun's own death, a closed
terminal, a crash, a hang or a full disk lose nothing. The fake terraform plays the fault; one
test per kind of death also runs real terraform on the sandbox."""

from __future__ import annotations

import errno
import json
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_terraform import PROD_REL, STACK_REL, FakeRepo, Recorder, patch_plumbing, toolchain
from helpers import LiveRepo, StateBackend, alive, cli_environ, run_cli, wait_until

from tfrun.discovery import Repository
from tfrun.errors import ExitCode
from tfrun.report import Status
from tfrun.run import engine
from tfrun.run import stack as stack_run

OTHER = "staging-eu-west-1/data"


@pytest.fixture
def repo(tmp_path: Path) -> FakeRepo:
    return FakeRepo(tmp_path, {f"{OTHER}/main.tf": 'output "x" { value = 1 }\n'})


def started(repo: FakeRepo, command: str) -> list[dict[str, Any]]:
    return [r for r in repo.records("start") if r["args"][0] == command]


class Background:
    """tfrun in a subprocess of its own, as a person or CI starts it."""

    def __init__(self, repo: FakeRepo, argv: list[str], **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfrun", *argv],
            cwd=repo.live,
            env=cli_environ({**repo.env, **env}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err


# --- One stack's error -----------------------------------------------------------------------


@pytest.fixture
def in_process(repo: FakeRepo, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRepo]:
    for name, value in repo.env.items():
        monkeypatch.setenv(name, value)
    patch_plumbing(Path(repo.env["TF_PLUGIN_CACHE_DIR"]), monkeypatch.setattr)
    yield repo


def _run_in_process(repo: FakeRepo, tmp_path: Path) -> tuple[engine.RunReport, Path]:
    stacks = [s for s in Repository(repo.live).stacks() if s.env == "staging"]
    report_file = tmp_path / "report.json"
    options = engine.RunOptions(
        terraform=toolchain(repo.shim, Path(repo.env["TF_PLUGIN_CACHE_DIR"])),
        run_dir=tmp_path / "run",
        json_path=report_file,
        sink=Recorder(),
        kill_grace_s=1.0,
    )
    return engine.run(stacks, {}, "apply", [], options), report_file


def test_a_full_disk_in_one_stack_fails_that_stack_alone(
    in_process: FakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_process.fake(OTHER, {"changes": {"add": 1}, "apply": {"sleep": 1}})
    real_write = stack_run._StackRun.write_log

    def full_disk(self: stack_run._StackRun, line: str) -> None:
        if self.stack.rel == STACK_REL:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, line)

    monkeypatch.setattr(stack_run._StackRun, "write_log", full_disk)
    report, report_file = _run_in_process(in_process, tmp_path)
    failed, other = report.results[STACK_REL], report.results[OTHER]
    assert failed.status is Status.FAILED and "No space left on device" in failed.reason
    assert other.status is Status.SUCCEEDED
    assert not [r for r in in_process.records("signal")]  # nobody's apply was interrupted
    written = json.loads(report_file.read_text())
    assert {s["path"]: s["status"] for s in written["stacks"]} == {
        STACK_REL: "failed",
        OTHER: "succeeded",
    }


def test_a_bug_in_one_stacks_work_fails_that_stack_alone(
    in_process: FakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_process.fake(OTHER, {"changes": {"add": 1}, "apply": {"sleep": 1}})
    real_run = stack_run._StackRun.run

    async def buggy(self: stack_run._StackRun) -> Any:
        if self.stack.rel == STACK_REL:
            raise ValueError("something tfrun did not expect")
        return await real_run(self)

    monkeypatch.setattr(stack_run._StackRun, "run", buggy)
    report, report_file = _run_in_process(in_process, tmp_path)
    failed = report.results[STACK_REL]
    assert failed.status is Status.FAILED
    assert "internal error in tfrun (ValueError: something tfrun did not expect)" in failed.reason
    assert failed.log is not None and "Traceback" in failed.log.read_text()
    assert report.results[OTHER].status is Status.SUCCEEDED
    assert report_file.exists()


def test_a_config_error_in_one_stack_is_found_before_the_run(repo: FakeRepo) -> None:
    (repo.live / OTHER / "stack.hcl").write_text('providers = { "my provider" = "~> 1.0" }\n')
    result = run_cli(["run-all", "apply", "--yes"], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert f"{OTHER}/stack.hcl: 'providers'" in result.stderr
    assert repo.records() == []


@pytest.mark.parametrize("target", ["folder", "a-file/report.json"])
def test_an_unwritable_report_is_found_before_anything_runs(
    repo: FakeRepo, tmp_path: Path, target: str
) -> None:
    path = tmp_path / target
    if target == "folder":
        path.mkdir()
    else:
        (tmp_path / "a-file").write_text("in the way\n")
    result = run_cli(["run-all", "apply", "--yes", "--json", str(path)], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert f"--json {path}" in result.stderr
    assert repo.records() == []


def test_a_report_in_a_folder_not_made_yet_is_written(repo: FakeRepo, tmp_path: Path) -> None:
    path = tmp_path / "ci" / "plan" / "report.json"
    run_cli(["plan", STACK_REL, "--json", str(path)], repo.live, repo.env).assert_success()
    assert json.loads(path.read_text())["stacks"][0]["status"] == "succeeded"


# --- tfrun's own death ----------------------------------------------------------------------


def test_a_killed_tfrun_interrupts_its_terraform_which_keeps_the_stack_locked(
    repo: FakeRepo,
) -> None:
    repo.fake(STACK_REL, {"changes": {"add": 1}, "apply": {"sleep": 30, "sigint_delay": 8}})
    run = Background(repo, ["apply", STACK_REL, "--yes"])
    owner = repo.live / ".tfrun" / "locks" / f"{STACK_REL}.lock.owner"
    wait_until(lambda: started(repo, "apply") and "terraform apply" in owner.read_text())
    [apply] = started(repo, "apply")
    run.process.kill()  # SIGKILL: no handler of tfrun's runs
    run.process.wait()  # not its output: terraform still holds the pipes until it ends
    # The kernel told terraform: one SIGINT, to stop gracefully and release its state lock.
    wait_until(lambda: repo.records("signal"))
    assert [(r["pid"], r["signal"]) for r in repo.records("signal")] == [(apply["pid"], "SIGINT")]
    # While it shuts down it still holds the stack: the next tfrun waits for it, by name.
    waiting = run_cli(["plan", STACK_REL, "--lock-timeout", "0.5"], repo.live, repo.env)
    waiting.assert_exit(int(ExitCode.STACK_FAILED))
    assert f"terraform apply (pid {apply['pid']}" in waiting.stderr
    wait_until(lambda: not alive(apply["pid"]))
    run_cli(["plan", STACK_REL], repo.live, repo.env).assert_success()


def test_a_closed_terminal_is_an_interrupt_with_a_summary(repo: FakeRepo) -> None:
    for rel in (STACK_REL, OTHER):
        repo.fake(rel, {"changes": {"add": 1}, "apply": {"sleep": 30}})
    run = Background(repo, ["run-all", "apply", "--yes", "--env", "staging"])
    wait_until(lambda: len(started(repo, "apply")) == 2)
    run.process.send_signal(signal.SIGHUP)
    code, _out, err = run.finish()
    assert code == ExitCode.INTERRUPTED
    assert sorted(r["signal"] for r in repo.records("signal")) == ["SIGINT", "SIGINT"]
    assert "2 interrupted" in err
    assert not any(alive(r["pid"]) for r in started(repo, "apply"))


# --- terraform's death ------------------------------------------------------------------------


def test_a_crashed_terraform_is_named_and_its_signal_is_the_exit_code(repo: FakeRepo) -> None:
    repo.fake(STACK_REL, {"plan": {"die_by": "SIGSEGV"}})
    one = run_cli(["plan", STACK_REL], repo.live, repo.env)
    one.assert_exit(128 + signal.SIGSEGV)
    assert "terraform plan was killed by SIGSEGV" in one.stderr
    many = run_cli(["run-all", "plan", "--env", "staging"], repo.live, repo.env)
    many.assert_exit(int(ExitCode.STACK_FAILED))
    assert "killed by SIGSEGV" in many.stderr + many.stdout
    assert "exit -11" not in many.stderr + many.stdout


def test_a_hanging_terraform_is_stopped_gracefully_at_the_timeout(repo: FakeRepo) -> None:
    repo.fake(STACK_REL, {"changes": {"add": 1}, "apply": {"sleep": 60}})
    began = time.monotonic()
    result = run_cli(
        ["run-all", "apply", "--yes", "--env", "staging", "--timeout", "2s"], repo.live, repo.env
    )
    result.assert_exit(int(ExitCode.STACK_FAILED))
    assert time.monotonic() - began < 30
    assert "terraform apply timed out after 2.0s" in result.stderr + result.stdout
    assert [r["signal"] for r in repo.records("signal")] == ["SIGINT"]  # gracefully, once


def test_the_time_limit_can_come_from_the_config(repo: FakeRepo) -> None:
    repo.fake(STACK_REL, {"plan": {"sleep": 60}})
    (repo.live / STACK_REL / "stack.hcl").write_text('timeout = "1s"\n')
    result = run_cli(["plan", STACK_REL], repo.live, repo.env)
    result.assert_exit(int(ExitCode.STACK_FAILED))
    assert "timed out after 1.0s" in result.stderr


@pytest.mark.parametrize("value", ["soon", "0s", "-5m"])
def test_a_time_limit_that_is_no_duration_is_a_usage_error(repo: FakeRepo, value: str) -> None:
    result = run_cli(["plan", STACK_REL, "--timeout", value], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "--timeout" in result.stderr
    assert repo.records() == []


# --- Secrets ----------------------------------------------------------------------------------


def test_variable_values_never_reach_logs_or_reports(repo: FakeRepo, tmp_path: Path) -> None:
    secrets = ["hunter2", "AKIAEXAMPLE", "ghp_abc", '{"secret": "s3cr3t"}', "pw0rd"]
    report = tmp_path / "report.json"
    argv = [
        "run-all", "plan", "--env", "staging", "--json", str(report),
        "-var", f"DB_PASS={secrets[0]}", f"-var=aws_access_key_id={secrets[1]}",
        "-var", f"github_pat={secrets[2]}", "-var", f"settings={secrets[3]}",
        f"-backend-config=password={secrets[4]}", "-var-file=env.tfvars",
    ]  # fmt: skip
    run_cli(argv, repo.live, repo.env).assert_success()
    logs = [p for p in (repo.live / ".tfrun" / "runs").rglob("*") if p.is_file()]
    written = "".join(p.read_text(errors="replace") for p in logs) + report.read_text()
    assert not [secret for secret in secrets if secret in written]
    assert "DB_PASS=***" in written and "-var-file=env.tfvars" in written
    # terraform itself got the values.
    [plan] = [r for r in repo.records("start") if r["args"][0] == "plan"][:1]
    assert f"DB_PASS={secrets[0]}" in plan["args"]


def test_logs_plans_and_reports_are_private_and_old_runs_are_pruned(
    repo: FakeRepo, tmp_path: Path
) -> None:
    root = repo.live / "tfrun.hcl"
    root.write_text(root.read_text() + "keep_runs = 3\n")
    report = tmp_path / "report.json"
    for _ in range(5):
        argv = ["run-all", "plan", "--env", "staging", "--json", str(report)]
        run_cli(argv, repo.live, repo.env).assert_success()
        time.sleep(1.05)  # run folders are named by the second
    runs = repo.live / ".tfrun" / "runs"
    assert len([p for p in runs.iterdir() if p.is_dir()]) == 3
    for path in [runs, *runs.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    assert stat.S_IMODE(report.stat().st_mode) == 0o600


# --- CI logs ----------------------------------------------------------------------------------


def test_without_a_terminal_a_run_says_it_is_alive(repo: FakeRepo) -> None:
    for rel in (STACK_REL, OTHER):
        repo.fake(rel, {"changes": {"add": 1}, "apply": {"sleep": 3}})
    result = run_cli(
        ["run-all", "apply", "--yes", "--env", "staging"],
        repo.live,
        {**repo.env, "TFRUN_HEARTBEAT_S": "0.5"},
    )
    result.assert_success()
    assert f"── {STACK_REL} · started" in result.stdout
    assert f"── {OTHER} · still apply · " in result.stdout
    assert "last: fake terraform apply" in result.stdout


def test_the_only_running_stack_streams_its_output_live(repo: FakeRepo) -> None:
    repo.fake(STACK_REL, {"changes": {"add": 1}, "apply": {"sleep": 2}})
    run = Background(
        repo, ["run-all", "apply", "--yes", "--env", "staging", "--include", "network"]
    )
    code, out, _ = run.finish()
    assert code == 0
    assert f"{STACK_REL} │ fake terraform apply" in out
    # Streamed once: the block at the end does not print it again.
    assert out.count("fake terraform apply") == 1


def test_a_destroy_plan_is_never_provisional(repo: FakeRepo) -> None:
    (repo.live / OTHER / "stack.hcl").write_text('dependencies = ["../network"]\n')
    repo.fake(STACK_REL, {"changes": {"destroy": 1, "outputs": ["vpc_id"]}})
    report = repo.live.parent / "report.json"
    argv = ["run-all", "plan", "-destroy", "--env", "staging", "--json", str(report)]
    run_cli(argv, repo.live, repo.env).assert_success()
    stacks = json.loads(report.read_text())["stacks"]
    assert [s["provisional"] for s in stacks] == [False, False]


# --- With real terraform ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_tfrun_leaves_no_state_lock_behind_with_real_terraform(
    make_repo: Callable[..., LiveRepo], state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            f"live/{STACK_REL}/main.tf": """
                resource "terraform_data" "slow" {
                  input = "v1"
                  provisioner "local-exec" {
                    command = "sleep 60"
                  }
                }
            """,
        }
    ).live
    run = subprocess.Popen(
        [sys.executable, "-m", "tfrun", "apply", STACK_REL, "--yes", "-no-color"],
        cwd=live,
        env=cli_environ(tf_env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    key = f"{state_backend.bucket}/staging/eu-west-1/network.tfstate"
    wait_until(lambda: key in {i["LockID"] for i in state_backend.lock_items()}, timeout=120)
    time.sleep(1)  # into the provisioner's sleep
    run.kill()
    run.communicate(timeout=30)
    # terraform got one SIGINT when tfrun died, stopped and released the DynamoDB lock.
    wait_until(lambda: key not in {i["LockID"] for i in state_backend.lock_items()}, timeout=90)
    # The next apply takes the stack (it waits while the interrupted one finishes) and works.
    again = run_cli(["plan", STACK_REL, "-no-color"], live, tf_env)
    again.assert_success()
    assert "Error acquiring the state lock" not in again.stderr + again.stdout
    assert PROD_REL not in again.stderr
