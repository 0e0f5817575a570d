"""Renames without `moved` blocks: a plan that deletes one resource and creates another of the
same type in the same stack is, far more often than not, a rename in the code that terraform
will carry out by destroying the real thing and building a new one.

Pure functions over the parsed output of `terraform show -json PLAN`. `detect` pairs such
deletes and creates, `note` is the line a plan's summary shows, and `guard` refuses to apply a
saved plan with such pairs on a protected stack unless `--allow-recreate` is given. Reading the
plan is a callable the caller injects: nothing here starts a process.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfrun.discovery import Stack
from tfrun.errors import RefusedError
from tfrun.tfargs import Effect, Operation

RULE = "protected-recreate-needs-allow-recreate"
FLAG = "--allow-recreate"


@dataclass(frozen=True)
class Rename:
    """A delete and a create of the same type and provider that look like one resource renamed."""

    type: str
    from_address: str
    to_address: str

    def moved_block(self, indent: str = "") -> str:
        return (
            f"{indent}moved {{\n"
            f"{indent}  from = {self.from_address}\n"
            f"{indent}  to   = {self.to_address}\n"
            f"{indent}}}"
        )

    def __str__(self) -> str:
        return f"{self.from_address} → {self.to_address}"


@dataclass(frozen=True)
class _Change:
    address: str
    type: str
    provider: str
    values: Mapping[str, Any]  # before (a delete) or the known part of after (a create)


def _changes(plan: Any) -> tuple[list[_Change], list[_Change]]:
    """The plan's delete-only and create-only managed resources."""
    deletes: list[_Change] = []
    creates: list[_Change] = []
    entries = plan.get("resource_changes") if isinstance(plan, Mapping) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping) or entry.get("mode", "managed") != "managed":
            continue
        change = entry.get("change")
        if not isinstance(change, Mapping):
            continue
        actions = change.get("actions")
        type_, address = entry.get("type"), entry.get("address")
        if not isinstance(type_, str) or not isinstance(address, str):
            continue
        # ["delete", "create"] and ["create", "delete"] are replacements of one address:
        # terraform says so itself, and no moved block helps.
        if actions == ["delete"]:
            values, into = change.get("before"), deletes
        elif actions == ["create"]:
            values, into = change.get("after"), creates
        else:
            continue
        known = dict(values) if isinstance(values, Mapping) else {}
        if into is creates:
            unknown = change.get("after_unknown")
            if isinstance(unknown, Mapping):
                known = {k: v for k, v in known.items() if unknown.get(k) is not True}
        provider = entry.get("provider_name")
        into.append(_Change(address, type_, provider if isinstance(provider, str) else "", known))
    return deletes, creates


def _alike(deleted: _Change, created: _Change) -> tuple[float, float]:
    """How much the two look like one resource: shared settings first, then the address."""
    shared = [
        key
        for key, value in created.values.items()
        if value is not None and key in deleted.values and key not in ("id", "arn")
    ]
    same = sum(1 for key in shared if deleted.values[key] == created.values[key])
    settings = same / len(shared) if shared else 0.0
    name = difflib.SequenceMatcher(None, deleted.address, created.address).ratio()
    return settings, name


def detect(plan: Any) -> list[Rename]:
    """Pairs of (delete, create) of one type and provider, at different addresses.

    When a type has several deletes and creates, the pairs that share the most settings (then
    the most similar addresses) are taken first; what is left over is a plain delete or create.
    """
    deletes, creates = _changes(plan)
    renames: list[Rename] = []
    groups: dict[tuple[str, str], tuple[list[_Change], list[_Change]]] = {}
    for change in deletes:
        groups.setdefault((change.type, change.provider), ([], []))[0].append(change)
    for change in creates:
        if (change.type, change.provider) in groups:
            groups[(change.type, change.provider)][1].append(change)
    for (type_, _), (deleted, created) in sorted(groups.items()):
        scored = sorted(
            ((_alike(d, c), d.address, c.address) for d in deleted for c in created),
            key=lambda item: (-item[0][0], -item[0][1], item[1], item[2]),
        )
        used_from: set[str] = set()
        used_to: set[str] = set()
        for _, old, new in scored:
            if old not in used_from and new not in used_to:
                used_from.add(old)
                used_to.add(new)
                renames.append(Rename(type_, old, new))
    return sorted(renames, key=lambda r: (r.from_address, r.to_address))


def _listed(renames: Sequence[Rename], limit: int = 3) -> str:
    shown = ", ".join(str(r) for r in renames[:limit])
    more = len(renames) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def note(renames: Sequence[Rename]) -> str:
    """One line for a plan's summary."""
    first = renames[0]
    many = len(renames) > 1
    return (
        f"recreates {len(renames)} resource{'s' if many else ''} that look{'' if many else 's'} "
        f"renamed ({_listed(renames)}); if {'they are renames' if many else 'it is a rename'}, "
        f"add a moved block: moved {{ from = {first.from_address}  to = {first.to_address} }}"
    )


def suggestion(renames: Sequence[Rename]) -> str:
    """The moved blocks to add to the stack, one after another."""
    return "\n".join(r.moved_block() for r in renames)


class RecreateRefusal(RefusedError):
    """Applying a saved plan that recreates renamed resources on a protected stack."""

    def __init__(self, found: Sequence[tuple[Stack, str, Sequence[Rename]]]) -> None:
        self.stacks = tuple(stack.rel for stack, _, _ in found)
        where = "; ".join(
            f"{stack.rel} in the protected environment '{stack.env}' (plan {plan}: "
            f"{_listed(renames)})"
            for stack, plan, renames in found
        )
        blocks = "\n\n".join(f"# {stack.rel}\n{suggestion(renames)}" for stack, _, renames in found)
        super().__init__(
            f"Refused: applying a saved plan that destroys resources and creates new ones of "
            f"the same type, which looks like a rename without a moved block, on {where}. "
            f"Rule '{RULE}': on a protected environment, a plan that would recreate renamed "
            f"resources is applied only with {FLAG}. Nothing was run. If these are renames, "
            f"add moved blocks to the stack, plan again and apply the new plan:\n\n{blocks}\n\n"
            f"If recreating them is what you want, apply the plan with {FLAG}."
        )


# Runs `terraform show -json` on the plan in the stack's folder: the parsed JSON, or None
# when it cannot be read.
ShowPlan = Callable[[Stack, Path], Any]


def guard(
    stacks: Sequence[Stack],
    operation: Operation,
    *,
    allow_recreate: bool,
    show_plan: ShowPlan,
) -> list[Stack]:
    """Raise `RecreateRefusal` before applying a saved plan that recreates renamed resources on
    a protected stack, unless `allow_recreate`. Returns the protected stacks whose plan could
    not be read (terraform show needs an initialised stack), for the caller to check again
    after init.

    Only saved plans: a plain `apply` plans and applies in one terraform run that tfrun cannot
    look into. Where a plan cannot be read, the safety rules count it as destructive wherever
    destroying is not allowed.
    """
    if allow_recreate:
        return []
    # With -chdir the plan is not where tfrun would look; the safety rules refuse that anyway.
    if operation.effect is not Effect.APPLY_SAVED_PLAN or operation.chdir is not None:
        return []
    assert operation.plan_file is not None
    found: list[tuple[Stack, str, Sequence[Rename]]] = []
    unread: list[Stack] = []
    for stack in stacks:
        if not stack.protected:
            continue
        plan = show_plan(stack, stack.path / operation.plan_file)
        if plan is None:
            unread.append(stack)
            continue
        renames = detect(plan)
        if renames:
            found.append((stack, operation.plan_file, renames))
    if found:
        raise RecreateRefusal(found)
    return unread
