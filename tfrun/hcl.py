"""Reading HCL with python-hcl2, and writing it with a small escaping emitter.

Reading: python-hcl2 parses; we turn its output into plain Python values (strings unquoted
and unescaped, single blocks as dicts) so the config models see what the user meant.

Writing: every generated file is built from `Block`s whose values are Python data. Strings are
always emitted through `quote`, which escapes everything HCL would otherwise interpret
(`"`, `\\`, newlines, `${`, `%{`), so no config value can inject HCL. Only `Expr` values, which
tfrun builds itself from fixed text and validated identifiers, are written verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

from tfrun.errors import ConfigError


@cache
def read_options() -> Any:
    # python-hcl2 and lark are imported on first parse only: a warm run parses nothing.
    import hcl2

    return hcl2.SerializationOptions(
        with_comments=False,
        explicit_blocks=False,
        strip_string_quotes=True,
        preserve_heredocs=False,
    )


def _loads(text: str) -> dict[str, Any]:
    import hcl2

    return hcl2.loads(text, serialization_options=read_options())


def parse_text(text: str, source: Path) -> dict[str, Any]:
    """Parse HCL text; a syntax error names the file and, when known, the line."""
    from lark.exceptions import UnexpectedInput

    try:
        data = _loads(text)
    except UnexpectedInput as exc:
        context = context_line(text, exc.line)
        where = f"here: {context!r}" if context else "at the end of the file"
        raise ConfigError(
            f"{source}:{exc.line}:{exc.column}: this is not valid HCL (the parser stopped "
            f"{where}). Fix the syntax and run tfrun again."
        ) from None
    except Exception as exc:  # python-hcl2 raises plain exceptions for some inputs
        raise ConfigError(f"{source}: this is not valid HCL ({exc}).") from None
    return _plain(data)  # type: ignore[no-any-return]


def parse_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read this file ({exc}).") from None
    return parse_text(text, path)


def context_line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _plain(value: Any) -> Any:
    """Unquote the keys python-hcl2 leaves quoted. (It resolves backslash escapes in values
    but keeps `$${` as written; tfrun's config values are plain text, so that is left be.)"""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {_unquote_key(k): _plain(v) for k, v in value.items()}
    return value


def _unquote_key(key: str) -> str:
    if len(key) >= 2 and key[0] == '"' and key[-1] == '"':
        return str(_loads(f"k = {key}")["k"])
    return key


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Expr:
    """An HCL expression written verbatim. Only for text tfrun itself controls."""

    text: str


Value: TypeAlias = "str | bool | int | float | Expr | Sequence[Value] | Mapping[str, Value] | None"


@dataclass
class Block:
    type: str
    labels: tuple[str, ...] = ()
    body: list[Attribute | Block] = field(default_factory=list)

    def attr(self, name: str, value: Value) -> Block:
        self.body.append(Attribute(name, value))
        return self

    def block(self, child: Block) -> Block:
        self.body.append(child)
        return self


@dataclass(frozen=True)
class Attribute:
    name: str
    value: Value


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_INDENT = "  "


def quote(text: str) -> str:
    """An HCL quoted-string literal whose value is exactly `text`."""
    out = ['"']
    i = 0
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if ch in "$%" and nxt == "{":
            # A literal `${` or `%{`. HCL's own `$${` escape is not used: python-hcl2 misreads
            # it before some characters, and an escaped brace means the same to Terraform.
            out.append(ch + "\\u007b")
            i += 2
            continue
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ch == "\x7f" or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
        i += 1
    out.append('"')
    return "".join(out)


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not an HCL identifier: {name!r}")
    return name


def render_value(value: Value, depth: int) -> str:
    if isinstance(value, Expr):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        entries = [(quote(str(k)), render_value(v, depth + 1)) for k, v in value.items()]
        return "{\n" + "\n".join(_aligned(entries, depth + 1)) + "\n" + _INDENT * depth + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(render_value(item, depth) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as HCL")


def _aligned(entries: Sequence[tuple[str, str]], depth: int) -> list[str]:
    """`name = value` lines with the `=` aligned per run, as terraform fmt does: a multi-line
    value ends a run and stands alone."""
    lines: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(name) for name, _ in run), default=0)
        lines.extend(f"{_INDENT * depth}{name.ljust(width)} = {text}" for name, text in run)
        run.clear()

    for name, text in entries:
        if "\n" in text:
            flush()
            run.append((name, text))
            flush()
        else:
            run.append((name, text))
    flush()
    return lines


def _render_block(block: Block, depth: int) -> list[str]:
    pad = _INDENT * depth
    header = " ".join([_identifier(block.type), *(quote(label) for label in block.labels)])
    lines = [f"{pad}{header} {{"]
    attributes: list[tuple[str, str]] = []
    for item in block.body:
        if isinstance(item, Attribute):
            attributes.append((_identifier(item.name), render_value(item.value, depth + 1)))
            continue
        lines.extend(_aligned(attributes, depth + 1))
        attributes.clear()
        if len(lines) > 1:
            lines.append("")
        lines.extend(_render_block(item, depth + 1))
    lines.extend(_aligned(attributes, depth + 1))
    lines.append(f"{pad}}}")
    return lines


def render(blocks: Sequence[Block], header: str = "") -> str:
    parts = [header.rstrip("\n")] if header else []
    for block in blocks:
        parts.append("\n".join(_render_block(block, 0)))
    return "\n\n".join(parts) + "\n"
