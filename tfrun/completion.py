"""Shell completion scripts (bash, zsh, fish), generated from tfrun's own parsers and tables.

What a word completes to depends on its context: the command words typed so far (`ci gitlab`,
`run-all plan`, `state`). Each context has options, subcommands and a kind of plain argument
(a stack path, a file); an option that takes a value completes its choices, the environment
names (`--env`) or a file. The tables come from the argparse parser of tfrun's own commands,
`RUN_OPTIONS` and the terraform commands in `tfargs`; stack paths and environment names are
asked of `tfrun __complete stacks|envs` when the shell completes (`values`, here: fast, and
silent whatever goes wrong).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from tfrun import tfargs
from tfrun.commands.run_args import RUN_OPTIONS

SHELLS = ("bash", "zsh", "fish")
VALUE_KINDS = ("envs", "stacks")
GLOBAL_OPTIONS = ("--help", "--version", "--debug")


@dataclass
class Context:
    """What completes after the command words `name` (space-separated; "" at the top)."""

    options: list[str] = field(default_factory=list)
    # An option that takes a value: "envs", "file", "any" or the words it may be.
    values: dict[str, str] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    # What a plain argument is: "stacks", "file", the words it may be, or "" for nothing.
    plain: str = ""


def _option_kind(flag: str, metavar: str, choices: object) -> str:
    if flag == "--env":
        return "envs"
    if choices:
        return " ".join(str(choice) for choice in choices)  # type: ignore[attr-defined]
    return "file" if metavar in ("FILE", "DIR", "REPORT") else "any"


def _from_parser(name: str, parser: argparse.ArgumentParser, into: dict[str, Context]) -> None:
    context = into.setdefault(name, Context())
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child, subparser in action.choices.items():
                if not child.startswith("_"):
                    context.children.append(child)
                    _from_parser(f"{name} {child}".strip(), subparser, into)
        elif action.option_strings:
            flags = [flag for flag in action.option_strings if flag.startswith("--")]
            context.options += flags
            if action.nargs != 0:
                for flag in flags:
                    metavar = str(action.metavar or "")
                    context.values[flag] = _option_kind(flag, metavar, action.choices)
        elif action.choices:
            context.plain = " ".join(str(choice) for choice in action.choices)
        elif not context.plain:
            context.plain = "stacks" if action.dest == "path" else "file"


def terraform_commands() -> dict[str, list[str]]:
    """Terraform's commands tfrun knows, each with its subcommands (`state`: list, mv, ...)."""
    words = [command.split() for command in tfargs.KNOWN_COMMANDS if command]
    commands: dict[str, list[str]] = {}
    for first, *rest in sorted(words):
        commands.setdefault(first, []).extend(rest)
    return commands


def contexts(own_parser: argparse.ArgumentParser) -> dict[str, Context]:
    """Every context: tfrun's own commands (from the parser), then terraform's."""
    table: dict[str, Context] = {}
    _from_parser("", own_parser, table)
    top = table[""]
    top.plain = ""
    run = Context(
        options=[*RUN_OPTIONS, "--help"],
        values={
            flag: "envs" if flag == "--env" else "file" if option.kind == "path" else "any"
            for flag, option in RUN_OPTIONS.items()
            if option.kind != "flag"
        },
        plain="stacks",
    )
    commands = terraform_commands()
    own = set(top.children)  # `tfrun graph` and `tfrun fmt` are tfrun's; terraform's are run-all's
    top.children += [*(command for command in commands if command not in own), "run-all"]
    top.options = [*GLOBAL_OPTIONS, *(f for f in RUN_OPTIONS if f not in GLOBAL_OPTIONS)]
    top.values = dict(run.values)
    table["run-all"] = Context(run.options, run.values, list(commands), "stacks")
    for prefix in ("", "run-all "):
        for command, subcommands in commands.items():
            if not prefix and command in own:
                continue
            table[prefix + command] = Context(run.options, run.values, subcommands, "stacks")
            for subcommand in subcommands:
                table[f"{prefix}{command} {subcommand}"] = Context(
                    run.options, run.values, [], "stacks"
                )
    return table


# --- The scripts ------------------------------------------------------------------------------


def _grouped(entries: dict[str, str]) -> dict[str, list[str]]:
    """The keys of each non-empty value: terraform's contexts share their tables."""
    groups: dict[str, list[str]] = {}
    for key, words in entries.items():
        if words:
            groups.setdefault(words, []).append(key)
    return groups


def _bash_case(entries: dict[str, str]) -> str:
    return "\n".join(
        f"    {'|'.join(f'{key!r}' for key in keys)}) echo '{words}' ;;"
        for words, keys in _grouped(entries).items()
    )


_BASH = r"""# tfrun completion for bash (zsh: bashcompinit); made by `tfrun completion bash`.
_tfrun_children() {
  case "$1" in
@CHILDREN@
  esac
}
_tfrun_options() {
  case "$1" in
@OPTIONS@
  esac
}
_tfrun_value() {
  case "$1|$2" in
@VALUES@
  esac
}
_tfrun_plain() {
  case "$1" in
@PLAIN@
  esac
}
_tfrun_words() {
  # Stack paths and environment names come from tfrun itself; nothing when anything fails.
  case "$1" in
    envs|stacks) command tfrun __complete "$1" 2>/dev/null ;;
    file|any) ;;
    *) echo "$1" ;;
  esac
}
_tfrun() {
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="" context="" word next kind i skip=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${COMP_WORDS[i]}"
    if ((skip)); then skip=0; prev=""; continue; fi
    if [[ "$word" == "--" ]]; then COMPREPLY=(); return 0; fi
    if [[ "$word" == -* ]]; then
      [[ "$word" != *=* && -n "$(_tfrun_value "$context" "$word")" ]] && skip=1
      continue
    fi
    next="${context:+$context }$word"
    if [[ " $(_tfrun_children "$context") " == *" $word "* ]]; then context="$next"; fi
  done
  if ((skip)); then
    kind="$(_tfrun_value "$context" "${COMP_WORDS[COMP_CWORD-1]}")"
  elif [[ "$cur" == -* ]]; then
    kind="$(_tfrun_options "$context")"
  else
    kind="$(_tfrun_children "$context") $(_tfrun_words "$(_tfrun_plain "$context")")"
  fi
  case "$kind" in
    envs|stacks|file|any) kind="$(_tfrun_words "$kind")" ;;
  esac
  COMPREPLY=($(compgen -W "$kind" -- "$cur"))
}
"""

_FISH = r"""# tfrun completion for fish; made by `tfrun completion fish`.
function __tfrun_children
    switch "$argv[1]"
@CHILDREN@
    end
end
function __tfrun_options
    switch "$argv[1]"
@OPTIONS@
    end
end
function __tfrun_value
    switch "$argv[1]|$argv[2]"
@VALUES@
    end
end
function __tfrun_plain
    switch "$argv[1]"
@PLAIN@
    end
end
function __tfrun_words
    switch "$argv[1]"
        case envs stacks
            command tfrun __complete $argv[1] 2>/dev/null
        case file
            __fish_complete_path (commandline -ct)
        case any
        case '*'
            string split ' ' -- $argv[1]
    end
end
function __tfrun_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l context ''
    set -l skip ''
    set -l last ''
    for word in $words[2..-1]
        if test -n "$skip"
            set skip ''
            continue
        end
        if test "$word" = --
            return
        end
        if string match -q -- '-*' $word
            if not string match -q -- '*=*' $word; and test -n "$(__tfrun_value "$context" $word)"
                set skip 1
                set last $word
            end
            continue
        end
        if contains -- $word (string split ' ' -- (__tfrun_children "$context"))
            set context (string trim -- "$context $word")
        end
    end
    if test -n "$skip"
        __tfrun_words (__tfrun_value "$context" $last)
    else if string match -q -- '-*' $cur
        string split ' ' -- (__tfrun_options "$context")
    else
        string split ' ' -- (__tfrun_children "$context")
        __tfrun_words (__tfrun_plain "$context")
    end
end
complete -c tfrun -f -a '(__tfrun_complete)'
"""


def _fish_case(entries: dict[str, str]) -> str:
    return "\n".join(
        f"        case {' '.join(f'{key!r}' for key in keys)}\n            echo '{words}'"
        for words, keys in _grouped(entries).items()
    )


def script(shell: str, own_parser: argparse.ArgumentParser) -> str:
    table = contexts(own_parser)
    cases = _fish_case if shell == "fish" else _bash_case
    text = (
        (_FISH if shell == "fish" else _BASH)
        .replace("@CHILDREN@", cases({n: " ".join(c.children) for n, c in table.items()}))
        .replace("@OPTIONS@", cases({n: " ".join(c.options) for n, c in table.items()}))
        .replace(
            "@VALUES@",
            cases({f"{n}|{f}": k for n, c in table.items() for f, k in c.values.items()}),
        )
        .replace("@PLAIN@", cases({n: c.plain for n, c in table.items()}))
    )
    if shell == "fish":
        return text
    # Without matches, bash and zsh complete file names (`--json FILE`, `--include GLOB`).
    complete = "complete -o default -F _tfrun tfrun\n"
    if shell == "zsh":
        return (
            "#compdef tfrun\n# tfrun completion for zsh; made by `tfrun completion zsh`.\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + text + complete
        )
    return text + complete


# --- The values asked for when the shell completes --------------------------------------------


def values(kind: str, cwd: Path) -> list[str]:
    """Environment names (the root tfrun.hcl's `environments`), or the stack folders and the
    folders that hold them, as paths relative to `cwd` that do not go up from it."""
    from tfrun.discovery import Repository, find_root

    root = find_root(cwd)
    if kind == "envs":
        from tfrun.config import ROOT_FILE, _normalise_blocks
        from tfrun.hcl import parse_file

        environments = _normalise_blocks(parse_file(root / ROOT_FILE)).get("environments")
        return sorted(environments) if isinstance(environments, dict) else []
    stacks = Repository(root).stack_paths(root)
    folders = {p for stack in stacks for p in (stack, *stack.parents) if root in p.parents}
    here = cwd.resolve()
    shown = (Path(os.path.relpath(folder, here)).as_posix() for folder in sorted(folders))
    return [path for path in shown if path != "." and not path.startswith("..")]
