"""`tfrun generate [PATH] [--check]`: write, or verify, the generated files only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tfrun import generate, scope, ui
from tfrun.discovery import Stack
from tfrun.errors import ExitCode
from tfrun.workspace import Workspace


def run(path: Path, *, check: bool) -> int:
    workspace = Workspace.load(path)
    stacks = workspace.under(path)
    for warning in workspace.repo.warnings:
        ui.info(f"warning: {warning}")
    if check:
        return _check(workspace, stacks)
    scope.shared_state(workspace.stacks, stacks)
    # Every stack rendered before anything is written: a config error writes nothing.
    rendered = [(stack, workspace.render(stack)) for stack in stacks]
    for _stack, files in rendered:
        generate.refuse_person_files(files)
    generate.ensure_gitignore(workspace.root)
    written = 0
    for stack, files in rendered:
        written += len(generate.write(stack, files))
    ui.info(f"{written} files written in {len(stacks)} stacks.")
    return 0


def _check(workspace: Workspace, stacks: Sequence[Stack]) -> int:
    """What CI can verify on a fresh checkout, which has no generated files (they are
    gitignored): every stack's files render (config errors, person files of a generated name,
    two stacks on one state fail here), and the generated files that are there are current."""
    scope.shared_state(workspace.stacks, stacks)
    stale = [(stack, generate.diff(stack, workspace.render(stack))) for stack in stacks]
    stale = [(stack, text) for stack, text in stale if text]
    for _stack, text in stale:
        ui.out(text)
    if stale:
        ui.error(
            f"{len(stale)} of {len(stacks)} stacks have stale generated files "
            f"({', '.join(stack.rel for stack, _ in stale)}). 'tfrun generate' rewrites them, "
            "as any tfrun command does in the stacks it runs in; they are gitignored, so there "
            "is nothing to commit."
        )
        return int(ExitCode.STACK_FAILED)
    ui.info(f"the generated files of {len(stacks)} stacks render, and those present are current.")
    return 0
