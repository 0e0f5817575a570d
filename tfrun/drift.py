"""Drift (`tfrun drift`): per stack, what its plan says changed outside terraform and what an
apply would change; the JSON document (`--json`) and the Markdown summary (`--markdown`) of
the answer. The document's shape is in docs/drift.md.

Pure: the stacks, their run results and their plans (`terraform show -json`, read by the
caller) come in as arguments; nothing here reads files, prints or starts a process.

A stack is drifted when its plan has changes (terraform's `-detailed-exitcode` 2), clean when
it has none, and failed when it could not be planned: failed is never shown as clean.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tfrun import configured
from tfrun.discovery import Stack
from tfrun.report import Result

# Configured plan arguments that leave part of what was applied out of the plan (or plan
# something else): a drift check with them would call a stack clean whatever it left out.
_NARROWING = frozenset({"target", "exclude", "replace", "destroy"})
# What `tfrun drift` adds to every plan, after the configured arguments, where terraform's
# last value of a flag wins: a configured `-refresh=false` (a speed-up for everyday plans)
# would hide every change made outside terraform.
PLAN_ARGUMENTS = ("-refresh=true",)

FORMAT = "tfrun-drift"
VERSION = 1
# Actions that change nothing: a data source read, a resource left as it is.
_NOT_CHANGES = frozenset({"no-op", "read"})


def narrowing_arguments(stack: Stack) -> list[str]:
    """The stack's configured plan arguments a drift check cannot run with, each with where
    it was set: `-target=aws_vpc.this (extra_arguments "focus" in live/tfrun.hcl)`."""
    found = []
    for argument, origin in configured.extra_arguments(stack, "plan"):
        name, _, value = argument.lstrip("-").partition("=")
        if name in _NARROWING and value.lower() not in ("false", "0", "f"):
            found.append(f"{argument} ({origin})")
    return found


class Verdict(StrEnum):
    DRIFTED = "drifted"
    CLEAN = "clean"
    FAILED = "failed"


@dataclass(frozen=True)
class ResourceChange:
    address: str
    actions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "actions": list(self.actions)}

    def __str__(self) -> str:
        return f"{self.address} ({', '.join(self.actions)})"


@dataclass(frozen=True)
class StackDrift:
    path: str  # relative to the live root
    env: str
    region: str
    key: str  # the state key
    verdict: Verdict
    # In `resource_drift`: changed outside terraform since the last apply (the refresh saw it).
    drift: tuple[ResourceChange, ...] = ()
    # In `resource_changes`, less no-ops and reads: what an apply would do.
    changes: tuple[ResourceChange, ...] = ()
    outputs: tuple[str, ...] = ()  # outputs an apply would change
    status: str = "succeeded"  # the run's word for the stack (failed, interrupted, ...)
    reason: str = ""
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "path": self.path,
            "env": self.env,
            "region": self.region,
            "key": self.key,
        }
        if self.verdict is Verdict.DRIFTED:
            entry["resource_drift"] = [change.to_json() for change in self.drift]
            entry["resource_changes"] = [change.to_json() for change in self.changes]
            entry["output_changes"] = list(self.outputs)
            entry["log"] = self.log
        elif self.verdict is Verdict.FAILED:
            entry.update(status=self.status, reason=self.reason or None, log=self.log)
        return entry


@dataclass(frozen=True)
class DriftReport:
    stacks: tuple[StackDrift, ...]  # in the order they were selected
    exit_code: int
    run_dir: str | None = None

    def of(self, verdict: Verdict) -> list[StackDrift]:
        return [stack for stack in self.stacks if stack.verdict is verdict]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "exit_code": self.exit_code,
            "counts": {verdict.value: len(self.of(verdict)) for verdict in Verdict},
            **{verdict.value: [s.to_json() for s in self.of(verdict)] for verdict in Verdict},
            "run_dir": self.run_dir,
        }


def resources(plan: Mapping[str, Any]) -> tuple[tuple[ResourceChange, ...], ...]:
    """From `terraform show -json PLAN`: (changed outside terraform, what an apply would
    change), each in the plan's order. Entries terraform did not write as expected are left
    out rather than guessed at."""

    def listed(name: str) -> tuple[ResourceChange, ...]:
        found = []
        entries = plan.get(name)
        for entry in entries if isinstance(entries, list) else ():
            change = entry.get("change") if isinstance(entry, Mapping) else None
            actions = change.get("actions") if isinstance(change, Mapping) else None
            if not isinstance(actions, list) or not set(map(str, actions)) - _NOT_CHANGES:
                continue
            found.append(ResourceChange(str(entry.get("address", "?")), tuple(map(str, actions))))
        return tuple(found)

    return listed("resource_drift"), listed("resource_changes")


def stack_drift(stack: Stack, result: Result, plan: Mapping[str, Any] | None) -> StackDrift:
    """One stack's verdict from its run result and, when it has changes, its plan."""
    log = None if result.log is None else str(result.log)

    def verdict(found: Verdict, **details: Any) -> StackDrift:
        return StackDrift(stack.rel, stack.env, stack.region, stack.key, found, log=log, **details)

    if not result.ok:
        return verdict(Verdict.FAILED, status=str(result.status), reason=result.reason)
    if not result.has_changes:
        return verdict(Verdict.CLEAN)
    drift, changes = resources(plan or {})
    return verdict(Verdict.DRIFTED, drift=drift, changes=changes, outputs=result.output_changes)


def build(
    stacks: Sequence[Stack],
    results: Mapping[str, Result],
    plan_of: Callable[[Stack], Mapping[str, Any] | None],
    *,
    exit_code: int,
    run_dir: str | None = None,
) -> DriftReport:
    """The report over `stacks`; `plan_of` is asked only for the stacks with changes."""
    found = []
    for stack in stacks:
        result = results.get(stack.rel) or Result.skipped("it was not planned")
        plan = plan_of(stack) if result.ok and result.has_changes else None
        found.append(stack_drift(stack, result, plan))
    return DriftReport(tuple(found), exit_code, run_dir)


# ---------------------------------------------------------------------------- Markdown


def _code(text: str) -> str:
    """`text` as a Markdown code span, whatever backticks it holds."""
    fence = "`"
    while fence in text:
        fence += "`"
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"


def _cell(text: str) -> str:
    """Plain text safe in a table cell: no HTML, no column breaks, one line."""
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|")):
        text = text.replace(raw, escaped)
    return " ".join(text.split())


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def markdown(report: DriftReport) -> str:
    """A summary for an issue or a CI job: a table of the stacks that drifted or failed, the
    clean ones folded away, then the resources of each drifted stack."""
    drifted, failed, clean = (
        report.of(v) for v in (Verdict.DRIFTED, Verdict.FAILED, Verdict.CLEAN)
    )
    lines = [
        f"## Drift: {len(drifted)} drifted, {len(failed)} failed, {len(clean)} clean",
        "",
    ]
    if drifted or failed:
        lines += [
            "| stack | env | region | result | changed outside terraform | an apply would change |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for stack in drifted:
            lines.append(
                f"| {_cell(_code(stack.path))} | {_cell(stack.env)} | {_cell(stack.region)} "
                f"| **drifted** | {_plural(len(stack.drift), 'resource')} "
                f"| {_plural(len(stack.changes), 'resource')}"
                + (f", {_plural(len(stack.outputs), 'output')}" if stack.outputs else "")
                + " |"
            )
        for stack in failed:
            why = f": {_cell(stack.reason)}" if stack.reason else ""
            lines.append(
                f"| {_cell(_code(stack.path))} | {_cell(stack.env)} | {_cell(stack.region)} "
                f"| **{stack.status}**{why} | | |"
            )
        lines.append("")
    else:
        lines += ["Nothing drifted.", ""]
    if clean:
        lines += [f"<details><summary>{_plural(len(clean), 'clean stack')}</summary>", ""]
        lines += [f"- {_code(stack.path)}" for stack in clean]
        lines += ["", "</details>", ""]
    for stack in drifted:
        lines += [f"### {_code(stack.path)}", "", f"State key: {_code(stack.key)}", ""]
        for title, changes in (
            ("Changed outside terraform", stack.drift),
            ("An apply would change", stack.changes),
        ):
            if changes:
                lines += [f"{title}:", ""]
                lines += [f"- {_code(c.address)}: {', '.join(c.actions)}" for c in changes]
                lines.append("")
        if stack.outputs:
            shown = ", ".join(_code(name) for name in stack.outputs)
            lines += [f"Outputs an apply would change: {shown}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
