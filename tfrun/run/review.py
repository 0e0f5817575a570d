"""A reviewed apply (docs/new-environment.md), the parts that need no process: what a plan
does resource by resource, whether a stack must be planned again before its apply, and how a
new plan differs from the one a person approved."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfrun.report import Result, Status


def load_plan(path: Path) -> Any:
    """`show -json` of a saved plan, as the run kept it; None when there is none."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def shown_plan(result: Result) -> Any:
    """`show -json` of the plan a stack's run saved (kept beside it), or None."""
    return (
        None if result.plan_file is None else load_plan(result.plan_file.with_suffix(".plan.json"))
    )


def actions(plan: Any) -> dict[str, tuple[str, ...]]:
    """{resource address: its actions} for each resource the plan changes."""
    if not isinstance(plan, Mapping):
        return {}
    found = {}
    for change in plan.get("resource_changes") or ():
        done = tuple((change.get("change") or {}).get("actions") or ())
        if set(done) - {"no-op", "read"}:
            found[str(change.get("address"))] = done
    return found


def removals(plan: Any) -> tuple[list[str], list[str]]:
    """(destroyed, replaced) resource addresses."""
    destroyed, replaced = [], []
    for address, done in actions(plan).items():
        if "delete" in done and "create" in done:
            replaced.append(address)
        elif "delete" in done or "forget" in done:
            destroyed.append(address)
    return destroyed, replaced


def _shown(done: tuple[str, ...] | None) -> str:
    return "nothing" if not done else "replace" if len(done) > 1 else done[0]


def differences(approved: Any, new: Any) -> list[str]:
    """How the new plan's resource actions differ from the approved plan's."""
    before, after = actions(approved), actions(new)
    return [
        f"{address}: {_shown(before.get(address))} → {_shown(after.get(address))}"
        for address in sorted(set(before) | set(after))
        if before.get(address) != after.get(address)
    ]


def replan_reason(
    approved: Result, dependencies: tuple[str, ...], reviewed: Mapping[str, Result],
    applied: Mapping[str, Result],
) -> str | None:  # fmt: skip
    """Why a stack must be planned again after what it reads was applied; None when the plan
    the person approved still holds."""
    if approved.status is Status.WAITING:
        return "its plan had to wait for what it reads to be applied"
    if approved.planned_outputs:
        return "its plan read planned outputs"
    changed = [
        d
        for d in dependencies
        if reviewed[d].output_changes and applied.get(d) is not None and applied[d].ok
    ]
    if changed:
        return f"the outputs of {', '.join(changed)} changed"
    return None
