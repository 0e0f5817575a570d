"""`tfrun graph`'s formats: the graph as text, Graphviz dot, Mermaid or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from tfrun.discovery import Stack
from tfrun.graph import Finding, Graph, order, relative_to_root


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
    """Each stack (path, env, region, stack name, key, direct dependencies) in dependency
    order, and the remote-state reads that are not edges: external ones and unresolved ones
    (`declared` when the stack's own `dependencies` order it)."""
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
        # A declared read is ordered by the stack's `dependencies`; it is listed all the same.
        "unresolved": [
            {
                **_finding_json(graph, f),
                "key": f.read.key,
                "message": f.message,
                "declared": f in graph.declared,
            }
            for f in (*graph.unresolved, *graph.declared)
            if f.stack in rels
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _finding_json(graph: Graph, finding: Finding) -> dict[str, object]:
    return {
        "stack": finding.stack,
        "file": relative_to_root(finding.read.file, graph.root),
        "line": finding.read.line,
        "name": finding.read.name,
    }


FORMATS: dict[str, Callable[[Graph, Sequence[Stack] | None], str]] = {
    "text": to_text,
    "dot": to_dot,
    "mermaid": to_mermaid,
    "json": to_json,
}
