"""The safety rules of DESIGN §7: what may run on a protected environment, and from where.

Pure decisions. `check` takes the selected stacks, the terraform command line and the
environment variables, and either raises `Refusal` (exit 3) or returns the confirmations the
CLI must ask for. Nothing here prints, prompts or starts a process: reading a saved plan is a
callable the caller injects.

`classify` reads a command line the way terraform does (mitchellh/cli picks the command, Go's
flag package the flags, `TF_CLI_ARGS` and `TF_CLI_ARGS_<command>` are merged in after the
command) and, wherever that reading is uncertain, errs towards "destructive": a false refusal
costs a person a minute, a false pass can cost production.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from tfrun.discovery import Stack
from tfrun.errors import RefusedError

# --- Where tfrun runs --------------------------------------------------------------------


class CIProvider(StrEnum):
    GITLAB = "gitlab"
    GITHUB = "github"
    BUILDKITE = "buildkite"
    CIRCLECI = "circleci"
    JENKINS = "jenkins"
    AZURE = "azure"
    TEAMCITY = "teamcity"
    GENERIC = "generic"


# In order: a provider's own variable says more than the generic `CI` most of them also set.
_CI_VARIABLES: tuple[tuple[str, CIProvider], ...] = (
    ("GITLAB_CI", CIProvider.GITLAB),
    ("GITHUB_ACTIONS", CIProvider.GITHUB),
    ("BUILDKITE", CIProvider.BUILDKITE),
    ("CIRCLECI", CIProvider.CIRCLECI),
    ("JENKINS_URL", CIProvider.JENKINS),
    ("HUDSON_URL", CIProvider.JENKINS),
    ("TF_BUILD", CIProvider.AZURE),  # Azure Pipelines' name, not Terraform's
    ("TEAMCITY_VERSION", CIProvider.TEAMCITY),
    ("CI", CIProvider.GENERIC),
    # CIs that may not set CI: Bitbucket, AWS CodeBuild, Travis, Drone, Semaphore, AppVeyor.
    ("BITBUCKET_BUILD_NUMBER", CIProvider.GENERIC),
    ("CODEBUILD_BUILD_ID", CIProvider.GENERIC),
    ("TRAVIS", CIProvider.GENERIC),
    ("DRONE", CIProvider.GENERIC),
    ("SEMAPHORE", CIProvider.GENERIC),
    ("APPVEYOR", CIProvider.GENERIC),
    ("CONTINUOUS_INTEGRATION", CIProvider.GENERIC),
)
_NOT_SET = frozenset({"", "0", "false", "no", "off"})
_GITLAB_UNMERGED_SOURCES = frozenset({"merge_request_event", "external_pull_request_event"})
_GITHUB_BY_HAND = "workflow_dispatch"


@dataclass(frozen=True)
class CIContext:
    provider: CIProvider
    # A person started this job: a GitLab manual job, a GitHub workflow_dispatch run.
    # None where the CI does not tell.
    manual: bool | None = None
    # What triggered it: GitHub's GITHUB_EVENT_NAME, GitLab's CI_PIPELINE_SOURCE.
    event: str | None = None


def _is_set(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in _NOT_SET


def detect_ci(environ: Mapping[str, str]) -> CIContext | None:
    """The CI this runs in, from the variables CIs set; None on a laptop."""
    for name, provider in _CI_VARIABLES:
        if not _is_set(environ.get(name)):
            continue
        if provider is CIProvider.GITLAB:
            return CIContext(
                provider,
                manual=environ.get("CI_JOB_MANUAL", "").strip().lower() == "true",
                event=environ.get("CI_PIPELINE_SOURCE") or None,
            )
        if provider is CIProvider.GITHUB:
            event = environ.get("GITHUB_EVENT_NAME") or None
            return CIContext(provider, manual=event == _GITHUB_BY_HAND, event=event)
        return CIContext(provider)
    return None


# --- What a terraform command line does ----------------------------------------------------


class Kind(StrEnum):
    READ_ONLY = "read-only"  # changes neither infrastructure nor state
    PLAN_DESTROY = "plan-destroy"  # read-only, but applying the saved plan would destroy
    APPLY = "apply"  # changes infrastructure or state, removes nothing by itself
    APPLY_SAVED_PLAN = "apply-saved-plan"  # what it does is in the plan file
    DESTROY = "destroy"  # destroys or recreates resources, drops or overwrites state, unlocks


@dataclass(frozen=True)
class Operation:
    kind: Kind
    command: str  # as terraform resolves it: "apply", "state rm"; "" when there is none
    description: str  # for messages: "apply -destroy (from TF_CLI_ARGS_apply)"
    argv: tuple[str, ...]  # what terraform will see, TF_CLI_ARGS merged in
    plan_file: str | None = None  # apply's saved plan, relative to the stack's folder
    chdir: str | None = None

    @property
    def writes(self) -> bool:
        return self.kind not in (Kind.READ_ONLY, Kind.PLAN_DESTROY)


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

    def op(kind: Kind, description: str, plan_file: str | None = None) -> Operation:
        texts = tuple(text for text, _ in argv)
        return Operation(kind, command, description, texts, plan_file)

    destroy, destroy_from = _switched_on(argv, "destroy")
    replacing = _occurrences(argv, "replace")
    if command == "plan":
        if destroy:
            return op(Kind.PLAN_DESTROY, "plan -destroy" + _from(destroy_from))
        if replacing:
            return op(Kind.PLAN_DESTROY, "plan -replace" + _from(replacing[0][1]))
        return op(Kind.READ_ONLY, "plan")
    if command in _KNOWN_COMMANDS - _READ_ONLY_COMMANDS:
        if destroy:
            return op(Kind.DESTROY, f"{command} -destroy" + _from(destroy_from))
        if replacing:
            return op(Kind.DESTROY, f"{command} -replace" + _from(replacing[0][1]))
    if command == "init":
        for flag in ("migrate-state", "force-copy"):
            on, origin = _switched_on(argv, flag)
            if on:
                return op(Kind.DESTROY, f"init -{flag}" + _from(origin))
        return op(Kind.READ_ONLY, "init")
    if command in ("workspace select", "env select"):
        on, origin = _switched_on(argv, "or-create")
        if on:
            return op(Kind.APPLY, f"{command} -or-create" + _from(origin))
    if command in ("state rm", "state mv"):
        flags, _, known = _go_flags(args)
        dry_runs = flags.get("dry-run", [])
        if known and dry_runs and all(_parse_bool(v) is True for v in dry_runs):
            return op(Kind.READ_ONLY, f"{command} -dry-run")
        elsewhere = _occurrences(argv, "state-out") or _occurrences(argv, "state")
        if command == "state mv" and elsewhere:
            # Out of this stack's state into a file: as good as `state rm` for the stack.
            return op(Kind.DESTROY, "state mv to another state file" + _from(elsewhere[0][1]))
        if command == "state mv":
            return op(Kind.APPLY, "state mv within the stack's state")
    if command == "apply":
        _, positionals, _ = _go_flags(args)
        if len(positionals) == 1:
            return op(Kind.APPLY_SAVED_PLAN, "apply of a saved plan", positionals[0])
        if positionals:
            # terraform refuses this itself; if it is a flag tfrun does not know, be careful.
            extra = " ".join(positionals)
            return op(Kind.DESTROY, f"apply with arguments tfrun cannot read ({extra})")
    if command in _DESTROY_COMMANDS:
        return op(Kind.DESTROY, command)
    if command in _APPLY_COMMANDS:
        return op(Kind.APPLY, command)
    if command in _READ_ONLY_COMMANDS:
        return op(Kind.READ_ONLY, command or "terraform with no command")
    # A newer terraform's command, or a typo: unknown is treated as the worst case.
    return op(Kind.DESTROY, f"the terraform command '{command}', which tfrun does not know")


def _chdir(flags: Sequence[str]) -> str | None:
    for flag in flags:
        match = _FLAG.fullmatch(flag)
        if match and match["name"] == "chdir":
            return match["value"] or ""
    return None


def classify(command: str, args: Sequence[str], environ: Mapping[str, str]) -> Operation:
    """What terraform will do with `terraform <command> <args>` under `environ`.

    `command` may be empty and `args` may start with global flags (`-chdir=...`); `args` is
    everything tfrun passes on, including what came after `--`.
    """
    given: list[_Arg] = [(word, None) for word in (*command.split(), *args)]
    _, original, _ = _split([text for text, _ in given])
    argv, unreadable = _merge_env_args(given, original, environ)
    texts = [text for text, _ in argv]
    start, resolved, args_start = _split(texts)
    operation = _classify_command(resolved, argv, texts[args_start:])
    if unreadable and operation.kind is not Kind.DESTROY:
        description = f"{operation.description} with a {unreadable} that tfrun cannot parse"
        operation = replace(operation, kind=Kind.DESTROY, description=description)
    return replace(operation, chdir=_chdir(texts[:start]))


# --- Saved plans ------------------------------------------------------------------------------

# `forget` (a `removed` block with destroy = false) drops resources from state: `state rm`.
_REMOVING_ACTIONS = frozenset({"delete", "forget"})


@dataclass(frozen=True)
class PlanSummary:
    removes: tuple[str, ...] = ()  # addresses the plan deletes, replaces or forgets


def summarise_plan(show_json: Any) -> PlanSummary | None:
    """The parsed output of `terraform show -json PLAN`; None when it is not a readable plan."""
    if not isinstance(show_json, Mapping) or "format_version" not in show_json:
        return None
    changes = show_json.get("resource_changes") or []
    if not isinstance(changes, list):
        return None
    removes = []
    for change in changes:
        detail = change.get("change") if isinstance(change, Mapping) else None
        actions = detail.get("actions") if isinstance(detail, Mapping) else None
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            return None
        if _REMOVING_ACTIONS.intersection(actions):
            removes.append(str(change.get("address", "?")))
    return PlanSummary(tuple(removes))


# Runs `terraform show -json` on the plan in the stack's folder; None if it cannot be read.
PlanInspector = Callable[[Stack, Path], PlanSummary | None]


# --- Rules and refusals -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    text: str
    remedy: str


_LAPTOP_DESTROY = Rule(
    "protected-destroy-in-ci-only",
    "on a protected environment, anything that destroys or recreates resources, drops or "
    "overwrites state or breaks a state lock runs only in CI, never from a laptop, and --yes "
    "does not change that",
    "To do it legitimately, run it from a CI job (a manual job in GitLab, a workflow_dispatch "
    "run in GitHub Actions); if the environment should not be protected, set protected = false "
    "for it in tfrun.hcl through a reviewed change.",
)
_GITLAB_NOT_MANUAL = Rule(
    "protected-destroy-gitlab-manual-job",
    "in GitLab CI, destroying on a protected environment runs only in a manual job "
    "(CI_JOB_MANUAL=true), so that a merge can never destroy it by itself",
    "To do it legitimately, run it from a job with `when: manual` that a person starts.",
)
_LAPTOP_APPLY_OFF = Rule(
    "protected-laptop-apply-off",
    "the environment sets laptop_apply = false, so applies to it run only in CI",
    "To do it legitimately, run it from CI.",
)
_NO_TERMINAL = Rule(
    "protected-apply-needs-terminal",
    "outside CI, an apply on a protected environment asks a person to type the environment's "
    "name, and there is no terminal to ask on; --yes does not replace that",
    "To do it legitimately, run it in CI or on a terminal.",
)


def _gitlab_unmerged(source: str) -> Rule:
    return Rule(
        "protected-destroy-gitlab-not-from-merge-request",
        "in GitLab CI, destroying on a protected environment never runs from a merge-request "
        f"pipeline (CI_PIPELINE_SOURCE={source}), whose code is not merged yet",
        "To do it legitimately, run it from a manual job in a pipeline of the protected branch.",
    )


def _github_not_by_hand(event: str | None) -> Rule:
    return Rule(
        "protected-destroy-github-workflow-dispatch",
        "in GitHub Actions, destroying on a protected environment runs only in a run a person "
        f"started (GITHUB_EVENT_NAME=workflow_dispatch, here {event or 'unset'}), so that a "
        "merge or a pull request can never destroy it by itself",
        "To do it legitimately, start the workflow with 'Run workflow' (workflow_dispatch), in a "
        "job whose GitHub environment requires reviewers.",
    )


def _chdir_rule(chdir: str) -> Rule:
    return Rule(
        "no-chdir",
        "tfrun runs terraform in each stack's own folder and checks that stack; "
        f"-chdir={chdir} would make terraform act on a folder tfrun did not check",
        "Leave out -chdir and give tfrun the stack's path instead.",
    )


def destroy_rule(ci: CIContext | None) -> Rule | None:
    """The rule that stops a destructive operation on a protected stack here, if any."""
    if ci is None:
        return _LAPTOP_DESTROY
    if ci.provider is CIProvider.GITLAB:
        if ci.event in _GITLAB_UNMERGED_SOURCES:
            return _gitlab_unmerged(ci.event)
        return None if ci.manual else _GITLAB_NOT_MANUAL
    if ci.provider is CIProvider.GITHUB:
        return None if ci.manual else _github_not_by_hand(ci.event)
    # Other CIs don't say who started a job; their own approval steps gate it (docs/safety.md).
    return None


class Refusal(RefusedError):
    """A safety rule refused the whole run; the message names stacks, environments and rule."""

    def __init__(
        self,
        rule: Rule,
        operation: str,
        refused: Sequence[tuple[Stack, str | None]],
        selected: int,
    ) -> None:
        self.rule = rule
        self.operation = operation
        self.stacks = tuple(stack.rel for stack, _ in refused)
        by_env: dict[tuple[str, bool], list[str]] = {}
        for stack, note in refused:
            rel = stack.rel + (f" ({note})" if note else "")
            by_env.setdefault((stack.env, stack.protected), []).append(rel)
        where = "; ".join(
            f"{', '.join(rels)} in the {'protected ' if protected else ''}environment '{env}'"
            for (env, protected), rels in by_env.items()
        )
        whole = f", so the whole run of {selected} stacks is refused" if selected > 1 else ""
        super().__init__(
            f"Refused: {operation} on {where}{whole}. Rule '{rule.name}': {rule.text}. "
            f"Nothing was run. {rule.remedy}"
        )


@dataclass(frozen=True)
class Confirmation:
    """The CLI shows `prompt` and goes on only if the person types the environment's name."""

    env: str
    stacks: tuple[str, ...]
    prompt: str

    def accepts(self, answer: str) -> bool:
        return answer.strip() == self.env


# --- The check -------------------------------------------------------------------------------


def _removal_note(summary: PlanSummary | None) -> str | None:
    """Why applying this plan counts as destroying; None when it does not."""
    if summary is None:
        return "its plan could not be read"
    if not summary.removes:
        return None
    shown = ", ".join(summary.removes[:3])
    more = len(summary.removes) - 3
    return f"its plan removes {shown}" + (f" and {more} more" if more > 0 else "")


def _destroying(
    protected: Sequence[Stack], operation: Operation, inspect_plan: PlanInspector | None
) -> list[tuple[Stack, str | None]]:
    if operation.kind is Kind.DESTROY:
        return [(stack, None) for stack in protected]
    if operation.kind is not Kind.APPLY_SAVED_PLAN:
        return []
    assert operation.plan_file is not None
    found: list[tuple[Stack, str | None]] = []
    for stack in protected:
        path = stack.path / operation.plan_file  # an absolute plan_file stays itself
        note = _removal_note(inspect_plan(stack, path) if inspect_plan else None)
        if note:
            found.append((stack, note))
    return found


def check(
    stacks: Sequence[Stack],
    command: str,
    args: Sequence[str],
    environ: Mapping[str, str],
    *,
    interactive: bool,
    inspect_plan: PlanInspector | None = None,
) -> list[Confirmation]:
    """Refuse (raise `Refusal`) or return the confirmations to ask before anything runs.

    `stacks` is the whole selection of the run; `args` everything tfrun passes to terraform
    after the command; `interactive` whether a person can answer on a terminal. `--yes` is
    deliberately not a parameter.
    """
    operation = classify(command, args, environ)
    if not operation.writes:
        return []
    if operation.chdir is not None:
        raise Refusal(
            _chdir_rule(operation.chdir),
            operation.description,
            [(stack, None) for stack in stacks],
            len(stacks),
        )
    protected = [stack for stack in stacks if stack.protected]
    if not protected:
        return []
    ci = detect_ci(environ)
    rule = destroy_rule(ci)
    if rule is None:
        return []  # where destroying is allowed, applying is too
    destroying = _destroying(protected, operation, inspect_plan)
    if destroying:
        description = (
            "applying a saved plan that destroys resources"
            if operation.kind is Kind.APPLY_SAVED_PLAN
            else operation.description
        )
        raise Refusal(rule, description, destroying, len(stacks))
    if ci is not None:
        return []
    forbidden = [s for s in protected if _laptop_apply(s) is False]
    if forbidden:
        refused = [(stack, None) for stack in forbidden]
        raise Refusal(_LAPTOP_APPLY_OFF, operation.description, refused, len(stacks))
    if not interactive:
        refused = [(stack, None) for stack in protected]
        raise Refusal(_NO_TERMINAL, operation.description, refused, len(stacks))
    by_env: dict[str, list[str]] = {}
    for stack in protected:
        by_env.setdefault(stack.env, []).append(stack.rel)
    return [
        Confirmation(
            env,
            tuple(rels),
            f"{operation.description} on {', '.join(rels)}, in the protected environment "
            f"'{env}'. Type the environment's name ({env}) to go on:",
        )
        for env, rels in by_env.items()
    ]


def _laptop_apply(stack: Stack) -> bool | None:
    environment = stack.config.environments.get(stack.env)
    return environment.laptop_apply if environment else None
