"""The fast path: remote-state and module blocks written the canonical way, read line by line.

Most blocks are written one plain item per line, as `terraform fmt` leaves them; for those a
line pattern reads exactly what python-hcl2 would, at a fraction of its cost. Anything unusual
about an item we need sends the whole block to the parser, which decides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tfrun.scan.lexer import IDENT, IN_COMMENT

_PLAIN = r'"([^"\\$%\r\n]*)"'  # a string with no escapes and no templates: its text is its value
_TAIL = r"\s*(?:(?:#|//).*)?$"
_HEADER = re.compile(rf'\s*({IDENT})((?:\s+"[^"\\$%\r\n]*")*)\s*\{{{_TAIL}')
_LABEL = re.compile(r'"([^"]*)"')
_CLOSE = re.compile(rf"\s*\}}{_TAIL}")
_LEADING_IDENT = re.compile(rf"\s*({IDENT})")
_STRING_ATTR = re.compile(rf"\s*({IDENT})\s*=\s*{_PLAIN}\s*,?{_TAIL}")
_SIMPLE_ATTR = re.compile(rf"\s*({IDENT})\s*=\s*(?:{_PLAIN}|([\w.\-]+))\s*,?{_TAIL}")
_OPEN_ATTR = re.compile(rf"\s*({IDENT})\s*=\s*[{{\[]{_TAIL}")
_OPEN_CONFIG = re.compile(rf"\s*config\s*=\s*\{{{_TAIL}")
_BLANK = re.compile(_TAIL)
_INTEGER = re.compile(r"-?\d+")
_TRAVERSAL = re.compile(rf"{IDENT}(?:\.{IDENT})*")
_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_ASK_PARSER = object()


def _bare(word: str) -> Any:
    """A bare word's value as python-hcl2 gives it, or _ASK_PARSER when unsure (floats...)."""
    if word in _KEYWORDS:
        return _KEYWORDS[word]
    if _INTEGER.fullmatch(word):
        return int(word)
    if _TRAVERSAL.fullmatch(word):
        return "${" + word + "}"  # a reference, written the way python-hcl2 writes it
    return _ASK_PARSER


def fast_block(
    lines: Sequence[str], depths: Sequence[int | None]
) -> tuple[str, list[str], dict[str, Any]] | None:
    """(type, labels, body) for a block in the canonical shape; None means "ask the parser".

    Only lines that start in code count, and depth 1 lines are the block's own items (HCL
    ends an item at a newline unless a bracket is open), so a line pattern reads them exactly.
    The `config` map is read whole, since an override file may need to copy it.
    """
    header = _HEADER.match(lines[0])
    if header is None or len(lines) < 2 or not _CLOSE.match(lines[-1]) or depths[-1] != 1:
        return None
    if IN_COMMENT in depths:
        return None
    kind, labels = header[1], _LABEL.findall(header[2])
    body: dict[str, Any] = {}
    config: dict[str, Any] | None = None
    in_config = False
    needed = {"source"} if kind == "module" else {"backend", "config", "workspace"}
    for text, depth in zip(lines[1:-1], depths[1:-1], strict=True):
        if depth is None:
            continue  # inside a heredoc or template: not where an item starts
        if _BLANK.match(text):
            continue
        if depth == 1:
            in_config = False
            lead = _LEADING_IDENT.match(text)
            if lead is None:
                return None
            name = lead[1]
            if name not in needed:
                continue
            if name in body or name == "workspace":
                return None
            if name == "config":
                if not _OPEN_CONFIG.match(text):
                    return None
                config = body["config"] = {}
                in_config = True
                continue
            attr = _STRING_ATTR.match(text)
            if attr is None:
                return None
            body[name] = attr[2]
        elif depth == 2 and in_config:
            assert config is not None
            if _CLOSE.match(text):
                continue
            if _OPEN_ATTR.match(text):
                return None  # a nested map or list: the parser reads it whole
            attr = _SIMPLE_ATTR.match(text)
            if attr is None or attr[1] in config:
                return None
            if attr[2] is not None:
                config[attr[1]] = attr[2]
                continue
            if attr[1] in ("bucket", "key"):
                return None  # not a plain string: the parser says how to show it
            value = _bare(attr[3])
            if value is _ASK_PARSER:
                return None
            config[attr[1]] = value
        elif in_config:
            return None  # deeper than the config's own items: a nested value
    if not all(name in body for name in needed - {"workspace"}):
        return None
    return kind, labels, body
