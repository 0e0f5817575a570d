"""A terraform command through tfrun, in one stack or many:

select the stacks → resolve terraform → classify the command line once → rename guard and
safety rules → approval → the runner (one stack in the foreground, or many in order)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfrun import (
    auth,
    configured,
    express,
    generate,
    planned,
    process,
    recreate,
    safety,
    scope,
    terraform_version,
    tfargs,
    ui,
)
from tfrun.commands import approval
from tfrun.commands.run_args import RunArgs
from tfrun.discovery import Stack, is_stack_dir
from tfrun.errors import ConfigError, RefusedError, UsageError
from tfrun.report import Result, RunReport, Status
from tfrun.run import engine
from tfrun.run.stack import OUTPUT_SUFFIX
from tfrun.terraform import Terraform, render, resolve
from tfrun.workspace import Workspace


@dataclass(frozen=True)
class Selection:
    stacks: list[Stack]  # in the order they may run
    waits: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # One stack a person named directly: terraform keeps the terminal.
    foreground: bool = False
    warnings: tuple[str, ...] = ()


def select_stacks(workspace: Workspace, args: RunArgs) -> Selection:
    start = workspace.start(args.path)
    selecting = bool(
        args.env or args.region or args.include or args.exclude or args.with_dependencies
    )
    scope.known_filters(workspace.stacks, env=args.env, region=args.region)
    if not args.run_all and not selecting and is_stack_dir(start) and start != workspace.root:
        # One stack: no need to read the rest of the repository's .tf files.
        return Selection([workspace.repo.stack(start)], foreground=True)
    from tfrun import graph as graphs  # many stacks: the whole repository's graph

    whole = workspace.graph
    stacks = graphs.select(
        whole,
        [start],
        env=args.env,
        region=args.region,
        include=args.include,
        exclude=args.exclude,
        with_dependencies=args.with_dependencies,
    )
    if not stacks:
        raise ConfigError(
            f"{start}: no stacks here or below"
            + (" match the --env/--region/--include/--exclude given." if selecting else ".")
        )
    ordered = graphs.order(whole, stacks)
    selected = {stack.rel for stack in ordered}
    refusal = graphs.strict_refusal(whole, selected)
    if refusal is not None:
        raise UsageError(refusal)
    warnings = tuple(
        f"{finding.stack}: {finding.message}"
        for finding in whole.unresolved
        if finding.stack in selected
    )
    return Selection(ordered, graphs.waits_for(whole, ordered), warnings=warnings)


class SavedPlans:
    """`terraform show -json` of the saved plans a run applies, each read once: the rename
    guard and the safety rules look at the same plan."""

    def __init__(self, terraform: Terraform) -> None:
        self._terraform = terraform
        self._shown: dict[Path, Any] = {}

    def show(self, stack: Stack, plan: Path) -> Any:
        """The parsed plan; None when it cannot be read (yet: show needs an initialised stack)."""
        if plan not in self._shown:
            argv = [self._terraform.binary, "show", "-json", str(plan)]
            shown = process.run(argv, stack.path, self._terraform.env)
            try:
                parsed = json.loads(shown.stdout) if shown.returncode == 0 else None
            except ValueError:
                parsed = None
            if parsed is None:
                return None  # asked again after init
            self._shown[plan] = parsed
        return self._shown[plan]

    def summary(self, stack: Stack, plan: Path) -> safety.PlanSummary | None:
        shown = self.show(stack, plan)
        return None if shown is None else safety.summarise_plan(shown)


def refuse_provisional_plans(stacks: list[Stack], operation: tfargs.Operation) -> None:
    """A provisional plan read planned, not applied, outputs of another stack: applying it
    would build on values that do not exist."""
    if operation.plan_file is None:
        return
    for stack in stacks:
        path = stack.path / operation.plan_file
        if planned.is_provisional_plan(path):
            raise RefusedError(
                f"{stack.rel}: the saved plan {path} is provisional: it read the planned "
                "outputs of a stack that was not applied yet, and cannot be applied. Apply "
                "that stack first, then plan this one again (or run 'tfrun run-all apply', "
                "which plans each stack again after what it reads is applied). Nothing ran."
            )


def upstream_plans(folder: Path | None, stacks: list[Stack]) -> dict[str, Result]:
    """The plans with changes in the JSON reports under `folder` (CI artifacts of other plan
    jobs), by stack, leaving out the stacks this run plans itself."""
    if folder is None:
        return {}
    if not folder.exists():
        raise UsageError(
            f"--upstream-plans {folder}: no such folder or file; name the folder of the other "
            "plan jobs' JSON reports (--json), or one report. Nothing ran."
        )
    ours = {stack.rel for stack in stacks}
    found: dict[str, Result] = {}
    for path in [folder] if folder.is_file() else sorted(folder.rglob("*.json")):
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["stacks"]
            for entry in entries:
                if entry["path"] in ours or not entry.get("outputs_plan"):
                    continue
                found[entry["path"]] = Result.succeeded(
                    has_changes=bool(entry["has_changes"]),
                    output_changes=tuple(entry["output_changes"]),
                    outputs_plan=entry["outputs_plan"],
                )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            why = "it is not JSON" if isinstance(exc, ValueError) else "it has no list of stacks"
            raise UsageError(
                f"--upstream-plans: {path} is not a report of 'tfrun plan --json' ({why}); the "
                "folder must hold only such reports. Nothing ran."
            ) from None
    return found


def check_report_path(path: Path, flag: str = "--json") -> None:
    """A report is written after every stack ran (applies included): a path it cannot be
    written to is found before anything runs. Missing folders are made when it is written."""
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    problem = None
    if existing == path and path.is_dir():
        problem = "it is a folder; name a file"
    elif existing != path and not existing.is_dir():
        problem = f"{existing} is a file, so no folder can be made there"
    elif not os.access(existing, os.W_OK):
        problem = "tfrun may not write there"
    if problem:
        raise UsageError(f"{flag} {path}: {problem}. Nothing ran.")


def check_report_paths(reports: Mapping[str, Path | None]) -> None:
    """Each report asked for (by its flag) can be written, and no two name one file: the one
    written last would silently replace the other."""
    named: dict[Path, str] = {}
    for flag, path in reports.items():
        if path is None:
            continue
        check_report_path(path, flag)
        other = named.setdefault(path.absolute(), flag)
        if other != flag:
            raise UsageError(
                f"{other} and {flag} both name {path}; give each its own file. Nothing ran."
            )


def run(
    args: RunArgs,
    *,
    alone: bool = False,
    vet: Callable[[list[Stack]], None] | None = None,
    finish: Callable[[list[Stack], RunReport], int] | None = None,
) -> int:
    """The run, and its exit code. `alone`: no stack waits for another, and each plans
    against the applied state of what it reads, never against another's plan (drift).
    `vet`: raises when the selected stacks cannot run as the caller needs, before anything runs.
    `finish`: turns the stacks and the report into the exit code, instead of the run's own
    reduction."""
    started = time.time()
    if args.gitlab_report is not None and args.command != "plan":
        raise UsageError(
            f"--gitlab-report is for plan: it holds the counts of the resources a plan "
            f"creates, updates and deletes, and 'tfrun {args.command}' makes no plan."
        )
    check_report_paths({"--json": args.json_path, "--gitlab-report": args.gitlab_report})
    workspace = Workspace.load(args.path or Path.cwd())
    selection = select_stacks(workspace, args)
    stacks = selection.stacks
    if vet is not None:
        vet(stacks)
    toolchain = resolve(workspace.repo, args.terraform_bin)  # before anything is written
    # Rendered up front: a config or a person's file in the way is one error before the run.
    generated = {stack.rel: render(workspace.repo, stack, toolchain.endpoint) for stack in stacks}
    for files in generated.values():
        generate.refuse_person_files(files)
    # Each stack's command line as terraform will see it, its config's extra arguments in:
    # the rules judge each stack by its own; the run, by its most dangerous.
    operations = {
        stack.rel: tfargs.classify(
            args.command,
            args.tf_args,
            os.environ,
            configured.extra_arguments(stack, args.command),
        )
        for stack in stacks
    }
    operation = tfargs.most_severe(list(operations.values()))
    scope.shared_state(workspace.stacks, stacks)
    warnings = list(selection.warnings) + workspace.repo.warnings
    if operation.destroys_stack:
        warnings += scope.destroy_consumers(workspace.graph, stacks, os.environ)
    refuse_provisional_plans(stacks, operation)
    plans = SavedPlans(toolchain)
    # Renames first: on a laptop the safety rules would refuse the same plan as destructive,
    # and only this refusal says how to fix it (a moved block).
    unread = {
        stack.rel
        for stack in recreate.guard(
            stacks, operation, allow_recreate=args.allow_recreate, show_plan=plans.show
        )
    }
    confirmations = safety.check(
        stacks,
        operation,
        os.environ,
        can_ask=ui.can_ask(),
        inspect_plan=plans.summary,
        per_stack=operations,
    )
    for warning in warnings:
        ui.info(f"warning: {warning}")
    # A report needs the plan's counts, which a background run reads from the saved plan.
    foreground = selection.foreground and args.json_path is None and args.gitlab_report is None
    # Many stacks: plan them all, show the plans, ask once, apply what was approved.
    reviewed = (
        args.command == "apply" and operation.effect is tfargs.Effect.APPLY and not foreground
    )
    if reviewed:
        approval.can_approve(args, stacks)  # the questions come after the plans
        auto_approve = True
    else:
        auto_approve = approval.approve(selection.stacks, selection.foreground, args, confirmations)
    # After the rules and the approval (a refused or unapproved command asks terraform
    # nothing), before the first terraform command in any stack.
    terraform_version.check(stacks, toolchain.binary, workspace.root, toolchain.env)
    until = time.time() + auth.CACHE_TTL_S  # when a shortcut must check identities again
    if not args.skip_auth_check and auth.wanted(stacks):
        # Before any terraform: an expired login is one paragraph, not one failure per stack.
        needed = auth.identities(stacks, os.environ)
        checked = auth.preflight(workspace.root, needed, toolchain.endpoint, toolchain.env)
        until = auth.valid_until(checked)

    def after_init(stack: Stack) -> None:
        # A saved plan that could not be read before init (a fresh CI job) can be now.
        if stack.rel in unread:
            recreate.guard(
                [stack], operation, allow_recreate=args.allow_recreate, show_plan=plans.show
            )

    # What a foreground, read-only command ran: the next identical one may run it directly.
    launched: list[Sequence[str]] = []
    shortcut = (
        foreground
        and bool(args.argv)
        and not warnings
        and not confirmations
        and operation.effect is tfargs.Effect.READ_ONLY
        and operation.command in express.COMMANDS
        # A hook is tfrun's to run: terraform alone would leave it out.
        and not configured.has_hooks(stacks[0], args.command)
        and args.timeout is None
        and stacks[0].config.timeout_s is None
        and args.upstream_plans is None
        and express.enabled_here(os.environ, in_ci=safety.detect_ci(os.environ) is not None)
    )
    # A destroy (or a plan of one) runs dependents first: a stack goes before what it reads.
    destroying = args.command != "state" and operation.effect in (
        tfargs.Effect.DESTROY,
        tfargs.Effect.PLAN_DESTROY,
    )
    options = engine.RunOptions(
        parallelism=args.parallelism or engine.DEFAULT_PARALLELISM,
        fail_fast=args.fail_fast,
        destroy_order=destroying,
        detailed_exitcode=args.detailed_exitcode,
        lock_timeout=args.lock_timeout,
        timeout_s=args.timeout,
        json_path=args.json_path,
        gitlab_report=args.gitlab_report,
        live_board=ui.live_board() and not foreground,
        foreground=foreground,
        auto_approve=auto_approve,
        terraform=toolchain,
        repo=workspace.repo,
        after_init=after_init if unread else None,
        generated=generated,
        upstream_plans=upstream_plans(args.upstream_plans, stacks),
        launching=launched.append if shortcut else None,
    )
    generate.ensure_gitignore(workspace.root)
    if reviewed:
        from tfrun.commands import reviewed_apply

        return reviewed_apply.run(stacks, selection.waits, args, options, confirmations)
    waits = {} if alone else selection.waits
    report = engine.run(stacks, waits, args.command, args.tf_args, options)
    if finish is not None:
        return finish(stacks, report)
    if foreground:
        [result] = report.results.values()
        ran = launched and result.status in (Status.SUCCEEDED, Status.FAILED)
        if shortcut and ran and (result.exit_code or 0) < 128:
            launch, inputs = express.launch_of(workspace, stacks[0], toolchain, launched[0], until)
            express.remember(str(workspace.root), args.argv, launch, inputs, started)
        else:
            express.forget(str(workspace.root), args.argv)
    if args.command == "output" and not foreground and report.run_dir is not None:
        print_outputs(report, stacks, as_json=tfargs.has_flag(args.tf_args, "json"))
    return engine.exit_code(report, options)


def print_outputs(report: RunReport, stacks: list[Stack], *, as_json: bool) -> None:
    """The outputs of every stack that answered, together, in dependency order."""
    assert report.run_dir is not None
    outputs: dict[str, str | None] = {}
    for stack in stacks:
        if not report.results[stack.rel].ok:
            continue
        kept = report.run_dir / f"{stack.rel}{OUTPUT_SUFFIX}"
        outputs[stack.rel] = kept.read_text(encoding="utf-8") if kept.exists() else None
    ui.print_outputs(outputs, as_json=as_json)
