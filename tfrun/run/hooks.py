"""How a hook (configured.Hook) is started in a stack: the program it names, found the way a
person would expect, and the environment that tells it where it runs. run/stack.py runs it
like a terraform command: through process.py, in its own process group, under the same time
limit, its output in the stack's log."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from tfrun.configured import Hook
from tfrun.discovery import Stack
from tfrun.errors import TfrunError


class HookError(TfrunError):
    """A hook that cannot start (its program is missing): the stack fails, naming the hook."""


def program(hook: Hook, stack: Stack, environ: Mapping[str, str]) -> str:
    """The full path of the hook's program: a name with a slash is relative to the stack's
    folder (where the hook runs), any other is looked for on PATH."""
    name = hook.argv[0]
    if "/" in name:
        path = (stack.path / name).resolve()
        found = str(path) if path.is_file() and os.access(path, os.X_OK) else None
        where = f"in {stack.path}" if not os.path.isabs(name) else "there"
        missing = f"'{name}', which is no executable file {where}"
    else:
        found = shutil.which(name, path=environ.get("PATH", os.defpath))
        missing = f"'{name}', which was not found on PATH"
    if found is None:
        raise HookError(
            f"the {hook.label} ({hook.origin}) runs {missing}. Install the program, or correct "
            "the hook's execute."
        )
    return found


def environment(
    base: Mapping[str, str],
    stack: Stack,
    command: str,
    hook: Hook,
    *,
    plan_file: Path | None,
    exit_code: int | None,
) -> dict[str, str]:
    """terraform's environment, with what the hook is told about where it runs."""
    env = {
        **base,
        "TFRUN_STACK": stack.rel,
        "TFRUN_STACK_NAME": stack.name,
        "TFRUN_STACK_DIR": str(stack.path),
        "TFRUN_LIVE_ROOT": str(stack.root),
        "TFRUN_ENV": stack.env,
        "TFRUN_REGION": stack.region,
        "TFRUN_COMMAND": command,
        "TFRUN_HOOK": hook.name,
    }
    # Never inherited from tfrun's own environment: a hook must not read another's values.
    env.pop("TFRUN_PLAN_FILE", None)
    env.pop("TFRUN_EXIT_CODE", None)
    if plan_file is not None:
        env["TFRUN_PLAN_FILE"] = str(plan_file)
    if exit_code is not None:
        env["TFRUN_EXIT_CODE"] = str(exit_code)
    return env
