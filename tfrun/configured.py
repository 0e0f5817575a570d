"""What a stack's config adds to a terraform command run in it (docs/configuration.md):
the extra arguments for that command, the var files found from the live root down to the
stack's folder, and the hooks to run before and after it.

Pure decisions on a stack's merged config and its folders; nothing here starts a process
(run/hooks.py runs the hooks).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tfrun import tfargs
from tfrun.discovery import Stack

# Configured arguments terraform rejects with a saved plan (the plan holds the values).
_VARIABLE_FLAGS = ("var", "var-file")


def extra_arguments(stack: Stack, command: str) -> list[tuple[str, str]]:
    """The `extra_arguments` for `command`, in the order of their entries, each with where it
    was set (for a refusal to name): `extra_arguments "locking" in live/tfrun.hcl`."""
    config = stack.config
    found: list[tuple[str, str]] = []
    for name, entry in config.extra_arguments.items():
        if command not in entry.commands:
            continue
        origin = _origin(stack, "extra_arguments", name)
        found += [(argument, origin) for argument in entry.arguments]
    return found


def _origin(stack: Stack, key: str, name: str) -> str:
    path = stack.config.origins.get(f"{key}.{name}")
    where = f" in {os.path.relpath(path, stack.root.parent)}" if path else ""
    return f'{key} "{name}"{where}'


def var_file_candidates(stack: Stack) -> list[Path]:
    """Every place a var file is looked for, in the order terraform is given them: folder by
    folder from the live root down to the stack's own, and in each the names of `var_files`
    in their order, `{env}` and `{region}` filled in."""
    names = [name.format(env=stack.env, region=stack.region) for name in stack.config.var_files]
    if not names:
        return []
    folders = [stack.root]
    for part in Path(stack.rel).parts:
        folders.append(folders[-1] / part)
    return [folder / name for folder in folders for name in names]


def var_files(stack: Stack) -> list[Path]:
    """The var files that exist, in order (a missing one is skipped)."""
    return [path for path in var_file_candidates(stack) if path.is_file()]


def arguments(stack: Stack, command: str, tf_args: Sequence[str]) -> list[str]:
    """What the config adds to `terraform <command> <tf_args>` in this stack: its extra
    arguments, then `-var-file=` for each var file found (relative to the stack's folder, where
    terraform runs). Apply of a saved plan gets neither -var nor -var-file: terraform refuses
    them there."""
    saved_plan = tfargs.saved_plan(command, tf_args) is not None
    added = [
        argument
        for argument, _ in extra_arguments(stack, command)
        if not (saved_plan and any(tfargs.has_flag([argument], f) for f in _VARIABLE_FLAGS))
    ]
    if command in tfargs.VAR_FILE_COMMANDS and not saved_plan:
        added += [f"-var-file={os.path.relpath(path, stack.path)}" for path in var_files(stack)]
    return added


@dataclass(frozen=True)
class Hook:
    name: str
    when: str  # "before" or "after"
    argv: tuple[str, ...]
    run_on_error: bool
    origin: str  # `before_hook "fmt" in live/tfrun.hcl`

    @property
    def label(self) -> str:
        return f'{self.when}_hook "{self.name}"'


def hooks(stack: Stack, command: str, when: str) -> list[Hook]:
    """The hooks of `command` to run `when` ("before" or "after"), in their config order."""
    config = stack.config
    entries = config.before_hook if when == "before" else config.after_hook
    return [
        Hook(
            name,
            when,
            tuple(entry.execute),
            bool(getattr(entry, "run_on_error", False)),
            _origin(stack, f"{when}_hook", name),
        )
        for name, entry in entries.items()
        if command in entry.commands
    ]


def has_hooks(stack: Stack, command: str) -> bool:
    return bool(hooks(stack, command, "before") or hooks(stack, command, "after"))
