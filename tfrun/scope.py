"""What a run may reach beyond the stacks it names, checked before any file is written or
terraform starts (docs/safety.md, "Scope").

Pure decisions over the stacks and the graph, like the safety rules: each check either raises
(a `RefusedError`, exit 3; a `UsageError`, exit 4) or returns warnings for the caller to show.

* Every stack has its own state: two stacks whose (bucket, key) is the same would read and
  write one state file, so a run touching either is refused.
* The environments and regions a run filters on exist.
* A destroy names the stacks outside the run that read the destroyed stacks' state; where a
  protected stack reads it, the destroy runs only where destroying a protected stack may.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from tfrun import safety
from tfrun.discovery import Stack
from tfrun.errors import RefusedError, UsageError

if TYPE_CHECKING:
    from tfrun.graph import Graph

SHARED_STATE_RULE = "one-state-per-stack"


def state_url(stack: Stack) -> str:
    return f"s3://{stack.config.state.bucket}/{stack.key}"


def shared_state(every: Sequence[Stack], selected: Collection[Stack]) -> None:
    """Refuse when a selected stack shares its state with any other stack of the repository."""
    by_state: dict[tuple[str | None, str], list[Stack]] = {}
    for stack in every:
        by_state.setdefault((stack.config.state.bucket, stack.key), []).append(stack)
    chosen = {stack.rel for stack in selected}
    clashes = [
        group
        for group in by_state.values()
        if len(group) > 1 and any(stack.rel in chosen for stack in group)
    ]
    if not clashes:
        return
    described = "; ".join(
        f"{', '.join(stack.rel for stack in group)} all use {state_url(group[0])}"
        for group in clashes
    )
    protected = sorted({s.rel for group in clashes for s in group if s.protected})
    guarded = (
        f" ({', '.join(protected)} {'is' if len(protected) == 1 else 'are'} protected, and so is "
        "any stack that shares its state)"
        if protected
        else ""
    )
    raise RefusedError(
        f"Refused: {described}{guarded}. Rule '{SHARED_STATE_RULE}': every stack has its own "
        "state, or a command in one stack changes the other's (a `state rm` in a staging "
        "stack would remove prod's resources). Nothing was run. Give each stack its own key "
        "(`key` in its stack.hcl, or state.key in tfrun.hcl); `tfrun check` lists every clash."
    )


def known_filters(every: Sequence[Stack], *, env: Sequence[str], region: Sequence[str]) -> None:
    """An --env or --region that matches no stack is a typo, not an empty run."""
    for flag, given, known in (
        ("--env", env, sorted({stack.env for stack in every})),
        ("--region", region, sorted({stack.region for stack in every})),
    ):
        unknown = [value for value in given if value not in known]
        if unknown:
            close = [
                match
                for value in unknown
                for match in difflib.get_close_matches(value, known, n=1, cutoff=0.6)
            ]
            hint = f" Did you mean {' and '.join(dict.fromkeys(close))}?" if close else ""
            raise UsageError(
                f"{flag} {', '.join(unknown)}: no stack of this repository has "
                f"{'this' if len(unknown) == 1 else 'these'} {flag.removeprefix('--')} "
                f"(known: {', '.join(known) or 'none'}).{hint}"
            )


def outside_consumers(graph: Graph, destroyed: Collection[Stack]) -> dict[str, list[str]]:
    """For each stack outside `destroyed` that depends on one in it: the ones it reads."""
    gone = {stack.rel for stack in destroyed}
    found: dict[str, list[str]] = {}
    for rel, needs in graph.dependencies.items():
        if rel in gone:
            continue
        read = sorted(need for need in needs if need in gone)
        if read:
            found[rel] = read
    return found


def destroy_consumers(
    graph: Graph, destroyed: Collection[Stack], environ: Mapping[str, str]
) -> list[str]:
    """Warnings naming the stacks that will lose the state they read; a refusal when one of
    them is protected and destroying a protected stack is not allowed here (a laptop)."""
    consumers = outside_consumers(graph, destroyed)
    protected = {rel for rel in consumers if graph.stacks[rel].protected}
    rule = safety.destroy_rule(safety.detect_ci(environ))
    if protected and rule is not None:
        readers = "; ".join(f"{rel} reads {', '.join(consumers[rel])}" for rel in sorted(protected))
        raise RefusedError(
            f"Refused: destroying would take away state that protected stacks read ({readers}), "
            f"and those stacks are not in this run. Rule '{rule.name}': {rule.text}. Nothing "
            f"was run. {rule.remedy}"
        )
    return [
        f"{rel} reads the state of {', '.join(read)}, which this run destroys; "
        "its next plan will fail until it stops reading it"
        for rel, read in sorted(consumers.items())
    ]
