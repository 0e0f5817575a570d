"""A terraform command through tfrun: in one stack (the terminal is terraform's), or in many
(the runner schedules them)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfrun import generate, process, recreate, safety, scan, terraform, ui
from tfrun import graph as graphs
from tfrun.cli import RunArgs
from tfrun.discovery import Repository, Stack, is_stack_dir
from tfrun.errors import ConfigError, RefusedError, UsageError

# Commands that change infrastructure and so need an approval.
APPROVAL_COMMANDS = frozenset({"apply", "destroy"})


@dataclass(frozen=True)
class Selection:
    stacks: list[Stack]
    graph: graphs.Graph | None  # built for runs over many stacks only


def select_stacks(repo: Repository, args: RunArgs) -> Selection:
    start = (args.path or Path.cwd()).resolve()
    if args.path is None and repo.root not in (start, *start.parents):
        start = repo.root  # run from above the live root, e.g. the repository's top in CI
    selecting = bool(
        args.env or args.region or args.include or args.exclude or args.with_dependencies
    )
    if not args.run_all and not selecting and is_stack_dir(start) and start != repo.root:
        return Selection([repo.stack(start)], None)
    # The whole repository, even for a part of it: a state key can name any stack.
    every = repo.stacks()
    whole = graphs.build(every, scan.scan(repo.root, every))
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
    return Selection(graphs.order(whole, stacks), whole)


def _show_plan(binary: str, environ: dict[str, str]) -> recreate.ShowPlan:
    """`terraform show -json PLAN` in the stack's folder, parsed; None when it can't be read."""

    def show(stack: Stack, plan: Path) -> Any:
        shown = process.run([binary, "show", "-json", str(plan)], stack.path, environ)
        if shown.returncode != 0:
            return None
        try:
            return json.loads(shown.stdout)
        except ValueError:
            return None

    return show


def _inspect_plan(binary: str, environ: dict[str, str]) -> safety.PlanInspector:
    show = _show_plan(binary, environ)

    def inspect(stack: Stack, plan: Path) -> safety.PlanSummary | None:
        shown = show(stack, plan)
        return None if shown is None else safety.summarise_plan(shown)

    return inspect


def guard(stacks: list[Stack], args: RunArgs, binary: str, environ: dict[str, str]) -> None:
    """The safety rules, before any file is written or terraform starts (DESIGN §7)."""
    confirmations = safety.check(
        stacks,
        args.command,
        args.tf_args,
        os.environ,
        interactive=ui.can_ask(),
        inspect_plan=_inspect_plan(binary, environ),
    )
    for confirmation in confirmations:
        if not confirmation.accepts(ui.ask(confirmation.prompt)):
            raise RefusedError(
                f"{', '.join(confirmation.stacks)}: the answer was not '{confirmation.env}', "
                "so nothing ran."
            )


def run(args: RunArgs) -> int:
    repo = Repository.containing(args.path or Path.cwd())
    selection = select_stacks(repo, args)
    stacks = selection.stacks
    binary = terraform.binary(args.terraform_bin)
    process.resolve_executable(binary)  # before anything is written
    environ = terraform.environ(repo.root)
    # Renames first: on a laptop the safety rules would refuse the same plan as destructive,
    # and only this refusal says how to fix it (a moved block).
    unread = recreate.guard(
        stacks,
        args.command,
        args.tf_args,
        os.environ,
        allow_recreate=args.allow_recreate,
        show_plan=_show_plan(binary, environ),
    )
    guard(stacks, args, binary, environ)
    if selection.graph is not None or args.json_path is not None:
        # Many stacks; or one whose report is wanted, which only the runner writes.
        from tfrun.commands.run_many import run_many

        return run_many(repo, selection.graph, stacks, args, binary)
    return run_one(repo, stacks[0], args, binary, environ, recheck_recreate=bool(unread))


def _needs_auto_approve(args: RunArgs) -> bool:
    if args.command not in APPROVAL_COMMANDS:
        return False
    if args.yes:
        return True
    if not ui.can_ask():
        raise UsageError(
            f"'tfrun {args.command}' changes infrastructure and there is no terminal to ask "
            "for approval. Add --yes to approve it in advance."
        )
    return False  # terraform asks on the terminal itself


def run_one(
    repo: Repository,
    stack: Stack,
    args: RunArgs,
    binary: str,
    env: dict[str, str],
    *,
    recheck_recreate: bool = False,
) -> int:
    auto_approve = _needs_auto_approve(args)
    generate.ensure_gitignore(repo.root)
    prepared = terraform.prepare(repo, stack, binary, env)
    if prepared.init_needed and args.command != "init":
        ui.info(f"{stack.rel}: running terraform init (first run, or the backend changed).")
        # Init's output goes to stderr so that stdout stays the command's (output -json).
        code = process.run_foreground(
            terraform.init_argv(binary, repo.root, stack, env), stack.path, env, stdout=sys.stderr
        )
        if code != 0:
            ui.error(f"{stack.rel}: terraform init failed (exit {code}); see its output above.")
            return code
        terraform.mark_initialised(prepared)
    if recheck_recreate:
        # The saved plan could not be read before init (a fresh CI job); now it can.
        recreate.guard(
            [stack],
            args.command,
            args.tf_args,
            os.environ,
            allow_recreate=args.allow_recreate,
            show_plan=_show_plan(binary, env),
        )
    argv = [binary, args.command]
    if auto_approve and "-auto-approve" not in args.tf_args:
        argv.append("-auto-approve")
    if args.detailed_exitcode and args.command == "plan":
        argv.append("-detailed-exitcode")
    argv += args.tf_args
    code = process.run_foreground(argv, stack.path, env)
    if args.command == "init" and code == 0:
        terraform.mark_initialised(prepared)
    return code
