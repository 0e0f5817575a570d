"""The argument model of a terraform command run through tfrun (`tfrun plan`, `tfrun state
list`, `tfrun run-all apply --env staging`).

tfrun's options are the long ones with two dashes listed in `RUN_OPTIONS`; single-dash options
(`-raw`, `-target=...`) and everything after `--` go to terraform unchanged. The first plain
argument naming an existing folder is the PATH to run in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tfrun import tfargs
from tfrun.errors import UsageError


@dataclass
class RunArgs:
    """A terraform command to run through tfrun, in one stack or many."""

    command: str
    tf_args: list[str] = field(default_factory=list)
    path: Path | None = None
    run_all: bool = False
    yes: bool = False
    debug: bool = False
    terraform_bin: str | None = None
    parallelism: int | None = None
    json_path: Path | None = None
    fail_fast: bool = False
    detailed_exitcode: bool = False
    lock_timeout: float | None = None
    env: list[str] = field(default_factory=list)
    region: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    with_dependencies: bool = False
    allow_recreate: bool = False


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
    if value < 0:
        raise UsageError(f"{flag} takes a number of seconds, 0 or more, not {text!r}.")
    return value


# tfrun's own options on a terraform command: flag → (RunArgs attribute, kind of value).
RUN_OPTIONS: dict[str, tuple[str, str]] = {
    "--yes": ("yes", "flag"),
    "--debug": ("debug", "flag"),
    "--fail-fast": ("fail_fast", "flag"),
    "--detailed-exitcode": ("detailed_exitcode", "flag"),
    "--with-dependencies": ("with_dependencies", "flag"),
    "--allow-recreate": ("allow_recreate", "flag"),
    "--terraform-bin": ("terraform_bin", "text"),
    "--parallelism": ("parallelism", "count"),
    "--json": ("json_path", "path"),
    "--lock-timeout": ("lock_timeout", "seconds"),
    "--env": ("env", "list"),
    "--region": ("region", "list"),
    "--include": ("include", "list"),
    "--exclude": ("exclude", "list"),
}


def _store(args: RunArgs, flag: str, value: str) -> None:
    attribute, kind = RUN_OPTIONS[flag]
    if kind == "list":
        getattr(args, attribute).append(value)
        return
    converters: dict[str, Callable[[], object]] = {
        "flag": lambda: True,
        "text": lambda: value,
        "path": lambda: Path(value),
        "count": lambda: _positive_int(flag, value),
        "seconds": lambda: _seconds(flag, value),
    }
    setattr(args, attribute, converters[kind]())


def parse_run(argv: Sequence[str], cwd: Path) -> RunArgs:
    """Split a terraform command line into tfrun's options, the PATH and terraform's args."""
    args = RunArgs(command="")
    tokens = list(argv)
    passthrough: list[str] = []
    if "--" in tokens:
        cut = tokens.index("--")
        tokens, passthrough = tokens[:cut], tokens[cut + 1 :]
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, has_value, value = token.partition("=")
        if token.startswith("--") and name in RUN_OPTIONS:
            takes_value = RUN_OPTIONS[name][1] != "flag"
            if takes_value and not has_value:
                if i + 1 >= len(tokens):
                    raise UsageError(f"{name} needs a value (for example: {name}=VALUE).")
                i += 1
                value = tokens[i]
            elif not takes_value and has_value:
                raise UsageError(f"{name} takes no value; write just {name}.")
            _store(args, name, value)
        elif token.startswith("--") and len(token) > 2 and not rest:
            raise UsageError(
                f"{token} is not a tfrun option. tfrun's options: "
                f"{', '.join(sorted(RUN_OPTIONS))}. "
                "Options for terraform start with one dash, or go after --."
            )
        else:
            rest.append(token)
        i += 1
    if rest and rest[0] == "run-all":
        args.run_all = True
        rest = rest[1:]
    if not rest or rest[0].startswith("-"):
        raise UsageError(
            "name a terraform command (for example: tfrun plan, tfrun run-all apply --env staging)."
        )
    args.command = rest[0]
    tf_args: list[str] = []
    previous = ""
    for token in rest[1:]:
        takes_path = (
            args.path is None
            and not token.startswith("-")
            and not tfargs.takes_value(previous)
            and (cwd / token).is_dir()
        )
        if takes_path:
            args.path = (cwd / token).resolve()
        else:
            tf_args.append(token)
        previous = token
    args.tf_args = tf_args + passthrough
    return args
