"""GitLab's limit on `needs:` (50 jobs by default): jobs that need more wait through barrier
jobs instead. A pure function from a pipeline document to a pipeline document."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def within_needs_limit(
    document: dict[str, Any], limit: int, reports: str, direct: Callable[[str], str]
) -> dict[str, Any]:
    """The document with every `needs:` longer than `limit` split through barrier jobs:
    `wait 1/3 for <job>` needs up to `limit` of the jobs, does nothing, and the job needs the
    barriers instead. The order is the same, and a barrier runs when the job it stands for
    would (`when: always` for the summary). A barrier passes on the folder `reports` of the
    jobs it waited for (the summary and provisional plans read the plans' reports); the job
    `direct(job)` names, whose artifacts a job needs whole (an apply's own plan), stays a
    direct need. Barriers of barriers past limit² needs."""
    out: dict[str, Any] = {}
    for name, job in document.items():
        waiting = [(name, job)]
        while waiting:
            name, job = waiting.pop()
            needs = job.get("needs") if isinstance(job, dict) else None
            if not needs or len(needs) <= limit:
                out[name] = job
                continue
            # A need the job itself takes artifacts from stays direct when it can (an apply's
            # own plan): its saved plan is in those artifacts, and a barrier passes reports only.
            own = [n for n in needs if n["job"] == direct(name)]
            rest = [n for n in needs if n not in own]
            chunks = [rest[i : i + limit] for i in range(0, len(rest), limit)]
            barriers = []
            for number, chunk in enumerate(chunks, 1):
                barrier = _barrier(job, chunk, reports)
                barriers.append((f"wait {number}/{len(chunks)} for {name}", barrier))
            carried = any(n["artifacts"] for n in rest)
            links = [
                {"job": barrier_name, "artifacts": carried, **_optional(barrier["needs"])}
                for barrier_name, barrier in barriers
            ]
            # The job again (it may need too many barriers), then its barriers, each checked.
            waiting.append((name, {**job, "needs": own + links}))
            waiting.extend(reversed(barriers))
    return out


def _optional(needs: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    return {"optional": True} if needs and all(n.get("optional") for n in needs) else {}


def _barrier(job: Mapping[str, Any], needs: list[dict[str, Any]], reports: str) -> dict[str, Any]:
    barrier: dict[str, Any] = {"stage": job["stage"]}
    if "rules" in job:
        barrier["rules"] = [
            {k: v for k, v in rule.items() if k not in ("when", "allow_failure")}
            | ({"when": "always"} if rule.get("when") == "always" else {})
            for rule in job["rules"]
        ]
    if job.get("when") == "always":
        barrier["when"] = "always"
    barrier.update(
        {
            "needs": needs,
            # No install: the barrier only waits, and passes reports on. It keeps the checkout
            # all the same: a runner cleans the build folder when it fetches (GIT_STRATEGY
            # none would not, and a reused folder's reports of another pipeline would pass on).
            "before_script": [],
            "script": ["echo 'tfrun: the jobs this one needs are done.'"],
        }
    )
    if any(n["artifacts"] for n in needs):
        barrier["artifacts"] = {
            "when": "always",
            "expire_in": "1 week",
            "paths": [reports],
        }
    return barrier
