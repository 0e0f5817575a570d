"""Which of a stack's reads a plan points at planned outputs (tfrun/planned.py): the reads of
an upstream in the same run whose plan changes its outputs, or that has no state yet."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from tfrun import planned, scan
from tfrun.discovery import Repository, Stack
from tfrun.files import write_atomically
from tfrun.report import Result
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
    repo: Repository, stack: Stack, upstreams: Mapping[str, Result], run_file: RunFile
) -> tuple[dict[str, Path], dict[str, str]]:
    """{data source name: planned state file written for it}, and {upstream rel: what the
    plan reads of it} for the summary. `upstreams`: the plans of this run so far, and those
    other CI jobs made."""
    changing = {
        rel: repo.stack(stack.root / rel)
        for rel, result in upstreams.items()
        if result.has_changes and result.outputs_plan is not None
        and (result.output_changes or result.outputs_plan.get("new"))
    }  # fmt: skip
    if not changing:
        return {}, {}
    reads: dict[str, Path] = {}
    described: dict[str, list[str]] = {}
    for name, owner in sorted(_read_names(repo, stack, changing).items()):
        view = upstreams[owner].outputs_plan
        assert view is not None
        state = planned.planned_state(view, owner, stack.config.mock_outputs.get(name))
        reads[name] = run_file(stack, f".planned.{name}.tfstate")
        write_atomically(reads[name], state.state_json(), private=True)
        described.setdefault(owner, []).append(state.describe(name))
    return reads, {owner: f"{owner}: {', '.join(what)}" for owner, what in described.items()}
