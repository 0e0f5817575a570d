"""The message of a config file that does not validate: each problem with the line it is on
(python-hcl2 gives no positions, so the line is found by the keys in the file's text) and, for
an unknown key, the allowed key it is closest to."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from tfrun.errors import ConfigError

Location = Sequence[int | str]


def _unwrapped(kind: Any) -> Any:
    """`kind` without Annotated and without None in an optional."""
    while True:
        origin = get_origin(kind)
        if origin is Annotated:
            kind = get_args(kind)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(kind) if arg is not type(None)]
            if len(options) != 1:
                return kind
            kind = options[0]
        else:
            return kind


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def allowed_keys(model: type[BaseModel], location: Location) -> list[str]:
    """The keys allowed beside the last part of `location` (where a key was not)."""
    kind: Any = model
    for part in location[:-1]:
        kind = _unwrapped(kind)
        if _is_model(kind):
            field = kind.model_fields.get(str(part))
            if field is None:
                return []
            kind = field.annotation
        elif get_origin(kind) in (dict, list):
            kind = get_args(kind)[-1]  # past a map's key or a list's index
        else:
            return []
    kind = _unwrapped(kind)
    if not _is_model(kind):
        return []
    return [field.alias or name for name, field in kind.model_fields.items()]


def did_you_mean(unknown: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def line_of(text: str, location: Location) -> int | None:
    """The line (from 1) of the key `location` names, found part by part down the file: each
    key or block label after the line of the one above it. None when the file does not show
    it (a value in a map written on one line is found at that line)."""
    lines = text.splitlines()
    start, found = 0, None
    for part in location:
        if not isinstance(part, str):
            continue  # a list's index: the list's own line stands
        pattern = re.compile(rf'(?<![\w.-])"?{re.escape(part)}"?\s*(=|:|\{{|")')
        hit = next((n for n in range(start, len(lines)) if pattern.search(lines[n])), None)
        if hit is None:
            break
        start, found = hit, hit + 1
    return found


def format_error(path: Path, exc: ValidationError, model: type[BaseModel]) -> ConfigError:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    problems: list[tuple[int | None, str]] = []
    for error in exc.errors():
        location = error["loc"]
        where = ".".join(str(part) for part in location) or "(top level)"
        if error["type"] == "extra_forbidden":
            hint = did_you_mean(str(location[-1]), allowed_keys(model, location))
            problem = f"unknown key '{where}'{hint}"
        else:
            problem = f"'{where}': {error['msg'].removeprefix('Value error, ')}"
        problems.append((line_of(text, location) if location else None, problem))
    # The line after each problem, not as `path:line:`: the message starts with the file
    # alone, as every other config error does, and names each problem's own line.
    shown = [
        f"{problem} (line {line})" if line is not None else problem for line, problem in problems
    ]
    return ConfigError(f"{path}: " + "; ".join(shown) + ".")
