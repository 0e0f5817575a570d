"""A terraform command over many stacks: one approval, then the runner, dependencies first."""

from __future__ import annotations

import os
import sys

from tfrun import graph as graphs
from tfrun import runner, safety, ui
from tfrun.cli import RunArgs
from tfrun.discovery import Repository, Stack
from tfrun.errors import UsageError


def _approve(stacks: list[Stack], args: RunArgs, *, destroying: bool) -> None:
    """Apply and destroy over several stacks: asked once, listing the stacks (DESIGN §5)."""
    if args.command not in ("apply", "destroy") or args.yes:
        return
    verb = "destroy" if destroying else "apply"
    if not ui.can_ask():
        raise UsageError(
            f"'tfrun {args.command}' over {len(stacks)} stacks changes infrastructure and there "
            "is no terminal to ask for approval. Add --yes to approve it in advance."
        )
    listing = "\n".join(f"  {stack.rel}" for stack in stacks)
    answer = ui.ask(
        f"terraform {verb} in these {len(stacks)} stacks, in order:\n{listing}\n"
        "Type 'yes' to go on:"
    )
    if answer.strip() != "yes":
        raise UsageError(f"the answer was not 'yes', so nothing ran ({len(stacks)} stacks).")


def run_many(
    repo: Repository, graph: graphs.Graph | None, stacks: list[Stack], args: RunArgs, binary: str
) -> int:
    """`graph` is None for a single stack, which waits for nothing."""
    selected = {stack.rel for stack in stacks}
    for finding in graph.unresolved if graph else ():
        if finding.stack in selected:
            ui.info(f"warning: {finding.stack}: {finding.message}")
    operation = safety.classify(args.command, args.tf_args, os.environ)
    # A destroy (or a plan of one) runs dependents first: a stack goes before what it reads.
    destroying = args.command != "state" and operation.kind in (
        safety.Kind.DESTROY,
        safety.Kind.PLAN_DESTROY,
    )
    _approve(stacks, args, destroying=destroying)
    options = runner.RunOptions(
        parallelism=args.parallelism or runner.DEFAULT_PARALLELISM,
        fail_fast=args.fail_fast,
        destroy_order=destroying,
        detailed_exitcode=args.detailed_exitcode,
        lock_timeout=args.lock_timeout,
        json_path=args.json_path,
        interactive=sys.stderr.isatty(),
        terraform_bin=binary,
        repo=repo,
    )
    waits = graphs.waits_for(graph, stacks) if graph else {}
    report = runner.run(stacks, waits, args.command, args.tf_args, options)
    return runner.exit_code(report, options)
