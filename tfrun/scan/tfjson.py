"""Terraform's JSON syntax (*.tf.json): the remote-state, SSM parameter and module blocks of
a document. (Its strings are templates, as python-hcl2 gives HCL's: the same values.)"""

from __future__ import annotations

import json
from typing import Any

from tfrun.scan.blocks import Block

_DATA_TYPES = ("terraform_remote_state", "aws_ssm_parameter")
_RESOURCE_TYPES = ("aws_ssm_parameter",)


def link_blocks(text: str) -> list[Block]:
    """`data "terraform_remote_state"`, `aws_ssm_parameter` (data and resource) and `module`
    blocks; ValueError when not JSON."""
    document = json.loads(text)
    if not isinstance(document, dict):
        return []
    blocks: list[Block] = []
    for kind, types in (("data", _DATA_TYPES), ("resource", _RESOURCE_TYPES)):
        for section in _objects(document.get(kind)):
            for type_name in types:
                for name, body in _named(section.get(type_name)):
                    blocks.append(Block(kind, [type_name, name], body, _line(text, name)))
    for name, body in _named(document.get("module")):
        blocks.append(Block("module", [name], body, _line(text, name)))
    return blocks


def _objects(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _named(value: Any) -> list[tuple[str, Any]]:
    out = []
    for item in _objects(value):
        for name, body in item.items():
            for one in body if isinstance(body, list) else [body]:
                out.append((name, one))
    return out


def _line(text: str, name: str) -> int:
    found = text.find(json.dumps(name) + ":")
    if found < 0:
        found = text.find(json.dumps(name))
    return text.count("\n", 0, max(found, 0)) + 1
