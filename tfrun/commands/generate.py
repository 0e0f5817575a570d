"""`tfrun generate [PATH] [--check]`: write, or verify, the generated files only."""

from __future__ import annotations

from pathlib import Path

from tfrun import generate, ui
from tfrun.errors import ExitCode
from tfrun.workspace import Workspace


def run(path: Path, *, check: bool) -> int:
    workspace = Workspace.load(path)
    stacks = workspace.under(path)
    if check:
        stale = [(stack, generate.diff(stack, workspace.render(stack))) for stack in stacks]
        stale = [(stack, text) for stack, text in stale if text]
        for _stack, text in stale:
            ui.out(text)
        if stale:
            ui.error(
                f"{len(stale)} of {len(stacks)} stacks have stale generated files "
                f"({', '.join(stack.rel for stack, _ in stale)}). Run 'tfrun generate' and commit "
                "the config change that caused it."
            )
            return int(ExitCode.STACK_FAILED)
        ui.info(f"generated files are current in {len(stacks)} stacks.")
        return 0
    generate.ensure_gitignore(workspace.root)
    written = 0
    for stack in stacks:
        written += len(generate.write(stack, workspace.render(stack)))
    ui.info(f"{written} files written in {len(stacks)} stacks.")
    return 0
