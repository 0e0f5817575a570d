"""The GitHub Actions matrix of `tfrun ci github`: the stacks a change affects, in waves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrun import graph as graphs
from tfrun.ci import CIStack
from tfrun.errors import ConfigError


def waves(stacks: Sequence[CIStack]) -> dict[str, int]:
    """Wave 0 needs nothing of this run; wave n needs something of wave n-1 (and no later)."""
    rels = {s.rel for s in stacks}
    needs = {s.rel: [n for n in s.needs if n in rels] for s in stacks}
    try:
        ordered = graphs.topological(needs)
    except graphs.CycleError as error:
        raise ConfigError(
            f"the stacks depend on each other in a cycle: {error.cycle[0]}."
        ) from None
    out: dict[str, int] = {}
    for rel in ordered:  # what a stack needs comes before it
        out[rel] = 1 + max((out[n] for n in needs[rel]), default=-1)
    return {s.rel: out[s.rel] for s in stacks}


def github_matrix(stacks: Sequence[CIStack]) -> dict[str, Any]:
    """`{"include": [...]}` for `strategy.matrix`, in waves: each entry after what it needs."""
    wave = waves(stacks)
    ordered = sorted(stacks, key=lambda s: (wave[s.rel], s.rel))
    return {
        "include": [
            {
                "stack": s.rel,
                "path": s.path,
                "env": s.env,
                "region": s.region,
                "key": s.key,
                "protected": s.protected,
                "needs": list(s.needs),
                "wave": wave[s.rel],
            }
            for s in ordered
        ]
    }
