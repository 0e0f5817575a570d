"""The command line: dispatch to a command, and the one place that turns errors into a
message and an exit code (the table in README.md).

Two shapes of command line:

* tfrun's own commands (`generate`, `graph`, `sandbox`, `check`, ...) use argparse, here.
* Anything else is a terraform command run through tfrun (`tfrun plan`, `tfrun state list`,
  `tfrun run-all apply --env staging`), whose arguments `commands/run_args.py` reads.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from tfrun import __version__, ui
from tfrun.commands import conventions
from tfrun.errors import ExitCode, TfrunError, UsageError

OWN_COMMANDS = (
    "generate",
    "graph",
    "sandbox",
    "check",
    "affected",
    "ci",
    "bootstrap",
    "whoami",
    "drift",
    *conventions.COMMANDS,
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is tfrun's exit 4 (argparse's own 2 means "changes")."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}. See '{self.prog} --help'.")


_DESCRIPTION = (
    "Run Terraform across many AWS accounts, regions and stacks. "
    "Any terraform command runs through tfrun: tfrun plan, tfrun apply PATH, "
    "tfrun run-all apply --env staging, tfrun output -raw vpc_id."
)
_DEBUG_HELP = "show the traceback of an error"
_TERRAFORM_COMMANDS = (
    "On a terraform command (tfrun [run-all] COMMAND [PATH] ...), tfrun's own options are "
    "these, anywhere before --; options with one dash, and everything after --, go to "
    "terraform unchanged. tfrun COMMAND --help shows them for one command."
)


def _own_parser(run_options: str | None = None) -> argparse.ArgumentParser:
    """tfrun's own commands; `run_options`, the table of a terraform command's options, only
    when the help is shown (it is in commands/run_args.py, which own commands do not need)."""
    parser = _Parser(
        prog="tfrun",
        # Raw, so the option table keeps its columns; the prose is wrapped here.
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(_DESCRIPTION, width=79),
        epilog=f"{textwrap.fill(_TERRAFORM_COMMANDS, width=79)}\n\n{run_options}"
        if run_options
        else None,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"tfrun {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="own_command", metavar="COMMAND")

    gen = sub.add_parser("generate", help="write (or with --check, verify) generated files only")
    gen.add_argument("path", nargs="?", type=Path, default=Path())
    gen.add_argument("--check", action="store_true", help="exit 1 with a diff when stale")

    graph = sub.add_parser("graph", help="show the stacks in dependency order")
    graph.add_argument("path", nargs="?", type=Path, default=Path())
    graph.add_argument("--format", choices=("text", "dot", "mermaid", "json"), default="text")

    lint = sub.add_parser(
        "check", help="lint the repository offline: state keys, pins, ownership, cycles (exit 1)"
    )
    lint.add_argument("path", nargs="?", type=Path, default=Path())
    lint.add_argument("--format", choices=("text", "json"), default="text")

    _add_change_parsers(sub)

    box = sub.add_parser("sandbox", help="a local AWS (moto) on 127.0.0.1 for demos and tests")
    box.add_argument("action", choices=("up", "down", "status", "env"))
    box.add_argument("path", nargs="?", type=Path, default=Path())

    boot = sub.add_parser(
        "bootstrap", help="create (or with --check, verify) the state bucket and lock table"
    )
    boot.add_argument("path", nargs="?", type=Path, default=Path())
    boot.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when anything differs"
    )
    who = sub.add_parser("whoami", help="who tfrun is in each environment under PATH (AWS STS)")
    who.add_argument("path", nargs="?", type=Path, default=Path())
    _add_drift_parser(sub)
    conventions.add_parsers(sub)
    _add_debug(parser)
    return parser


def _add_drift_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    drift = sub.add_parser(
        "drift",
        help="plan every stack under PATH, read-only, and report what drifted (exit 2)",
        description="Plan every selected stack (read-only: nothing is applied, no plan is "
        "kept) and report the stacks whose plan has changes, with the resources changed "
        "outside terraform and what an apply would change. Exit 0: nothing drifted; 2: a "
        "stack drifted; 1: a stack failed (failure wins over drift). See docs/drift.md.",
    )
    drift.add_argument("path", nargs="?", type=Path, default=Path())
    for flag, metavar, text in (
        ("--env", "ENV", "only the stacks of this environment (repeatable)"),
        ("--region", "REGION", "only the stacks in this region or 'global' (repeatable)"),
        ("--include", "GLOB", "only stacks whose name or path matches (repeatable)"),
        ("--exclude", "GLOB", "leave out stacks whose name or path matches (repeatable)"),
    ):
        drift.add_argument(flag, action="append", default=[], metavar=metavar, help=text)
    drift.add_argument("--parallelism", type=int, metavar="N", help="plan at most N at once")
    drift.add_argument(
        "--json", type=Path, metavar="FILE", dest="json_path", help="write the report as JSON"
    )
    drift.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        dest="markdown_path",
        help="write a Markdown summary (for an issue or a CI job)",
    )


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """`--debug` after any own command too (`tfrun check --debug`), as errors suggest it.
    `main` reads it from the command line itself; the parsers only need to accept it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                # SUPPRESS: a default here would overwrite `tfrun --debug check`'s True.
                command.add_argument(
                    "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
                )
                _add_debug(command)


def _own(argv: Sequence[str]) -> int:
    # Each command imports what it needs only when it runs: start-up is most of a warm
    # `tfrun graph` on a large repository.
    parser = _own_parser()
    options = parser.parse_args(argv)
    if options.own_command == "generate":
        from tfrun.commands import generate as generate_command

        return generate_command.run(options.path, check=options.check)
    if options.own_command == "sandbox":
        from tfrun.commands import sandbox as sandbox_command

        return sandbox_command.run(options.action, options.path)
    if options.own_command == "graph":
        from tfrun.commands.graph import graph

        return graph(options.path, options.format)
    if options.own_command == "check":
        from tfrun.commands.check import check

        return check(options.path, options.format)
    if options.own_command == "bootstrap":
        from tfrun.commands import bootstrap as bootstrap_command

        return bootstrap_command.run(options.path, check=options.check)
    if options.own_command == "whoami":
        from tfrun.commands.whoami import whoami

        return whoami(options.path)
    if options.own_command == "drift":
        from tfrun.commands.drift import drift

        return drift(
            options.path,
            env=options.env,
            region=options.region,
            include=options.include,
            exclude=options.exclude,
            parallelism=options.parallelism,
            json_path=options.json_path,
            markdown_path=options.markdown_path,
        )
    if options.own_command in ("affected", "ci"):
        return _own_change(options)
    if options.own_command in conventions.COMMANDS:
        return conventions.run(options, _own_parser)
    raise UsageError(f"'{options.own_command}' is not a tfrun command.")


def _add_change_parsers(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`affected` and `ci`: what a git change touches, and pipelines for it."""

    def change_options(parser: argparse.ArgumentParser, *, base_required: bool) -> None:
        parser.add_argument("path", nargs="?", type=Path, default=Path())
        parser.add_argument(
            "--base",
            required=base_required,
            metavar="REF",
            help="compare with this commit (its merge base with HEAD)",
        )
        parser.add_argument(
            "--head", metavar="REF", help="compare this commit (default: the working tree)"
        )
        parser.add_argument(
            "--with-dependents",
            action="store_true",
            help="add the stacks that read an affected stack's state, transitively",
        )

    affected = sub.add_parser("affected", help="list the stacks a git change touches, and why")
    change_options(affected, base_required=True)
    affected.add_argument("--format", choices=("text", "json", "paths"), default="text")

    ci = sub.add_parser("ci", help="CI pipelines for the stacks a change touches")
    targets = ci.add_subparsers(dest="ci_target", metavar="TARGET", required=True)
    gitlab = targets.add_parser("gitlab", help="a GitLab child pipeline (YAML on stdout)")
    change_options(gitlab, base_required=False)
    gitlab.add_argument(
        "--static",
        action="store_true",
        help="every stack, each job with `rules: changes:` (no child pipeline)",
    )
    gitlab.add_argument("--plan-only", action="store_true", help="plan jobs only (merge requests)")
    gitlab.add_argument(
        "--drift",
        action="store_true",
        help="a scheduled pipeline: one 'tfrun drift' job per environment (docs/drift.md)",
    )
    gitlab.add_argument("--image", help="the jobs' image")
    gitlab.add_argument("--tag", action="append", default=[], help="a runner tag (repeatable)")
    gitlab.add_argument(
        "--before-script",
        action="append",
        default=[],
        metavar="LINE",
        help="a before_script line (repeatable), e.g. to install tfrun",
    )
    gitlab.add_argument(
        "--needs-limit",
        type=int,
        default=50,
        metavar="N",
        help="the most jobs one job may need (GitLab's ci_needs_size_limit; default 50)",
    )
    github = targets.add_parser("github", help="a GitHub Actions matrix (JSON on stdout)")
    change_options(github, base_required=False)
    summary = targets.add_parser("summary", help="one table from the plan jobs' JSON reports")
    summary.add_argument("reports", nargs="+", type=Path, metavar="REPORT")
    summary.add_argument(
        "--expect", action="append", default=[], metavar="STACK", help="a stack with a plan job"
    )
    comment = targets.add_parser(
        "comment",
        help="the plans as one comment on the merge request, updated in place (docs/ci.md)",
    )
    comment.add_argument("reports", nargs="+", type=Path, metavar="REPORT")
    comment.add_argument(
        "--expect", action="append", default=[], metavar="STACK", help="a stack with a plan job"
    )
    comment.add_argument(
        "--github", action="store_true", help="on the GitHub pull request (default: GitLab)"
    )
    comment.add_argument(
        "--key",
        help="which comment to update (default: the live root the reports are under)",
    )


def _own_change(options: argparse.Namespace) -> int:
    if options.own_command == "affected":
        from tfrun.commands import affected as affected_command

        return affected_command.run(
            options.path,
            base=options.base,
            head=options.head,
            with_dependents=options.with_dependents,
            fmt=options.format,
        )
    if options.ci_target == "comment":
        from tfrun.commands import comment as comment_command

        return comment_command.run(
            options.reports, options.expect, github=options.github, key=options.key
        )
    from tfrun.commands import ci as ci_command

    if options.ci_target == "summary":
        return ci_command.summary(options.reports, options.expect)
    if options.ci_target == "github":
        return ci_command.github(
            options.path,
            base=options.base,
            head=options.head,
            with_dependents=options.with_dependents,
        )
    if options.drift:
        return _ci_gitlab_drift(options)
    return ci_command.gitlab(
        options.path,
        base=options.base,
        head=options.head,
        with_dependents=options.with_dependents,
        static=options.static,
        plan_only=options.plan_only,
        image=options.image,
        tags=options.tag,
        before_script=options.before_script,
        needs_limit=options.needs_limit,
    )


def _ci_gitlab_drift(options: argparse.Namespace) -> int:
    from tfrun.commands import ci as ci_command

    given = [
        flag
        for flag, value in (
            ("--base", options.base),
            ("--head", options.head),
            ("--with-dependents", options.with_dependents),
            ("--static", options.static),
            ("--plan-only", options.plan_only),
        )
        if value
    ]
    if given:
        raise UsageError(
            f"tfrun ci gitlab --drift checks every stack under PATH in a scheduled pipeline; "
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for pipelines of a "
            "change. Leave them out."
        )
    return ci_command.gitlab_drift(
        options.path, image=options.image, tags=options.tag, before_script=options.before_script
    )


def dispatch(argv: Sequence[str]) -> int:
    first = next((a for a in argv if a != "--debug"), None)
    if first == "-help":  # terraform's spelling; argparse knows only -h and --help
        first = "--help"
    if first is None or first in ("-h", "--help", "help", "--version"):
        from tfrun.commands.run_args import options_help

        parser = _own_parser(options_help())
        if first in (None, "help"):
            parser.print_help()
            return 0 if first == "help" else int(ExitCode.BAD_CONFIG)
        parser.parse_args([first])
        return 0
    if first in OWN_COMMANDS:
        return _own(argv)
    from tfrun.commands.run_args import command_help, parse_run

    args = parse_run(argv, Path.cwd(), os.environ)
    if args.help:
        sys.stdout.write(command_help(args))
        return 0
    from tfrun.commands import run as run_command

    return run_command.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    head = argv[: argv.index("--")] if "--" in argv else argv
    debug = "--debug" in head or os.environ.get("TFRUN_DEBUG") == "1"
    try:
        return dispatch(argv)
    except TfrunError as exc:
        if debug:
            traceback.print_exc()
        ui.error(str(exc))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        ui.error("interrupted.")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        ui.error(
            f"unexpected error: {type(exc).__name__}: {exc}. This is a bug in tfrun; "
            "run again with --debug for the traceback and report it."
        )
        return int(ExitCode.STACK_FAILED)
