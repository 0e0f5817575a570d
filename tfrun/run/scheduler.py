"""The generic scheduler: nodes, the edges between them, and one async task per node.

It knows nothing of terraform and is tested with fake tasks. A node starts the moment every
node it depends on has succeeded, at most `parallelism` at a time, the longest remaining chain
first; a failure skips what depends on it; a `Stop` (an interrupt, --fail-fast) is watched by
the tasks themselves, so nothing is cancelled halfway. Nothing here prints: progress goes to a
sink as events.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import anyio

from tfrun.report import Finished, Notice, Progress, Result, Sink, Started, Status


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


def reversed_edges(
    nodes: Iterable[str], deps: Mapping[str, Collection[str]]
) -> dict[str, set[str]]:
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
