"""`tfrun generate [PATH] [--check]`: write, or verify, the generated files only."""

from __future__ import annotations

from pathlib import Path

from tfrun import generate, terraform, ui
from tfrun.discovery import Repository
from tfrun.errors import ConfigError, ExitCode


def run(path: Path, *, check: bool) -> int:
    repo = Repository.containing(path)
    stacks = repo.stacks(path)
    if not stacks:
        raise ConfigError(f"{path.resolve()}: no stacks here or below.")
    if check:
        stale = [(stack, generate.diff(stack, terraform.render(repo, stack))) for stack in stacks]
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
    generate.ensure_gitignore(repo.root)
    written = 0
    for stack in stacks:
        written += len(generate.write(stack, terraform.render(repo, stack)))
    ui.info(f"{written} files written in {len(stacks)} stacks.")
    return 0
