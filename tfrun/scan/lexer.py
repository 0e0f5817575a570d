"""A small lexer for HCL: where the top-level blocks are, and which lines start in code.

It knows strings, templates, comments and heredocs, which is all it takes to tell a block
from text that only looks like one. It does not check the syntax: a file it cannot follow goes
to python-hcl2 whole, which says where and why it is broken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IN_COMMENT = -1  # the depth of a line that starts inside a block comment


@dataclass(frozen=True)
class Layout:
    blocks: list[tuple[int, int]]  # (header line, closing line), 0-based, top-level { } blocks
    depths: list[int | None]  # per line: bracket depth at its start; None inside a string,
    # heredoc or template; IN_COMMENT inside a block comment


_CODE_TOKEN = re.compile(r'"|#|//|/\*|<<|[{}\[\]()]|\n')
_STRING_TOKEN = re.compile(r'\\.|\$\$\{|%%\{|\$\{|%\{|"|\n', re.S)
_HEREDOC = re.compile(r"<<-?([A-Za-z_][\w-]*)[ \t]*\r?\n")

IDENT = r"[A-Za-z_][\w-]*"
# A block header up to its `{`, with labels that are plain strings (no escapes, no templates:
# their text is their value) or bare identifiers.
_HEADER = re.compile(rf'\s*({IDENT})((?:\s+(?:"[^"\\$%\r\n]*"|{IDENT}))*)\s*\{{')
_LABEL = re.compile(rf'"([^"]*)"|({IDENT})')


def layout(text: str) -> Layout | None:
    """None when the text does not lex (the parser then says why)."""
    depth = 0
    templates: list[int] = []  # depth at which each open `${` began
    in_string = False
    line = 0
    depths: list[int | None] = [0]
    blocks: list[tuple[int, int]] = []
    opened_line = 0
    pos = 0
    size = len(text)
    while pos < size:
        if in_string:
            m = _STRING_TOKEN.search(text, pos)
            if m is None or m.group() == "\n":
                return None  # quoted strings do not span lines
            pos = m.end()
            tok = m.group()
            if tok == '"':
                in_string = False
            elif tok in ("${", "%{"):
                templates.append(depth)
                depth += 1
                in_string = False
            continue
        m = _CODE_TOKEN.search(text, pos)
        if m is None:
            break
        tok = m.group()
        pos = m.end()
        if tok == "\n":
            line += 1
            depths.append(None if templates else depth)
        elif tok == '"':
            in_string = True
        elif tok in ("#", "//"):
            newline = text.find("\n", pos)
            pos = size if newline < 0 else newline
        elif tok == "/*":
            close = text.find("*/", pos)
            if close < 0:
                return None
            count = text.count("\n", pos, close)
            line += count
            depths.extend([IN_COMMENT] * count)
            pos = close + 2
        elif tok == "<<":
            heredoc = _HEREDOC.match(text, m.start())
            if heredoc is None:
                return None
            marker = re.compile(rf"^[ \t]*{re.escape(heredoc[1])}[ \t]*\r?$", re.M)
            end = marker.search(text, heredoc.end())
            if end is None:
                return None
            count = text.count("\n", m.start(), end.start())
            line += count
            depths.extend([None] * count)
            pos = end.end()
        elif tok in "{[(":
            if depth == 0:
                opened_line = line
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                return None
            if templates and depth == templates[-1]:
                templates.pop()
                in_string = True
            elif depth == 0 and tok == "}":
                blocks.append((opened_line, line))
    if in_string or depth or templates:
        return None
    return Layout(blocks, depths)


def header(line: str) -> tuple[str, list[str]] | None:
    """(type, labels) of the block that opens on `line`, when its header reads plainly."""
    m = _HEADER.match(line)
    if m is None:
        return None
    return m[1], [quoted or bare for quoted, bare in _LABEL.findall(m[2])]
