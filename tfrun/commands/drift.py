"""`tfrun drift [PATH] [--env ENV]... [--region R]... [--include GLOB]... [--exclude GLOB]...
[--parallelism N] [--json FILE] [--markdown FILE]`: plan every selected stack and report the
ones whose plan has changes, with the resources that drifted (docs/drift.md). Every plan
refreshes (`-refresh=true` after the configured arguments), and a stack whose configured plan
arguments narrow what it plans (`-target`, ...) is refused before anything runs.

It is `tfrun run-all plan` with the same filters, through the same run (commands/run.py):
the same selection, generated files, identity check, safety rules (a plan is read-only, so it
runs on protected environments, from a laptop and in CI) and per-stack runner. Two things
differ. No stack waits for another, and each plans against the applied state of what it reads,
never against another stack's plan: drift is what differs from what was applied. And the
saved plans the run makes to read them are removed at the end: no one applies a drift check.

Exit codes: 0 nothing drifted, 2 a stack drifted, 1 a stack failed (whether or not another
drifted: a check that did not finish says nothing about the stacks it missed), 3, 4 and 130
as for any run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tfrun import drift as drifts
from tfrun import report as reporting
from tfrun import ui
from tfrun.commands import run as run_command
from tfrun.commands.run_args import RunArgs
from tfrun.discovery import Stack
from tfrun.errors import UsageError
from tfrun.files import write_atomically
from tfrun.report import RunReport


def drift(
    path: Path,
    *,
    env: Sequence[str] = (),
    region: Sequence[str] = (),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    parallelism: int | None = None,
    json_path: Path | None = None,
    markdown_path: Path | None = None,
) -> int:
    if not path.is_dir():
        problem = "this is a file, not a folder" if path.exists() else "no such folder"
        raise UsageError(
            f"{path}: {problem}; name a stack's folder or a folder above stacks. Nothing ran."
        )
    if parallelism is not None and parallelism < 1:
        raise UsageError(f"--parallelism takes a whole number of 1 or more, not {parallelism}.")
    run_command.check_report_paths({"--json": json_path, "--markdown": markdown_path})
    args = RunArgs(
        command="plan",
        path=path.resolve(),
        # Many stacks, in the background, even for one: plans are saved and shown as JSON, and
        # the laptop's short way (tfrun/express.py), which runs in the foreground, is never taken.
        run_all=True,
        env=list(env),
        region=list(region),
        include=list(include),
        exclude=list(exclude),
        parallelism=parallelism,
        detailed_exitcode=True,
        tf_args=list(drifts.PLAN_ARGUMENTS),
    )

    def finish(stacks: list[Stack], report: RunReport) -> int:
        found = drifts.build(
            stacks,
            report.results,
            lambda stack: _plan_json(report, stack),
            exit_code=int(reporting.exit_code(report, detailed_exitcode=True)),
            run_dir=None if report.run_dir is None else str(report.run_dir),
        )
        _remove_saved_plans(report)
        if json_path is not None:
            write_atomically(json_path, json.dumps(found.to_json(), indent=2) + "\n")
        if markdown_path is not None:
            write_atomically(markdown_path, drifts.markdown(found))
        ui.drift_summary(found)
        return found.exit_code

    return run_command.run(args, alone=True, vet=_refuse_narrowed_plans, finish=finish)


def _refuse_narrowed_plans(stacks: Sequence[Stack]) -> None:
    for stack in stacks:
        found = drifts.narrowing_arguments(stack)
        if found:
            raise UsageError(
                f"{stack.rel} plans with {', '.join(found)}. A drift check plans all of a "
                "stack: with those arguments it would report the stack clean whatever they "
                "leave out. Give them to the commands that need them on the command line "
                "instead of in extra_arguments for plan, or leave the stack out with "
                "--exclude. Nothing ran."
            )


def _plan_json(report: RunReport, stack: Stack) -> Mapping[str, Any] | None:
    """The plan the run showed as JSON for `stack` (run/stack.py keeps it beside the log)."""
    if report.run_dir is None:
        return None
    try:
        plan = json.loads((report.run_dir / f"{stack.rel}.plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) else None


def _remove_saved_plans(report: RunReport) -> None:
    for result in report.results.values():
        if result.plan_file is not None:
            result.plan_file.unlink(missing_ok=True)
