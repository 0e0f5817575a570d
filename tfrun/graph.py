"""The dependency graph of a live repository: pure functions, no I/O.

An edge `a → b` means "a depends on b": a reads b's state (a hand-written
`terraform_remote_state` block, in a's files or in a local module a calls, or `remote_state`
in a's config), reads an SSM parameter b writes, or lists b in `dependencies`. Apply, plan
and init run b first; destroy runs a first. Where each read points is `graph_reads`.

The graph always spans every stack of the repository, because a state key can name any
stack; selection and ordering then work on a part of it. The topological sort and the cycle
finding work on any `{node: the nodes it depends on}` mapping, so that `tfrun check` and the
GitHub matrix use them too.
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from tfrun.config import ROOT_FILE
from tfrun.discovery import Stack, real_path
from tfrun.errors import ConfigError
from tfrun.graph_reads import Finding, place, relative_to_root
from tfrun.scan import StackFacts

__all__ = [
    "CycleError",
    "Finding",
    "Graph",
    "build",
    "config_file",
    "cyclic_components",
    "order",
    "relative_to_root",
    "select",
    "shortest_cycle",
    "strict_refusal",
    "topological",
    "waits_for",
]


@dataclass(frozen=True)
class Graph:
    root: Path
    stacks: dict[str, Stack]  # by rel path, sorted
    dependencies: dict[str, tuple[str, ...]]  # direct, sorted
    dependents: dict[str, tuple[str, ...]]  # direct, sorted
    # Why each edge exists, for messages: (from, to) -> ["data.terraform_remote_state.x at ..."]
    reasons: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    external: tuple[Finding, ...] = ()  # reads of another bucket or backend: listed, not edges
    unresolved: tuple[Finding, ...] = ()  # reads that map to no stack, or cannot be placed
    # Reads tfrun cannot evaluate whose stack declares what they read (`dependencies`).
    declared: tuple[Finding, ...] = ()
    strict: bool = False  # graph.strict: a run over unresolved reads refuses


def build(stacks: Iterable[Stack], facts: Mapping[str, StackFacts]) -> Graph:
    """The graph over all `stacks` (the whole repository), with edges from `facts` and config."""
    by_rel = {s.rel: s for s in sorted(stacks, key=lambda s: s.rel)}
    if not by_rel:
        raise ValueError("build() needs at least one stack")
    first = next(iter(by_rel.values()))
    root = first.root
    by_path = {s.path: s for s in by_rel.values()}
    # What each stack's config says it depends on, and why.
    configured: dict[str, list[tuple[str, str]]] = {}
    for stack in by_rel.values():
        if not stack.config.dependencies and not stack.config.remote_state:
            continue
        source = relative_to_root(config_file(stack), root)
        found = configured[stack.rel] = []
        for dependency in stack.config.dependencies:
            owner = _stack_at(stack, dependency, by_path, f"dependencies lists {dependency!r}")
            found.append((owner, f"dependencies in {source}"))
        for name, dependency in sorted(stack.config.remote_state.items()):
            what = f"remote_state.{name} = {dependency!r}"
            owner = _stack_at(stack, dependency, by_path, what)
            found.append((owner, f"remote_state.{name} in {source}"))
    settings = first.config.graph
    placed = place(
        by_rel,
        facts,
        {rel: {owner for owner, _ in found} for rel, found in configured.items()},
        parameters=settings.ssm_edges is not False,
    )
    reasons = placed.reasons
    for rel, found in configured.items():
        for owner, why in found:
            reasons.setdefault((rel, owner), []).append(why)

    dependencies: dict[str, set[str]] = {rel: set() for rel in by_rel}
    dependents: dict[str, set[str]] = {rel: set() for rel in by_rel}
    for reader, owner in reasons:
        dependencies[reader].add(owner)
        dependents[owner].add(reader)
    return Graph(
        root=root,
        stacks=by_rel,
        dependencies={rel: tuple(sorted(d)) for rel, d in dependencies.items()},
        dependents={rel: tuple(sorted(d)) for rel, d in dependents.items()},
        reasons=reasons,
        external=tuple(placed.external),
        unresolved=tuple(placed.unresolved),
        declared=tuple(placed.declared),
        strict=settings.strict is True,
    )


def strict_refusal(graph: Graph, selected: Collection[str]) -> str | None:
    """With `graph.strict`, why a run over `selected` (rel paths) may not start: the reads of
    its stacks that tfrun cannot evaluate, each with its fix. None when it may."""
    found = [f for f in graph.unresolved if f.computed and f.stack in selected]
    if not graph.strict or not found:
        return None
    listing = "\n".join(f"  {f.stack}: {f.message}" for f in found)
    return (
        f"graph.strict is set in {graph.root / ROOT_FILE}, and {len(found)} read"
        f"{'s' if len(found) > 1 else ''} in the selected stacks cannot be placed, so tfrun "
        f"cannot tell which stacks must run first. Nothing ran.\n{listing}"
    )


def config_file(stack: Stack) -> Path:
    """The file where this stack's own settings are declared (`dependencies`, `remote_state`,
    `key`): its stack.hcl (or a tfrun.hcl in its folder) if it has one, else the nearest
    tfrun.hcl above it."""
    # The sources run from the root's tfrun.hcl down to the stack's folder, stack.hcl last.
    sources = stack.config.sources
    return sources[-1] if sources else stack.root / ROOT_FILE


def _stack_at(stack: Stack, relative: str, by_path: Mapping[Path, Stack], what: str) -> str:
    target = Path(os.path.normpath(stack.path / relative))
    found = by_path.get(target) or by_path.get(real_path(target))
    if found is None:
        raise ConfigError(
            f"{config_file(stack)}: {what}, which is {target}, and that is not a stack "
            "(a folder under the live root with its own .tf files or a stack.hcl). "
            'Paths are relative to the stack\'s folder, for example "../network".'
        )
    return found.rel


# ---------------------------------------------------------------------------- order


def order(graph: Graph, stacks: Iterable[Stack | str] | None = None) -> list[Stack]:
    """`stacks` (default: all), each after its dependencies; ties by rel path.

    Only the selection and what it depends on are sorted, so a cycle elsewhere in the
    repository does not stop work on an unrelated part of it.
    """
    wanted = _rels(graph, stacks)
    scope = _closure(graph.dependencies, wanted)
    try:
        ordered = topological(graph.dependencies, scope)
    except CycleError as error:
        raise ConfigError(_cycle_message(graph, error.cycle)) from None
    return [graph.stacks[rel] for rel in ordered if rel in wanted]


def _rels(graph: Graph, stacks: Iterable[Stack | str] | None) -> set[str]:
    if stacks is None:
        return set(graph.stacks)
    return {s if isinstance(s, str) else s.rel for s in stacks}


def _closure(edges: Mapping[str, Sequence[str]], start: Iterable[str]) -> set[str]:
    seen = set(start)
    stack = list(seen)
    while stack:
        for nxt in edges[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _cycle_message(graph: Graph, cycle: list[str]) -> str:
    because = "; ".join(
        f"{a} → {b}: {', '.join(graph.reasons[(a, b)])}" for a, b in itertools.pairwise(cycle)
    )
    return (
        f"these stacks depend on each other in a cycle, so none of them can go first: "
        f"{' → '.join(cycle)} (a → b means a depends on b; {because}). "
        "Break the cycle: move the shared values into a stack both can read."
    )


# ---------------------------------------------------------------------------- cycles
# On any `{node: the nodes it depends on}` mapping: ordering, `tfrun check` and the GitHub
# matrix all find cycles here, so they agree on what one is.


class CycleError(ValueError):
    """Nodes that depend on each other in a cycle; each caller words its own message."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(" → ".join(cycle))
        self.cycle = cycle  # a → b → … → a, a shortest one through the smallest node of a knot


def topological(
    edges: Mapping[str, Sequence[str]], nodes: Collection[str] | None = None
) -> list[str]:
    """`nodes` (default: every key of `edges`), each after the ones among them it depends on;
    ties by name. CycleError when some of them depend on each other in a cycle."""
    # Kahn's algorithm; a heap keeps ties in name order.
    scope = set(edges if nodes is None else nodes)
    waiting = dict.fromkeys(scope, 0)
    after: dict[str, list[str]] = {node: [] for node in scope}
    for node in scope:
        for before in edges[node]:
            if before in scope:
                waiting[node] += 1
                after[before].append(node)
    ready = [node for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        node = heapq.heappop(ready)
        out.append(node)
        for nxt in after[node]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(out) < len(scope):
        # What is left sits in a cycle or waits on one.
        left = {node for node, count in waiting.items() if count > 0}
        raise CycleError(shortest_cycle(edges, cyclic_components(edges, left)[0]))
    return out


def cyclic_components(
    edges: Mapping[str, Sequence[str]], nodes: Collection[str] | None = None
) -> list[list[str]]:
    """The strongly connected components that hold a cycle (two nodes or more, or one that
    depends on itself), among `nodes` (default: every key of `edges`) and the edges between
    them. Each is sorted, and they come in order of their smallest node."""
    # Tarjan's algorithm without recursion: a chain of a thousand stacks must not hit Python's
    # recursion limit.
    scope = set(edges if nodes is None else nodes)
    targets = {node: [t for t in edges[node] if t in scope] for node in scope}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(scope):
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, at = work.pop()
            if at == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if at < len(targets[node]):
                work.append((node, at + 1))
                nxt = targets[node][at]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in targets[node]:
                    found.append(sorted(component))
    return sorted(found)


def shortest_cycle(edges: Mapping[str, Sequence[str]], component: Sequence[str]) -> list[str]:
    """A shortest cycle through the first node of `component` (one of `cyclic_components`),
    as a → b → … → a."""
    members = set(component)
    start = component[0]
    # Breadth first from start back to start.
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in edges[node]:
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise ValueError(f"{start}: no cycle through it in {sorted(members)}")


# ---------------------------------------------------------------------------- selection


def select(
    graph: Graph,
    paths: Sequence[Path] = (),
    *,
    env: Sequence[str] = (),
    region: Sequence[str] = (),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    with_dependencies: bool = False,
) -> list[Stack]:
    """Stacks at or below any of `paths` (all when none), filtered; sorted by rel path.

    `include`/`exclude` are shell globs matched against the stack name (`platform/eks`), its
    rel path (`prod-eu-west-1/platform/eks`) and each folder above it in the name (`platform`),
    so `--exclude platform` leaves out `platform/eks` as well.
    """
    prefixes = [_prefix(graph.root, p) for p in paths]
    chosen = []
    for stack in graph.stacks.values():
        if paths and not any(p is not None and (stack.rel + "/").startswith(p) for p in prefixes):
            continue
        if env and stack.env not in env:
            continue
        if region and stack.region not in region:
            continue
        names = _names(stack)
        if include and not any(fnmatchcase(n, g) for n in names for g in include):
            continue
        if exclude and any(fnmatchcase(n, g) for n in names for g in exclude):
            continue
        chosen.append(stack.rel)
    if with_dependencies:
        chosen = list(_closure(graph.dependencies, chosen))
    return [graph.stacks[rel] for rel in sorted(chosen)]


def _prefix(root: Path, path: Path) -> str | None:
    """What the rel path of a stack at or below `path` starts with ("" for the root)."""
    try:
        rel = real_path(path).relative_to(root).as_posix()
    except ValueError:
        return None  # outside the live root: nothing there
    return "" if rel == "." else rel + "/"


def _names(stack: Stack) -> list[str]:
    parts = stack.name.split("/")
    return [stack.rel, *("/".join(parts[: i + 1]) for i in range(len(parts)))]


def waits_for(graph: Graph, stacks: Iterable[Stack | str]) -> dict[str, tuple[str, ...]]:
    """For a run over `stacks`: the selected stacks each one waits for.

    A dependency outside the selection is not run, but what it depends on in turn may be, so
    the waits go through it (a → x → b with x left out: a still waits for b).
    """
    wanted = _rels(graph, stacks)
    out = {}
    for rel in sorted(wanted):
        seen: set[str] = set()
        todo = list(graph.dependencies[rel])
        waits = set()
        while todo:
            nxt = todo.pop()
            if nxt in seen:
                continue
            seen.add(nxt)
            if nxt in wanted:
                waits.add(nxt)
            else:
                todo.extend(graph.dependencies[nxt])
        out[rel] = tuple(sorted(waits))
    return out
