"""Running many stacks: a scheduler over a dependency graph, and the entry point the CLI calls.

The run is a short pipeline, each stage testable alone:

    run_stacks → schedule (generic: nodes, edges, an async task per node) → one Result each
               → RunReport → JSON report, summary, exit_code

`schedule` knows nothing of terraform; it is tested with fake tasks. The terraform work of one
stack is `pipeline.run_stack`. Nothing here prints: progress goes to a sink as events.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
import anyio.abc

from tfrun import report as reporting
from tfrun.discovery import Repository, Stack
from tfrun.files import write_atomically
from tfrun.report import (
    Finished,
    Notice,
    Progress,
    Result,
    RunReport,
    Sink,
    Started,
    Status,
)

# Terraform mostly waits on AWS APIs, so twice the CPUs keeps the CPUs busy through the
# bursts (loading provider schemas) without queueing on them; and each running stack holds
# terraform plus an aws provider plugin, about 0.5 GB resident, so 8 caps a run near 4 GB and
# keeps the API calls per account under the throttling that unbounded runs meet.
DEFAULT_PARALLELISM = max(2, min(8, 2 * (os.cpu_count() or 1)))
# Between SIGTERM and SIGKILL after a second Ctrl-C, and per step when tfrun itself stops a
# child it no longer waits for.
DEFAULT_KILL_GRACE_S = 5.0
RUNS_DIR = Path(".tfrun") / "runs"
# Each stack's duration in the last run of each command: the scheduler's priorities.
DURATIONS_FILE = Path(".tfrun") / "durations.json"

_COMMAND_IN_NAME = re.compile(r"[^\w.-]+")


class Stopped(Exception):
    """Raised inside a task that noticed the run is stopping."""


class Stop:
    """Whether the run is stopping, and why: --fail-fast after a failure, or an interrupt.

    Tasks look at it between steps and wait on it while blocked (locks, backoff), so a stop
    never has to cancel a task that is halfway through something.
    """

    def __init__(self, on_request: Callable[[], object] | None = None) -> None:
        self._event = anyio.Event()
        self._on_request = on_request
        self.reason = ""
        self.interrupted = False  # by a signal, as opposed to --fail-fast

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str, *, interrupt: bool = False) -> bool:
        """Ask everything to stop; True the first time. An interrupt after --fail-fast still
        counts as an interrupt (exit 130)."""
        self.interrupted |= interrupt
        if self._event.is_set():
            return False
        self.reason = reason
        self._event.set()
        if self._on_request is not None:
            self._on_request()
        return True

    async def wait(self) -> None:
        await self._event.wait()

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless asked to stop; True when the whole time passed."""
        if self.requested:
            return False
        with anyio.move_on_after(seconds):
            await self._event.wait()
            return False
        return True


@dataclass(frozen=True)
class TaskContext:
    node: str
    # The nodes of this run that had to succeed before this one could start.
    dependencies: tuple[str, ...]
    results: Mapping[str, Result]  # every result so far; theirs are all in it
    stop: Stop
    sink: Sink

    def progress(self, phase: str) -> None:
        self.sink(Progress(self.node, phase))

    def notice(self, text: str) -> None:
        self.sink(Notice(text, self.node))


TaskFn = Callable[[str, TaskContext], Awaitable[Result]]


def _ignore(_event: object) -> None:
    return None


def reverse(nodes: Iterable[str], deps: Mapping[str, Collection[str]]) -> dict[str, set[str]]:
    """The edges the other way round: what destroy waits for (every stack that depends on it)."""
    out: dict[str, set[str]] = {node: set() for node in nodes}
    for node, needs in deps.items():
        for need in needs:
            if need in out and node in out:
                out[need].add(node)
    return out


def _priorities(
    order: Sequence[str], dependents: Mapping[str, list[str]], weights: Mapping[str, float]
) -> dict[str, float]:
    """The longest chain of work from each node to the end of the graph, the node included.

    Among ready nodes the one with the longest chain starts first: the rest of the run waits
    on it (critical-path list scheduling). A node's weight is its duration in the last run
    when known, else the median of the known ones, so without history every node weighs the
    same and the chain is counted in nodes. Nodes on a cycle never run; they get 0.
    """
    known = sorted(weights[node] for node in order if node in weights)
    default = known[len(known) // 2] if known else 1.0
    remaining = {node: len(dependents[node]) for node in order}
    needs: dict[str, list[str]] = {node: [] for node in order}
    for node in order:
        for dependent in dependents[node]:
            needs[dependent].append(node)
    chain: dict[str, float] = {}
    queue = deque(node for node in order if not remaining[node])
    while queue:
        node = queue.popleft()
        downstream = max((chain[d] for d in dependents[node]), default=0.0)
        chain[node] = weights.get(node, default) + downstream
        for need in needs[node]:
            remaining[need] -= 1
            if not remaining[need]:
                queue.append(need)
    return {node: chain.get(node, 0.0) for node in order}


async def schedule(
    nodes: Sequence[str],
    deps: Mapping[str, Collection[str]],
    task: TaskFn,
    *,
    parallelism: int,
    fail_fast: bool = False,
    stop: Stop | None = None,
    sink: Sink = _ignore,
    weights: Mapping[str, float] | None = None,
) -> dict[str, Result]:
    """Run `task` once per node, each as soon as every node it depends on has succeeded, at
    most `parallelism` at a time; returns one result per node, in the order of `nodes`.

    `deps` maps a node to the nodes it depends on; edges to nodes not in `nodes` are ignored
    (that stack is not part of this run). A node whose dependency did not succeed is skipped
    without starting, naming the stack where things went wrong; independent nodes go on,
    unless `fail_fast`, which stops the run at the first failure. After a stop, running tasks
    finish (they watch `stop`), and nodes not yet started are skipped. `weights` (a node's
    expected duration) only decide which ready node starts first.
    """
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")
    stop = stop if stop is not None else Stop()
    order = list(dict.fromkeys(nodes))
    position = {node: index for index, node in enumerate(order)}
    waits_for = {
        node: tuple(
            sorted(
                {d for d in deps.get(node, ()) if d in position and d != node},
                key=position.__getitem__,
            )
        )
        for node in order
    }
    dependents: dict[str, list[str]] = {node: [] for node in order}
    for node in order:
        for dependency in waits_for[node]:
            dependents[dependency].append(node)
    priority = _priorities(order, dependents, weights or {})
    unmet = {node: len(waits_for[node]) for node in order}
    ready = [(-priority[node], position[node], node) for node in order if not unmet[node]]
    heapq.heapify(ready)
    results: dict[str, Result] = {}
    done_send, done_receive = anyio.create_memory_object_stream[tuple[str, Result]](len(order))

    def settle(node: str, result: Result) -> None:
        results[node] = result
        sink(Finished(node, result))

    def skip_dependents(root: str, root_result: Result) -> None:
        queue = deque((dependent, root) for dependent in dependents[root])
        while queue:
            node, via = queue.popleft()
            if node not in results:
                settle(node, Result.skipped_after(root, root_result, via=via))
                queue.extend((dependent, node) for dependent in dependents[node])

    async def run_one(node: str) -> None:
        context = TaskContext(node, waits_for[node], results, stop, sink)
        sink(Started(node))
        began = anyio.current_time()
        result = await task(node, context)
        done_send.send_nowait((node, result.timed(anyio.current_time() - began)))

    running = 0
    async with anyio.create_task_group() as tasks, done_receive:
        while len(results) < len(order):
            while ready and running < parallelism and not stop.requested:
                node = heapq.heappop(ready)[2]
                tasks.start_soon(run_one, node, name=f"tfrun stack {node}")
                running += 1
            if not running:
                why = stop.reason if stop.requested else "its dependencies form a cycle"
                for node in order:
                    if node not in results:
                        settle(node, Result.skipped(f"not started: {why}"))
                break
            node, result = await done_receive.receive()
            running -= 1
            settle(node, result)
            if result.ok:
                for dependent in dependents[node]:
                    unmet[dependent] -= 1
                    if not unmet[dependent]:
                        heapq.heappush(
                            ready, (-priority[dependent], position[dependent], dependent)
                        )
            else:
                skip_dependents(node, result)
                if fail_fast and result.status in (Status.FAILED, Status.REFUSED):
                    stop.request(f"--fail-fast after {node} {result.status}")
    return {node: results[node] for node in order}


# --- The terraform run --------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    parallelism: int = DEFAULT_PARALLELISM
    fail_fast: bool = False
    destroy_order: bool = False  # dependents first (destroy)
    detailed_exitcode: bool = False
    lock_timeout: float | None = (
        None  # seconds to wait for another tfrun; None: as long as it takes
    )
    json_path: Path | None = None
    run_dir: Path | None = None  # default: <live root>/.tfrun/runs/<time>-<command>
    interactive: bool = False  # live board on stderr; else one block per stack as it finishes
    terraform_bin: str | None = None
    repo: Repository | None = None
    # Stacks a safety rule refused before the run: they end `refused`, their dependents skipped.
    refused: Mapping[str, str] = field(default_factory=dict)
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    # Receives the run's events instead of the terminal display (tests, benchmarks).
    sink: Sink | None = None


def new_run_dir(root: Path, command: str) -> Path:
    runs = root / RUNS_DIR
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{_COMMAND_IN_NAME.sub('_', command)}"
    path = runs / name
    try:
        path.mkdir(parents=True)
    except FileExistsError:  # two runs in one second
        path = runs / f"{name}-{os.getpid()}"
        path.mkdir(parents=True, exist_ok=True)
    return path


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
    """First SIGINT/SIGTERM: one SIGINT to each terraform (through `stop`), then wait for them
    to release their state locks. Second: SIGTERM, and SIGKILL after `grace_s`. Third: SIGKILL."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
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
    already: apply and destroy run with -auto-approve.
    """
    # Deferred: the pipeline builds on this module's Stop and TaskContext.
    from tfrun import pipeline, process, terraform, ui
    from tfrun.locks import PluginCacheLock

    if not stacks:
        return RunReport(command, {})
    nodes = [stack.rel for stack in stacks]
    by_rel = {stack.rel: stack for stack in stacks}
    waits_for: Mapping[str, Collection[str]] = (
        reverse(nodes, deps) if options.destroy_order else deps
    )
    repo = options.repo or Repository(stacks[0].root)
    # Resolved once: a missing terraform is one error, not one per stack.
    binary = process.resolve_executable(terraform.binary(options.terraform_bin))
    env = terraform.environ(repo.root)
    run_dir = options.run_dir or new_run_dir(repo.root, command)
    run_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = terraform.plugin_cache_dir(env)
    groups = process.ProcessGroups()
    job = pipeline.Job(
        repo=repo,
        command=command,
        tf_args=tuple(tf_args),
        binary=binary,
        env=env,
        run_dir=run_dir,
        lock_timeout=options.lock_timeout,
        color=options.interactive,
        grace_s=options.kill_grace_s,
        groups=groups,
        cache_dir=cache_dir,
        cache=PluginCacheLock(cache_dir),
    )

    async def task(node: str, context: TaskContext) -> Result:
        if node in options.refused:
            return Result.refused(options.refused[node])
        return await pipeline.run_stack(by_rel[node], context, job)

    display = (
        None
        if options.sink is not None
        else ui.RunDisplay(nodes, command, options.interactive, run_dir)
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
    if display is not None:
        display.summary(run_report)
    return run_report


def run(
    stacks: Sequence[Stack],
    deps: Mapping[str, Collection[str]],
    command: str,
    tf_args: Sequence[str],
    options: RunOptions,
) -> RunReport:
    return anyio.run(run_stacks, stacks, deps, command, tf_args, options)


def exit_code(report: RunReport, options: RunOptions) -> int:
    return int(reporting.exit_code(report, detailed_exitcode=options.detailed_exitcode))
