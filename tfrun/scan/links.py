"""The facts `graph`, `affected` and `run-all` need from a file: its hand-written remote-state
reads, its SSM parameters (written and read by name) and its module calls.

This runs over every file of the repository on every such command, so a byte prefilter comes
first: a file that contains neither `terraform_remote_state`, `aws_ssm_parameter` nor a `module`
token cannot hold what we look for, and is never lexed. In a file that passes, only those
blocks are read, by the line patterns when they have the canonical shape, else by python-hcl2.
Values are kept as written (python-hcl2's form: a template string, a list, a map); `resolve`
evaluates them later, when it knows the stack and the module call they belong to. The facts,
as JSON for the cache:

    {"signed": bool,
     "reads":      [{"line", "name", "backend", "config"?, "workspace"?, "for_each"?, "count"?}],
     "modules":    [{"line", "name", "source", "args"?, "for_each"?, "count"?}],
     "parameters": [{"line", "name", "writes", "param"?, "for_each"?, "count"?}],
     "error":      "LINE:COL: message"}   (only when the file is not valid HCL)

A module call has "args" (its inputs) only when its source is a local folder: tfrun follows
no other. A parameter is `resource "aws_ssm_parameter"` (writes) or `data "aws_ssm_parameter"`
(reads); "param" is its `name`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tfrun import generate
from tfrun.scan import lexer, tfjson
from tfrun.scan.blocks import Block, Extraction, Facts, Pass, decode, lex
from tfrun.scan.fast import Shape, fast_block

CACHE_FILE = "scan.json"
# Bump when what `finish` returns changes, so old caches are ignored rather than trusted.
# 3: "signed" is the exact signature line, no longer a prefix of it.
# 4: values as written (evaluated later), module inputs, SSM parameters.
CACHE_VERSION = 4

_CANDIDATE = re.compile(rb'terraform_remote_state|aws_ssm_parameter|\bmodule\b\s*["\w{]')
_HEADER_WORDS = re.compile(r"terraform_remote_state|aws_ssm_parameter|\bmodule\b")
REMOTE_STATE = "terraform_remote_state"
PARAMETER = "aws_ssm_parameter"
# Module arguments that are not inputs of the module.
META_ARGUMENTS = frozenset({"source", "version", "for_each", "count", "providers", "depends_on"})
_INSTANCES = frozenset({"for_each", "count"})


def is_local_source(source: Any) -> bool:
    return isinstance(source, str) and source.startswith(("./", "../"))


_SHAPES = {
    "read": Shape(
        wanted=frozenset({"backend", "config"}),
        required=frozenset({"backend", "config"}),
        plain=frozenset({"backend"}),
        maps=frozenset({"config"}),
        to_parser=frozenset({"workspace", *_INSTANCES}),
    ),
    "module": Shape(
        wanted=None,
        required=frozenset({"source"}),
        plain=frozenset({"source"}),
        lenient=lambda body: not is_local_source(body.get("source")),
    ),
    "parameter": Shape(
        wanted=frozenset({"name"}), required=frozenset({"name"}), to_parser=_INSTANCES
    ),
}


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
    lexed = lex(first, text)
    if lexed is None:
        return first
    lines, layout = lexed
    for start, end in layout.blocks:
        header = lines[start]
        if not _HEADER_WORDS.search(header):
            continue
        quick = lexer.header(header)
        block = None
        if quick is not None:
            what = _kind(*quick)
            if what is None:
                continue
            block = fast_block(
                lines[start : end + 1], layout.depths[start : end + 1], _SHAPES[what]
            )
        if block is not None:
            first.blocks.append(Block(*block, start + 1))
        else:
            first.snippets.append(("\n".join(lines[start : end + 1]), start + 1))
    return first


def finish(first: Pass) -> Facts:
    facts = dict(first.facts)
    if "error" in facts:
        return facts
    found: dict[str, list[dict[str, Any]]] = {"reads": [], "modules": [], "parameters": []}
    for block in sorted(first.blocks, key=lambda b: b.line):
        _interpret(block, found)
    facts.update({name: items for name, items in found.items() if items})
    return facts


LINKS = Extraction(CACHE_FILE, CACHE_VERSION, first_pass, finish)


def _kind(kind: str, labels: Sequence[str]) -> str | None:
    """Which of our blocks this is: "read", "module", "parameter"; None for any other."""
    if kind == "module":
        return "module"
    if kind == "data" and labels[:1] == [REMOTE_STATE]:
        return "read"
    if kind in ("data", "resource") and labels[:1] == [PARAMETER]:
        return "parameter"
    return None


def _interpret(block: Block, found: dict[str, list[dict[str, Any]]]) -> None:
    kind, labels, body, line = block.kind, block.labels, block.body, block.line
    what = _kind(kind, labels)
    if not isinstance(body, dict) or what is None:
        return
    instances = {name: body[name] for name in _INSTANCES if name in body}
    if what == "module" and len(labels) == 1:
        source = literal(body.get("source"))
        if source is None:
            return
        module: dict[str, Any] = {"line": line, "name": labels[0], "source": source}
        if is_local_source(source):
            args = {k: v for k, v in body.items() if k not in META_ARGUMENTS}
            module.update(instances, **({"args": args} if args else {}))
        found["modules"].append(module)
    elif what == "read" and len(labels) == 2:
        read = {"line": line, "name": labels[1], "backend": body.get("backend"), **instances}
        read.update({k: body[k] for k in ("config", "workspace") if k in body})
        found["reads"].append(read)
    elif what == "parameter" and len(labels) == 2:
        parameter = {"line": line, "name": labels[1], "writes": kind == "resource", **instances}
        if "name" in body:
            parameter["param"] = body["name"]
        found["parameters"].append(parameter)


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
