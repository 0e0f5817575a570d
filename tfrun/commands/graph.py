"""`tfrun graph [PATH] --format text|dot|mermaid|json`: the stacks under PATH, in order."""

from __future__ import annotations

from pathlib import Path

from tfrun import graph as graphs
from tfrun import graph_formats, ui
from tfrun.errors import UsageError
from tfrun.workspace import Workspace


def graph(path: Path, fmt: str) -> int:
    if fmt not in graph_formats.FORMATS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(graph_formats.FORMATS)}.")
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder.")
    workspace = Workspace.load(path)
    shown = graphs.order(workspace.graph, workspace.under(path))
    rels = {s.rel for s in shown}
    for warning in workspace.repo.warnings:
        ui.info(f"warning: {warning}")
    whole = workspace.graph
    for finding in whole.unresolved:
        if finding.stack in rels:
            ui.info(f"warning: {finding.stack}: {finding.message}")
    ui.out(graph_formats.FORMATS[fmt](whole, shown))
    return 0
