"""The safety rules: what may run on a protected environment, and from where
(docs/safety.md).

Pure decisions. `check` takes the selected stacks, the classified command line
(`tfargs.Operation`) and the environment variables, and either raises `Refusal` (exit 3) or
returns the confirmations the CLI must ask for. Nothing here prints, prompts or starts a
process: reading a saved plan is a callable the caller injects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from tfrun.discovery import Stack
from tfrun.errors import RefusedError
from tfrun.tfargs import Effect, Operation, severity

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
    if operation.effect is Effect.DESTROY:
        return [(stack, None) for stack in protected]
    if operation.effect is not Effect.APPLY_SAVED_PLAN:
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
    operation: Operation,
    environ: Mapping[str, str],
    *,
    can_ask: bool,
    inspect_plan: PlanInspector | None = None,
    per_stack: Mapping[str, Operation] | None = None,
) -> list[Confirmation]:
    """Refuse (raise `Refusal`) or return the confirmations to ask before anything runs.

    `stacks` is the whole selection of the run; `operation` its classified command line;
    `per_stack` a stack's own where its config adds arguments to it (each stack is judged by
    what terraform will see in it, and one refusal refuses the whole run); `can_ask` whether a
    person is at a terminal to answer. `--yes` is deliberately not a parameter.
    """
    groups: dict[Operation, list[Stack]] = {}
    for stack in stacks:
        own = (per_stack or {}).get(stack.rel, operation)
        groups.setdefault(own, []).append(stack)
    confirmations: list[Confirmation] = []
    # The most dangerous first: its refusal is the one that explains the run's.
    for own in sorted(groups, key=severity, reverse=True):
        members = groups[own]
        confirmations += _check(
            members, own, environ, can_ask=can_ask, inspect_plan=inspect_plan, selected=len(stacks)
        )
    return confirmations


def _check(
    stacks: Sequence[Stack],
    operation: Operation,
    environ: Mapping[str, str],
    *,
    can_ask: bool,
    inspect_plan: PlanInspector | None,
    selected: int,
) -> list[Confirmation]:
    if not operation.writes:
        return []
    if operation.chdir is not None:
        raise Refusal(
            _chdir_rule(operation.chdir),
            operation.description,
            [(stack, None) for stack in stacks],
            selected,
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
            if operation.effect is Effect.APPLY_SAVED_PLAN
            else operation.description
        )
        raise Refusal(rule, description, destroying, selected)
    if ci is not None:
        return []
    forbidden = [s for s in protected if _laptop_apply(s) is False]
    if forbidden:
        refused = [(stack, None) for stack in forbidden]
        raise Refusal(_LAPTOP_APPLY_OFF, operation.description, refused, selected)
    if not can_ask:
        refused = [(stack, None) for stack in protected]
        raise Refusal(_NO_TERMINAL, operation.description, refused, selected)
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


def check_reviewed_plans(
    plans: Sequence[tuple[Stack, PlanSummary | None]], environ: Mapping[str, str]
) -> None:
    """The plans a reviewed apply made (docs/new-environment.md), before they are applied:
    on a protected stack, a plan that removes anything is applied only where a destroy may run,
    exactly as `apply PLANFILE` is (raise `Refusal`)."""
    removing = [
        (stack, note)
        for stack, summary in plans
        if stack.protected and (note := _removal_note(summary)) is not None
    ]
    rule = destroy_rule(detect_ci(environ))
    if removing and rule is not None:
        raise Refusal(rule, "applying a plan that destroys resources", removing, len(plans))


def refuse_removal(
    stack: Stack, summary: PlanSummary | None, environ: Mapping[str, str]
) -> str | None:
    """`check_reviewed_plans` for one stack planned again during the apply: the refusal's
    message, or None."""
    try:
        check_reviewed_plans([(stack, summary)], environ)
    except Refusal as refusal:
        return str(refusal)
    return None
