"""The fast path: blocks written the canonical way, read line by line.

Most blocks are written one plain item per line, as `terraform fmt` leaves them; for those a
line pattern reads exactly what python-hcl2 would, at a fraction of its cost. Anything unusual
about an item we need sends the whole block to the parser, which decides. What is read of
each kind of block is its `Shape`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tfrun.scan.lexer import IDENT, IN_COMMENT

_PLAIN = r'"([^"\\$%\r\n]*)"'  # a string with no escapes and no templates: its text is its value
# A string whose templates are plain references (`"${var.env}/x"`): python-hcl2 gives it as
# written, so its text is its value too.
_TEMPLATE = rf'"((?:[^"\\$%\r\n]|\$\{{{IDENT}(?:\.{IDENT})*\}})*)"'
_TAIL = r"\s*(?:(?:#|//).*)?$"
_HEADER = re.compile(rf'\s*({IDENT})((?:\s+"[^"\\$%\r\n]*")*)\s*\{{{_TAIL}')
_LABEL = re.compile(r'"([^"]*)"')
_CLOSE = re.compile(rf"\s*\}}{_TAIL}")
_LEADING_IDENT = re.compile(rf"\s*({IDENT})")
_STRING_ATTR = re.compile(rf"\s*({IDENT})\s*=\s*{_PLAIN}{_TAIL}")
_ATTR = re.compile(rf"\s*({IDENT})\s*=\s*(?:{_TEMPLATE}|([\w.\-]+)){_TAIL}")
_MAP_ITEM = re.compile(rf"\s*({IDENT})\s*=\s*(?:{_TEMPLATE}|([\w.\-]+))\s*,?{_TAIL}")
_OPEN_ATTR = re.compile(rf"\s*({IDENT})\s*=\s*[{{\[]{_TAIL}")
_OPEN_MAP = re.compile(rf"\s*({IDENT})\s*=\s*\{{{_TAIL}")
_BLANK = re.compile(_TAIL)
_INTEGER = re.compile(r"-?\d+")
_TRAVERSAL = re.compile(rf"{IDENT}(?:\.{IDENT})*")
_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_ASK_PARSER = object()


@dataclass(frozen=True)
class Shape:
    """What the line patterns read of one kind of block."""

    wanted: frozenset[str] | None  # the items to read; None: every item
    required: frozenset[str] = frozenset()  # without these, the parser decides
    plain: frozenset[str] = frozenset()  # items that must be plain strings (no template)
    maps: frozenset[str] = frozenset()  # items read whole as a one-level map (a read's config)
    to_parser: frozenset[str] = frozenset()  # items whose presence sends the block to the parser
    # Given what was read, whether items the patterns cannot read may be left out rather than
    # sent to the parser (a registry module's inputs: nobody needs them).
    lenient: Callable[[dict[str, Any]], bool] | None = None
    # Items left out are named in the body under UNREAD, for whoever needs them to parse.
    record_unread: bool = False


UNREAD = "#unread"  # no HCL name: a body key that can only be ours


def _bare(word: str) -> Any:
    """A bare word's value as python-hcl2 gives it, or _ASK_PARSER when unsure (floats...)."""
    if word in _KEYWORDS:
        return _KEYWORDS[word]
    if _INTEGER.fullmatch(word):
        return int(word)
    if _TRAVERSAL.fullmatch(word):
        return "${" + word + "}"  # a reference, written the way python-hcl2 writes it
    return _ASK_PARSER


def _value(match: re.Match[str] | None) -> Any:
    """The value of an `_ATTR`/`_MAP_ITEM` match, or _ASK_PARSER."""
    if match is None:
        return _ASK_PARSER
    if match[2] is not None:
        return match[2]
    return _bare(match[3])


def fast_block(
    lines: Sequence[str], depths: Sequence[int | None], shape: Shape
) -> tuple[str, list[str], dict[str, Any]] | None:
    """(type, labels, body) for a block in the canonical shape; None means "ask the parser".

    Only lines that start in code count, and depth 1 lines are the block's own items (HCL
    ends an item at a newline unless a bracket is open), so a line pattern reads them exactly.
    """
    header = _HEADER.match(lines[0])
    if header is None or len(lines) < 2 or not _CLOSE.match(lines[-1]) or depths[-1] != 1:
        return None
    if IN_COMMENT in depths:
        return None
    kind, labels = header[1], _LABEL.findall(header[2])
    body: dict[str, Any] = {}
    in_map: dict[str, Any] | None = None
    unread: list[str] = []  # items we want that the patterns cannot read
    for text, depth in zip(lines[1:-1], depths[1:-1], strict=True):
        if depth is None:
            continue  # inside a heredoc or template: not where an item starts
        if _BLANK.match(text):
            continue
        if depth == 1:
            in_map = None
            lead = _LEADING_IDENT.match(text)
            if lead is None:
                return None
            name = lead[1]
            if name in shape.to_parser:
                return None
            if shape.wanted is not None and name not in shape.wanted:
                continue
            if name in body:
                return None  # twice: the parser says what that means
            if name in shape.maps:
                if not _OPEN_MAP.match(text):
                    return None  # written on one line, or not a map: the parser reads it
                in_map = body[name] = {}
                continue
            pattern = _STRING_ATTR if name in shape.plain else _ATTR
            value = _value(pattern.match(text))
            if value is _ASK_PARSER:
                unread.append(name)
                continue
            body[name] = value
        elif depth == 2 and in_map is not None:
            if _CLOSE.match(text):
                continue
            if _OPEN_ATTR.match(text):
                return None  # a nested map or list: the parser reads it whole
            item = _MAP_ITEM.match(text)
            if item is None or item[1] in in_map:
                return None
            value = _value(item)
            if value is _ASK_PARSER:
                return None
            in_map[item[1]] = value
        elif in_map is not None:
            return None  # deeper than the map's own items: a nested value
    if not all(name in body for name in shape.required):
        return None
    if unread and (shape.lenient is None or not shape.lenient(body)):
        return None
    if unread and shape.record_unread:
        body[UNREAD] = unread
    return kind, labels, body


def simple_item(text: str) -> tuple[str, Any] | None:
    """(name, value) of a `name = value` line whose value the patterns read exactly (a string
    with plain references at most, a whole number, true, false, null, a reference)."""
    match = _ATTR.match(text)
    value = _value(match)
    if match is None or value is _ASK_PARSER:
        return None
    return match[1], value
