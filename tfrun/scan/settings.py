"""What `tfrun check` needs from .tf files: the providers they use, and what their `terraform`
blocks set (required_version, required_providers, a backend or cloud block).

A separate extraction from `links`, with its own cache file: it must look at nearly every
file, while `graph`, `affected` and `run-all` let a byte prefilter skip most of them. Only
`check` pays for it, and the cache makes its second run cheap. The facts, as JSON:

    {"signed": bool,
     "providers": [[name, line]],      first use of each provider local name, in line order
     "terraform": [{"line", "required_version", "required_providers": [[name, constraint]],
                    "backends": [[kind, type, line]]}],
     "error": "LINE:COL: message"}

A provider is used by a resource, data source or ephemeral resource of its type (the type's
prefix before the first `_`: Terraform's default), by a data source inside a `check` block, or
by a provider block. Only HCL syntax is read: `.tf.json` files say nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfrun import generate
from tfrun.scan import lexer
from tfrun.scan.blocks import Block, Extraction, Facts, Nested, Pass, decode, lex
from tfrun.scan.reader import Reader

CACHE_FILE = "settings.json"
# Bump when what `finish` returns changes, so old caches are ignored rather than trusted.
# 2: "signed" is the exact signature line, no longer a prefix of it.
CACHE_VERSION = 2

_CANDIDATE = re.compile(rb"\b(?:resource|data|ephemeral|provider|terraform|check)\b")
_TYPED = frozenset({"resource", "data", "ephemeral"})
_BACKENDS = frozenset({"backend", "cloud"})


@dataclass(frozen=True)
class BackendBlock:
    kind: str  # "backend" or "cloud"
    type: str | None  # the backend's label ("s3"); None for cloud
    line: int


@dataclass(frozen=True)
class TerraformBlock:
    line: int
    required_version: str | None  # as written; None when absent or not a string
    # Provider local name → its version constraint as written; None when it has none.
    required_providers: tuple[tuple[str, str | None], ...]
    backends: tuple[BackendBlock, ...]


@dataclass(frozen=True)
class FileSettings:
    path: Path
    providers: tuple[tuple[str, int], ...]  # (local name, line of its first use), in line order
    terraform: tuple[TerraformBlock, ...]


def file_settings(
    root: Path, dirs: Sequence[Path], *, use_cache: bool = True, jobs: int | None = None
) -> dict[Path, tuple[FileSettings, ...]]:
    """Per folder, its .tf files that use a provider or hold a terraform block, in name order
    (files tfrun generated left out)."""
    reader = Reader(root, SETTINGS, use_cache=use_cache, jobs=jobs)
    found = reader.by_dir(list(dict.fromkeys(dirs)))
    reader.save()
    return {d: tuple(_settings(path, fact) for path, fact in found[d]) for d in dirs}


def _settings(path: Path, fact: Facts) -> FileSettings:
    return FileSettings(
        path=path,
        providers=tuple((name, line) for name, line in fact.get("providers", ())),
        terraform=tuple(
            TerraformBlock(
                line=block["line"],
                required_version=block["required_version"],
                required_providers=tuple((n, c) for n, c in block["required_providers"]),
                backends=tuple(BackendBlock(k, t, line) for k, t, line in block["backends"]),
            )
            for block in fact.get("terraform", ())
        ),
    )


# ---------------------------------------------------------------------------- extraction


def first_pass(name: str, data: bytes) -> Pass:
    first = Pass({"signed": generate.is_signed(data)})
    if not name.endswith(".tf") or _CANDIDATE.search(data) is None:
        return first
    first.lexed = True
    text = decode(first, data)
    if text is None:
        return first
    lexed = lex(first, text)
    if lexed is None:
        return first
    lines, layout = lexed
    for start, end in layout.blocks:
        header = lexer.header(lines[start])
        if header is None or header[0] == "terraform":
            # Only the parser can read this header; and a terraform block's settings are
            # read whole (such blocks are few: tfrun generates the usual ones).
            first.snippets.append(("\n".join(lines[start : end + 1]), start + 1))
            continue
        kind, labels = header
        nested: list[Nested] = []
        if kind == "check":  # it may hold data sources of its own
            for at in range(start + 1, end):
                inner = lexer.header(lines[at]) if layout.depths[at] == 1 else None
                if inner is not None:
                    nested.append(Nested(*inner, at + 1))
        first.blocks.append(Block(kind, labels, None, start + 1, tuple(nested)))
    return first


def finish(first: Pass) -> Facts:
    facts = dict(first.facts)
    if "error" in facts:
        return facts
    uses: list[tuple[int, str]] = []
    terraform: list[dict[str, Any]] = []
    for block in sorted(first.blocks, key=lambda b: b.line):
        uses.extend(_uses(block))
        if block.kind == "terraform" and isinstance(block.body, dict):
            terraform.append(_terraform(block))
    first_use: dict[str, int] = {}
    for line, name in sorted(uses):
        first_use.setdefault(name, line)
    if first_use:
        facts["providers"] = [[name, line] for name, line in first_use.items()]
    if terraform:
        facts["terraform"] = terraform
    return facts


SETTINGS = Extraction(CACHE_FILE, CACHE_VERSION, first_pass, finish)


def _uses(block: Block) -> list[tuple[int, str]]:
    if block.kind in _TYPED and block.labels:
        return [(block.line, block.labels[0].split("_", 1)[0])]
    if block.kind == "provider" and block.labels:
        return [(block.line, block.labels[0])]
    if block.kind == "check":
        return [
            (inner.line, inner.labels[0].split("_", 1)[0])
            for inner in block.nested
            if inner.kind == "data" and inner.labels
        ]
    return []


def _terraform(block: Block) -> dict[str, Any]:
    body = block.body
    version = body.get("required_version")
    required = []
    for name, spec in _merged(body.get("required_providers")).items():
        constraint = spec.get("version") if isinstance(spec, dict) else spec
        required.append([name, constraint if isinstance(constraint, str) else None])
    return {
        "line": block.line,
        "required_version": version if isinstance(version, str) else None,
        "required_providers": required,
        "backends": [
            [inner.kind, inner.labels[0] if inner.labels else None, inner.line]
            for inner in block.nested
            if inner.kind in _BACKENDS
        ],
    }


def _merged(blocks: Any) -> dict[str, Any]:
    """python-hcl2 gives nested blocks as a list of dicts, one per block."""
    merged: dict[str, Any] = {}
    for one in blocks if isinstance(blocks, list) else [blocks]:
        if isinstance(one, dict):
            merged.update(one)
    return merged
