"""What goes into a stack's run log, and what tfrun reads back from it."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

# Only the end of a failed attempt is searched for a transient cause: that is where terraform
# prints its errors, and a plan's output can be megabytes.
_TAIL_BYTES = 64 * 1024
_ERROR_LINE = re.compile(r"^[│╷╵|\s]*Error: (.+)$", re.M)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# terraform's own summary of an apply or a destroy (`Resources: 1 imported, 2 added, ...`).
_APPLIED = re.compile(r"(?:Apply|Destroy) complete! Resources: ([^\n.]*)\.")
_COUNT = re.compile(r"(\d+) (added|changed|destroyed)")
_VALUE_FLAG = re.compile(r"--?(?P<name>var|backend-config)(?:=(?P<value>.*))?", re.DOTALL)


def redact(argv: Sequence[str]) -> str:
    """The command as logged: the values of `-var` and `-backend-config` never appear, only
    their names (a value is a secret as often as not, whatever its name says)."""
    shown = []
    hide_next = False
    for arg in argv:
        if hide_next:
            arg, hide_next = _hidden(arg), False
        elif (flag := _VALUE_FLAG.fullmatch(arg)) is not None:
            if flag["value"] is None:
                hide_next = True
            else:
                arg = f"-{flag['name']}={_hidden(flag['value'])}"
        shown.append(arg if re.fullmatch(r"[\w@%+=:,./*-]+", arg) else json.dumps(arg))
    return " ".join(shown)


def _hidden(assignment: str) -> str:
    """`name=value` as `name=***`; a file name (no `=`) stays: it holds the values, not is one."""
    name, has_value, _ = assignment.partition("=")
    return f"{name}=***" if has_value else assignment


def tail(log: Path, offset: int) -> str:
    with log.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(offset, size - _TAIL_BYTES))
        return handle.read().decode("utf-8", "replace")


def first_error(text: str) -> str | None:
    match = _ERROR_LINE.search(_ANSI.sub("", text))
    return match.group(1).strip() if match else None


def applied(text: str) -> tuple[int, int, int] | None:
    """(added, changed, destroyed) from the last summary line of an apply or a destroy."""
    found = _APPLIED.findall(_ANSI.sub("", text))
    if not found:
        return None
    counts = {word: int(number) for number, word in _COUNT.findall(found[-1])}
    return counts.get("added", 0), counts.get("changed", 0), counts.get("destroyed", 0)
