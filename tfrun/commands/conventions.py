"""tfrun's commands for editors, shells and pre-commit: `fmt`, `schema`, `completion` (and
the hidden `__complete` the completion scripts call)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfrun import ui

COMMANDS = ("fmt", "schema", "completion", "__complete")


def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    """`fmt`, `schema` and `completion`: what editors, shells and pre-commit use."""
    fmt = sub.add_parser("fmt", help="format every tfrun.hcl and stack.hcl under PATH")
    fmt.add_argument("path", nargs="?", type=Path, default=Path())
    fmt.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 with a diff when unformatted"
    )
    schema = sub.add_parser("schema", help="the JSON Schema of tfrun.hcl or stack.hcl")
    schema.add_argument("file", nargs="?", choices=("tfrun.hcl", "stack.hcl"), default="tfrun.hcl")
    completion = sub.add_parser("completion", help="the shell completion script for bash|zsh|fish")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    # What the completion scripts ask for as the shell completes; not in the help.
    hidden = sub.add_parser("__complete")
    hidden.add_argument("kind", choices=("envs", "stacks"))


def run(options: argparse.Namespace, own_parser: Callable[[], argparse.ArgumentParser]) -> int:
    if options.own_command == "fmt":
        from tfrun.commands import fmt as fmt_command

        return fmt_command.run(options.path, check=options.check)
    if options.own_command == "schema":
        from tfrun.schema import schema_text

        ui.out(schema_text(options.file))
        return 0
    from tfrun import completion

    if options.own_command == "completion":
        ui.out(completion.script(options.shell, own_parser()))
        return 0
    # At every press of tab: whatever goes wrong, the shell shows nothing rather than an error.
    with contextlib.suppress(Exception):
        ui.out("\n".join(completion.values(options.kind, Path.cwd())))
    return 0
