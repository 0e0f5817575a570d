"""Where each read of a stack points (pure, no I/O): an edge to the stack whose state it reads,
or to the stack that writes the SSM parameter it reads by name; else a finding.

A read tfrun cannot evaluate (`read.problem`) is an unresolved finding that says which
expression and why, and what to write to order the stack anyway: `dependencies = [...]` in its
stack.hcl, with the stacks whose bucket and key match what is known of the read. Once the
stack declares one of those (in `dependencies` or `remote_state`), the read is `declared`:
listed, but no longer a warning, a `tfrun check` finding or a strict refusal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tfrun.discovery import Stack
from tfrun.scan import RemoteStateRead, StackFacts
from tfrun.scan.evaluate import matches

# More candidates than this are not listed: the read could be nearly anyone's.
MAX_CANDIDATES = 5


@dataclass(frozen=True)
class Finding:
    """A read that is not an edge: external, or one tfrun cannot place."""

    stack: str  # the reading stack's rel path
    read: RemoteStateRead
    message: str
    # For a read tfrun cannot evaluate: the stacks whose state (or parameter) could be the one
    # it reads, going by what is known of it.
    candidates: tuple[str, ...] = ()

    @property
    def computed(self) -> bool:
        """tfrun could not evaluate the read (rather than: its key is no stack's)."""
        return self.read.problem is not None

    def where(self, root: Path) -> str:
        return f"{relative_to_root(self.read.file, root)}:{self.read.line}"


@dataclass
class Placed:
    reasons: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    external: list[Finding] = field(default_factory=list)
    unresolved: list[Finding] = field(default_factory=list)
    declared: list[Finding] = field(default_factory=list)  # unresolved, but declared


def relative_to_root(path: Path, root: Path) -> str:
    """`path` relative to `root`, with forward slashes."""
    text, prefix = str(path), str(root) + os.sep
    if text.startswith(prefix):  # the usual case, and much cheaper than relpath
        return text[len(prefix) :].replace(os.sep, "/")
    return Path(os.path.relpath(path, root)).as_posix()


def label(read: RemoteStateRead, root: Path) -> str:
    """`data.terraform_remote_state.x at FILE:LINE`, after the module calls it is in:
    `module.network at app/main.tf:1 → data.terraform_remote_state.x at ../modules/...`."""
    steps = [
        f"{call.label} at {relative_to_root(call.file, root)}:{call.line}" for call in read.via
    ]
    steps.append(f"{read.label} at {relative_to_root(read.file, root)}:{read.line}")
    return " → ".join(steps)


def place(
    stacks: Mapping[str, Stack],
    facts: Mapping[str, StackFacts],
    declared: Mapping[str, set[str]],
    *,
    parameters: bool,
) -> Placed:
    """Every read of every stack: edges (`reasons`), external reads and findings.
    `declared`: the stacks each stack names in `dependencies` or `remote_state`."""
    root = next(iter(stacks.values())).root
    by_key: dict[str, list[str]] = {}
    for stack in stacks.values():
        by_key.setdefault(stack.key, []).append(stack.rel)
    placed = Placed()

    def edge(reader: str, owner: str, why: str) -> None:
        placed.reasons.setdefault((reader, owner), []).append(why)

    for stack in stacks.values():
        stack_facts = facts.get(stack.rel)
        if stack_facts is None:
            continue
        for read in stack_facts.reads:
            text = label(read, root)
            if read.problem is not None:
                if read.backend not in (None, "s3"):
                    placed.external.append(Finding(stack.rel, read, f"{text}: {read.problem}."))
                    continue
                found = [
                    rel
                    for rel, other in stacks.items()
                    if rel != stack.rel
                    and matches(read.bucket_parts, str(other.config.state.bucket))
                    and matches(read.key_parts, other.key)
                ]
                _unresolved(placed, stacks, stack, read, text, found, declared)
            elif read.bucket != stack.config.state.bucket:
                message = f'{text} reads the bucket "{read.bucket}", not this repository\'s.'
                placed.external.append(Finding(stack.rel, read, message))
            elif read.key not in by_key:
                message = (
                    f'{text} reads the state key "{read.key}", and no stack in {root} has it. '
                    "Fix the key (tfrun graph --format json lists every stack's key)."
                )
                placed.unresolved.append(Finding(stack.rel, read, message))
            else:
                for owner in by_key[read.key]:
                    if owner != stack.rel:  # reading one's own earlier state orders nothing
                        edge(stack.rel, owner, text)
    if parameters:
        _parameters(placed, stacks, facts, declared, edge)
    return placed


def _unresolved(
    placed: Placed,
    stacks: Mapping[str, Stack],
    stack: Stack,
    read: RemoteStateRead,
    text: str,
    found: list[str],
    declared: Mapping[str, set[str]],
) -> None:
    # Candidates only when something of the read is known: else they are every stack.
    known = any(part is not None for part in read.key_parts or ())
    candidates = tuple(found) if known and len(found) <= MAX_CANDIDATES else ()
    message = f"{text}: {read.problem}. {fix(stack, [stacks[c] for c in candidates])}"
    finding = Finding(stack.rel, read, message, candidates)
    if declared.get(stack.rel, set()) & set(found):
        placed.declared.append(finding)
    else:
        placed.unresolved.append(finding)


def fix(stack: Stack, candidates: list[Stack]) -> str:
    """What to write so that the stack is ordered after what an unresolved read reads."""
    where = relative_to_root(stack.path / "stack.hcl", stack.root)
    start = f"To order this stack anyway, add to {where}: dependencies = "
    if not candidates:
        return start + '["<the path of the stack it reads, relative to this one>"].'
    paths = [json.dumps(Path(os.path.relpath(c.path, stack.path)).as_posix()) for c in candidates]
    if len(paths) == 1:
        return f"{start}[{paths[0]}] (the one stack whose state matches what tfrun knows of it)."
    return (
        f"{start}[{', '.join(paths)}], keeping only the stacks it reads (these are the ones "
        "whose state matches what tfrun knows of it)."
    )


def _parameters(
    placed: Placed,
    stacks: Mapping[str, Stack],
    facts: Mapping[str, StackFacts],
    declared: Mapping[str, set[str]],
    edge: Callable[[str, str, str], None],
) -> None:
    """SSM parameters as contracts: a stack that reads a parameter by the name another stack
    writes runs after it. Names live per account and region, so only stacks of the same
    environment account and provider region are matched."""
    root = next(iter(stacks.values())).root
    writers: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for rel, stack in stacks.items():
        for write in facts[rel].parameter_writes if rel in facts else ():
            where = f"{relative_to_root(write.file, root)}:{write.line}"
            writers.setdefault((*_place(stack), write.param), []).append(
                (rel, f"{write.label} at {where}")
            )
    for rel, stack in stacks.items():
        for read in facts[rel].parameter_reads if rel in facts else ():
            text = label(read, root)
            if read.problem is None:
                assert read.key is not None
                for owner, written in writers.get((*_place(stack), read.key), ()):
                    if owner != rel:
                        edge(
                            rel,
                            owner,
                            f'{text} (the SSM parameter "{read.key}" that {written} writes)',
                        )
                continue
            found = sorted(
                {
                    owner
                    for (account, region, param), owners in writers.items()
                    if (account, region) == _place(stack) and matches(read.key_parts, param)
                    for owner, _ in owners
                    if owner != rel
                }
            )
            if found:  # a name no stack could write is someone else's: not a finding
                _unresolved(placed, stacks, stack, read, text, found, declared)


def _place(stack: Stack) -> tuple[str, str]:
    """Where an SSM parameter name is unique: the account and the region."""
    return (stack.account_id or f"env:{stack.env}", stack.provider_region)
