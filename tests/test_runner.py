"""The scheduler with fake tasks (no processes), then the whole run with a fake terraform:
ordering, limits, failures, interrupts, retries, locks, the report and the exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from fake_terraform import Recorder, patch_plumbing, toolchain, write_shim
from filelock import FileLock
from helpers import alive, wait_until

from tfrun.discovery import Repository, Stack
from tfrun.errors import ExitCode, RefusedError
from tfrun.report import (
    Changes,
    Finished,
    Notice,
    Result,
    RunReport,
    Started,
    Status,
    exit_code,
)
from tfrun.retry import RetryPolicy, transient_cause
from tfrun.run import engine, locks, logs
from tfrun.run.engine import RunOptions
from tfrun.run.scheduler import TaskContext, reversed_edges, schedule

ROOT_CONFIG = """\
state {
  bucket = "tfstate"
  region = "eu-west-1"
}
environments {
  dev = { account_id = "111111111111" }
}
retry {
  attempts  = 3
  backoff_s = 0
}
"""


# --- The scheduler alone, with fake tasks --------------------------------------------------


@dataclass
class FakeTasks:
    """Tasks that sleep, fail or wait for a stop as told, and record when they ran."""

    durations: Mapping[str, float] = field(default_factory=dict)
    fail: frozenset[str] = frozenset()
    wait_for_stop: frozenset[str] = frozenset()
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    running: int = 0
    most_running: int = 0

    async def __call__(self, node: str, context: TaskContext) -> Result:
        start = anyio.current_time()
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if node in self.wait_for_stop:
                await context.stop.wait()
                return Result.interrupted(context.stop.reason)
            await anyio.sleep(self.durations.get(node, 0.01))
            if node in self.fail:
                return Result.failed("boom")
            return Result.succeeded()
        finally:
            self.running -= 1
            self.spans[node] = (start, anyio.current_time())


def scheduled(
    nodes: Sequence[str],
    deps: Mapping[str, set[str]],
    tasks: FakeTasks,
    **options: Any,
) -> dict[str, Result]:
    async def main() -> dict[str, Result]:
        return await schedule(nodes, deps, tasks, **{"parallelism": 4, **options})

    return anyio.run(main)


def test_a_dependency_finishes_before_its_dependent_starts() -> None:
    deps = {"platform": {"network"}, "data": {"network"}, "app": {"platform", "data"}}
    tasks = FakeTasks(durations={"network": 0.05, "platform": 0.03, "data": 0.01})
    results = scheduled(["network", "platform", "data", "app"], deps, tasks)
    assert all(result.ok for result in results.values())
    for node, needs in deps.items():
        for need in needs:
            assert tasks.spans[need][1] <= tasks.spans[node][0]
    # platform and data are independent: they ran side by side.
    assert tasks.spans["data"][0] < tasks.spans["platform"][1]


def test_parallelism_is_a_bound_and_is_used() -> None:
    nodes = [f"s{i}" for i in range(10)]
    tasks = FakeTasks(durations=dict.fromkeys(nodes, 0.02))
    scheduled(nodes, {}, tasks, parallelism=3)
    assert tasks.most_running == 3


def test_results_come_back_in_the_order_given() -> None:
    nodes = ["c", "a", "b"]
    results = scheduled(nodes, {"c": {"a"}}, FakeTasks())
    assert list(results) == nodes


def test_a_failure_skips_its_dependents_with_the_reason_and_others_go_on() -> None:
    deps = {"platform": {"network"}, "app": {"platform"}, "other-app": {"other"}}
    tasks = FakeTasks(fail=frozenset({"network"}), durations={"other": 0.05})
    results = scheduled(["network", "platform", "app", "other", "other-app"], deps, tasks)
    assert results["network"].status is Status.FAILED
    assert results["platform"] == Result.skipped("dependency network failed")
    assert results["app"] == Result.skipped("dependency network failed (through platform)")
    assert "platform" not in tasks.spans and "app" not in tasks.spans  # never started
    assert results["other"].ok and results["other-app"].ok


def test_fail_fast_stops_running_tasks_and_skips_the_rest() -> None:
    tasks = FakeTasks(
        fail=frozenset({"bad"}), wait_for_stop=frozenset({"slow"}), durations={"bad": 0.02}
    )
    results = scheduled(["bad", "slow", "later"], {}, tasks, parallelism=2, fail_fast=True)
    assert results["bad"].status is Status.FAILED
    assert results["slow"].status is Status.INTERRUPTED
    assert results["slow"].reason == "--fail-fast after bad failed"
    assert results["later"] == Result.skipped("not started: --fail-fast after bad failed")


def test_without_fail_fast_a_failure_stops_nothing() -> None:
    tasks = FakeTasks(fail=frozenset({"bad"}))
    results = scheduled(["bad", "a", "b"], {}, tasks, parallelism=1)
    assert [r.status for r in results.values()] == [Status.FAILED, *[Status.SUCCEEDED] * 2]


def test_destroy_runs_dependents_first() -> None:
    nodes = ["network", "platform", "app"]
    deps = {"platform": {"network"}, "app": {"platform"}}
    tasks = FakeTasks()
    scheduled(nodes, reversed_edges(nodes, deps), tasks)
    assert tasks.spans["app"][1] <= tasks.spans["platform"][0]
    assert tasks.spans["platform"][1] <= tasks.spans["network"][0]


def test_edges_to_stacks_outside_the_run_are_ignored() -> None:
    results = scheduled(["platform"], {"platform": {"network"}}, FakeTasks())
    assert results["platform"].ok


def test_a_cycle_is_skipped_rather_than_hanging() -> None:
    results = scheduled(["a", "b", "c"], {"a": {"b"}, "b": {"a"}}, FakeTasks())
    assert results["c"].ok
    assert results["a"].status is Status.SKIPPED and "cycle" in results["a"].reason


def test_the_longest_chain_starts_first() -> None:
    # With one slot, "lonely" listed first would delay the chain a → b → c behind it.
    tasks = FakeTasks()
    scheduled(["lonely", "a", "b", "c"], {"b": {"a"}, "c": {"b"}}, tasks, parallelism=1)
    assert tasks.spans["a"][0] < tasks.spans["lonely"][0]


def test_events_tell_the_display_what_happens() -> None:
    recorder = Recorder()

    async def main() -> None:
        await schedule(
            ["a", "b"], {"b": {"a"}}, FakeTasks(fail=frozenset({"a"})), parallelism=2, sink=recorder
        )

    anyio.run(main)
    kinds = [(type(e).__name__, getattr(e, "node", None)) for e in recorder.events]
    assert kinds == [("Started", "a"), ("Finished", "a"), ("Finished", "b")]


# --- Results, report and exit code ---------------------------------------------------------


def report_of(*results: Result, interrupted: bool = False) -> RunReport:
    return RunReport("plan", {f"s{i}": r for i, r in enumerate(results)}, interrupted=interrupted)


@pytest.mark.parametrize(
    ("results", "interrupted", "detailed", "expected"),
    [
        ([Result.succeeded()], False, False, ExitCode.OK),
        ([Result.succeeded(has_changes=True)], False, False, ExitCode.OK),
        ([Result.succeeded(has_changes=True)], False, True, ExitCode.CHANGES_PRESENT),
        (
            [Result.succeeded(has_changes=True), Result.failed("x")],
            False,
            True,
            ExitCode.STACK_FAILED,
        ),
        ([Result.failed("x"), Result.skipped("dependency")], False, False, ExitCode.STACK_FAILED),
        ([Result.refused("prod"), Result.skipped("dependency")], False, True, ExitCode.REFUSED),
        ([Result.failed("x"), Result.refused("prod")], False, False, ExitCode.STACK_FAILED),
        ([Result.interrupted("stop"), Result.failed("x")], True, False, ExitCode.INTERRUPTED),
        ([Result.succeeded(has_changes=True)], True, True, ExitCode.INTERRUPTED),
        # A stack waiting for its upstream's apply is no failure, and has changes to come.
        ([Result.succeeded(), Result.waiting("for up")], False, False, ExitCode.OK),
        ([Result.succeeded(), Result.waiting("for up")], False, True, ExitCode.CHANGES_PRESENT),
        ([Result.waiting("for up"), Result.failed("x")], False, True, ExitCode.STACK_FAILED),
    ],
)
def test_exit_code_is_a_reduction_over_results(
    results: list[Result], interrupted: bool, detailed: bool, expected: ExitCode
) -> None:
    report = report_of(*results, interrupted=interrupted)
    assert exit_code(report, detailed_exitcode=detailed) == expected
    assert engine.exit_code(report, RunOptions(detailed_exitcode=detailed)) == expected


def test_plan_counts_are_counted_as_terraform_counts_them() -> None:
    plan = {
        "resource_changes": [
            {"change": {"actions": ["create"]}},
            {"change": {"actions": ["delete", "create"]}},  # replace: one add, one destroy
            {"change": {"actions": ["update"]}},
            {"change": {"actions": ["no-op"]}},
            {"change": {"actions": ["read"]}},
        ],
        "output_changes": {"vpc_id": {"actions": ["update"]}, "same": {"actions": ["no-op"]}},
    }
    assert Changes.from_plan(plan) == (Changes(add=2, change=1, destroy=1), ("vpc_id",))
    assert Changes.from_plan({}) == (Changes(), ())


def test_an_apply_counts_what_terraform_said_it_did() -> None:
    assert logs.applied("x\nApply complete! Resources: 2 added, 1 changed, 0 destroyed.\n") == (
        2,
        1,
        0,
    )
    imported = "Apply complete! Resources: 1 imported, 0 added, 0 changed, 3 destroyed."
    assert logs.applied(imported) == (0, 0, 3)
    assert logs.applied("\x1b[1mDestroy complete! Resources: 4 destroyed.\x1b[0m") == (0, 0, 4)
    assert logs.applied("Error: nothing applied") is None


def test_dependents_of_a_waiting_stack_wait_too() -> None:
    waiting = Result.waiting("waiting for a to be applied")
    assert Result.skipped_after("b", waiting, via="c").status is Status.WAITING
    assert Result.skipped_after("b", Result.failed("x")).status is Status.SKIPPED


def test_transient_errors_are_told_from_permanent_ones() -> None:
    assert transient_cause("Error: ThrottlingException: Rate exceeded")
    assert transient_cause("read tcp 10.0.0.1:443: read: connection reset by peer")
    assert transient_cause("Error: Failed to install provider\n\nError while installing aws")
    assert transient_cause("fork/exec .terraform/providers/...: text file busy")
    assert transient_cause("\x1b[31mError: \x1b[0mRequestLimitExceeded")
    assert transient_cause("Error: Unsupported argument") is None
    assert transient_cause("AccessDenied: not authorized to perform ec2:CreateVpc") is None


def test_backoff_grows_and_is_jittered_within_bounds() -> None:
    policy = RetryPolicy(attempts=3, backoff_s=2)
    for attempt, base in ((1, 2.0), (2, 4.0), (3, 8.0)):
        assert base / 2 <= policy.delay(attempt) <= base
    assert RetryPolicy(backoff_s=1000).delay(1) <= 60


# --- Runs with a fake terraform --------------------------------------------------------------


@dataclass
class Live:
    root: Path
    binary: Path
    record: Path
    run_dir: Path

    def add(self, name: str, fake: dict[str, Any] | None = None) -> Path:
        path = self.root / "dev-eu-west-1" / name
        path.mkdir(parents=True)
        (path / "main.tf").write_text("# a stack\n", encoding="utf-8")
        (path / "fake.json").write_text(json.dumps(fake or {}), encoding="utf-8")
        return path

    def stacks(self) -> list[Stack]:
        return Repository(self.root).stacks()

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        lines = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [line for line in lines if event is None or line["event"] == event]

    def options(self, **changes: Any) -> RunOptions:
        base: dict[str, Any] = {
            "terraform": toolchain(self.binary, self.root.parent / "plugin-cache"),
            "run_dir": self.run_dir,
            "sink": Recorder(),
            "kill_grace_s": 1.0,
        }
        return RunOptions(**{**base, **changes})

    def run(
        self,
        command: str = "apply",
        deps: Mapping[str, set[str]] | None = None,
        tf_args: Sequence[str] = (),
        **changes: Any,
    ) -> RunReport:
        return engine.run(self.stacks(), deps or {}, command, tf_args, self.options(**changes))


def rel(name: str) -> str:
    return f"dev-eu-west-1/{name}"


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Live:
    root = tmp_path / "live"
    root.mkdir()
    (root / "tfrun.hcl").write_text(ROOT_CONFIG, encoding="utf-8")
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("FAKE_TF_RECORD", str(record))
    monkeypatch.setenv("TF_PLUGIN_CACHE_DIR", str(tmp_path / "plugin-cache"))
    patch_plumbing(tmp_path / "plugin-cache", monkeypatch.setattr)
    return Live(root, write_shim(tmp_path / "bin"), record, tmp_path / "run")


def test_plan_saves_plans_counts_changes_and_flags_provisional_plans(live: Live) -> None:
    live.add("network", {"changes": {"add": 2, "outputs": ["vpc_id"]}})
    live.add("platform", {"changes": {"change": 1}})
    live.add("data")
    live.add("app")
    deps = {rel("platform"): {rel("network")}, rel("app"): {rel("platform")}}
    report = live.run("plan", deps)
    results = report.results
    network, platform, data, app = (results[rel(n)] for n in ("network", "platform", "data", "app"))
    assert network.changes == Changes(add=2) and network.output_changes == ("vpc_id",)
    assert platform.changes == Changes(change=1) and platform.provisional == (rel("network"),)
    assert app.provisional == (rel("platform"),)  # platform's plan itself is provisional
    assert data.changes == Changes() and not data.has_changes and not data.provisional
    assert network.plan_file == live.run_dir / "dev-eu-west-1/network.tfplan"
    assert json.loads(network.plan_file.read_text()) == {
        "fake plan": {"add": 2, "outputs": ["vpc_id"]}
    }
    log = (live.run_dir / "dev-eu-west-1/network.log").read_text()
    assert "$ " in log and "plan -input=false -detailed-exitcode" in log and "# exit 2" in log
    assert exit_code(report, detailed_exitcode=True) == ExitCode.CHANGES_PRESENT
    assert exit_code(report) == ExitCode.OK
    # show -json ran only where the plan said there were changes.
    shows = {Path(r["cwd"]).name for r in live.records("start") if r["args"][0] == "show"}
    assert shows == {"network", "platform"}


def test_stacks_start_after_their_dependencies_exit(live: Live) -> None:
    for name in ("network", "platform", "data", "app"):
        live.add(name, {"sleep": 0.2})
    deps = {
        rel("platform"): {rel("network")},
        rel("data"): {rel("network")},
        rel("app"): {rel("platform"), rel("data")},
    }
    report = live.run("apply", deps, parallelism=4)
    assert all(r.ok for r in report.results.values())
    start = {Path(r["cwd"]).name: r["t"] for r in live.records("start") if r["args"][0] == "apply"}
    end = {Path(r["cwd"]).name: r["t"] for r in live.records("exit") if r["args"][0] == "apply"}
    assert len(start) == len(end) == 4
    for node, needs in deps.items():
        for need in needs:
            assert end[Path(need).name] < start[Path(node).name]


def test_the_parallelism_bound_holds_for_processes(live: Live) -> None:
    for i in range(6):
        live.add(f"s{i}", {"sleep": 0.3})
    live.run("apply", parallelism=2)
    spans = []
    for record in live.records("start"):
        if record["args"][0] == "apply":
            exit_ = next(r for r in live.records("exit") if r["pid"] == record["pid"])
            spans.append((record["t"], exit_["t"]))
    most = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert most == 2


def test_init_runs_once_and_then_only_when_needed(live: Live) -> None:
    live.add("network")
    live.run("plan")
    live.run("plan")
    inits = [r for r in live.records("start") if r["args"][0] == "init"]
    assert len(inits) == 1
    assert (live.root / "dev-eu-west-1/network/.terraform/fake-init").exists()


def test_a_failure_skips_dependents_and_independent_stacks_finish(live: Live) -> None:
    live.add("network", {"apply": {"exit": 1}})
    live.add("platform")
    live.add("other", {"sleep": 0.3})
    report = live.run("apply", {rel("platform"): {rel("network")}})
    results = report.results
    assert results[rel("network")].status is Status.FAILED
    assert results[rel("network")].reason.startswith("terraform apply failed (exit 1)")
    assert results[rel("platform")].reason == f"dependency {rel('network')} failed"
    assert results[rel("other")].ok
    assert exit_code(report) == ExitCode.STACK_FAILED


def test_a_permanent_error_is_not_retried(live: Live) -> None:
    live.add("network", {"apply": {"fail_first": 5, "message": "Unsupported argument"}})
    result = live.run("apply").results[rel("network")]
    assert result.status is Status.FAILED
    assert result.reason == "terraform apply failed (exit 1): Unsupported argument"
    assert result.attempts == 1


def test_a_transient_error_is_retried_and_each_retry_is_logged(live: Live) -> None:
    live.add(
        "network", {"apply": {"fail_first": 2, "message": "ThrottlingException: Rate exceeded"}}
    )
    options_sink = Recorder()
    report = live.run("apply", sink=options_sink)
    result = report.results[rel("network")]
    assert result.ok and result.attempts == 3
    log = result.log.read_text() if result.log else ""
    assert log.count("tfrun: terraform apply failed with AWS throttling") == 2
    assert "(attempt 3 of 3)" in log
    notices = [e for e in options_sink.events if isinstance(e, Notice)]
    assert len(notices) == 2 and notices[0].node == rel("network")


def test_retries_stop_at_the_configured_limit(live: Live) -> None:
    live.add("network", {"apply": {"fail_first": 9, "message": "connection reset by peer"}})
    result = live.run("apply").results[rel("network")]
    assert result.status is Status.FAILED and result.attempts == 3


def test_fail_fast_interrupts_running_terraform_once_and_skips_the_rest(live: Live) -> None:
    live.add("a-bad", {"apply": {"exit": 1, "sleep": 0.3}})
    live.add("b-slow", {"sleep": 30})
    live.add("c-later")
    report = live.run("apply", parallelism=2, fail_fast=True)
    results = report.results
    assert results[rel("a-bad")].status is Status.FAILED
    assert results[rel("b-slow")].status is Status.INTERRUPTED
    assert (
        results[rel("b-slow")].reason == f"apply stopped: --fail-fast after {rel('a-bad')} failed"
    )
    assert results[rel("c-later")].status is Status.SKIPPED
    signals = [r for r in live.records("signal")]
    assert [(Path(r["cwd"]).name, r["signal"]) for r in signals] == [("b-slow", "SIGINT")]
    assert exit_code(report) == ExitCode.STACK_FAILED


def test_a_stack_refused_after_init_is_reported_and_its_dependents_skipped(live: Live) -> None:
    live.add("network")
    live.add("platform")

    def after_init(stack: Stack) -> None:
        if stack.name == "platform":
            raise RefusedError("prod is protected")

    report = live.run(
        "destroy", {rel("platform"): {rel("network")}}, destroy_order=True, after_init=after_init
    )
    refused = report.results[rel("platform")]
    assert (refused.status, refused.reason) == (Status.REFUSED, "prod is protected")
    # Destroy order: network waits for platform, which was refused.
    assert report.results[rel("network")].status is Status.SKIPPED
    assert exit_code(report) == ExitCode.REFUSED
    assert [Path(r["cwd"]).name for r in live.records("start")] == ["platform"]  # init only


def test_the_json_report_has_the_documented_shape(live: Live, tmp_path: Path) -> None:
    live.add("network", {"changes": {"add": 1}})
    live.add("platform", {"plan": {"exit": 1}})
    live.add("app")
    target = tmp_path / "out" / "report.json"
    live.run(
        "plan",
        {rel("app"): {rel("platform")}},
        json_path=target,
        detailed_exitcode=True,
    )
    data = json.loads(target.read_text())
    assert data["command"] == "plan"
    assert data["exit_code"] == 1
    by_path = {s["path"]: s for s in data["stacks"]}
    assert list(by_path) == [rel("app"), rel("network"), rel("platform")]
    network = by_path[rel("network")]
    assert {"path", "status", "exit_code", "duration_s", "changes", "log", "reason"} <= set(network)
    assert network["status"] == "succeeded" and network["exit_code"] == 2
    assert network["changes"] == {"add": 1, "change": 0, "destroy": 0}
    assert network["log"].endswith("dev-eu-west-1/network.log")
    assert by_path[rel("platform")]["status"] == "failed"
    assert by_path[rel("app")] | {"duration_s": 0} == by_path[rel("app")]
    assert by_path[rel("app")]["status"] == "skipped"
    assert by_path[rel("app")]["reason"] == f"dependency {rel('platform')} failed"
    assert by_path[rel("app")]["exit_code"] is None


def test_a_held_stack_lock_is_waited_for_with_a_message(live: Live) -> None:
    live.add("network")
    (stack,) = live.stacks()
    holder = FileLock(locks.stack_lock_path(stack), thread_local=False)
    holder.acquire()
    timer = threading.Timer(0.5, holder.release)
    timer.start()
    sink = Recorder()
    try:
        report = live.run("apply", sink=sink)
    finally:
        timer.join()
    assert report.results[rel("network")].ok
    assert report.results[rel("network")].duration_s >= 0.4
    waits = [e for e in sink.events if isinstance(e, Notice) and "waiting for" in e.text]
    assert len(waits) == 1


def test_a_held_stack_lock_fails_the_stack_after_the_lock_timeout(live: Live) -> None:
    live.add("network")
    (stack,) = live.stacks()
    holder = FileLock(locks.stack_lock_path(stack))
    with holder:
        report = live.run("apply", lock_timeout=0.3)
    result = report.results[rel("network")]
    assert result.status is Status.FAILED and "--lock-timeout" in result.reason
    assert not live.records("start")


def test_passthrough_commands_keep_their_arguments(live: Live) -> None:
    live.add("network")
    live.run("output", tf_args=["-json"])
    (call,) = [r["args"] for r in live.records("start") if r["args"][0] == "output"]
    assert call == ["output", "-no-color", "-json"]


# --- Interrupts: a real tfrun process, real signals ------------------------------------------

DRIVER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path

    from fake_terraform import patch_plumbing, toolchain
    from tfrun.discovery import Repository
    from tfrun.run import engine

    root, run_dir, report = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    grace, names = float(sys.argv[4]), sys.argv[5:]
    patch_plumbing(Path(os.environ["TF_PLUGIN_CACHE_DIR"]))
    stacks = [s for s in Repository(root).stacks() if not names or s.path.name in names]
    deps = json.loads(os.environ.get("DEPS", "{}"))
    options = engine.RunOptions(
        terraform=toolchain(os.environ["FAKE_TF"], Path(os.environ["TF_PLUGIN_CACHE_DIR"])),
        run_dir=run_dir, json_path=report,
        kill_grace_s=grace, parallelism=int(os.environ.get("PARALLELISM", "8")),
        lock_timeout=float(os.environ["LOCK_TIMEOUT"]) if "LOCK_TIMEOUT" in os.environ else None,
    )
    result = engine.run(stacks, {k: set(v) for k, v in deps.items()}, "apply", [], options)
    sys.exit(engine.exit_code(result, options))
    """
)


@dataclass
class Driven:
    process: subprocess.Popen[bytes]
    report: Path
    output: Path

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def stacks(self) -> dict[str, dict[str, Any]]:
        return {Path(s["path"]).name: s for s in json.loads(self.report.read_text())["stacks"]}


@pytest.fixture
def drive(live: Live, tmp_path: Path) -> Iterator[Callable[..., Driven]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*names: str, grace: float = 1.0, **env: str) -> Driven:
        script = tmp_path / "driver.py"
        script.write_text(DRIVER, encoding="utf-8")
        n = len(started)
        report, output = tmp_path / f"report{n}.json", tmp_path / f"output{n}.txt"
        with output.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    str(live.root),
                    str(tmp_path / f"run{n}"),
                    str(report),
                    str(grace),
                    *names,
                ],
                env={
                    **os.environ,
                    "FAKE_TF": str(live.binary),
                    "PYTHONPATH": str(Path(__file__).parent),
                    **env,
                },
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return Driven(process, report, output)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_first_interrupt_sends_one_sigint_to_each_terraform_and_waits(
    live: Live, drive: Callable[..., Driven]
) -> None:
    for name in ("a", "b", "c"):
        live.add(name, {"sleep": 60, "sigint_delay": 0.5})
    live.add("d-after", {"sleep": 0})
    deps = {rel("d-after"): [rel("a")]}
    run = drive(DEPS=json.dumps(deps))

    def applies() -> list[dict[str, Any]]:
        return [r for r in live.records("start") if r["args"][0] == "apply"]

    wait_until(lambda: len(applies()) == 3)
    run.process.send_signal(signal.SIGINT)
    assert run.wait() == ExitCode.INTERRUPTED
    pids = {r["pid"] for r in applies()}
    signals = live.records("signal")
    assert sorted(r["pid"] for r in signals) == sorted(pids)  # exactly one each
    assert {r["signal"] for r in signals} == {"SIGINT"}
    # Each terraform exited by itself, after releasing its lock (sigint_delay), not killed.
    assert {r["pid"] for r in live.records("exit") if r.get("interrupted")} == pids
    assert not any(alive(pid) for pid in pids)
    stacks = run.stacks()
    assert {stacks[n]["status"] for n in ("a", "b", "c")} == {"interrupted"}
    assert stacks["d-after"]["status"] == "skipped"
    assert "interrupted" in run.output.read_text()


def test_second_interrupt_escalates_to_sigterm_then_sigkill(
    live: Live, drive: Callable[..., Driven]
) -> None:
    for name in ("a", "b"):
        live.add(name, {"sleep": 60, "on_sigint": "ignore", "on_sigterm": "ignore"})
    run = drive(grace=0.5)

    def applies() -> list[dict[str, Any]]:
        return [r for r in live.records("start") if r["args"][0] == "apply"]

    wait_until(lambda: len(applies()) == 2)
    run.process.send_signal(signal.SIGINT)
    wait_until(lambda: len(live.records("signal")) == 2)
    run.process.send_signal(signal.SIGINT)
    assert run.wait() == ExitCode.INTERRUPTED
    pids = {r["pid"] for r in applies()}
    by_pid: dict[int, list[str]] = {pid: [] for pid in pids}
    for record in live.records("signal"):
        by_pid[record["pid"]].append(record["signal"])
    assert all(sent == ["SIGINT", "SIGTERM"] for sent in by_pid.values())
    assert not any(alive(pid) for pid in pids)  # SIGKILL did the rest
    assert {s["status"] for s in run.stacks().values()} == {"interrupted"}


def test_sigterm_to_tfrun_is_an_interrupt_too(live: Live, drive: Callable[..., Driven]) -> None:
    live.add("a", {"sleep": 60})
    run = drive()
    wait_until(lambda: any(r["args"][0] == "apply" for r in live.records("start")))
    run.process.send_signal(signal.SIGTERM)
    assert run.wait() == ExitCode.INTERRUPTED
    assert [r["signal"] for r in live.records("signal")] == ["SIGINT"]


def test_a_second_tfrun_waits_for_the_first_or_gives_up_after_the_lock_timeout(
    live: Live, drive: Callable[..., Driven]
) -> None:
    # Long enough that the impatient run surely reaches the lock while the first holds it.
    live.add("a", {"sleep": 4})
    first = drive()
    wait_until(lambda: any(r["args"][0] == "apply" for r in live.records("start")))
    impatient = drive(LOCK_TIMEOUT="0.2")
    assert impatient.wait() == ExitCode.STACK_FAILED
    reason = impatient.stacks()["a"]["reason"]
    # The holder is named down to the terraform that holds the stack for its tfrun.
    assert "terraform apply (pid " in reason and "--lock-timeout" in reason
    assert f"started by tfrun pid {first.process.pid}" in reason
    patient = drive()
    assert first.wait() == 0
    assert patient.wait() == 0
    assert f"started by tfrun pid {first.process.pid}" in patient.output.read_text()
    # The two applies that ran never overlapped.
    spans = sorted(
        (r["t"], next(e["t"] for e in live.records("exit") if e["pid"] == r["pid"]))
        for r in live.records("start")
        if r["args"][0] == "apply"
    )
    assert len(spans) == 2 and spans[0][1] < spans[1][0]


def test_interrupted_runs_leave_no_process_behind_even_mid_retry(
    live: Live, drive: Callable[..., Driven]
) -> None:
    # Backoff sleeps are interruptible: the run ends at once, nothing is left.
    (live.root / "tfrun.hcl").write_text(
        ROOT_CONFIG.replace("backoff_s = 0", "backoff_s = 60"), encoding="utf-8"
    )
    live.add("a", {"apply": {"fail_first": 9, "message": "Rate exceeded"}})
    run = drive()
    wait_until(lambda: any(r["event"] == "exit" for r in live.records()))
    time.sleep(0.3)
    began = time.monotonic()
    run.process.send_signal(signal.SIGINT)
    assert run.wait() == ExitCode.INTERRUPTED
    assert time.monotonic() - began < 10
    assert run.stacks()["a"]["status"] == "interrupted"


def test_started_events_come_first() -> None:
    # A small guard for display code that indexes by start time.
    recorder = Recorder()

    async def main() -> None:
        await schedule(["a"], {}, FakeTasks(), parallelism=1, sink=recorder)

    anyio.run(main)
    assert isinstance(recorder.events[0], Started) and isinstance(recorder.events[-1], Finished)
