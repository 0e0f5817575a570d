"""A terraform command over the stacks of one run: the entry point the commands call.

    stacks, edges → schedule (run/scheduler.py) → run_stack per stack (run/stack.py)
                  → RunReport → JSON report, summary, exit code

Here live what a whole run shares: the run directory, the durations that order the next run,
the signal handling (one SIGINT to each terraform, then escalation), the display.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
import anyio.abc

from tfrun import process
from tfrun import report as reporting
from tfrun import terraform as terraforms
from tfrun.discovery import Repository, Stack
from tfrun.files import make_private_dir, write_atomically
from tfrun.generate import GeneratedFile
from tfrun.report import Notice, Result, RunReport, Sink, Status
from tfrun.run import stack as stack_run
from tfrun.run.folder import DEFAULT_KEEP_RUNS, new_run_dir
from tfrun.run.locks import PluginCacheLock
from tfrun.run.scheduler import Stop, TaskContext, reversed_edges, schedule

# Terraform mostly waits on AWS APIs, so twice the CPUs keeps the CPUs busy through the
# bursts (loading provider schemas) without queueing on them; and each running stack holds
# terraform plus an aws provider plugin, about 0.5 GB resident, so 8 caps a run near 4 GB and
# keeps the API calls per account under the throttling that unbounded runs meet.
DEFAULT_PARALLELISM = max(2, min(8, 2 * (os.cpu_count() or 1)))
# Between SIGTERM and SIGKILL after a second Ctrl-C, and per step when tfrun itself stops a
# child it no longer waits for.
DEFAULT_KILL_GRACE_S = 5.0
# Each stack's duration in the last run of each command: the scheduler's priorities.
DURATIONS_FILE = Path(".tfrun") / "durations.json"


@dataclass(frozen=True)
class RunOptions:
    parallelism: int = DEFAULT_PARALLELISM
    fail_fast: bool = False
    destroy_order: bool = False  # dependents first (destroy)
    detailed_exitcode: bool = False
    # Seconds to wait for another tfrun working in a stack; None: as long as it takes.
    lock_timeout: float | None = None
    json_path: Path | None = None
    gitlab_report: Path | None = None  # GitLab's Terraform report of the plans
    run_dir: Path | None = None  # default: <live root>/.tfrun/runs/<time>-<command>
    live_board: bool = False  # a live board on stderr; else one block per stack as it finishes
    # One stack a person named: terraform keeps the terminal (see run/stack.py).
    foreground: bool = False
    # Approval was given already (--yes, or tfrun's prompt): apply and destroy auto-approve.
    auto_approve: bool = True
    terraform: terraforms.Terraform | None = None  # default: resolved for the stacks' root
    repo: Repository | None = None
    after_init: stack_run.AfterInit | None = None
    generated: Mapping[str, Sequence[GeneratedFile]] | None = None  # see stack_run.Job
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    keep_runs: int | None = None  # default: keep_runs in tfrun.hcl, else DEFAULT_KEEP_RUNS
    timeout_s: float | None = None  # each terraform command's; else the stack's config's
    # Receives the run's events instead of the terminal display (tests, benchmarks).
    sink: Sink | None = None
    # A reviewed apply's second phase: each stack's approved plan (see stack_run.Job).
    reviewed: Mapping[str, Result] | None = None
    can_ask_again: bool = False  # a person at the terminal may approve a changed plan
    approved_in_advance: bool = False  # --yes
    upstream_plans: Mapping[str, Result] = field(default_factory=dict)  # see stack_run.Job
    launching: stack_run.Launching | None = None  # see stack_run.Job


def load_durations(root: Path, command: str) -> dict[str, float]:
    try:
        data = json.loads((root / DURATIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    durations = data.get(command) if isinstance(data, dict) else None
    if not isinstance(durations, dict):
        return {}
    return {
        rel: float(seconds)
        for rel, seconds in durations.items()
        if isinstance(seconds, int | float) and seconds >= 0
    }


def save_durations(root: Path, command: str, results: Mapping[str, Result]) -> None:
    """Best effort: a run whose history cannot be written is no worse, only less well ordered."""
    path = root / DURATIONS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    known = data.get(command)
    if not isinstance(known, dict):
        known = {}
    known.update({rel: r.duration_s for rel, r in results.items() if r.ok})
    data[command] = known
    with suppress(OSError):
        write_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


async def _watch_signals(
    stop: Stop,
    running: Callable[[], int],
    escalate: Callable[[signal.Signals], int],
    sink: Sink,
    grace_s: float,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """First SIGINT/SIGTERM/SIGHUP: one SIGINT to each terraform (through `stop`), then wait
    for them to release their state locks. Second: SIGTERM, and SIGKILL after `grace_s`.
    Third: SIGKILL."""
    # SIGHUP: the terminal was closed; terraform must still release its state locks.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        task_status.started()
        count = 0
        async with anyio.create_task_group() as later:
            async for signum in signals:
                count += 1
                name = signal.Signals(signum).name
                if count == 1:
                    stop.request("tfrun was interrupted", interrupt=True)
                    sink(
                        Notice(
                            f"{name} received: sent SIGINT to {running()} running terraform; "
                            "waiting for them to release their state locks and exit. "
                            "Interrupt again to stop them at once."
                        )
                    )
                elif count == 2:
                    escalate(signal.SIGTERM)
                    sink(
                        Notice(
                            f"{name} received again: sent SIGTERM to {running()} terraform; "
                            f"SIGKILL in {grace_s:g}s. Their state locks may stay held "
                            "(terraform force-unlock)."
                        )
                    )
                    later.start_soon(_kill_after, escalate, grace_s)
                else:
                    escalate(signal.SIGKILL)


async def _kill_after(escalate: Callable[[signal.Signals], int], grace_s: float) -> None:
    await anyio.sleep(grace_s)
    escalate(signal.SIGKILL)


async def run_stacks(
    stacks: Sequence[Stack],
    deps: Mapping[str, Collection[str]],
    command: str,
    tf_args: Sequence[str],
    options: RunOptions,
) -> RunReport:
    """Run `terraform <command> <tf_args>` in every stack, dependencies first (dependents first
    with `options.destroy_order`); returns the report, after writing `options.json_path`.

    `deps` maps a stack's `rel` to the `rel`s it depends on. Approval must have been given
    already.
    """
    from tfrun import ui  # rich, only when a run is displayed

    if not stacks:
        return RunReport(command, {})
    nodes = [stack.rel for stack in stacks]
    by_rel = {stack.rel: stack for stack in stacks}
    waits_for: Mapping[str, Collection[str]] = (
        reversed_edges(nodes, deps) if options.destroy_order else deps
    )
    repo = options.repo or Repository(stacks[0].root)
    toolchain = options.terraform or terraforms.resolve(repo)
    keep = options.keep_runs or stacks[0].config.keep_runs or DEFAULT_KEEP_RUNS
    run_dir = options.run_dir or new_run_dir(repo.root, command, keep)
    make_private_dir(run_dir)
    groups = process.ProcessGroups()
    questions = anyio.Lock()

    async def ask_again(stack: Stack, text: str) -> bool:
        """One question at a time, with the board out of the way while it is asked."""
        async with questions:
            paused = display.paused() if isinstance(display, ui.RunDisplay) else nullcontext()
            with paused:
                answer = await anyio.to_thread.run_sync(ui.ask, text)
        return answer.strip() == "yes"

    # A plan in destroy order is a plan of a destroy: no stack reads outputs it changes.
    destroy_plan = options.destroy_order and command == "plan"
    job = stack_run.Job(
        repo=repo,
        command=command,
        tf_args=tuple(tf_args),
        terraform=toolchain,
        run_dir=run_dir,
        lock_timeout=options.lock_timeout,
        grace_s=options.kill_grace_s,
        groups=groups,
        cache=PluginCacheLock(toolchain.cache_dir),
        auto_approve=options.auto_approve,
        detailed_exitcode=options.detailed_exitcode,
        color=options.live_board,
        foreground=options.foreground,
        after_init=options.after_init,
        generated=options.generated,
        timeout_s=options.timeout_s,
        destroy_plan=destroy_plan,
        reviewed=options.reviewed,
        ask_again=ask_again if options.can_ask_again else None,
        approved_in_advance=options.approved_in_advance,
        upstream_plans=options.upstream_plans,
        launching=options.launching,
    )

    async def task(node: str, context: TaskContext) -> Result:
        return await stack_run.run_stack(by_rel[node], context, job)

    display: ui.RunDisplay | ui.ForegroundDisplay | None = None
    if options.sink is None:
        display = (
            ui.ForegroundDisplay()
            if options.foreground
            else ui.RunDisplay(nodes, command, options.live_board, run_dir)
        )
    sink: Sink = options.sink or display or _ignore
    # The one place a stop reaches the children: one SIGINT each, as a terminal's Ctrl-C would.
    stop = Stop(on_request=partial(groups.signal_all, signal.SIGINT))
    began = anyio.current_time()
    with display or nullcontext():
        async with anyio.create_task_group() as watcher:
            await watcher.start(
                _watch_signals, stop, groups.__len__, groups.signal_all, sink, options.kill_grace_s
            )
            results = await schedule(
                nodes,
                waits_for,
                task,
                parallelism=options.parallelism,
                fail_fast=options.fail_fast,
                stop=stop,
                sink=sink,
                weights=load_durations(repo.root, command),
            )
            watcher.cancel_scope.cancel()
    save_durations(repo.root, command, results)
    run_report = RunReport(
        command,
        results,
        interrupted=stop.interrupted,
        run_dir=run_dir,
        duration_s=anyio.current_time() - began,
    )
    if options.json_path is not None:
        run_report.write_json(options.json_path, detailed_exitcode=options.detailed_exitcode)
    if options.gitlab_report is not None:
        run_report.write_gitlab_report(options.gitlab_report)
    if display is not None:
        display.summary(run_report)
    return run_report


def _ignore(_event: object) -> None:
    return None


def run(
    stacks: Sequence[Stack],
    deps: Mapping[str, Collection[str]],
    command: str,
    tf_args: Sequence[str],
    options: RunOptions,
) -> RunReport:
    return anyio.run(run_stacks, stacks, deps, command, tf_args, options)


def exit_code(report: RunReport, options: RunOptions) -> int:
    """The run's exit code; one stack in the foreground passes terraform's own through."""
    if options.foreground and len(report.results) == 1:
        [result] = report.results.values()
        if result.exit_code is not None and result.status is not Status.INTERRUPTED:
            return result.exit_code
    return int(reporting.exit_code(report, detailed_exitcode=options.detailed_exitcode))
