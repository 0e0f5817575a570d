"""YAML a person would write by hand, from plain data: the generated CI pipelines."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

# Wide enough that PyYAML never folds a long script line.
_NO_WRAP = 1 << 20


class _Dumper(yaml.SafeDumper):
    """Safe YAML, with list items indented under their key and multi-line strings as `|`
    blocks, so a generated pipeline reads like a hand-written one."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML falls back to quotes when a block cannot hold the text (trailing spaces, say).
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)
_Dumper.add_representer(tuple, yaml.SafeDumper.represent_list)
# PyYAML quotes the strings YAML 1.1 (GitLab's parser) reads as other types. These are
# numbers to YAML 1.2 alone (js-yaml, which gitlab-ci-local uses): quoted too.
_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"[-+]?0o[0-7]+$"), list("-+0"))
_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def to_yaml(document: Mapping[str, Any], comment: str = "") -> str:
    """Block-style YAML of plain data (dicts, lists, strings, numbers, booleans, None), keys
    in their order, under `comment` as `#` lines. Strings that would read as another type
    ("yes", "1.0", "null") are quoted, for GitLab's YAML 1.1 parser and for YAML 1.2 alike."""
    header = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    body = yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=_NO_WRAP,
    )
    return f"{header}\n{body}" if header else body
