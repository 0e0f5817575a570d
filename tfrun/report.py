"""What a run produced: one `Result` per stack, the events the display follows, the machine
report (`--json`, its shape in README.md) and the exit code.

A `Result` is made at one point per stack, through the named constructors, so every way a
stack can end is listed here and nowhere else.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from tfrun.errors import ExitCode
from tfrun.files import write_atomically


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"
    # A provisional plan that the upstream's planned outputs could not carry: it can be
    # planned once the upstream is applied. Not a failure.
    WAITING = "waiting"


@dataclass(frozen=True)
class Changes:
    add: int = 0
    change: int = 0
    destroy: int = 0

    @property
    def total(self) -> int:
        return self.add + self.change + self.destroy

    def __str__(self) -> str:
        return f"+{self.add} ~{self.change} -{self.destroy}"

    @classmethod
    def from_plan(cls, plan: Mapping[str, Any]) -> tuple[Changes, tuple[str, ...]]:
        """Counts from `terraform show -json <planfile>`, and the outputs the plan changes.

        Counted the way terraform's own summary line counts: a replacement is one add and one
        destroy; reads of data sources and no-ops are not changes.
        """
        add = change = destroy = 0
        for resource in plan.get("resource_changes") or ():
            actions = set((resource.get("change") or {}).get("actions") or ())
            add += "create" in actions
            destroy += "delete" in actions
            change += "update" in actions
        outputs = tuple(
            sorted(
                name
                for name, output in (plan.get("output_changes") or {}).items()
                if set((output or {}).get("actions") or ()) - {"no-op"}
            )
        )
        return cls(add, change, destroy), outputs


@dataclass(frozen=True)
class Result:
    status: Status
    reason: str = ""
    exit_code: int | None = None  # of the stack's main terraform command, if it ran
    duration_s: float = 0.0
    changes: Changes | None = None  # a plan's, or an apply's or destroy's as terraform counted
    has_changes: bool = False  # the plan would change something (resources or outputs)
    output_changes: tuple[str, ...] = ()  # outputs the plan would change
    # Upstream stacks in this run whose pending output changes this plan has not seen yet,
    # or saw only as planned (not applied) outputs.
    provisional: tuple[str, ...] = ()
    # What the plan read of each upstream it read as planned: "network (planned vpc_id; ...)".
    planned_outputs: tuple[str, ...] = ()
    # What this plan's readers need of it (planned.outputs_view): its planned outputs.
    outputs_plan: Mapping[str, Any] | None = None
    attempts: int = 0
    log: Path | None = None
    plan_file: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.SUCCEEDED

    @classmethod
    def succeeded(cls, **details: Any) -> Result:
        return cls(Status.SUCCEEDED, **details)

    @classmethod
    def failed(cls, reason: str, **details: Any) -> Result:
        return cls(Status.FAILED, reason, **details)

    @classmethod
    def interrupted(cls, reason: str, **details: Any) -> Result:
        return cls(Status.INTERRUPTED, reason, **details)

    @classmethod
    def refused(cls, reason: str, **details: Any) -> Result:
        return cls(Status.REFUSED, reason, **details)

    @classmethod
    def waiting(cls, reason: str, **details: Any) -> Result:
        return cls(Status.WAITING, reason, **details)

    @classmethod
    def skipped(cls, reason: str) -> Result:
        return cls(Status.SKIPPED, reason)

    @classmethod
    def skipped_after(cls, dependency: str, result: Result, via: str | None = None) -> Result:
        """A dependent of a stack that did not succeed; names the stack where it went wrong."""
        through = f" (through {via})" if via and via != dependency else ""
        if result.status is Status.WAITING:
            # Its upstream cannot be planned before an apply; nor can it.
            return cls(Status.WAITING, f"{result.reason} (through {via or dependency})")
        return cls(Status.SKIPPED, f"dependency {dependency} {result.status}{through}")

    def timed(self, duration_s: float) -> Result:
        return replace(self, duration_s=round(duration_s, 3))

    def to_json(self, path: str) -> dict[str, Any]:
        changes = self.changes
        return {
            "path": path,
            "status": str(self.status),
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
            "changes": (
                None
                if changes is None
                else {"add": changes.add, "change": changes.change, "destroy": changes.destroy}
            ),
            "log": None if self.log is None else str(self.log),
            "reason": self.reason or None,
            "has_changes": self.has_changes,
            "output_changes": list(self.output_changes),
            "provisional": bool(self.provisional),
            "provisional_because": list(self.provisional),
            "planned_outputs": list(self.planned_outputs),
            "outputs_plan": self.outputs_plan,
            "attempts": self.attempts,
            "plan_file": None if self.plan_file is None else str(self.plan_file),
        }


@dataclass(frozen=True)
class RunReport:
    command: str
    results: Mapping[str, Result]  # in the order the stacks were given
    interrupted: bool = False  # a signal (Ctrl-C, SIGTERM) stopped the run
    run_dir: Path | None = None
    duration_s: float = 0.0

    def counts(self) -> Counter[Status]:
        return Counter(result.status for result in self.results.values())

    def to_json(self, *, detailed_exitcode: bool = False) -> dict[str, Any]:
        return {
            "command": self.command,
            "stacks": [result.to_json(path) for path, result in self.results.items()],
            "exit_code": int(exit_code(self, detailed_exitcode=detailed_exitcode)),
            "interrupted": self.interrupted,
            "duration_s": round(self.duration_s, 3),
            "run_dir": None if self.run_dir is None else str(self.run_dir),
        }

    def write_json(self, path: Path, *, detailed_exitcode: bool = False) -> None:
        """Written whole or not at all: a CI job reading it never sees half a report."""
        report = self.to_json(detailed_exitcode=detailed_exitcode)
        write_atomically(path, json.dumps(report, indent=2) + "\n", private=True)

    def gitlab_counts(self) -> dict[str, int] | None:
        """GitLab's Terraform report of the run's plans (`artifacts:reports:terraform`):
        resources to create, update and delete, a replacement counted in create and delete as
        GitLab's own template counts it. None unless every stack has a plan's counts: a
        partial count in the merge request would read as the whole change."""
        counted = [result.changes for result in self.results.values()]
        if self.interrupted or not counted or any(c is None for c in counted):
            return None
        return {
            "create": sum(c.add for c in counted if c),
            "update": sum(c.change for c in counted if c),
            "delete": sum(c.destroy for c in counted if c),
        }

    def write_gitlab_report(self, path: Path) -> None:
        """The counts, or no file at all (an older one removed): GitLab shows no report for
        a job whose plans did not all finish, rather than a wrong one."""
        counts = self.gitlab_counts()
        if counts is None:
            path.unlink(missing_ok=True)
        else:
            write_atomically(path, json.dumps(counts) + "\n")


def exit_code(report: RunReport, *, detailed_exitcode: bool = False) -> ExitCode:
    """The exit code (README.md's table) as a reduction over the results, most serious first.

    An interrupt wins (the run is incomplete whatever else happened); then a failure; then a
    refusal (a CI job must tell "needs a manual job" from "broke"); changes count only when
    asked for and only when nothing went wrong.
    """
    statuses = {result.status for result in report.results.values()}
    if report.interrupted:
        return ExitCode.INTERRUPTED
    if Status.FAILED in statuses or Status.INTERRUPTED in statuses:
        return ExitCode.STACK_FAILED
    if Status.REFUSED in statuses:
        return ExitCode.REFUSED
    if Status.SKIPPED in statuses:
        # Skips follow a failure or refusal, which would have returned above; a skip alone
        # means the run did not do all it was asked to.
        return ExitCode.STACK_FAILED
    # A waiting stack has changes to make, once its upstream is applied.
    pending = Status.WAITING in statuses
    if detailed_exitcode and (
        pending or any(result.has_changes for result in report.results.values())
    ):
        return ExitCode.CHANGES_PRESENT
    return ExitCode.OK


# --- Events: what the scheduler tells the display, which is the only thing that prints -----


@dataclass(frozen=True)
class Started:
    node: str


@dataclass(frozen=True)
class Progress:
    node: str
    phase: str  # "init", "plan", "waiting for the stack lock", ...


@dataclass(frozen=True)
class Finished:
    node: str
    result: Result


@dataclass(frozen=True)
class Notice:
    text: str
    node: str | None = None


Event = Started | Progress | Finished | Notice
Sink = Callable[[Event], None]
