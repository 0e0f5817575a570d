"""The argument model of a terraform command run through tfrun (`tfrun plan`, `tfrun state
list`, `tfrun run-all apply --env staging`).

tfrun's options are the long ones with two dashes listed in `RUN_OPTIONS`; single-dash options
(`-raw`, `-target=...`) and everything after `--` go to terraform unchanged. The first plain
argument naming an existing folder is the PATH to run in.

The scope of a run is exactly what the person named: an argument that looks like a PATH but
names nothing, or a two-dash option that is not tfrun's, is an error here. Read as terraform's
argument instead, either would leave the PATH or a filter out and run a wider set of stacks.
"""

from __future__ import annotations

import difflib
import math
import textwrap
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from tfrun import tfargs
from tfrun.commands.run_path import kind_of, refuse_missing_path
from tfrun.durations import parse_duration
from tfrun.errors import UsageError


@dataclass
class RunArgs:
    """A terraform command to run through tfrun, in one stack or many."""

    command: str
    tf_args: list[str] = field(default_factory=list)
    path: Path | None = None
    run_all: bool = False
    help: bool = False  # show tfrun's help for the command; nothing runs
    yes: bool = False
    debug: bool = False
    terraform_bin: str | None = None
    parallelism: int | None = None
    json_path: Path | None = None
    gitlab_report: Path | None = None
    fail_fast: bool = False
    detailed_exitcode: bool = False
    lock_timeout: float | None = None
    timeout: float | None = None
    skip_auth_check: bool = False
    upstream_plans: Path | None = None
    env: list[str] = field(default_factory=list)
    region: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    with_dependencies: bool = False
    allow_recreate: bool = False
    argv: tuple[str, ...] = ()  # the whole command line, as typed


class RunOption(NamedTuple):
    attribute: str  # of RunArgs
    kind: str  # flag, text, path, count, seconds, duration or list (repeatable)
    help: str  # one line, for `tfrun --help` and `tfrun COMMAND --help`
    metavar: str = ""
    # The environment variable that sets it when the flag is not given. Only the options of
    # how a run goes; never what it selects (--env, --include, ...: a variable left set in a
    # shell would silently narrow or widen a run) nor one that lifts a refusal
    # (--allow-recreate), nor a per-command file (--json).
    variable: str = ""


# tfrun's own options on a terraform command, in the order the helps list them.
RUN_OPTIONS: dict[str, RunOption] = {
    "--yes": RunOption(
        "yes", "flag", "approve apply and destroy up front, without a prompt", "", "TFRUN_YES"
    ),
    "--env": RunOption("env", "list", "only the stacks of this environment (repeatable)", "ENV"),
    "--region": RunOption(
        "region", "list", "only the stacks in this region or 'global' (repeatable)", "REGION"
    ),
    "--include": RunOption(
        "include", "list", "only stacks whose name or path matches (repeatable)", "GLOB"
    ),
    "--exclude": RunOption(
        "exclude", "list", "leave out stacks whose name or path matches (repeatable)", "GLOB"
    ),
    "--with-dependencies": RunOption(
        "with_dependencies", "flag", "add the stacks the chosen ones read state from"
    ),
    "--parallelism": RunOption(
        "parallelism", "count", "run at most N stacks at once", "N", "TFRUN_PARALLELISM"
    ),
    "--fail-fast": RunOption(
        "fail_fast", "flag", "start no more stacks after a failure", "", "TFRUN_FAIL_FAST"
    ),
    "--detailed-exitcode": RunOption(
        "detailed_exitcode", "flag", "exit 2 when a plan has changes, 0 when none"
    ),
    "--json": RunOption("json_path", "path", "write a report of the run as JSON to FILE", "FILE"),
    "--gitlab-report": RunOption(
        "gitlab_report",
        "path",
        "plan: write GitLab's Terraform report (create/update/delete counts) to FILE",
        "FILE",
    ),
    "--lock-timeout": RunOption(
        "lock_timeout",
        "seconds",
        "wait at most this long for a run already in a stack",
        "SECONDS",
        "TFRUN_LOCK_TIMEOUT",
    ),
    "--timeout": RunOption(
        "timeout",
        "duration",
        "end each terraform command that runs longer (90s, 30m, 1h)",
        "TIME",
        "TFRUN_TIMEOUT",
    ),
    "--allow-recreate": RunOption(
        "allow_recreate", "flag", "allow an apply that recreates renamed resources"
    ),
    "--terraform-bin": RunOption(
        "terraform_bin", "text", "the terraform (or tofu) executable to run", "BIN"
    ),
    "--upstream-plans": RunOption(
        "upstream_plans",
        "path",
        "JSON reports of plans other CI jobs made: readers plan against their planned outputs",
        "DIR",
    ),
    "--skip-auth-check": RunOption(
        "skip_auth_check", "flag", "do not check the AWS identities first (docs/auth.md)"
    ),
    "--debug": RunOption("debug", "flag", "show the traceback of an error"),
}
# Help on a terraform command is tfrun's: terraform's own would come after init in every stack.
HELP_FLAGS = frozenset({"-h", "-help", "--help"})


def options_help() -> str:
    """tfrun's options on a terraform command, one line each."""
    lines = []
    for flag, option in RUN_OPTIONS.items():
        usage = f"{flag} {option.metavar}".strip()
        lines.append(f"  {usage:<24}{option.help}")
    return "\n".join(lines)


def command_help(args: RunArgs) -> str:
    """`tfrun [run-all] COMMAND --help`: how tfrun runs the command, and its options."""
    command = args.command or "COMMAND"
    prefix = "tfrun run-all" if args.run_all else "tfrun"
    terraform_help = f"terraform {args.command} -help" if args.command else "terraform -help"
    where = (
        "in every stack at or below PATH (default: the current folder)"
        if args.run_all
        else "in the stack at PATH (default: the current folder), or in every stack below it"
    )
    about = (
        f"Runs terraform {command} {where}, in dependency order, after writing each stack's "
        "generated files and running terraform init where needed. PATH is the first plain "
        "argument that names an existing folder; one that looks like a path but names "
        "nothing is an error."
    )
    passing = (
        "Options with one dash (-raw, -target=ADDRESS) and everything after -- go to "
        f"terraform unchanged. terraform's own help for the command: {terraform_help}"
    )
    return (
        f"usage: {prefix} {command} [PATH] [tfrun options] [terraform options] "
        "[-- terraform arguments]\n\n"
        f"{textwrap.fill(about, width=79)}\n\n"
        "tfrun's options (two dashes, anywhere before --):\n"
        f"{options_help()}\n\n"
        f"{textwrap.fill(_environment_help(), width=79)}\n\n"
        f"{textwrap.fill(passing, width=79)}\n"
    )


def _environment_help() -> str:
    settings = ", ".join(
        f"{option.variable} ({flag})" for flag, option in RUN_OPTIONS.items() if option.variable
    )
    return f"From the environment when the flag is not given: {settings}. A flag wins."


def _positive_int(flag: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{flag} takes a whole number of 1 or more, not {text!r}.")
    return value


def _seconds(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    # float() reads "nan" and "inf" too: a wait that never ends is not a timeout.
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{flag} takes a number of seconds, 0 or more, not {text!r}.")
    return value


def _duration(flag: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}.") from None


def _store(args: RunArgs, flag: str, value: str, *, name: str = "") -> None:
    """Set the option `flag` to `value`; `name` is where the value came from, for errors
    (the flag, or the environment variable)."""
    attribute, kind = RUN_OPTIONS[flag][:2]
    if kind == "list":
        getattr(args, attribute).append(value)
        return
    name = name or flag
    converters: dict[str, Callable[[], object]] = {
        "flag": lambda: _switch(name, value) if name != flag else True,
        "text": lambda: value,
        "path": lambda: Path(value),
        "count": lambda: _positive_int(name, value),
        "seconds": lambda: _seconds(name, value),
        "duration": lambda: _duration(name, value),
    }
    setattr(args, attribute, converters[kind]())


_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})


def _switch(variable: str, text: str) -> bool:
    word = text.strip().lower()
    if word not in _TRUE | _FALSE:
        raise UsageError(
            f"{variable}={text!r}: this environment variable takes 1, true or yes to turn the "
            "option on, 0, false or no to leave it off."
        )
    return word in _TRUE


def from_environment(args: RunArgs, given: Collection[str], environ: Mapping[str, str]) -> None:
    """The options the command line left out, from their environment variables (an empty
    variable counts as unset). A bad value is an error naming the variable, even where the
    default would do: the person meant something by it."""
    for flag, option in RUN_OPTIONS.items():
        text = environ.get(option.variable, "") if option.variable else ""
        if text.strip() and option.attribute not in given:
            _store(args, flag, text, name=option.variable)


def _not_an_option(name: str) -> UsageError:
    close = difflib.get_close_matches(name, RUN_OPTIONS, n=1)
    hint = f"; did you mean {close[0]}?" if close else "."
    return UsageError(
        f"{name} is not a tfrun option{hint} tfrun's options: {', '.join(sorted(RUN_OPTIONS))}. "
        "Options for terraform start with one dash (-target=ADDRESS), or go after --."
    )


def parse_run(argv: Sequence[str], cwd: Path, environ: Mapping[str, str] | None = None) -> RunArgs:
    """Split a terraform command line into tfrun's options, the PATH and terraform's args;
    the options not given come from `environ`'s TFRUN_ variables (none when it is None)."""
    args = RunArgs(command="", argv=tuple(argv))
    given: set[str] = set()
    tokens = list(argv)
    passthrough: list[str] = []
    if "--" in tokens:
        cut = tokens.index("--")
        tokens, passthrough = tokens[:cut], tokens[cut + 1 :]
    rest: list[str] = []
    # The first mistake is raised only after the whole line is read: help wins over it.
    problem: UsageError | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, has_value, value = token.partition("=")
        if token in HELP_FLAGS:
            args.help = True
        elif token.startswith("--") and name in RUN_OPTIONS:
            takes_value = RUN_OPTIONS[name].kind != "flag"
            try:
                if takes_value and not has_value:
                    if i + 1 >= len(tokens):
                        raise UsageError(f"{name} needs a value (for example: {name}=VALUE).")
                    i += 1
                    value = tokens[i]
                elif not takes_value and has_value:
                    raise UsageError(f"{name} takes no value; write just {name}.")
                _store(args, name, value)
                given.add(RUN_OPTIONS[name].attribute)
            except UsageError as exc:
                problem = problem or exc
        elif token.startswith("--"):
            problem = problem or _not_an_option(name)
        else:
            rest.append(token)
        i += 1
    if rest and rest[0] == "run-all":
        args.run_all = True
        rest = rest[1:]
    named = bool(rest) and rest[0].strip() != "" and not rest[0].startswith("-")
    if args.help:
        args.command = rest[0] if named else ""
        return args
    if problem is not None:
        raise problem
    from_environment(args, given, environ or {})
    if not named:
        # An empty command would be terraform with no command, in every stack.
        raise UsageError(
            "name a terraform command (for example: tfrun plan, tfrun run-all apply --env staging)."
        )
    args.command = rest[0]
    args.path, tf_args = _split_path(args.command, rest[1:], cwd)
    args.tf_args = tf_args + passthrough
    return args


def _split_path(command: str, words: Sequence[str], cwd: Path) -> tuple[Path | None, list[str]]:
    """The PATH among a command's words, and the words left for terraform."""
    plain = {
        index
        for index, word in enumerate(words)
        if not word.startswith("-") and not (index and tfargs.takes_value(words[index - 1]))
    }  # the words that are neither a flag nor a flag's value (`-var-file FILE`)
    # `import ADDRESS ID`: an ID may have a slash (`subnet-1/rtb-2`) and is never a folder.
    resource_id = max(plain) if command == "import" and len(plain) >= 2 else None
    path: Path | None = None
    tf_args: list[str] = []
    for index, word in enumerate(words):
        kind = kind_of(cwd / word) if index in plain else "flag"
        if kind == "folder" and path is None:
            path = (cwd / word).resolve()
            continue
        if kind in ("nothing", "broken link") and index != resource_id:
            refuse_missing_path(command, word, cwd, broken_link=kind == "broken link")
        tf_args.append(word)
    return path, tf_args
