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
    if not workspace.stacks:
        ui.info(f"no stacks under {workspace.root}.")
        return 0
    whole = workspace.graph
    shown = graphs.order(whole, graphs.select(whole, [workspace.start(path)]))
    if not shown:
        ui.info(f"no stacks under {workspace.start(path)}.")
        if fmt == "text":
            return 0
    rels = {s.rel for s in shown}
    for finding in whole.unresolved:
        if finding.stack in rels:
            ui.info(f"warning: {finding.stack}: {finding.message}")
    ui.out(graph_formats.FORMATS[fmt](whole, shown))
    return 0
