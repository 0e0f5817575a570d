"""`tfrun graph [PATH] --format text|dot|mermaid|json`: the stacks under PATH, in order."""

from __future__ import annotations

from pathlib import Path

from tfrun import graph as graphs
from tfrun import scan, ui
from tfrun.discovery import Repository
from tfrun.errors import UsageError


def graph(path: Path, fmt: str) -> int:
    if fmt not in graphs.FORMATS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(graphs.FORMATS)}.")
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder.")
    repo = Repository.containing(path)
    # The whole repository, even for a part of it: a state key can name any stack.
    stacks = repo.stacks()
    if not stacks:
        ui.info(f"no stacks under {repo.root}.")
        return 0
    whole = graphs.build(stacks, scan.scan(repo.root, stacks))
    shown = graphs.order(whole, graphs.select(whole, [path]))
    if not shown:
        ui.info(f"no stacks under {path.resolve()}.")
        if fmt == "text":
            return 0
    rels = {s.rel for s in shown}
    for finding in whole.unresolved:
        if finding.stack in rels:
            ui.info(f"warning: {finding.stack}: {finding.message}")
    ui.out(graphs.FORMATS[fmt](whole, shown))
    return 0
