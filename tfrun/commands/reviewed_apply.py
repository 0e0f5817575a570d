"""`apply` over many stacks, reviewed (docs/new-environment.md):

plan every stack (saved plans, provisional where an upstream is not applied yet) → the plans'
table and every resource destroyed or replaced → the safety rules on those plans → one
approval → the saved plans applied in dependency order, each stack whose plan read planned
outputs (or whose upstream's outputs changed) planned again first, and asked about again
when that plan does not do what was approved.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from tfrun import safety, tfargs, ui
from tfrun.commands import approval
from tfrun.commands.run_args import RunArgs
from tfrun.discovery import Stack
from tfrun.errors import RefusedError
from tfrun.report import Status
from tfrun.run import engine, review
from tfrun.run.folder import DEFAULT_KEEP_RUNS, new_run_dir


def run(
    stacks: list[Stack],
    waits: Mapping[str, tuple[str, ...]],
    args: RunArgs,
    options: engine.RunOptions,
    confirmations: list[safety.Confirmation],
) -> int:
    root = stacks[0].root
    keep = options.keep_runs or stacks[0].config.keep_runs or DEFAULT_KEEP_RUNS
    run_dir = new_run_dir(root, "apply", keep)
    plan_args = [arg for arg in args.tf_args if not tfargs.has_flag([arg], "auto-approve")]
    planning = replace(options, run_dir=run_dir / "plan", json_path=None, detailed_exitcode=False)
    plans = engine.run(stacks, waits, "plan", plan_args, planning)
    if plans.interrupted:
        return engine.exit_code(plans, planning)
    results = plans.results
    # The plans there are: a waiting stack has none yet (its new plan is checked when made).
    shown = {
        rel: review.shown_plan(result)
        for rel, result in results.items()
        if result.ok and result.has_changes
    }
    safety.check_reviewed_plans(
        [
            (stack, safety.summarise_plan(shown[stack.rel]))
            for stack in stacks
            if stack.rel in shown
        ],
        os.environ,
    )
    pending = [
        rel
        for rel, result in results.items()
        if (result.ok and (result.has_changes or result.provisional))
        or result.status is Status.WAITING
    ]
    if not pending:
        if all(result.ok for result in results.values()):
            ui.info("Nothing to apply: no stack's plan changes anything.")
        return engine.exit_code(plans, planning)
    ui.removals({rel: review.removals(plan) for rel, plan in shown.items()})
    confirm_once(args, pending, confirmations)
    applying = replace(
        options,
        run_dir=run_dir / "apply",
        reviewed=results,
        can_ask_again=not args.yes and ui.can_ask(),
        approved_in_advance=args.yes,
    )
    report = engine.run(stacks, waits, "apply", args.tf_args, applying)
    return engine.exit_code(report, applying)


def confirm_once(
    args: RunArgs, pending: list[str], confirmations: list[safety.Confirmation]
) -> None:
    """The one approval of the run: the protected environments' names, then 'yes'."""
    approval.confirm(confirmations)
    if args.yes:
        return
    answer = ui.ask(
        f"Apply these plans in {len(pending)} stacks, in dependency order? Stacks whose plan "
        "read planned outputs are planned again first, and asked about again if that plan "
        "differs. Type 'yes' to go on:"
    )
    if answer.strip() != "yes":
        raise RefusedError(
            f"the answer was not 'yes', so nothing was applied ({len(pending)} stacks planned)."
        )
