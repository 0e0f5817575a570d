"""The rules of `tfrun check`: pure functions from what the repository says to a list of
findings (docs/safety.md describes each rule). Nothing here reads a file, starts a process
or prints; `commands/check.py` gathers the inputs and shows the result.

Each finding names the file (and line, when there is one), the stack and the rule, so a CI log
reads like a compiler's. The rules are cheap on purpose: `check` must stay fast enough to run
on every merge request of a repository with hundreds of stacks, and it never asks AWS anything;
terraform it asks only its version, once, when `dynamodb-only-lock` could apply.

Long on purpose: every rule is here, beside the one table that names them (RULES), each a
short pure function; apart, the table and its rules would drift.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from tfrun.config import ROOT_FILE
from tfrun.discovery import Stack
from tfrun.generate import GeneratedFile, is_signed
from tfrun.graph import Graph, config_file, cyclic_components, shortest_cycle
from tfrun.scan import FileSettings, StackFacts

# Rule name → what it fails on (`tfrun check --format json` lists them; docs/safety.md too).
RULES: dict[str, str] = {
    "duplicate-state-key": "two stacks keep their state under the same bucket and key",
    "missing-required-version": "a stack with no terraform required_version",
    "unpinned-provider": "a stack that uses a provider without a version constraint for it",
    "unlisted-consumer": "a remote-state read of a stack with another owner that does not list "
    "the reader in its consumers",
    "unknown-state-key": "a remote-state read of this repository's bucket whose key maps to no "
    "stack",
    "unresolved-read": "a remote-state read (or an SSM parameter read another stack may write) "
    "whose bucket, key or name tfrun cannot evaluate, so it orders nothing",
    "dependency-cycle": "stacks that depend on each other in a cycle",
    "hand-written-backend": "a backend or cloud block written by a person (tfrun owns the backend)",
    "stale-generated-file": "a generated file that differs from what tfrun writes now, that "
    "tfrun no longer writes, or that a person wrote in its place",
    "dynamodb-only-lock": "state locked only by a DynamoDB table while terraform is 1.10 or "
    "newer, which locks in S3 itself (use_lockfile) and deprecates dynamodb_table",
    "unknown-mock-read": "mock_outputs names a remote-state read the stack does not have, so "
    "no provisional plan ever uses it",
}
# Built into terraform itself (terraform_data, terraform_remote_state): nothing to pin.
BUILTIN_PROVIDERS = frozenset({"terraform"})
# tfrun's generated provider.tf configures aws in every stack, so every stack uses aws.
GENERATED_PROVIDERS = ("aws",)


@dataclass(frozen=True, order=True)
class Finding:
    file: str  # relative to the live root, "/" separated; "" when no file is to blame
    line: int  # 0 when the finding is about a whole file
    stack: str  # the stack's rel path
    rule: str
    message: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "stack": self.stack,
            "file": self.file or None,
            "line": self.line or None,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"{self.where}: " if self.file else ""
        return f"{where}{self.stack}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Inputs:
    """Everything the rules look at; `commands/check.py` reads it from disk."""

    root: Path
    graph: Graph  # over every stack of the repository: a key can name any of them
    facts: Mapping[str, StackFacts]  # scan results, by rel
    # Per selected stack: what its own .tf files say (not the ones tfrun generated).
    sources: Mapping[str, Sequence[FileSettings]]
    # What the .tf files of each local module folder the selected stacks use say.
    modules: Mapping[Path, Sequence[FileSettings]]
    # Per selected stack: what tfrun would generate now, and the generated names on disk.
    generated: Mapping[str, Sequence[GeneratedFile]]
    on_disk: Mapping[str, Mapping[str, str]]  # rel → {file name: content}
    # `terraform version` on this machine ("1.11.4"); None: unknown, and the rules that need
    # it are skipped (commands/check.py asks terraform only when one of them could apply).
    terraform_version: str | None = None


def check(inputs: Inputs, selected: Collection[str]) -> list[Finding]:
    """Every finding about the `selected` stacks (rel paths), sorted by file and line."""
    graph = inputs.graph
    chosen = [graph.stacks[rel] for rel in sorted(selected)]
    findings = [*duplicate_keys(graph, selected), *cycles(graph, selected)]
    findings += unknown_keys(graph, selected)
    findings += unresolved_reads(graph, selected)
    findings += unlisted_consumers(graph, inputs.facts, selected)
    findings += unknown_mock_reads(graph, inputs.facts, selected)
    for stack in chosen:
        own = inputs.sources.get(stack.rel, ())
        used = [
            f for m in sorted(inputs.facts[stack.rel].modules) for f in inputs.modules.get(m, ())
        ]
        findings += versions(stack, own, used)
        findings += backends(stack, own)
        findings += stale_generated(
            stack, inputs.generated.get(stack.rel, ()), inputs.on_disk.get(stack.rel, {})
        )
        findings += lock_settings(stack, inputs.terraform_version)
    return sorted(set(findings))


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


# ---------------------------------------------------------------------------- state keys


def duplicate_keys(graph: Graph, selected: Collection[str]) -> list[Finding]:
    by_key: dict[tuple[str | None, str], list[Stack]] = {}
    for stack in graph.stacks.values():
        by_key.setdefault((stack.config.state.bucket, stack.key), []).append(stack)
    findings = []
    for (bucket, key), same in by_key.items():
        if len(same) < 2:
            continue
        for stack in same:
            if stack.rel not in selected:
                continue
            others = ", ".join(s.rel for s in same if s is not stack)
            findings.append(
                Finding(
                    _rel(config_file(stack), graph.root),
                    0,
                    stack.rel,
                    "duplicate-state-key",
                    f"keeps its state at s3://{bucket}/{key}, and so does {others}: one apply "
                    "would overwrite the other's state. Give each stack its own key (the "
                    "default {env}/{region}/{stack}.tfstate is unique; check 'key' in "
                    "stack.hcl and the 'env'/'region' overrides).",
                )
            )
    return findings


def unknown_keys(graph: Graph, selected: Collection[str]) -> list[Finding]:
    return [
        Finding(_rel(f.read.file, graph.root), f.read.line, f.stack, "unknown-state-key", f.message)
        for f in graph.unresolved
        if f.stack in selected and not f.computed
    ]


def unresolved_reads(graph: Graph, selected: Collection[str]) -> list[Finding]:
    """Reads tfrun cannot evaluate, unless the stack declares what they read. A read inside a
    module is reported at the stack's module call; the message names both places."""
    findings = []
    for f in graph.unresolved:
        if f.stack not in selected or not f.computed:
            continue
        place = f.read.via[0] if f.read.via else f.read
        file = _rel(place.file, graph.root)
        findings.append(Finding(file, place.line, f.stack, "unresolved-read", f.message))
    return findings


def unknown_mock_reads(
    graph: Graph, facts: Mapping[str, StackFacts], selected: Collection[str]
) -> list[Finding]:
    """mock_outputs for a read the stack has not got (a typo): its mocks would never stand in."""
    findings = []
    for rel in sorted(selected):
        stack = graph.stacks[rel]
        reads = set(stack.config.remote_state)
        reads |= {read.name for read in facts[rel].reads if not read.via}
        for name in sorted(set(stack.config.mock_outputs) - reads):
            known = ", ".join(sorted(reads)) or "none"
            findings.append(
                Finding(
                    _rel(config_file(stack), graph.root),
                    0,
                    rel,
                    "unknown-mock-read",
                    f"mock_outputs names '{name}', but the stack reads no "
                    f'data "terraform_remote_state" "{name}" (its reads: {known}). Name the '
                    "read as its data source is named.",
                )
            )
    return findings


# ---------------------------------------------------------------------------- ownership


def _may_read(reader: Stack, producer: Stack) -> bool:
    owner = producer.config.owner
    if owner is None or reader.config.owner == owner:
        return True  # nobody owns it, or the same team does
    for consumer in producer.config.consumers:
        if consumer == reader.config.owner or fnmatchcase(reader.rel, consumer):
            return True
    return False


def unlisted_consumers(
    graph: Graph, facts: Mapping[str, StackFacts], selected: Collection[str]
) -> list[Finding]:
    """Reads (hand-written, or `remote_state` in config) of another owner's state that its
    `consumers` does not allow: by the reader's owner, or by its rel path (a glob)."""
    by_key: dict[str, list[Stack]] = {}
    by_path = {s.path: s for s in graph.stacks.values()}
    for stack in graph.stacks.values():
        by_key.setdefault(stack.key, []).append(stack)
    findings = []
    for rel in sorted(selected):
        reader = graph.stacks[rel]
        reads: list[tuple[Stack, str, int, str]] = []  # producer, file, line, what
        for read in facts[rel].reads if rel in facts else ():
            if read.problem or read.key is None or read.bucket != reader.config.state.bucket:
                continue  # not placeable, or not this repository's: other rules' business
            for producer in by_key.get(read.key, ()):
                what = f"data.terraform_remote_state.{read.name}"
                reads.append((producer, _rel(read.file, graph.root), read.line, what))
        for name, target in sorted(reader.config.remote_state.items()):
            producer_or_none = by_path.get(Path(os.path.normpath(reader.path / target)))
            if producer_or_none is not None:
                where = _rel(config_file(reader), graph.root)
                reads.append((producer_or_none, where, 0, f"remote_state.{name}"))
        for producer, file, line, what in reads:
            if producer is reader or _may_read(reader, producer):
                continue
            consumers = ", ".join(producer.config.consumers) or "nobody"
            findings.append(
                Finding(
                    file,
                    line,
                    rel,
                    "unlisted-consumer",
                    f"{what} reads the state of {producer.rel} (owner "
                    f"'{producer.config.owner}'), but this stack's owner is "
                    f"{_owner(reader)} and {producer.rel} lists as consumers: {consumers}. "
                    f"Ask its owner to add '{reader.config.owner or reader.rel}' to "
                    f"'consumers' in {_rel(config_file(producer), graph.root)}, or read "
                    "what you need another way.",
                )
            )
    return findings


def _owner(stack: Stack) -> str:
    return f"'{stack.config.owner}'" if stack.config.owner else "not set"


# ---------------------------------------------------------------------------- cycles


_AT = re.compile(r" at (?P<file>.+?):(?P<line>\d+)(?=$| )")
_IN = re.compile(r" in (?P<file>.+)$")


def _reason_place(reason: str) -> tuple[str, int]:
    """The file (and line) in one of graph.reasons' texts."""
    match = _AT.search(reason)
    if match:
        return match["file"], int(match["line"])
    match = _IN.search(reason)
    return (match["file"], 0) if match else ("", 0)


def cycles(graph: Graph, selected: Collection[str]) -> list[Finding]:
    findings = []
    for component in cyclic_components(graph.dependencies):
        # A stack that depends on itself alone is left to the error of graph.order.
        if len(component) < 2 or not selected or not set(component) & set(selected):
            continue
        cycle = shortest_cycle(graph.dependencies, component)
        steps = [
            f"{a} → {b} ({'; '.join(graph.reasons.get((a, b), ()))})"
            for a, b in itertools.pairwise(cycle)
        ]
        file, line = _reason_place(graph.reasons.get((cycle[0], cycle[1]), [""])[0])
        rest = sorted(set(component) - set(cycle))
        others = f", a knot that also ties in {', '.join(rest)}" if rest else ""
        findings.append(
            Finding(
                file,
                line,
                cycle[0],
                "dependency-cycle",
                f"these stacks depend on each other in a cycle, so none of them can go first: "
                f"{' → '.join(cycle)}{others}. a → b means a depends on b: {'; '.join(steps)}. "
                "Break the cycle: move the shared values into a stack both can read.",
            )
        )
    return findings


# ---------------------------------------------------------------------------- .tf files
#
# What the files say comes from `tfrun.scan.file_settings`, the one reader of .tf files.


def provider_uses(files: Iterable[FileSettings]) -> dict[str, tuple[Path, int]]:
    """Provider local name → where it is first used (a resource, data source or ephemeral
    resource of its type, or a provider block), files taken in the order given."""
    used: dict[str, tuple[Path, int]] = {}
    for file in files:
        for name, line in file.providers:
            if name not in BUILTIN_PROVIDERS and name not in used:
                used[name] = (file.path, line)
    return used


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def versions(
    stack: Stack, own: Sequence[FileSettings], modules: Sequence[FileSettings]
) -> list[Finding]:
    """`required_version`, and a version constraint for every provider the stack uses, from
    tfrun's config (`terraform_version`, `providers`: the generated versions.tf) or from a
    `terraform` block in the stack's own files. Constraints inside modules do not count: the
    stack is where versions are chosen."""
    config = stack.config
    has_version = not _blank(config.terraform_version)
    pinned = {name for name, constraint in config.providers.items() if not _blank(constraint)}
    for file in own:
        for block in file.terraform:
            has_version = has_version or not _blank(block.required_version)
            pinned.update(name for name, c in block.required_providers if not _blank(c))
    root = stack.root
    root_file = _rel(root / ROOT_FILE, root)
    findings = []
    if not has_version:
        findings.append(
            Finding(
                root_file,
                0,
                stack.rel,
                "missing-required-version",
                "no terraform version constraint: set terraform_version in tfrun.hcl (tfrun "
                "writes it into versions.tf) or required_version in a terraform block of the "
                "stack, so that nobody applies it with a terraform that rewrites its state in "
                "a newer format.",
            )
        )
    used = {name: ("", 0) for name in GENERATED_PROVIDERS}
    used.update(
        {
            name: (_rel(path, root), line)
            for name, (path, line) in provider_uses([*own, *modules]).items()
        }
    )
    for name, (where, line) in sorted(used.items()):
        if name in pinned:
            continue
        why = (
            f"uses the provider '{name}'"
            if where
            else f"uses the provider '{name}' (tfrun's generated provider.tf configures it)"
        )
        findings.append(
            Finding(
                where or root_file,
                line,
                stack.rel,
                "unpinned-provider",
                f"{why} with no version constraint: add it to 'providers' in tfrun.hcl "
                f'(providers {{ {name} = "~> MAJOR.0" }}, with the major version you use) or '
                "to required_providers in a terraform block of the stack, so that init never "
                "picks a new major version by itself.",
            )
        )
    return findings


def backends(stack: Stack, own: Sequence[FileSettings]) -> list[Finding]:
    findings = []
    for file in own:
        for block in file.terraform:
            for backend in block.backends:
                shown = f'backend "{backend.type}"' if backend.type is not None else backend.kind
                findings.append(
                    Finding(
                        _rel(file.path, stack.root),
                        backend.line,
                        stack.rel,
                        "hand-written-backend",
                        f"a hand-written {shown} block: tfrun writes the stack's backend "
                        "(backend.tf) from the state settings in tfrun.hcl, and terraform "
                        "accepts only one. Delete this block; to keep state elsewhere, set "
                        "'key' in stack.hcl or 'state' in tfrun.hcl.",
                    )
                )
    return findings


# ---------------------------------------------------------------------------- generated files


def stale_generated(
    stack: Stack, expected: Sequence[GeneratedFile], on_disk: Mapping[str, str]
) -> list[Finding]:
    """Like `tfrun generate --check`, except that a missing generated file is fine: generated
    files are gitignored and written just in time, so a fresh checkout has none."""
    wanted = {file.path.name: file.content for file in expected}
    findings = []
    for name, content in sorted(on_disk.items()):
        signed = is_signed(content)
        where = _rel(stack.path / name, stack.root)
        if name in wanted and not signed:
            message = (
                "written by a person (no tfrun signature line), but tfrun generates a file of "
                "this name and will refuse to run the stack. Move its content into tfrun.hcl "
                "or stack.hcl, or rename it."
            )
        elif name in wanted and content != wanted[name]:
            message = (
                "differs from what tfrun generates now (edited by hand, or the config "
                "changed since). Run 'tfrun generate' to rewrite it."
            )
        elif name not in wanted and signed:
            message = (
                "generated by tfrun from an earlier config, and tfrun no longer writes it. "
                "Run 'tfrun generate' to remove it."
            )
        else:
            continue
        findings.append(Finding(where, 0, stack.rel, "stale-generated-file", message))
    return findings


# ---------------------------------------------------------------------------- state locking

# terraform 1.10 locks state in S3 itself (use_lockfile) and deprecates dynamodb_table; newer
# versions say so in a warning on every run.
S3_LOCKING_SINCE = (1, 10)
_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def needs_terraform_version(stack: Stack) -> bool:
    """Whether `lock_settings` could report this stack: only then is terraform asked."""
    state = stack.config.state
    return bool(state.dynamodb_table) and not state.use_lockfile


def lock_settings(stack: Stack, terraform_version: str | None) -> list[Finding]:
    match = _VERSION.match(terraform_version or "")
    if not needs_terraform_version(stack) or match is None:
        return []
    if (int(match[1]), int(match[2])) < S3_LOCKING_SINCE:
        return []
    table = stack.config.state.dynamodb_table
    return [
        Finding(
            _rel(stack.root / ROOT_FILE, stack.root),
            0,
            stack.rel,
            "dynamodb-only-lock",
            f"the state is locked only by the DynamoDB table '{table}', and terraform "
            f"{terraform_version} locks in S3 itself and deprecates dynamodb_table (newer versions "
            "warn 'Deprecated Parameter' on every run). Set use_lockfile = true in the state block "
            "of tfrun.hcl, beside dynamodb_table until nobody runs terraform older than 1.10, "
            "then remove dynamodb_table (docs/auth.md: Migrating from DynamoDB locks).",
        )
    ]
