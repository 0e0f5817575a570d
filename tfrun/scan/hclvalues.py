"""The values the evaluator works with, as Python values: str, int, float, bool, None (null),
list, dict (a map) and `HclSet` (what toset() makes); and `Unresolved`, which every step
raises, with the reason, when a value cannot be known."""

from __future__ import annotations

from typing import Any


class Unresolved(Exception):
    """An expression tfrun cannot evaluate; the message says why."""

    @property
    def reason(self) -> str:
        return str(self)


class HclSet(tuple[Any, ...]):
    """What toset() returns: unique, in Terraform's order (strings sort lexically)."""


def to_text(value: Any) -> str:
    """A primitive value as a template writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise Unresolved(f"{kind(value)} cannot be written into a string")


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, HclSet):
        return "a set"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


def as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise Unresolved(f"{what} is {kind(value)}, not a bool")


def as_number(value: Any, what: str) -> float | int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            pass
    raise Unresolved(f"{what} is {kind(value)}, not a number")


def as_string(value: Any, what: str) -> str:
    if value is None or isinstance(value, list | dict):
        raise Unresolved(f"{what} is {kind(value)}, not a string")
    return to_text(value)


def as_index(key: Any) -> int:
    """A list index: a whole number, or a string of digits (HCL converts it)."""
    if isinstance(key, str) and key.isdigit():
        return int(key)
    number = as_number(key, "an index")
    if number != int(number):
        raise Unresolved(f"the index {number} is not a whole number")
    return int(number)
