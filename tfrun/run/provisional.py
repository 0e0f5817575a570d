"""Which of a stack's reads a plan points at planned outputs (tfrun/planned.py): the reads of
an upstream in the same run whose plan changes its outputs, or that has no state yet."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfrun import planned, scan
from tfrun.discovery import Repository, Stack
from tfrun.files import write_atomically
from tfrun.run.scheduler import TaskContext
from tfrun.scan.reads import REMOTE_STATE

# The run's file for a stack: (stack, suffix) -> <run dir>/<stack>.<suffix> (Job.file).
RunFile = Callable[[Stack, str], Path]


def _read_names(repo: Repository, stack: Stack, upstreams: dict[str, Stack]) -> dict[str, str]:
    """{data source name: upstream rel} for the stack's reads of `upstreams`: the generated
    ones (`remote_state`) and the ones written in its own files. Reads inside modules cannot
    be overridden from the stack; they keep reading the real state."""
    names: dict[str, str] = {}
    for name, where in stack.config.remote_state.items():
        target = repo.stack((stack.path / where).resolve())
        if target.rel in upstreams:
            names[name] = target.rel
    located: dict[tuple[str | None, str | None], str] = {
        (upstream.config.state.bucket, upstream.key): rel for rel, upstream in upstreams.items()
    }
    for read in scan.own_reads(stack.root, stack.path):
        owner = located.get((read.bucket, read.key))
        # One override serves every instance of a block: only a block with one instance.
        if owner is not None and read.kind == REMOTE_STATE and not read.instance:
            names.setdefault(read.name, owner)
    return names


def planned_reads(
    repo: Repository, stack: Stack, context: TaskContext, run_file: RunFile
) -> tuple[dict[str, Path], dict[str, str]]:
    """{data source name: planned state file written for it}, and {upstream rel: what the
    plan reads of it} for the summary."""
    upstreams: dict[str, Stack] = {}
    for dependency in context.dependencies:
        result = context.results.get(dependency)
        if result is not None and result.plan_file is not None and result.has_changes:
            upstreams[dependency] = repo.stack(stack.root / dependency)
    if not upstreams:
        return {}, {}
    reads: dict[str, Path] = {}
    described: dict[str, list[str]] = {}
    plans: dict[str, Any] = {}
    for name, owner in sorted(_read_names(repo, stack, upstreams).items()):
        if owner not in plans:
            shown = run_file(upstreams[owner], ".plan.json").read_text(encoding="utf-8")
            plans[owner] = json.loads(shown)
        if not context.results[owner].output_changes and not planned.is_new(plans[owner]):
            continue  # its applied outputs stay as they are: the real state is right
        state = planned.planned_state(plans[owner], owner, stack.config.mock_outputs.get(name))
        reads[name] = run_file(stack, f".planned.{name}.tfstate")
        write_atomically(reads[name], state.state_json(), private=True)
        described.setdefault(owner, []).append(state.describe(name))
    return reads, {owner: f"{owner}: {', '.join(what)}" for owner, what in described.items()}
