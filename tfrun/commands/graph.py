"""`tfrun graph [PATH] --format text|dot|mermaid|json`: the stacks under PATH, in order.

Answered from the repository's picture (tfrun/picture.py) while no file it reads changed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tfrun import picture
from tfrun.errors import UsageError


def graph(path: Path, fmt: str) -> int:
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder.")
    start = os.path.realpath(path)
    key = picture.key_of("graph", os.environ, fmt, start)
    return picture.answered(start, key, lambda: _drawn(path, fmt)).show()


def _drawn(path: Path, fmt: str) -> tuple[picture.Answer, Iterable[str]]:
    from tfrun import graph as graphs
    from tfrun import graph_formats
    from tfrun.workspace import Workspace

    if fmt not in graph_formats.FORMATS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(graph_formats.FORMATS)}.")
    workspace = Workspace.load(path)
    shown = graphs.order(workspace.graph, workspace.under(path))
    rels = {s.rel for s in shown}
    answer = picture.Answer()
    for warning in workspace.repo.warnings:
        answer.say("info", f"warning: {warning}")
    whole = workspace.graph
    for finding in whole.unresolved:
        if finding.stack in rels:
            answer.say("info", f"warning: {finding.stack}: {finding.message}")
    answer.say("out", graph_formats.FORMATS[fmt](whole, shown))
    return answer, picture.module_dirs(workspace.facts)
