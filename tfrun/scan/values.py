"""What a folder's files say a variable or a local is: `variable` blocks (their default),
`locals` blocks, and the variable files terraform loads by itself (`terraform.tfvars`,
`terraform.tfvars.json`, `*.auto.tfvars`, `*.auto.tfvars.json`).

A separate extraction from `links`, with its own cache file (values.json) in the same cache:
it is read only for the folders where a read's bucket or key, a module input or an SSM
parameter's name refers to a variable or a local, so a repository whose reads are literal
never pays for it. Values are kept as written, as in `links`. The facts, as JSON:

    {"signed": bool,
     "variables": {name: {"line", "default"? | "unread"?}},
     "locals":    {name: {"line", "value" | "unread"}},
     "tfvars":    {name: value},             (a variable file)
     "error":     "LINE:COL: message"}

Variable files are literal: in the JSON ones, `${` is text, so it is kept as `$${` (the form
every other value here has).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tfrun import generate
from tfrun.scan import lexer
from tfrun.scan.blocks import Block, Extraction, Facts, Pass, decode
from tfrun.scan.fast import UNREAD, Shape, fast_block, simple_item
from tfrun.scan.parse import parse_snippet

CACHE_FILE = "values.json"
# Bump when what `finish` returns changes, so old caches are ignored rather than trusted.
CACHE_VERSION = 1

_CANDIDATE = re.compile(rb"\b(?:variable|locals)\b")
_HEADER_WORDS = re.compile(r"\b(?:variable|locals)\b")
# An item the line patterns cannot read (`common = merge(...)`, a map over several lines) is
# marked "unread" rather than sending the block to the parser: most are never asked for, and
# the one that is gets parsed then (`amend`).
_SHAPES = {
    "variable": Shape(wanted=frozenset({"default"}), lenient=lambda _: True, record_unread=True),
    "locals": Shape(wanted=None, lenient=lambda _: True, record_unread=True),
}
_WRAPPER = "tfvars"  # a variable file is parsed as the body of a block of this name


def is_variable_file(name: str) -> bool:
    """A file terraform loads without being told: terraform.tfvars, *.auto.tfvars, and JSON."""
    return name in ("terraform.tfvars", "terraform.tfvars.json") or name.endswith(
        (".auto.tfvars", ".auto.tfvars.json")
    )


def first_pass(name: str, data: bytes) -> Pass:
    first = Pass({"signed": generate.is_signed(data)})
    variable_file = name.endswith((".tfvars", ".tfvars.json"))
    if variable_file and not is_variable_file(name):
        return first  # loaded only with -var-file, which tfrun does not pass
    if not variable_file and _CANDIDATE.search(data) is None:
        return first
    first.lexed = True
    text = decode(first, data)
    if text is None:
        return first
    try:
        if name.endswith(".tfvars.json"):
            first.facts["tfvars"] = _json_literal(_json_object(text))
        elif name.endswith(".json"):
            _json_blocks(first, _json_object(text))
        elif variable_file:
            _variable_file(first, text)
        else:
            _blocks(first, text)
    except ValueError as exc:
        first.facts["error"] = f"{getattr(exc, 'lineno', 1)}: this is not valid JSON ({exc})."
    return first


def finish(first: Pass) -> Facts:
    facts = dict(first.facts)
    if "error" in facts:
        return facts
    variables: dict[str, Any] = {}
    locals_: dict[str, Any] = {}
    for block in sorted(first.blocks, key=lambda b: b.line):
        body = block.body
        if not isinstance(body, dict):
            continue
        if block.kind == _WRAPPER:
            facts["tfvars"] = body
        elif block.kind == "variable" and len(block.labels) == 1:
            entry: dict[str, Any] = {"line": block.line}
            if "default" in body:
                entry["default"] = body["default"]
            elif "default" in body.get(UNREAD, ()):
                entry["unread"] = True
            variables[block.labels[0]] = entry
        elif block.kind == "locals":
            for key, value in body.items():
                if key != UNREAD:
                    locals_[key] = {"line": block.line, "value": value}
            for key in body.get(UNREAD, ()):
                locals_[key] = {"line": block.line, "unread": True}
    if variables:
        facts["variables"] = variables
    if locals_:
        facts["locals"] = locals_
    return facts


VALUES = Extraction(
    CACHE_FILE,
    CACHE_VERSION,
    first_pass,
    finish,
    suffixes=(".tf", ".tf.json", ".tfvars", ".tfvars.json"),
)


def _blocks(first: Pass, text: str) -> None:
    layout = lexer.layout(text)
    if layout is None:
        first.snippets.append((text, 1))  # the parser says where and why it is broken
        return
    lines = text.split("\n")
    for start, end in layout.blocks:
        if not _HEADER_WORDS.search(lines[start]):
            continue
        quick = lexer.header(lines[start])
        block = None
        if quick is not None:
            if quick[0] not in _SHAPES:
                continue
            shape = _SHAPES[quick[0]]
            block = fast_block(lines[start : end + 1], layout.depths[start : end + 1], shape)
        if block is not None:
            first.blocks.append(Block(*block, start + 1))
        else:
            first.snippets.append(("\n".join(lines[start : end + 1]), start + 1))


def _variable_file(first: Pass, text: str) -> None:
    """`name = value` lines the patterns read exactly, else the whole file for the parser."""
    layout = lexer.layout(text)
    body: dict[str, Any] = {}
    if layout is not None and not layout.blocks:
        for line, depth in zip(text.split("\n"), layout.depths, strict=False):
            if depth is None or not line.strip() or line.lstrip().startswith(("#", "//")):
                continue
            item = simple_item(line) if depth == 0 else None
            if item is None or "${" in str(item[1]) or item[0] in body:
                break
            body[item[0]] = item[1]
        else:
            first.blocks.append(Block(_WRAPPER, [], body, 1))
            return
    # Wrapped in a block, one line above the file's first: its lines keep their numbers.
    first.snippets.append((f"{_WRAPPER} {{\n{text}\n}}", 0))


def _json_object(text: str) -> dict[str, Any]:
    document = json.loads(text)
    return document if isinstance(document, dict) else {}


def _json_blocks(first: Pass, document: dict[str, Any]) -> None:
    for item in _items(document.get("variable")):
        for name, body in item.items():
            for one in _items(body):
                entry = {"default": _json_literal(one["default"])} if "default" in one else {}
                first.blocks.append(Block("variable", [name], entry, 1))
    for item in _items(document.get("locals")):
        first.blocks.append(Block("locals", [], item, 1))


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]


def _json_literal(value: Any) -> Any:
    """A literal JSON value in the form of python-hcl2's values: `${` and `%{` escaped."""
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list):
        return [_json_literal(v) for v in value]
    if isinstance(value, dict):
        return {_json_literal(k): _json_literal(v) for k, v in value.items()}
    return value


def amend(facts: Facts, text: str) -> Facts:
    """`facts` with its "unread" items read by python-hcl2, from the file's `text`."""
    wanted = {
        entry["line"]
        for kind in ("variables", "locals")
        for entry in facts.get(kind, {}).values()
        if entry.get("unread")
    }
    if not wanted:
        return facts
    layout = lexer.layout(text)
    lines = text.split("\n")
    parsed = Pass({"signed": facts.get("signed", False)})
    for start, end in layout.blocks if layout is not None else ():
        if start + 1 in wanted:
            snippet = ("\n".join(lines[start : end + 1]), start + 1)
            blocks = parse_snippet(snippet)
            if isinstance(blocks, str):
                return {**facts, "error": blocks}
            parsed.blocks.extend(blocks)
    whole = finish(parsed)
    out = dict(facts)
    for kind in ("variables", "locals"):
        merged = dict(facts.get(kind, {}))
        for name, entry in merged.items():
            if entry.get("unread"):
                merged[name] = whole.get(kind, {}).get(name, {"line": entry["line"]})
        if merged:
            out[kind] = merged
    return out
