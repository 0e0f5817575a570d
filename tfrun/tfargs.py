"""The one module that knows terraform's command line: which command a line runs (as terraform
itself reads it, `TF_CLI_ARGS*` included), what that command does to infrastructure and state,
which flags take a value, and the flags tfrun adds or looks for (`-out`, `-auto-approve`).

`classify` reads a command line the way terraform does (mitchellh/cli picks the command, Go's
flag package the flags, `TF_CLI_ARGS` and `TF_CLI_ARGS_<command>` are merged in after the
command) and, wherever that reading is uncertain, errs towards "destructive": a false refusal
costs a person a minute, a false pass can cost production. A run classifies its command line
once and hands the `Operation` to the safety rules, the rename guard and the runner.

Long on purpose: this is the one table of terraform's flags, and what reads a command line
(classify), what builds one (command_argv) and what a config may add to one
(configured_argument_problem) must agree on it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum


class Effect(StrEnum):
    READ_ONLY = "read-only"  # changes neither infrastructure nor state
    PLAN_DESTROY = "plan-destroy"  # read-only, but applying the saved plan would destroy
    APPLY = "apply"  # changes infrastructure or state, removes nothing by itself
    APPLY_SAVED_PLAN = "apply-saved-plan"  # what it does is in the plan file
    DESTROY = "destroy"  # destroys or recreates resources, drops or overwrites state, unlocks


@dataclass(frozen=True)
class Operation:
    effect: Effect
    command: str  # as terraform resolves it: "apply", "state rm"; "" when there is none
    description: str  # for messages: "apply -destroy (from TF_CLI_ARGS_apply)"
    argv: tuple[str, ...]  # what terraform will see, TF_CLI_ARGS merged in
    plan_file: str | None = None  # apply's saved plan, relative to the stack's folder
    chdir: str | None = None

    @property
    def destroys_stack(self) -> bool:
        """Every resource of the stack goes (`destroy`, `apply -destroy`), outputs with them."""
        return self.effect is Effect.DESTROY and (
            self.command == "destroy" or self.description.startswith(f"{self.command} -destroy")
        )

    @property
    def writes(self) -> bool:
        return self.effect not in (Effect.READ_ONLY, Effect.PLAN_DESTROY)


_READ_ONLY_COMMANDS = frozenset(
    {
        "",  # no command: terraform prints its help
        "console", "fmt", "get", "graph", "init", "login", "logout", "modules", "output",
        "plan", "query", "show", "validate", "version",
        "metadata", "metadata functions",
        "providers", "providers lock", "providers mirror", "providers schema",
        "state", "state list", "state pull", "state show", "state identities",
        "workspace", "workspace list", "workspace select", "workspace show",
        "env", "env list", "env select",  # `env`: the deprecated name of `workspace`
    }
)  # fmt: skip
# `test` applies and destroys real resources (its own, in the stack's account); `import`,
# `refresh`, `untaint` and `replace-provider` write state; `workspace new` creates one.
_APPLY_COMMANDS = frozenset(
    {"apply", "import", "refresh", "test", "untaint", "workspace new", "env new",
     "state replace-provider", "state mv"}
)  # fmt: skip
# `taint` is `apply -replace` in two steps; `force-unlock` lets two writers corrupt the state.
_DESTROY_COMMANDS = frozenset(
    {"destroy", "force-unlock", "state push", "state rm", "taint", "workspace delete",
     "env delete"}
)  # fmt: skip
_KNOWN_COMMANDS = _READ_ONLY_COMMANDS | _APPLY_COMMANDS | _DESTROY_COMMANDS
KNOWN_COMMANDS = _KNOWN_COMMANDS  # public: shell completion lists them

# Flags of any terraform command that take a value; Go's flag package then reads the next
# argument as that value. Unknown flags are read as booleans, which never hides a positional.
_VALUE_FLAGS = frozenset(
    {"backend-config", "backup", "chdir", "cloud-run", "config", "exclude", "filter",
     "from-module", "fs-mirror", "generate-config-out", "lock-timeout", "lockfile",
     "module-depth", "net-mirror", "out", "parallelism", "plan", "platform", "plugin-dir",
     "provider", "replace", "state", "state-out", "target", "test-directory", "type", "var",
     "var-file"}
)  # fmt: skip
_BOOL_FLAGS = frozenset(
    {"allow-missing", "auto-approve", "backend", "check", "compact-warnings", "destroy",
     "detailed-exitcode", "diff", "draw-cycles", "dry-run", "enable-plugin-cache", "force",
     "force-copy", "get", "ignore-remote-version", "input", "json", "list", "lock",
     "migrate-state", "no-color", "or-create", "raw", "recursive", "reconfigure", "refresh",
     "refresh-only", "upgrade", "verbose", "write"}
)  # fmt: skip
# Go's strconv.ParseBool.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_FLAG = re.compile(r"-+(?P<name>[^=]+)(?:=(?P<value>.*))?", re.DOTALL)

# One argument and the variable it came from (None: the command line itself).
_Arg = tuple[str, str | None]


def _split(argv: Sequence[str]) -> tuple[int, str, int]:
    """Where the command starts, what it is, and where its arguments start (mitchellh/cli)."""
    for i, arg in enumerate(argv):
        if arg == "--":
            return i, "", i
        if arg == "" or arg.startswith("-"):
            continue
        words: list[str] = []
        for word in argv[i:]:
            if word == "" or word.startswith("-") or " " in word:
                break
            words.append(word)
        for n in range(len(words), 0, -1):
            if " ".join(words[:n]) in _KNOWN_COMMANDS:
                return i, " ".join(words[:n]), i + n
        return i, arg, i + 1  # unknown to tfrun; terraform may know it
    return len(argv), "", len(argv)


def _merge_env_args(
    argv: list[_Arg], command: str, environ: Mapping[str, str]
) -> tuple[list[_Arg], str | None]:
    """terraform's mergeEnvArgs: each variable's words go right after the command's last word
    (or first of all when there is no command), so they can turn `state` into `state rm` or an
    empty command line into `destroy`. Also the first variable that could not be parsed."""
    unreadable = None
    suffix = command.replace("-", "_").replace(" ", "_")
    search = command.rsplit(" ", 1)[-1]
    for name in ("TF_CLI_ARGS", f"TF_CLI_ARGS_{suffix}"):
        value = environ.get(name, "")
        if not value:
            continue
        try:
            extra = shlex.split(value)
        except ValueError:
            extra = value.split()
            unreadable = unreadable or name
        at = next((i + 1 for i, (text, _) in enumerate(argv) if text == search), 0)
        argv = [*argv[:at], *((word, name) for word in extra), *argv[at:]]
    return argv, unreadable


def _parse_bool(value: str | None) -> bool | None:
    """A Go boolean flag's value: bare means true; None when Go would reject it."""
    if value is None or value in _TRUE:
        return True
    return False if value in _FALSE else None


def _occurrences(argv: Sequence[_Arg], name: str) -> list[tuple[str | None, str | None]]:
    """Every `-name`/`--name[=value]` anywhere, as (value, origin): terraform stops reading
    flags at the first positional, but counting later ones too can only refuse more."""
    found: list[tuple[str | None, str | None]] = []
    for text, origin in argv:
        match = _FLAG.fullmatch(text)
        if match and match["name"] == name:
            found.append((match["value"], origin))
    return found


def _switched_on(argv: Sequence[_Arg], name: str) -> tuple[bool, str | None]:
    """Whether any occurrence of a boolean flag is on (or unreadable), and where it came from.
    Go lets the last one win; counting any one on is stricter and can't be talked out of."""
    for value, origin in _occurrences(argv, name):
        if _parse_bool(value) is not False:
            return True, origin
    return False, None


def _go_flags(args: Sequence[str]) -> tuple[dict[str, list[str | None]], list[str], bool]:
    """Go's flag package: (flags with their values, positionals, whether every flag is known)."""
    flags: dict[str, list[str | None]] = {}
    known = True
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return flags, list(args[i + 1 :]), known
        match = _FLAG.fullmatch(arg)
        if not match:
            return flags, list(args[i:]), known
        name, value = match["name"], match["value"]
        if value is None and name in _VALUE_FLAGS and i + 1 < len(args):
            i += 1
            value = args[i]
        known = known and name in (_VALUE_FLAGS | _BOOL_FLAGS)
        flags.setdefault(name, []).append(value)
        i += 1
    return flags, [], known


def _from(origin: str | None) -> str:
    return f" (from {origin})" if origin else ""


def _classify_command(command: str, argv: Sequence[_Arg], args: Sequence[str]) -> Operation:
    """`argv` is everything terraform sees, `args` the command's own arguments."""

    def op(effect: Effect, description: str, plan_file: str | None = None) -> Operation:
        texts = tuple(text for text, _ in argv)
        return Operation(effect, command, description, texts, plan_file)

    destroy, destroy_from = _switched_on(argv, "destroy")
    replacing = _occurrences(argv, "replace")
    if command == "plan":
        if destroy:
            return op(Effect.PLAN_DESTROY, "plan -destroy" + _from(destroy_from))
        if replacing:
            return op(Effect.PLAN_DESTROY, "plan -replace" + _from(replacing[0][1]))
        return op(Effect.READ_ONLY, "plan")
    if command in _KNOWN_COMMANDS - _READ_ONLY_COMMANDS:
        if destroy:
            return op(Effect.DESTROY, f"{command} -destroy" + _from(destroy_from))
        if replacing:
            return op(Effect.DESTROY, f"{command} -replace" + _from(replacing[0][1]))
    if command == "init":
        for flag in ("migrate-state", "force-copy"):
            on, origin = _switched_on(argv, flag)
            if on:
                return op(Effect.DESTROY, f"init -{flag}" + _from(origin))
        return op(Effect.READ_ONLY, "init")
    if command in ("workspace select", "env select"):
        on, origin = _switched_on(argv, "or-create")
        if on:
            return op(Effect.APPLY, f"{command} -or-create" + _from(origin))
    if command in ("state rm", "state mv"):
        flags, _, known = _go_flags(args)
        dry_runs = flags.get("dry-run", [])
        if known and dry_runs and all(_parse_bool(v) is True for v in dry_runs):
            return op(Effect.READ_ONLY, f"{command} -dry-run")
        elsewhere = _occurrences(argv, "state-out") or _occurrences(argv, "state")
        if command == "state mv" and elsewhere:
            # Out of this stack's state into a file: as good as `state rm` for the stack.
            return op(Effect.DESTROY, "state mv to another state file" + _from(elsewhere[0][1]))
        if command == "state mv":
            return op(Effect.APPLY, "state mv within the stack's state")
    if command == "apply":
        _, positionals, _ = _go_flags(args)
        if len(positionals) == 1:
            return op(Effect.APPLY_SAVED_PLAN, "apply of a saved plan", positionals[0])
        if positionals:
            # terraform refuses this itself; if it is a flag tfrun does not know, be careful.
            extra = " ".join(positionals)
            return op(Effect.DESTROY, f"apply with arguments tfrun cannot read ({extra})")
    if command in _DESTROY_COMMANDS:
        return op(Effect.DESTROY, command)
    if command in _APPLY_COMMANDS:
        return op(Effect.APPLY, command)
    if command in _READ_ONLY_COMMANDS:
        return op(Effect.READ_ONLY, command or "terraform with no command")
    # A newer terraform's command, or a typo: unknown is treated as the worst case.
    return op(Effect.DESTROY, f"the terraform command '{command}', which tfrun does not know")


def _chdir(flags: Sequence[str]) -> str | None:
    for flag in flags:
        match = _FLAG.fullmatch(flag)
        if match and match["name"] == "chdir":
            return match["value"] or ""
    return None


def classify(
    command: str,
    args: Sequence[str],
    environ: Mapping[str, str],
    configured: Sequence[tuple[str, str]] = (),
) -> Operation:
    """What terraform will do with `terraform <command> <args>` under `environ`.

    `command` may be empty and `args` may start with global flags (`-chdir=...`); `args` is
    everything tfrun passes on, including what came after `--`. `configured`: the flags a
    stack's config adds right after the command (`extra_arguments`), each with where it was
    set, seen by the rules exactly as if typed.
    """
    words = command.split()
    given: list[_Arg] = [(word, None) for word in words]
    given += [(word, origin) for word, origin in configured] if words else []
    given += [(word, None) for word in args]
    _, original, _ = _split([text for text, _ in given])
    argv, unreadable = _merge_env_args(given, original, environ)
    texts = [text for text, _ in argv]
    start, resolved, args_start = _split(texts)
    operation = _classify_command(resolved, argv, texts[args_start:])
    if unreadable and operation.effect is not Effect.DESTROY:
        description = f"{operation.description} with a {unreadable} that tfrun cannot parse"
        operation = replace(operation, effect=Effect.DESTROY, description=description)
    return replace(operation, chdir=_chdir(texts[:start]))


# The order in which a run's operations count as more dangerous: a run whose stacks' configs
# make its command line differ is decided by its most dangerous stack (commands/run.py).
_SEVERITY = (
    Effect.READ_ONLY,
    Effect.PLAN_DESTROY,
    Effect.APPLY,
    Effect.APPLY_SAVED_PLAN,
    Effect.DESTROY,
)


def severity(operation: Operation) -> int:
    return _SEVERITY.index(operation.effect)


def most_severe(operations: Sequence[Operation]) -> Operation:
    """The first of the most dangerous of `operations` (not empty)."""
    return max(operations, key=severity)


def takes_value(flag: str) -> bool:
    """Whether terraform reads the argument after `flag` as its value (`-var-file FILE`)."""
    match = _FLAG.fullmatch(flag)
    return match is not None and match["value"] is None and match["name"] in _VALUE_FLAGS


def user_plan_file(args: Sequence[str]) -> str | None:
    """The `-out` a person gave, relative to the stack's folder."""
    for index, arg in enumerate(args):
        match = _FLAG.fullmatch(arg)
        if not match or match["name"] != "out":
            continue
        if match["value"] is not None:
            return match["value"]
        if index + 1 < len(args):
            return args[index + 1]
    return None


def has_flag(args: Sequence[str], name: str) -> bool:
    """Whether `-name` (or `-name=...`) is among `args`."""
    return any((m := _FLAG.fullmatch(arg)) is not None and m["name"] == name for arg in args)


def saved_plan(command: str, args: Sequence[str]) -> str | None:
    """The plan file of `apply PLANFILE`, relative to the stack's folder; terraform takes no
    -var or -var-file with it (the plan holds them)."""
    if command != "apply":
        return None
    _, positionals, _ = _go_flags(args)
    return positionals[0] if positionals else None


# --- What a stack's config may add (config.py's extra_arguments and hooks) --------------------

# Commands whose flags follow the command's name directly, so configured flags go right after
# it (`terraform state list` has a subcommand first, and is not here).
CONFIGURABLE_COMMANDS = frozenset(
    {"init", "validate", "plan", "apply", "destroy", "import", "refresh", "output", "console",
     "show", "graph", "get", "fmt", "taint", "untaint", "force-unlock", "test"}
)  # fmt: skip
# Hooks are chosen by the command tfrun was given (`tfrun state rm ...` is `state`).
HOOK_COMMANDS = CONFIGURABLE_COMMANDS | {"state", "workspace", "providers"}
# The commands that read variables from -var-file (apply of a saved plan does not).
VAR_FILE_COMMANDS = frozenset({"plan", "apply", "destroy", "import", "refresh", "console"})
# Flags a config may not add, and why: each would change what the command is, or take from
# tfrun what it manages itself. A person may still type most of them.
_NOT_CONFIGURABLE = {
    "chdir": "would run terraform in another folder than the stack's, which tfrun checked",
    "auto-approve": "would approve for the person: approval is tfrun's (its prompt, or --yes)",
    "input": "is tfrun's: terraform may ask only when it has the terminal",
    "out": "is tfrun's: it saves each plan where it reads it back",
    "detailed-exitcode": "is tfrun's: it reads a plan's exit code (tfrun --detailed-exitcode)",
    "json": "would change terraform's output, which tfrun reads (counts, outputs)",
    "state": "would move the state out of the backend tfrun generates",
    "state-out": "would move the state out of the backend tfrun generates",
    "backup": "would move the state out of the backend tfrun generates",
    "help": "would change what the command is",
    "h": "would change what the command is",
    "version": "would change what the command is",
}
_NOT_CONFIGURABLE_FOR_INIT = {
    "backend": "is tfrun's: it generates the backend and initialises it",
    "backend-config": "is tfrun's: it generates the backend (bucket, key) of every stack",
    "reconfigure": "is tfrun's: it reconfigures when the generated backend changed",
    "migrate-state": "moves state: type it when you mean it (tfrun init -migrate-state)",
    "force-copy": "moves state: type it when you mean it",
    "from-module": "would copy a module into the stack's folder",
}


def configured_argument_problem(command: str, argument: str) -> str | None:
    """Why a config may not add `argument` to `command`'s line (the end of a sentence that
    names both), or None."""
    match = _FLAG.fullmatch(argument)
    if match is None or argument in ("-", "--"):
        return (
            "is not a flag: a config adds flags only (a positional argument, such as a plan "
            "file, would change what the command does)"
        )
    name = match["name"]
    reason = _NOT_CONFIGURABLE.get(name)
    if reason is None and command == "init":
        reason = _NOT_CONFIGURABLE_FOR_INIT.get(name)
    if reason is not None:
        return f"is not allowed in config: -{name} {reason}"
    if match["value"] is None and name in _VALUE_FLAGS:
        return f"takes a value: write it with its value as one argument (-{name}=VALUE)"
    return None


# What tfrun adds when terraform runs without a terminal (a stack of a many-stack run).
_TAKES_INPUT = frozenset({"init", "plan", "apply", "destroy", "import", "refresh"})
_TAKES_NO_COLOR = _TAKES_INPUT | {"validate", "output", "show"}
NEEDS_APPROVAL = frozenset({"apply", "destroy"})


@dataclass(frozen=True)
class CommandLine:
    """How tfrun runs a person's command in one stack."""

    auto_approve: bool  # approval was given to tfrun (--yes, or its own prompt)
    detailed_exitcode: bool
    terminal: bool  # terraform keeps the terminal: it may ask, and colour its output
    plan_file: str | None = None  # where a plan is saved when the person gave no -out
    # What the stack's config adds (extra arguments, var files), before the person's own
    # arguments, so that what was typed wins.
    configured: tuple[str, ...] = ()


def command_argv(binary: str, command: str, args: Sequence[str], line: CommandLine) -> list[str]:
    """`terraform <command> ...` with what tfrun and the stack's config add to the person's
    arguments."""
    argv = [binary, command]
    if not line.terminal and command in _TAKES_INPUT and not has_flag(args, "input"):
        argv.append("-input=false")
    if line.auto_approve and command in NEEDS_APPROVAL and not has_flag(args, "auto-approve"):
        argv.append("-auto-approve")
    if command == "plan":
        if line.detailed_exitcode and not has_flag(args, "detailed-exitcode"):
            argv.append("-detailed-exitcode")
        if line.plan_file is not None and user_plan_file(args) is None:
            argv.append(f"-out={line.plan_file}")
    if not line.terminal and command in _TAKES_NO_COLOR and not has_flag(args, "no-color"):
        argv.append("-no-color")
    return argv + list(line.configured) + list(args)


def chooses_backend(tf_args: Sequence[str]) -> bool:
    """The person's own `init` already says what to do with the backend."""
    return any(has_flag(tf_args, flag) for flag in ("reconfigure", "migrate-state", "backend"))
