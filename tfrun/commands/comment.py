"""`tfrun ci comment DIR|REPORT... [--expect STACK]... [--github] [--key KEY]`: the plan jobs'
reports and plan texts as one comment on the merge request (GitLab) or pull request
(`--github`), created by the first pipeline and updated in place by the next ones.

Outside a merge request's pipeline it posts nothing and says so. The whole text is printed
to the job's log first, so a comment cut at the site's limit can point there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tfrun import ci, plan_comment, plan_reports, review_api, ui
from tfrun.errors import UsageError


def run(
    paths: Sequence[Path],
    expect: Sequence[str] = (),
    *,
    github: bool = False,
    key: str | None = None,
    environ: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> int:
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder (the plan reports).")
    thread = review_api.github(environ) if github else review_api.gitlab(environ)
    if thread is None:
        ui.info(
            "not a pull request's run (no pull_request in GITHUB_EVENT_PATH's event); "
            "no comment posted."
            if github
            else "not a merge request pipeline (no CI_MERGE_REQUEST_IID); no note posted."
        )
        return 0
    key = key or default_key(paths, cwd or Path.cwd())
    context = _github_context(key, environ) if github else _gitlab_context(key, environ)
    files = plan_reports.read(paths, texts=True)
    comment = plan_comment.render(files.reports, files.texts, expect, context)
    ui.out(comment.full)
    if comment.cut:
        ui.info(
            f"the comment is {len(comment.full):,} characters, over {context.site}'s limit of "
            f"{context.limit:,}: it is cut there and points to this log, which holds it whole."
        )
    posted = thread.post(comment.body, lambda body: plan_comment.is_ours(body, key))
    what = "note" if not github else "comment"
    done = "created" if posted.created else "updated"
    ui.info(f"{done} the plan {what} {posted.id} on {thread.client.site.where}.")
    return 0


def default_key(paths: Sequence[Path], cwd: Path) -> str:
    """The live root the reports are under (`<live root>/.tfrun/ci/plan`), relative to the
    current folder; for reports elsewhere, their folder."""
    first = paths[0].resolve()
    folder = first if first.is_dir() else first.parent
    tail = tuple(ci.REPORT_DIR.split("/"))
    live = next(
        (
            f.parents[len(tail) - 1]
            for f in (folder, *folder.parents)
            if f.parts[-len(tail) :] == tail
        ),
        folder,
    )
    try:
        return live.relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return live.name or "."


def _gitlab_context(key: str, environ: Mapping[str, str]) -> plan_comment.Context:
    return plan_comment.Context(
        key=key,
        site="GitLab",
        limit=plan_comment.GITLAB_LIMIT,
        job_url=environ.get("CI_JOB_URL") or None,
        pipeline_url=environ.get("CI_PIPELINE_URL") or None,
        commit=environ.get("CI_COMMIT_SHORT_SHA") or None,
    )


def _github_context(key: str, environ: Mapping[str, str]) -> plan_comment.Context:
    parts = [environ.get(n, "").strip() for n in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY")]
    run_id = environ.get("GITHUB_RUN_ID", "").strip()
    run_url = (
        f"{parts[0].rstrip('/')}/{parts[1]}/actions/runs/{run_id}"
        if all(parts) and run_id
        else None
    )
    head = (review_api.pull_request(environ) or {}).get("head")
    sha = head.get("sha") if isinstance(head, dict) else None
    return plan_comment.Context(
        key=key,
        site="GitHub",
        limit=plan_comment.GITHUB_LIMIT,
        job_url=run_url,
        pipeline_url=run_url,
        commit=sha[:8] if isinstance(sha, str) and sha else None,
    )
