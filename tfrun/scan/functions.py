"""The functions the evaluator knows (`FUNCTIONS`): those that appear in state keys and
parameter names, and the conversions a for_each needs. Each takes evaluated arguments and
returns a value, or raises `Unresolved` where Terraform would fail, so a wrong call is never
read as a key."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from tfrun.scan.hclvalues import HclSet, Unresolved, as_index, as_number, as_string, kind


def _arity(name: str, args: Sequence[Any], low: int, high: int | None = None) -> None:
    top = low if high is None else high
    if not low <= len(args) <= top:
        wanted = str(low) if low == top else f"{low} to {top}"
        raise Unresolved(f"{name}() takes {wanted} arguments, not {len(args)}")


_VERB = re.compile(r"%(?:%|([^a-zA-Z%]*)([a-zA-Z]))")


def _format(args: Sequence[Any]) -> str:
    if not args:
        raise Unresolved("format() needs a format string")
    spec, values = as_string(args[0], "format()'s first argument"), list(args[1:])
    out: list[str] = []
    at = 0

    def verb(match: re.Match[str]) -> str:
        nonlocal at
        if match.group() == "%%":
            return "%"
        flags, letter = match.group(1), match.group(2)
        if flags or letter not in "sdv":
            raise Unresolved(f"tfrun does not evaluate the format verb {match.group()}")
        if at >= len(values):
            raise Unresolved("format() has more verbs than values")
        value = values[at]
        at += 1
        if letter == "d":
            number = as_number(value, "a %d value")
            if number != int(number):
                raise Unresolved(f"%d of {number}, which is not a whole number")
            return str(int(number))
        return as_string(value, f"a %{letter} value")

    out.append(_VERB.sub(verb, spec))
    if at < len(values):
        raise Unresolved("format() has more values than verbs")
    return "".join(out)


def _list(value: Any, what: str) -> list[Any]:
    if isinstance(value, list | HclSet):
        return list(value)
    raise Unresolved(f"{what} is {kind(value)}, not a list")


def _join(args: Sequence[Any]) -> str:
    if len(args) < 2:
        raise Unresolved("join() takes a separator and at least one list")
    separator = as_string(args[0], "join()'s separator")
    items = [item for value in args[1:] for item in _list(value, "join()'s argument")]
    return separator.join(as_string(item, "an item join() joins") for item in items)


def _replace(args: Sequence[Any]) -> str:
    _arity("replace", args, 3)
    text, old, new = (as_string(a, "an argument of replace()") for a in args)
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        raise Unresolved("tfrun does not evaluate replace() with a regular expression")
    return text.replace(old, new)


def _lookup(args: Sequence[Any]) -> Any:
    _arity("lookup", args, 2, 3)
    table, key = args[0], as_string(args[1], "lookup()'s key")
    if not isinstance(table, dict):
        raise Unresolved(f"lookup() of {kind(table)}, not a map")
    if key in table:
        return table[key]
    if len(args) == 3:
        return args[2]
    raise Unresolved(f"lookup(): the map has no key {json.dumps(key)} and no default is given")


def _element(args: Sequence[Any]) -> Any:
    _arity("element", args, 2)
    items = _list(args[0], "element()'s first argument")
    if not items:
        raise Unresolved("element() of an empty list")
    return items[as_index(args[1]) % len(items)]


def _toset(args: Sequence[Any]) -> HclSet:
    _arity("toset", args, 1)
    items = _list(args[0], "toset()'s argument")
    texts = [as_string(item, "an item of toset()") for item in items]
    return HclSet(sorted(set(texts)))


def _tomap(args: Sequence[Any]) -> dict[str, Any]:
    _arity("tomap", args, 1)
    if not isinstance(args[0], dict):
        raise Unresolved(f"tomap() of {kind(args[0])}")
    return dict(args[0])


def _unary_text(name: str, op: Callable[[str], str]) -> Callable[[Sequence[Any]], str]:
    def function(args: Sequence[Any]) -> str:
        _arity(name, args, 1)
        return op(as_string(args[0], f"{name}()'s argument"))

    return function


def _trim(name: str, op: Callable[[str, str], str]) -> Callable[[Sequence[Any]], str]:
    def function(args: Sequence[Any]) -> str:
        _arity(name, args, 2)
        return op(as_string(args[0], f"{name}()'s text"), as_string(args[1], f"{name}()'s affix"))

    return function


def _coalesce(args: Sequence[Any]) -> Any:
    for value in args:
        if value is not None and value != "":
            return value
    raise Unresolved("coalesce(): every argument is null or empty")


def _length(args: Sequence[Any]) -> int:
    _arity("length", args, 1)
    value = args[0]
    if isinstance(value, str | list | dict | HclSet):
        return len(value)
    raise Unresolved(f"length() of {kind(value)}")


def _tolist(args: Sequence[Any]) -> list[Any]:
    _arity("tolist", args, 1)
    return _list(args[0], "tolist()'s argument")


def _tostring(args: Sequence[Any]) -> Any:
    _arity("tostring", args, 1)
    return None if args[0] is None else as_string(args[0], "tostring()'s argument")


FUNCTIONS: dict[str, Callable[[Sequence[Any]], Any]] = {
    "format": _format,
    "join": _join,
    "lower": _unary_text("lower", str.lower),
    "upper": _unary_text("upper", str.upper),
    "replace": _replace,
    "lookup": _lookup,
    "element": _element,
    "length": _length,
    "concat": lambda args: [x for a in args for x in _list(a, "concat()'s argument")],
    "coalesce": _coalesce,
    "trimprefix": _trim("trimprefix", str.removeprefix),
    "trimsuffix": _trim("trimsuffix", str.removesuffix),
    "toset": _toset,
    "tolist": _tolist,
    "tomap": _tomap,
    "tostring": _tostring,
}
