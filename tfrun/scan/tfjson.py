"""Terraform's JSON syntax (*.tf.json): the remote-state and module blocks of a document."""

from __future__ import annotations

import json
from typing import Any

from tfrun.scan.blocks import Block


def link_blocks(text: str) -> list[Block]:
    """`data "terraform_remote_state"` and `module` blocks; ValueError when not JSON."""
    document = json.loads(text)
    if not isinstance(document, dict):
        return []
    blocks: list[Block] = []
    for data in _objects(document.get("data")):
        for name, body in _named(data.get("terraform_remote_state")):
            blocks.append(Block("data", ["terraform_remote_state", name], body, _line(text, name)))
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
