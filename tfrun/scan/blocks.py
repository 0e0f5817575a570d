"""What the passes over one file hand each other, and what an extraction is.

An extraction reads one kind of fact from a file in two steps: a cheap first pass in this
process (prefilter, lexer, line patterns), which leaves what it cannot read as snippets for
python-hcl2, then `finish`, which turns the blocks into JSON-able facts for the cache. Blocks
cross process boundaries (the parser may run in workers), so they are plain tuples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

from tfrun.scan import lexer

Facts: TypeAlias = dict[str, Any]  # what one file says, as JSON-able data
Snippet: TypeAlias = tuple[str, int]  # HCL text for python-hcl2, and the line it starts on


class Nested(NamedTuple):
    """A block directly inside a top-level block: only where it is and what it is called."""

    kind: str
    labels: list[str]
    line: int


class Block(NamedTuple):
    kind: str
    labels: list[str]
    body: Any  # the parsed body; None when only the header was read
    line: int
    nested: tuple[Nested, ...] = ()


@dataclass
class Pass:
    """One file after the first, cheap pass: what it read, and what the parser must read."""

    facts: Facts
    blocks: list[Block] = field(default_factory=list)
    snippets: list[Snippet] = field(default_factory=list)
    lexed: bool = False  # the file got past the prefilter


@dataclass(frozen=True)
class Extraction:
    """One kind of facts, with its own cache file: bump `version` when `finish` changes."""

    cache_file: str
    version: int
    first_pass: Callable[[str, bytes], Pass]  # (file name, bytes)
    finish: Callable[[Pass], Facts]
    suffixes: tuple[str, ...] = (".tf", ".tf.json")  # the files of a folder it reads


def decode(first: Pass, data: bytes) -> str | None:
    """The file's text; None (with the error in `first.facts`) when it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first.facts["error"] = f" this file is not UTF-8 ({exc})."
        return None


def lex(first: Pass, text: str) -> tuple[list[str], lexer.Layout] | None:
    """The file's lines and top-level blocks; None when the lexer is lost (most likely the
    file is broken), and then the whole file goes to the parser, which says where and why."""
    layout = lexer.layout(text)
    if layout is None:
        first.snippets.append((text, 1))
        return None
    return text.split("\n"), layout
