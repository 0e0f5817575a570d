"""`tfrun ci gitlab|github|summary`: pipelines for the stacks a change affects.

    tfrun ci gitlab [--base REF] [--head REF] [--with-dependents] [--plan-only]
                    [--image IMAGE] [--tag TAG]... [--before-script LINE]...
                    [--needs-limit N] [PATH]
    tfrun ci gitlab --static [--plan-only] [--image ...] [--needs-limit N] [PATH]
    tfrun ci gitlab --drift [--image ...] [PATH]
    tfrun ci github [--base REF] [--head REF] [--with-dependents] [PATH]
    tfrun ci summary DIR|FILE... [--expect STACK]...

Without --base, GitLab's own variables name the base (the merge request's base, else the
commit before the push); with none of them, every stack under PATH is in the pipeline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from tfrun import ci, ci_github, git, picture, plan_reports, ui, yaml_text
from tfrun import graph as graphs
from tfrun.affected import Report, affected, everything
from tfrun.commands.affected import deleted_message
from tfrun.discovery import Repository, is_stack_dir
from tfrun.errors import UsageError
from tfrun.picture import Answer

# In order: a merge request's base, then the branch's commit before this push.
_GITLAB_BASES = ("CI_MERGE_REQUEST_DIFF_BASE_SHA", "CI_COMMIT_BEFORE_SHA")


def default_base(environ: Mapping[str, str]) -> str | None:
    for name in _GITLAB_BASES:
        value = environ.get(name, "").strip()
        # A new branch's first push has CI_COMMIT_BEFORE_SHA = 0000000000...
        if value and value.strip("0"):
            return value
    return None


def _report(
    path: Path, base: str | None, head: str | None, with_dependents: bool, answer: Answer
) -> Report:
    if base is None:
        if head is not None:
            raise UsageError("--head needs --base: a change is from one commit to another.")
        answer.say(
            "info", "no --base (and no GitLab base variable), so every stack is in the pipeline."
        )
        return everything(path)
    report = affected(path, base, head, with_dependents=with_dependents)
    if report.change is not None:
        for note in report.change.notes:
            answer.say("info", f"note: {note}.")
    return report


def ci_stacks(
    report: Report, changes: Mapping[str, tuple[str, ...]] | None = None
) -> list[ci.CIStack]:
    chosen = [item.stack for item in report.stacks]
    waits = graphs.waits_for(report.graph, chosen)
    return [
        ci.CIStack(
            rel=item.stack.rel,
            path=report.path_of(item.stack.rel),
            env=item.stack.env,
            region=item.stack.region,
            key=item.stack.key,
            bucket=item.stack.config.state.bucket or "",
            protected=item.stack.protected,
            needs=waits[item.stack.rel],
            dependent=item.dependent,
            reasons=tuple(r.text for r in item.reasons),
            changes=(changes or {}).get(item.stack.rel, ()),
        )
        for item in report.stacks
    ]


def gitlab(
    path: Path,
    *,
    base: str | None = None,
    head: str | None = None,
    with_dependents: bool = False,
    static: bool = False,
    plan_only: bool = False,
    image: str | None = None,
    tags: Sequence[str] = (),
    before_script: Sequence[str] = (),
    needs_limit: int = ci.NEEDS_LIMIT,
    environ: Mapping[str, str] = os.environ,
) -> int:
    if static and (base or head or with_dependents):
        raise UsageError(
            "--static writes jobs for every stack, each with its own `rules: changes:`; "
            "--base, --head and --with-dependents are for child pipelines."
        )
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder.")
    chosen = None if static else base or default_base(environ)
    start = os.path.realpath(path)
    folder = Path(picture.folder_of(start))
    asked = (
        git.state(folder, [chosen, *([head] if head else [])], working_tree=head is None)
        if chosen
        else None
    )
    if needs_limit < 2:
        raise UsageError(
            f"--needs-limit {needs_limit}: a job must be allowed to need at least 2 jobs (its "
            "plan and one barrier). GitLab's default is 50."
        )
    layout = ci.GitLabOptions(
        image=image,
        tags=tuple(tags),
        before_script=tuple(before_script),
        plan_only=plan_only,
        needs_limit=needs_limit,
    )
    options = (start, chosen, head, with_dependents, static, repr(layout))

    def key() -> str | None:
        said = asked() if asked is not None else ""
        parts = (*options, said)
        return None if said is None else picture.key_of("ci gitlab", os.environ, *parts)

    def draw() -> tuple[Answer, set[str]]:
        answer = Answer()
        report = (
            everything(path) if static else _report(path, chosen, head, with_dependents, answer)
        )
        _pipeline(report, answer, chosen, static, layout)
        return answer, picture.module_dirs(report.facts)

    return picture.answered(start, key, draw).show()


def _options(report: Report, layout: ci.GitLabOptions) -> ci.GitLabOptions:
    """`layout`: the options given on the command line; the rest come from the repository."""
    auth = report.graph.stacks and next(iter(report.graph.stacks.values())).config.auth
    return replace(
        layout,
        live_rel=report.live_rel,
        ci_role_arn=auth.ci_role_arn if auth else None,
        ci_audience=(auth.ci_audience if auth else None) or ci.DEFAULT_AUDIENCE,
    )


def _pipeline(
    report: Report, answer: Answer, base: str | None, static: bool, layout: ci.GitLabOptions
) -> None:
    options = _options(report, layout)
    if static:
        stacks = ci_stacks(report, _change_globs(report))
        document = ci.gitlab_static(stacks, options)
        comment = (
            f"Generated by tfrun ci gitlab --static: {len(stacks)} stacks, each planned when "
            "its files, a tfrun.hcl above it or a local module it uses change."
        )
    else:
        stacks = ci_stacks(report)
        notes = [deleted_message(d.rel, d.key, d.renamed_to) for d in report.deleted]
        for note in notes:
            answer.say("info", f"warning: {note}")
        document = ci.gitlab_child(stacks, options, notes)
        since = f" by the change from {base}" if report.change else ""
        comment = f"Generated by tfrun ci gitlab: {len(stacks)} stacks affected{since}."
        answer.say("info", f"{len(stacks)} stacks in the pipeline{since}.")
    answer.say("out", yaml_text.to_yaml(document, comment + "\nDo not edit: generate it again."))


def _change_globs(report: Report) -> dict[str, tuple[str, ...]]:
    """Per stack: its own files, the tfrun.hcl files above it and every local module it uses,
    as `rules: changes:` globs relative to the repository's top."""
    repo = Repository(report.root)
    top = report.top
    out = {}
    for item in report.stacks:
        stack = item.stack
        own = report.path_of(stack.rel)
        folders = _subdirs(stack.path)
        nested = [d for d in folders if is_stack_dir(d)]
        if nested:
            # Nested stacks have jobs of their own: only this folder's files, and its folders
            # that are not stacks.
            globs = [f"{own}/*", *(f"{own}/{d.name}/**/*" for d in folders if d not in nested)]
        else:
            globs = [f"{own}/**/*"]
        for config in repo.config_files(stack.path):
            if config.parent != stack.path:
                globs.append(_relative(config, top))
        modules = sorted(report.facts[stack.rel].modules) if stack.rel in report.facts else []
        globs += [f"{_relative(m, top)}/**/*" for m in modules if top in m.parents]
        out[stack.rel] = tuple(dict.fromkeys(globs))
    return out


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _relative(path: Path, top: Path) -> str:
    return path.relative_to(top).as_posix()


def github(
    path: Path,
    *,
    base: str | None = None,
    head: str | None = None,
    with_dependents: bool = False,
) -> int:
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder.")
    answer = Answer()
    report = _report(path, base, head, with_dependents, answer)
    for gone in report.deleted:
        answer.say("info", f"warning: {deleted_message(gone.rel, gone.key, gone.renamed_to)}")
    # One line: GitHub reads a step output from `name=value` lines.
    answer.say("out", json.dumps(ci_github.github_matrix(ci_stacks(report)), separators=(",", ":")))
    return answer.show()


def summary(paths: Sequence[Path], expect: Sequence[str] = ()) -> int:
    """Print the plan jobs' reports as one table. `paths` are report files or folders of them
    (`<live root>/.tfrun/ci/plan`); a report is named after its stack."""
    ui.out(ci.summary_text(plan_reports.read(paths).reports, expect))
    return 0


def gitlab_drift(
    path: Path,
    *,
    image: str | None = None,
    tags: Sequence[str] = (),
    before_script: Sequence[str] = (),
) -> int:
    """`tfrun ci gitlab --drift [PATH]`: the pipeline of a scheduled drift check, one job per
    environment that has stacks under PATH (docs/drift.md)."""
    report = everything(path)
    layout = ci.GitLabOptions(image=image, tags=tuple(tags), before_script=tuple(before_script))
    options = _options(report, layout)
    envs = sorted({item.stack.env for item in report.stacks})
    where = Path(os.path.relpath(os.path.realpath(path), report.top)).as_posix()
    document = ci.gitlab_drift(where, envs, options)
    environments = f"{len(envs)} environment{'' if len(envs) == 1 else 's'}"
    comment = (
        f"Generated by tfrun ci gitlab --drift: {environments}, each checked for "
        "drift in a scheduled pipeline.\nDo not edit: generate it again."
    )
    ui.info(f"{environments} ({', '.join(envs)}) in the drift pipeline.")
    ui.out(yaml_text.to_yaml(document, comment))
    return 0
