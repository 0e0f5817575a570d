"""Reading HCL with python-hcl2, and writing it with a small escaping emitter.

Reading: python-hcl2 parses, with options that make its output plain Python values: strings
and map keys unquoted, backslash escapes resolved (unquoting a key again would turn the key
`"\\"a\\""` into `a`). It keeps `$${` and `%%{` as written: `tfrun.config` resolves them in
config files, and the scan reads them in .tf files as Terraform would.

Writing: every generated file is built from `Block`s whose values are Python data. Strings are
always emitted through `quote`, which escapes everything HCL would otherwise interpret
(`"`, `\\`, newlines, `${`, `%{`), so no config value can inject HCL, and every character a
reader could not see (controls, bidi and zero-width characters), so a generated file shows
what Terraform reads. Only `Expr` values, which tfrun builds itself from fixed text and
validated identifiers, are written verbatim.
"""

from __future__ import annotations

import importlib.util
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

from tfrun.errors import ConfigError


@cache
def hcl2_version() -> str | None:
    """What identifies the installed python-hcl2, for the caches of what it parsed: its
    files' place and time (its metadata would import importlib.metadata, 20 ms, and
    importing it, lark, a tenth of a second)."""
    spec = importlib.util.find_spec("hcl2")
    if spec is None or spec.origin is None:  # pragma: no cover - tfrun depends on it
        return None
    return f"{spec.origin} {os.stat(spec.origin).st_mtime_ns}"


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
    return data


def parse_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read this file ({exc}).") from None
    return parse_text(text, path)


def context_line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


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
# Unicode categories written as escapes: controls (C0, DEL, C1), format characters (bidi
# controls, zero-width characters, the BOM, tag characters), surrogates, line and paragraph
# separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def quote(text: str) -> str:
    """An HCL quoted-string literal whose value is exactly `text`."""
    if _PLAIN.fullmatch(text):
        return f'"{text}"'  # most values: nothing to escape
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
        elif ch > "~" or ch < " ":
            out.append(_escaped(ch))
        else:
            out.append(ch)
        i += 1
    out.append('"')
    return "".join(out)


# Printable ASCII without a backslash, a quote, or a `{` after `$` or `%`.
_PLAIN = re.compile(r"(?:[ !#&-\[\]-~]|[$%](?!\{))*")


def _escaped(ch: str) -> str:
    """`ch` itself, or its `\\uNNNN` escape when a reader of the file could not see it:
    control characters, and format characters such as the bidi overrides (U+202E) and
    zero-width spaces, which make a value look different on screen and in review from what
    Terraform reads."""
    if unicodedata.category(ch) not in _INVISIBLE:
        return ch
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


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
