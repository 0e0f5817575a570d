"""What the scan says of a stack: the reads that can order it after another stack (remote
state, SSM parameters read by name), the parameters it writes, and the module calls they
come through."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfrun.scan.evaluate import Pattern

REMOTE_STATE = "terraform_remote_state"
PARAMETER = "aws_ssm_parameter"


@dataclass(frozen=True)
class ModuleCall:
    """One `module` block on the way from a stack to a read inside a module."""

    name: str  # as Terraform names the instance: `network`, `network["a"]`, `network[0]`
    file: Path
    line: int

    @property
    def label(self) -> str:
        return f"module.{self.name}"


@dataclass(frozen=True)
class RemoteStateRead:
    """One `data "terraform_remote_state"` block a person wrote, in one of its instances; or,
    with `kind` "aws_ssm_parameter", one `data "aws_ssm_parameter"` read by name (its `key` is
    the parameter's name, and it has no backend or bucket)."""

    file: Path
    line: int
    name: str
    backend: str | None
    bucket: str | None
    key: str | None  # the state object's key (a workspace's prefix included)
    # Why tfrun cannot tell statically which state this reads; None when it can.
    problem: str | None = None
    # The whole `config` map when every key and value in it is known, else None.
    config: dict[str, Any] | None = field(default=None, hash=False)
    kind: str = REMOTE_STATE
    instance: str = ""  # `["network"]` or `[0]` for one instance of a for_each or a count
    via: tuple[ModuleCall, ...] = ()  # the module calls from the stack down to this block
    # What is known of an unresolved bucket and key (None: nothing is).
    bucket_parts: Pattern | None = None
    key_parts: Pattern | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def label(self) -> str:
        return f"data.{self.kind}.{self.name}{self.instance}"


@dataclass(frozen=True)
class ParameterWrite:
    """A `resource "aws_ssm_parameter"` whose name tfrun could evaluate."""

    param: str  # the parameter's name
    file: Path
    line: int
    label: str  # `aws_ssm_parameter.vpc_id`, with its instance
    via: tuple[ModuleCall, ...] = ()


@dataclass(frozen=True)
class StackFacts:
    reads: tuple[RemoteStateRead, ...]  # its own, then those inside the local modules it uses
    modules: frozenset[Path]  # local module folders it uses, directly or through modules
    parameter_writes: tuple[ParameterWrite, ...] = ()
    parameter_reads: tuple[RemoteStateRead, ...] = ()  # kind "aws_ssm_parameter"
