"""CI pipelines for the stacks a change affects (`tfrun ci`): pure functions from stacks to
documents, and the YAML they are printed as. Nothing here reads files or starts processes;
`tfrun/commands/ci.py` gathers the stacks.

The GitLab child pipeline, per stack:

* `plan <stack>`: `tfrun plan` with `-out=tfplan` and a JSON report, both artifacts (with the
  lock file, so the apply installs the providers the plan used).
* `apply <stack>`: applies that saved plan; `needs:` its plan job and the apply jobs of the
  stacks it depends on, so GitLab runs the DAG across runners. Manual on protected
  environments.

A stack whose dependency is applied in the same pipeline plans after that apply: a plan made
before it would read the dependency's old outputs, and applying a saved plan never reads them
again. In a plan-only pipeline (merge requests) it plans after the dependency's plan instead,
against the outputs that plan says it will have (`--upstream-plans`, a provisional plan).
Every plan and apply job of a stack holds one `resource_group` named after its state key, so
two pipelines never work on one state at once; plans too, since a plan takes the state lock
and would otherwise fail on it.
"""

from __future__ import annotations

import glob
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tfrun.ci_needs import within_needs_limit
from tfrun.errors import ConfigError

PLAN_FILE = "tfplan"
LOCK_FILE = ".terraform.lock.hcl"
# Under the live root, where tfrun's .gitignore already keeps .tfrun/ out of git. A plan job
# writes its JSON report and the plan as text (`<stack>.txt`, for the merge-request comment)
# in REPORT_DIR, and GitLab's Terraform report (the merge request's widget) in WIDGET_DIR.
CI_DIR = ".tfrun/ci"
REPORT_DIR = f"{CI_DIR}/plan"
WIDGET_DIR = f"{CI_DIR}/gitlab"
# GitLab refuses a job with more entries than this in `needs:`: its default, which an
# instance's administrator may change (`ci_needs_size_limit`; `--needs-limit`).
NEEDS_LIMIT = 50
DEFAULT_BRANCH_RULE = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
EMPTY_JOB = "no stacks affected"
SUMMARY_JOB = "summary"
# The variable holding the token `tfrun ci comment` writes the merge request's note with.
COMMENT_TOKEN = "TFRUN_GITLAB_TOKEN"


@dataclass(frozen=True)
class CIStack:
    rel: str  # relative to the live root: the stack's name in jobs and reports
    path: str  # relative to the repository's top: where jobs find it
    env: str
    region: str
    key: str
    bucket: str
    protected: bool
    needs: tuple[str, ...] = ()  # stacks of this pipeline it waits for (rel paths)
    dependent: bool = False
    reasons: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()  # static mode: the `rules: changes:` globs


DEFAULT_AUDIENCE = "sts.amazonaws.com"
ID_TOKEN_VARIABLE = "TFRUN_AWS_ID_TOKEN"
TOKEN_FILE = "${CI_PROJECT_DIR}/.tfrun/aws-web-identity-token"


@dataclass(frozen=True)
class GitLabOptions:
    live_rel: str = ""  # the live root relative to the repository's top
    image: str | None = None
    tags: tuple[str, ...] = ()
    before_script: tuple[str, ...] = ()
    plan_only: bool = False  # no apply jobs: merge-request pipelines
    # The role the jobs assume with GitLab's OIDC token (auth.ci_role_arn), and its audience.
    ci_role_arn: str | None = None
    ci_audience: str = DEFAULT_AUDIENCE
    needs_limit: int = NEEDS_LIMIT


def plan_job(rel: str) -> str:
    return f"plan {rel}"


def apply_job(rel: str) -> str:
    return f"apply {rel}"


def report_path(live_rel: str, rel: str) -> str:
    return _join(live_rel, f"{REPORT_DIR}/{rel}.json")


def plan_text_path(live_rel: str, rel: str) -> str:
    return _join(live_rel, f"{REPORT_DIR}/{rel}.txt")


def widget_path(live_rel: str, rel: str) -> str:
    return _join(live_rel, f"{WIDGET_DIR}/{rel}.json")


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_./-]+")


def resource_group(stack: CIStack) -> str:
    """One name per state: GitLab allows letters, digits, `-_./ `, `$` and `{}` (expanded)."""
    return "tfstate/" + _GROUP_CHARS.sub("_", f"{stack.bucket}/{stack.key}").strip("/")


def _q(text: str) -> str:
    return shlex.quote(text)


def _needs(jobs: Sequence[str], *, artifacts: bool, optional: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for job in jobs:
        need: dict[str, Any] = {"job": job, "artifacts": artifacts}
        if optional:
            need["optional"] = True
        out.append(need)
    return out


def _plan(stack: CIStack, options: GitLabOptions, *, static: bool) -> tuple[str, dict[str, Any]]:
    report = report_path(options.live_rel, stack.rel)
    upstream = ""
    if options.plan_only:
        # Nothing is applied here: a reader plans against the planned outputs of the stacks it
        # reads (docs/new-environment.md), from their plan jobs' reports.
        needs = _needs([plan_job(rel) for rel in stack.needs], artifacts=True, optional=static)
        if stack.needs:
            upstream = f" --upstream-plans {_q(_join(options.live_rel, REPORT_DIR))}"
    else:
        needs = _needs([apply_job(rel) for rel in stack.needs], artifacts=False, optional=static)
    # --include names this stack alone (not the nested stacks in its folder, which have jobs
    # of their own); the runner writes the reports.
    where = f"{_q(stack.path)} --include {_q(glob.escape(stack.rel))}"
    saved = f"{stack.path}/{PLAN_FILE}"
    text = plan_text_path(options.live_rel, stack.rel)
    widget = widget_path(options.live_rel, stack.rel)
    job: dict[str, Any] = {
        # Jobs may only need jobs of earlier stages or their own.
        "stage": "apply" if needs and not options.plan_only else "plan",
        "needs": needs,
        "resource_group": resource_group(stack),
        "interruptible": True,
        "script": [
            f"tfrun plan {where} --json {_q(report)} --gitlab-report {_q(widget)}"
            f"{upstream} -out={PLAN_FILE}",
            # The plan as a person reads it, for the merge request's comment. No saved plan:
            # the stack waits for an upstream's apply, and the report says so.
            f"if [ -f {_q(saved)} ]; then tfrun show {_q(stack.path)} -no-color {PLAN_FILE} "
            f"> {_q(text)}; fi",
        ],
        "artifacts": {
            # The merge request's widget lists each plan under this name. Whether a plan is
            # provisional is known only when it runs; the name says when it may be.
            "name": f"{stack.rel} (provisional if a stack it reads changes)"
            if upstream
            else stack.rel,
            "when": "always",
            "expire_in": "1 week",
            # The widget's report in paths too: GitLab keeps a report for its widget only,
            # and a file in paths can be browsed and downloaded.
            "paths": [saved, f"{stack.path}/{LOCK_FILE}", report, text, widget],
            "reports": {"terraform": widget},
        },
    }
    if static:
        job = {"rules": [{"changes": list(stack.changes)}], **job}
    return plan_job(stack.rel), job


def _apply(stack: CIStack, *, static: bool) -> tuple[str, dict[str, Any]]:
    needs = _needs([plan_job(stack.rel)], artifacts=True, optional=False)
    needs += _needs([apply_job(rel) for rel in stack.needs], artifacts=False, optional=static)
    job: dict[str, Any] = {"stage": "apply", "needs": needs}
    if static:
        rule: dict[str, Any] = {"if": DEFAULT_BRANCH_RULE, "changes": list(stack.changes)}
        if stack.protected:
            rule.update({"when": "manual", "allow_failure": False})
        job["rules"] = [rule]
    elif stack.protected:
        # Not allow_failure: the pipeline waits on the manual job, and so do the jobs that
        # need it, instead of going on as if it had run.
        job.update({"when": "manual", "allow_failure": False})
    job.update(
        {
            "resource_group": resource_group(stack),
            # A newer pipeline must never cancel an apply halfway through.
            "interruptible": False,
            "script": [f"tfrun apply {_q(stack.path)} --yes {PLAN_FILE}"],
        }
    )
    return apply_job(stack.rel), job


def _within_needs_limit(document: dict[str, Any], options: GitLabOptions) -> dict[str, Any]:
    def own_plan(job: str) -> str:
        return plan_job(job.removeprefix("apply "))

    reports = _join(options.live_rel, f"{CI_DIR}/")
    return within_needs_limit(document, options.needs_limit, reports, own_plan)


def _default(options: GitLabOptions) -> dict[str, Any]:
    default: dict[str, Any] = {}
    if options.image:
        default["image"] = options.image
    if options.tags:
        default["tags"] = list(options.tags)
    before = list(options.before_script)
    if options.ci_role_arn:
        # No stored keys: each job gets an OIDC token, which the AWS SDKs in terraform and
        # tfrun exchange for the CI role (AssumeRoleWithWebIdentity) from a file.
        default["id_tokens"] = {ID_TOKEN_VARIABLE: {"aud": options.ci_audience}}
        before.insert(0, f'printf %s "${ID_TOKEN_VARIABLE}" > "$AWS_WEB_IDENTITY_TOKEN_FILE"')
    if before:
        default["before_script"] = before
    return default


def _variables(options: GitLabOptions) -> dict[str, str]:
    if not options.ci_role_arn:
        return {}
    return {
        "AWS_ROLE_ARN": options.ci_role_arn,
        "AWS_WEB_IDENTITY_TOKEN_FILE": TOKEN_FILE,
        "AWS_ROLE_SESSION_NAME": "gitlab-job-${CI_JOB_ID}",
    }


def _echo(lines: Sequence[str]) -> list[str]:
    return [f"echo {_q(line)}" for line in lines]


def _summary(
    stacks: Sequence[CIStack], options: GitLabOptions, notes: Sequence[str], *, static: bool
) -> dict[str, Any]:
    reports = _q(_join(options.live_rel, REPORT_DIR))
    expect = "".join(f" --expect {_q(s.rel)}" for s in stacks)
    job: dict[str, Any] = {}
    if static:
        changes = sorted({glob for s in stacks for glob in s.changes})
        job["rules"] = [{"changes": changes, "when": "always"}]
    job["stage"] = "summary"
    if not static:
        job["when"] = "always"
    # By name, so the summary comes when the plans are done, not after manual applies.
    job["needs"] = _needs([plan_job(s.rel) for s in stacks], artifacts=True, optional=static)
    job["script"] = [
        *_echo(notes),
        f"tfrun ci summary {reports}{expect}",
        # The same table and each plan, as one note on the merge request, kept up to date
        # (docs/ci.md: the token and its scope). Outside a merge request it says so.
        f'if [ -n "${COMMENT_TOKEN}" ]; then tfrun ci comment {reports}{expect}; fi',
    ]
    return job


def gitlab_child(
    stacks: Sequence[CIStack], options: GitLabOptions, notes: Sequence[str] = ()
) -> dict[str, Any]:
    """A child pipeline for `stacks` (in dependency order); `notes` are printed by the summary
    job (deleted stacks, say). An empty list gives a valid pipeline with one no-op job."""
    document: dict[str, Any] = {}
    default = _default(options)
    if default:
        document["default"] = default
    if _variables(options):
        document["variables"] = _variables(options)
    if not stacks:
        document["stages"] = ["summary"]
        message = "tfrun: no stacks are affected by this change."
        document[EMPTY_JOB] = {"stage": "summary", "script": _echo([message, *notes])}
        return document
    document["stages"] = ["plan", "summary"] if options.plan_only else ["plan", "apply", "summary"]
    for stack in stacks:
        name, job = _plan(stack, options, static=False)
        document[name] = job
        if not options.plan_only:
            name, job = _apply(stack, static=False)
            document[name] = job
    document[SUMMARY_JOB] = _summary(stacks, options, notes, static=False)
    return _within_needs_limit(document, options)


def gitlab_static(stacks: Sequence[CIStack], options: GitLabOptions) -> dict[str, Any]:
    """One plan job (and, on the default branch, one apply job) per stack, each run when a
    file in its `changes` globs changed: a pipeline to include, with no child pipeline."""
    if not stacks:
        raise ConfigError("there are no stacks to write jobs for.")
    document: dict[str, Any] = {}
    default = _default(options)
    if default:
        document["default"] = default
    if _variables(options):
        document["variables"] = _variables(options)
    document["stages"] = ["plan", "summary"] if options.plan_only else ["plan", "apply", "summary"]
    for stack in stacks:
        name, job = _plan(stack, options, static=True)
        document[name] = job
        if not options.plan_only:
            name, job = _apply(stack, static=True)
            document[name] = job
    document[SUMMARY_JOB] = _summary(stacks, options, (), static=True)
    return _within_needs_limit(document, options)


# ---------------------------------------------------------------------------- the summary


def summary_text(
    reports: Mapping[str, Mapping[str, Any] | None], expected: Sequence[str] = ()
) -> str:
    """A Markdown table from the plan jobs' JSON reports (by stack; None: unreadable)."""
    rows = []
    seen = set()
    for name, report in sorted(reports.items()):
        entries = (report or {}).get("stacks") or [{"path": name, "status": "unreadable report"}]
        for entry in entries:
            path = str(entry.get("path") or name)
            seen.add(path)
            status = str(entry.get("status", "?"))
            planned = entry.get("planned_outputs") or entry.get("provisional_because") or ()
            if entry.get("provisional") and planned:
                status += f" (provisional: {'; '.join(map(str, planned))})"
            rows.append((path, status, changes_text(entry.get("changes"))))
    for rel in expected:
        if rel not in seen:
            rows.append((rel, "no report (the plan job did not run or failed early)", ""))
    if not rows:
        return "No plan reports.\n"
    lines = ["| stack | plan | changes |", "| --- | --- | --- |"]
    lines += [f"| {path} | {status} | {changes} |" for path, status, changes in rows]
    changed = sum(1 for _, _, c in rows if c and c != "+0 ~0 -0")
    lines.append("")
    lines.append(f"{len(rows)} stacks, {changed} with changes.")
    return "\n".join(lines) + "\n"


def changes_text(changes: Any) -> str:
    """A report's `changes` as `+add ~change -destroy`; "" when the plan counted none."""
    if not isinstance(changes, Mapping):
        return ""
    return f"+{changes.get('add', 0)} ~{changes.get('change', 0)} -{changes.get('destroy', 0)}"


# ---------------------------------------------------------------------------- drift

DRIFT_DIR = ".tfrun/ci/drift"  # under the live root, beside the plan reports
# A scheduled pipeline that includes the jobs, or the child pipeline a scheduled one triggers.
DRIFT_RULE = '$CI_PIPELINE_SOURCE == "schedule" || $CI_PIPELINE_SOURCE == "parent_pipeline"'


def gitlab_drift(path: str, envs: Sequence[str], options: GitLabOptions) -> dict[str, Any]:
    """A pipeline for a schedule: per environment, a job running `tfrun drift` on `path`
    (relative to the repository's top), its JSON and Markdown reports kept even when it fails.
    It fails on drift (exit 2) as on a failed stack (1): the schedule's pipeline shows red."""
    if not envs:
        raise ConfigError("there are no stacks to check for drift.")
    document: dict[str, Any] = {"default": _default(options), "variables": _variables(options)}
    document = {name: value for name, value in document.items() if value}
    document["stages"] = ["drift"]
    for env in envs:
        report = _join(options.live_rel, f"{DRIFT_DIR}/{env}")
        document[f"drift {env}"] = {
            "stage": "drift",
            "rules": [{"if": DRIFT_RULE}],
            "interruptible": True,  # read-only: a newer pipeline may cancel it
            "script": [
                f"tfrun drift {_q(path)} --env {_q(env)} --json {_q(report + '.json')} "
                f"--markdown {_q(report + '.md')}"
            ],
            "artifacts": {
                "when": "always",
                "expire_in": "30 days",
                "paths": [f"{report}.json", f"{report}.md"],
            },
        }
    return document
