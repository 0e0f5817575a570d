"""The dependency graph of a live repository (DESIGN §4): pure functions, no I/O.

An edge `a → b` means "a depends on b": a reads b's state (a hand-written
`terraform_remote_state` block, or `remote_state` in a's config) or lists b in `dependencies`.
Apply, plan and init run b first; destroy runs a first.

The graph always spans every stack of the repository, because a state key can name any
stack; selection and ordering then work on a part of it.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from tfrun.config import STACK_FILE
from tfrun.discovery import Stack
from tfrun.errors import ConfigError
from tfrun.scan import RemoteStateRead, StackFacts


@dataclass(frozen=True)
class Finding:
    """A remote-state read that is not an edge: external, or one tfrun cannot place."""

    stack: str  # the reading stack's rel path
    read: RemoteStateRead
    message: str

    def where(self, root: Path) -> str:
        return f"{_rel(self.read.file, root)}:{self.read.line}"


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


def build(stacks: Iterable[Stack], facts: Mapping[str, StackFacts]) -> Graph:
    """The graph over all `stacks` (the whole repository), with edges from `facts` and config."""
    by_rel = {s.rel: s for s in sorted(stacks, key=lambda s: s.rel)}
    if not by_rel:
        raise ValueError("build() needs at least one stack")
    root = next(iter(by_rel.values())).root
    by_path = {s.path: s for s in by_rel.values()}
    by_key: dict[str, list[str]] = {}
    for stack in by_rel.values():
        by_key.setdefault(stack.key, []).append(stack.rel)
    reasons: dict[tuple[str, str], list[str]] = {}
    external: list[Finding] = []
    unresolved: list[Finding] = []

    def edge(reader: str, owner: str, why: str) -> None:
        reasons.setdefault((reader, owner), []).append(why)

    for stack in by_rel.values():
        for read in facts[stack.rel].reads if stack.rel in facts else ():
            where = f"{_rel(read.file, root)}:{read.line}"
            label = f"data.terraform_remote_state.{read.name} at {where}"
            if read.problem is not None:
                finding = Finding(stack.rel, read, f"{label}: {read.problem}.")
                (external if read.backend not in (None, "s3") else unresolved).append(finding)
            elif read.bucket != stack.config.state.bucket:
                message = f'{label} reads the bucket "{read.bucket}", not this repository\'s.'
                external.append(Finding(stack.rel, read, message))
            elif read.key not in by_key:
                message = (
                    f'{label} reads the state key "{read.key}", and no stack in {root} has it. '
                    "Fix the key (tfrun graph --format json lists every stack's key)."
                )
                unresolved.append(Finding(stack.rel, read, message))
            else:
                for owner in by_key[read.key]:
                    if owner != stack.rel:  # reading one's own earlier state orders nothing
                        edge(stack.rel, owner, label)
        if not stack.config.dependencies and not stack.config.remote_state:
            continue
        source = _rel(_config_file(stack), root)
        for dependency in stack.config.dependencies:
            owner = _stack_at(stack, dependency, by_path, f"dependencies lists {dependency!r}")
            edge(stack.rel, owner, f"dependencies in {source}")
        for name, dependency in sorted(stack.config.remote_state.items()):
            what = f"remote_state.{name} = {dependency!r}"
            owner = _stack_at(stack, dependency, by_path, what)
            edge(stack.rel, owner, f"remote_state.{name} in {source}")

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
        external=tuple(external),
        unresolved=tuple(unresolved),
    )


def _config_file(stack: Stack) -> Path:
    """The file that says this stack's own settings (`dependencies`, `remote_state`)."""
    own = [f for f in stack.config.sources if f.parent == stack.path]
    return own[-1] if own else stack.path / STACK_FILE


def _stack_at(stack: Stack, relative: str, by_path: Mapping[Path, Stack], what: str) -> str:
    target = Path(os.path.normpath(stack.path / relative))
    found = by_path.get(target) or by_path.get(target.resolve())
    if found is None:
        raise ConfigError(
            f"{_config_file(stack)}: {what}, which is {target}, and that is not a stack "
            "(a folder under the live root with its own .tf files or a stack.hcl). "
            'Paths are relative to the stack\'s folder, for example "../network".'
        )
    return found.rel


def _rel(path: Path, root: Path) -> str:
    text, prefix = str(path), str(root) + os.sep
    if text.startswith(prefix):  # the usual case, and much cheaper than relpath
        return text[len(prefix) :].replace(os.sep, "/")
    return Path(os.path.relpath(path, root)).as_posix()


# ---------------------------------------------------------------------------- order


def order(graph: Graph, stacks: Iterable[Stack | str] | None = None) -> list[Stack]:
    """`stacks` (default: all), each after its dependencies; ties by rel path.

    Only the selection and what it depends on are sorted, so a cycle elsewhere in the
    repository does not stop work on an unrelated part of it.
    """
    wanted = _rels(graph, stacks)
    scope = _closure(graph.dependencies, wanted)
    return [graph.stacks[rel] for rel in _topo(graph, scope, graph.dependencies) if rel in wanted]


def reverse(graph: Graph, stacks: Iterable[Stack | str] | None = None) -> list[Stack]:
    """For destroy: each stack before the stacks it depends on."""
    wanted = _rels(graph, stacks)
    scope = _closure(graph.dependents, wanted)
    return [graph.stacks[rel] for rel in _topo(graph, scope, graph.dependents) if rel in wanted]


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


def _topo(graph: Graph, scope: set[str], before: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's algorithm; `before[n]` must come before n. A heap keeps ties in rel order."""
    waiting = {rel: sum(1 for b in before[rel] if b in scope) for rel in scope}
    after: dict[str, list[str]] = {rel: [] for rel in scope}
    for rel in scope:
        for b in before[rel]:
            if b in scope:
                after[b].append(rel)
    ready = [rel for rel, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        rel = heapq.heappop(ready)
        out.append(rel)
        for nxt in after[rel]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(out) < len(scope):
        left = {rel for rel, count in waiting.items() if count > 0}
        cycle = _find_cycle(before, left)
        if before is graph.dependents:
            cycle.reverse()  # the message speaks of dependencies: a → b, a depends on b
        raise ConfigError(_cycle_message(graph, cycle))
    return out


def _find_cycle(edges: Mapping[str, Sequence[str]], nodes: set[str]) -> list[str]:
    """One cycle among `nodes`, each of which has an edge to another of them."""
    # Walking edges from any such node must come back to a node seen: that loop is a cycle.
    path: list[str] = []
    index: dict[str, int] = {}
    rel = min(nodes)
    while rel not in index:
        index[rel] = len(path)
        path.append(rel)
        rel = min(d for d in edges[rel] if d in nodes)
    cycle = path[index[rel] :]
    turn = cycle.index(min(cycle))
    cycle = cycle[turn:] + cycle[:turn]
    return [*cycle, cycle[0]]


def _cycle_message(graph: Graph, cycle: list[str]) -> str:
    because = "; ".join(
        f"{a} → {b}: {', '.join(graph.reasons[(a, b)])}" for a, b in itertools.pairwise(cycle)
    )
    return (
        f"these stacks depend on each other in a cycle, so none of them can go first: "
        f"{' → '.join(cycle)} (a → b means a depends on b; {because}). "
        "Break the cycle: move the shared values into a stack both can read."
    )


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
        rel = path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None  # outside the live root: nothing there
    return "" if rel == "." else rel + "/"


def _names(stack: Stack) -> list[str]:
    parts = stack.name.split("/")
    return [stack.rel, *("/".join(parts[: i + 1]) for i in range(len(parts)))]


def dependencies_of(graph: Graph, stack: Stack | str) -> list[Stack]:
    """Every stack `stack` depends on, directly or not, sorted by rel path."""
    return _reach(graph, graph.dependencies, stack)


def dependents_of(graph: Graph, stack: Stack | str) -> list[Stack]:
    """Every stack that depends on `stack`, directly or not, sorted by rel path."""
    return _reach(graph, graph.dependents, stack)


def _reach(graph: Graph, edges: Mapping[str, Sequence[str]], stack: Stack | str) -> list[Stack]:
    rel = stack if isinstance(stack, str) else stack.rel
    found = _closure(edges, [rel]) - {rel}
    return [graph.stacks[r] for r in sorted(found)]


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


# ---------------------------------------------------------------------------- formats


def to_text(graph: Graph, stacks: Sequence[Stack] | None = None) -> str:
    """One stack per line in order, each dependency indented under it with the reason."""
    lines = []
    for stack in order(graph) if stacks is None else stacks:
        lines.append(stack.rel)
        for dep in graph.dependencies[stack.rel]:
            lines.append(f"  after {dep}  ({'; '.join(graph.reasons[(stack.rel, dep)])})")
    return "\n".join(lines) + "\n" if lines else ""


def to_dot(graph: Graph, stacks: Sequence[Stack] | None = None) -> str:
    """Graphviz; an arrow points from a stack to what it depends on."""
    shown = order(graph) if stacks is None else list(stacks)
    lines = ["digraph tfrun {", "  rankdir=LR;", "  node [shape=box];"]
    lines += [f"  {_dot_id(s.rel)};" for s in shown]
    lines += [
        f"  {_dot_id(s.rel)} -> {_dot_id(dep)};" for s in shown for dep in graph.dependencies[s.rel]
    ]
    return "\n".join([*lines, "}"]) + "\n"


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_mermaid(graph: Graph, stacks: Sequence[Stack] | None = None) -> str:
    """A Mermaid flowchart; an arrow points from a stack to what it depends on."""
    shown = order(graph) if stacks is None else list(stacks)
    ids: dict[str, str] = {}

    def node(rel: str) -> str:
        if rel not in ids:
            ids[rel] = f"s{len(ids)}"
            # Mermaid has no escape for `"` in a label; `#quot;` is its entity for one.
            lines.append(f'  {ids[rel]}["{rel.replace(chr(34), "#quot;")}"]')
        return ids[rel]

    lines = ["flowchart LR"]
    for stack in shown:
        node(stack.rel)
    for stack in shown:
        for dep in graph.dependencies[stack.rel]:
            lines.append(f"  {node(stack.rel)} --> {node(dep)}")
    return "\n".join(lines) + "\n"


def to_json(graph: Graph, stacks: Sequence[Stack] | None = None) -> str:
    """DESIGN §5's shape, in dependency order, plus the reads that are not edges."""
    shown = order(graph) if stacks is None else list(stacks)
    rels = {s.rel for s in shown}
    document = {
        "stacks": [
            {
                "path": s.rel,
                "env": s.env,
                "region": s.region,
                "stack": s.name,
                "key": s.key,
                "dependencies": list(graph.dependencies[s.rel]),
            }
            for s in shown
        ],
        "external_reads": [
            {**_finding_json(graph, f), "bucket": f.read.bucket, "backend": f.read.backend}
            for f in graph.external
            if f.stack in rels
        ],
        "unresolved": [
            {**_finding_json(graph, f), "key": f.read.key, "message": f.message}
            for f in graph.unresolved
            if f.stack in rels
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _finding_json(graph: Graph, finding: Finding) -> dict[str, object]:
    return {
        "stack": finding.stack,
        "file": _rel(finding.read.file, graph.root),
        "line": finding.read.line,
        "name": finding.read.name,
    }


FORMATS: dict[str, Callable[[Graph, Sequence[Stack] | None], str]] = {
    "text": to_text,
    "dot": to_dot,
    "mermaid": to_mermaid,
    "json": to_json,
}
