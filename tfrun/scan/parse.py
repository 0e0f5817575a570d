"""The slow path: python-hcl2 on just the blocks the line patterns could not read, in worker
processes when there are many.

python-hcl2, lark and multiprocessing are imported only when a block needs them: the imports
alone cost more than a warm run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from tfrun.hcl import context_line, read_options
from tfrun.scan.blocks import Block, Nested, Snippet

# Below this many blocks for python-hcl2 (about 2 ms each), worker processes cost more
# than they save: each needs about 150 ms to start and load the grammar.
PARALLEL_MIN_BLOCKS = 128


def parse_all(snippets: Sequence[Snippet], jobs: int | None) -> list[list[Block] | str]:
    workers = jobs if jobs is not None else _cpu_count()
    if workers < 2 or len(snippets) < PARALLEL_MIN_BLOCKS:
        return [parse_snippet(s) for s in snippets]
    # Imported here: a warm run never needs them, and they cost 30 ms to import.
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # fork is the cheapest start and lets the workers share the parser loaded here first,
    # but it is only safe while this process runs a single thread.
    method = "fork" if threading.active_count() == 1 else "forkserver"
    if method == "fork":
        load_parser()
    chunk = max(1, len(snippets) // (workers * 4))
    with ProcessPoolExecutor(workers, mp_context=get_context(method)) as pool:
        return list(pool.map(parse_snippet, snippets, chunksize=chunk))


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def parse_snippet(snippet: Snippet) -> list[Block] | str:
    """The blocks in `snippet`, or "LINE:COL: message" when it is not valid HCL."""
    text, first_line = snippet
    hcl2 = load_parser()
    from lark.exceptions import UnexpectedInput

    try:
        tree = hcl2.parses_to_tree(text)
        start = hcl2.transform(tree)
        return _blocks(hcl2, tree.children[0], start.body, first_line - 1, nested=True)
    except UnexpectedInput as exc:
        return (
            f"{exc.line + first_line - 1}:{exc.column}: this is not valid HCL "
            f"(the parser stopped at {context_line(text, exc.line)!r})."
        )
    except Exception as exc:  # python-hcl2 raises plain exceptions for some inputs
        return f"{first_line}: this is not valid HCL ({exc})."


def _blocks(hcl2: Any, raw_body: Any, body: Any, offset: int, *, nested: bool) -> list[Block]:
    """The blocks directly in a body. Lines come from the raw tree; labels and values from
    the transformed one, which holds the same blocks in the same order."""
    options = read_options()
    raw = [c for c in raw_body.children if getattr(c, "data", None) == "block"]
    rules = [c for c in body.children if isinstance(c, hcl2.rules.base.BlockRule)]
    out = []
    for node, rule in zip(raw, rules, strict=True):
        inner: tuple[Nested, ...] = ()
        if nested:
            raw_inner = next((c for c in node.children if getattr(c, "data", None) == "body"), None)
            if raw_inner is not None:
                found = _blocks(hcl2, raw_inner, rule.body, offset, nested=False)
                inner = tuple(Nested(b.kind, b.labels, b.line) for b in found)
        out.append(
            Block(
                str(rule.labels[0].serialize(options)),
                [str(label.serialize(options)) for label in rule.labels[1:]],
                None if not nested else rule.body.serialize(options),
                node.meta.line + offset,
                inner,
            )
        )
    return out


def load_parser() -> Any:
    import hcl2

    hcl2.parser.parser()  # builds (or loads) the grammar once per process
    return hcl2
