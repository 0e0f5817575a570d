"""The facts `graph`, `affected` and `run-all` need from a file: its hand-written remote-state
reads and its module calls.

This runs over every file of the repository on every such command, so a byte prefilter comes
first: a file that contains neither `terraform_remote_state` nor a `module` token cannot hold
what we look for, and is never lexed. In a file that passes, only `data
"terraform_remote_state"` and `module` blocks are read, by the line patterns when they have the
canonical shape, else by python-hcl2. The facts, as JSON for the cache:

    {"signed": bool,
     "reads":   [{"line", "name", "backend", "bucket", "key", "problem", "config"?}],
     "modules": [{"line", "name", "source"}],
     "error":   "LINE:COL: message"}   (only when the file is not valid HCL)

A read's "config" is its whole `config` map, there only when every key and value in it is a
literal (an override file can then copy it; see `tfrun.generate.override_blocks`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from tfrun import generate
from tfrun.scan import lexer, tfjson
from tfrun.scan.blocks import Block, Extraction, Facts, Pass, decode
from tfrun.scan.fast import fast_block

CACHE_FILE = "scan.json"
# Bump when what `finish` returns changes, so old caches are ignored rather than trusted.
# 3: "signed" is the exact signature line, no longer a prefix of it.
CACHE_VERSION = 3

_CANDIDATE = re.compile(rb'terraform_remote_state|\bmodule\b\s*["\w{]')
_HEADER_WORDS = re.compile(r"terraform_remote_state|\bmodule\b")


def first_pass(name: str, data: bytes) -> Pass:
    first = Pass({"signed": generate.is_signed(data)})
    if _CANDIDATE.search(data) is None:
        return first
    first.lexed = True
    text = decode(first, data)
    if text is None:
        return first
    if name.endswith(".json"):
        try:
            first.blocks.extend(tfjson.link_blocks(text))
        except ValueError as exc:
            first.facts["error"] = f"{getattr(exc, 'lineno', 1)}: this is not valid JSON ({exc})."
        return first
    layout = lexer.layout(text)
    if layout is None:
        # The lexer is lost (most likely the file is broken): the parser says where and why.
        first.snippets.append((text, 1))
        return first
    lines = text.split("\n")
    for start, end in layout.blocks:
        header = lines[start]
        if not _HEADER_WORDS.search(header):
            continue
        quick = lexer.header(header)
        if quick is not None and not _wanted(*quick):
            continue
        block = fast_block(lines[start : end + 1], layout.depths[start : end + 1])
        if block is not None:
            first.blocks.append(Block(*block, start + 1))
        else:
            first.snippets.append(("\n".join(lines[start : end + 1]), start + 1))
    return first


def finish(first: Pass) -> Facts:
    facts = dict(first.facts)
    if "error" in facts:
        return facts
    reads: list[dict[str, Any]] = []
    modules: list[dict[str, Any]] = []
    for block in sorted(first.blocks, key=lambda b: b.line):
        _interpret(block, reads, modules)
    if reads:
        facts["reads"] = reads
    if modules:
        facts["modules"] = modules
    return facts


LINKS = Extraction(CACHE_FILE, CACHE_VERSION, first_pass, finish)


def _wanted(kind: str, labels: Sequence[str]) -> bool:
    return kind == "module" or (kind == "data" and labels[:1] == ["terraform_remote_state"])


def _interpret(block: Block, reads: list[dict[str, Any]], modules: list[dict[str, Any]]) -> None:
    kind, labels, body, line = block.kind, block.labels, block.body, block.line
    if not isinstance(body, dict):
        return
    if kind == "module" and len(labels) == 1:
        source = literal(body.get("source"))
        if source is not None:
            modules.append({"line": line, "name": labels[0], "source": source})
    elif _wanted(kind, labels) and len(labels) == 2:
        reads.append({"line": line, "name": labels[1], **_read(body)})


def _read(body: dict[str, Any]) -> dict[str, Any]:
    backend = literal(body.get("backend"))
    config = body.get("config")
    config = config if isinstance(config, dict) else {}
    bucket = literal(config.get("bucket"))
    key = literal(config.get("key"))
    problem = None
    if backend is None:
        problem = "its backend is not a plain string"
    elif backend != "s3":
        problem = f'it reads the "{backend}" backend, not s3'
    elif not isinstance(body.get("config"), dict):
        problem = "its config is not a plain map { bucket = ..., key = ... }"
    elif "key" not in config:
        problem = "its config has no key"
    elif key is None:
        problem = f"its key is computed ({_show(config['key'])}), so tfrun cannot tell whose it is"
    elif "bucket" not in config:
        problem = "its config has no bucket"
    elif bucket is None:
        problem = f"its bucket is computed ({_show(config['bucket'])}), so tfrun cannot place it"
    elif "workspace" in body and literal(body["workspace"]) != "default":
        problem = "it reads a workspace other than default, which tfrun stacks do not use"
    found: dict[str, Any] = {"backend": backend, "bucket": bucket, "key": key, "problem": problem}
    whole = _constant(body.get("config"))
    if isinstance(whole, dict):
        found["config"] = whole
    return found


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def literal(value: Any) -> str | None:
    """The string a value stands for, or None when it is computed (a reference, a template)."""
    if not isinstance(value, str):
        return None
    if "{" not in value:
        return value  # no template, nothing escaped: most values, the quick way
    plain = value.replace("$${", "").replace("%%{", "")
    if "${" in plain or "%{" in plain:
        return None
    return value.replace("$${", "${").replace("%%{", "%{")


_COMPUTED = object()


def _constant(value: Any) -> Any:
    """What a value stands for when nothing in it is computed, else _COMPUTED."""
    if isinstance(value, str):
        text = literal(value)
        return _COMPUTED if text is None else text
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        items = [_constant(item) for item in value]
        return _COMPUTED if any(item is _COMPUTED for item in items) else items
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            plain_key, plain_item = literal(key), _constant(item)
            if plain_key is None or plain_item is _COMPUTED:
                return _COMPUTED
            out[plain_key] = plain_item
        return out
    return _COMPUTED
