"""`tfrun affected --base REF [--head REF] [--with-dependents] [--format F] [PATH]`.

Answered from the repository's picture (tfrun/picture.py) while no file it reads changed and
git says what it said: the same commits, and the same files changed or untracked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfrun import git, picture
from tfrun.errors import UsageError

if TYPE_CHECKING:
    from tfrun.affected import Report

FORMATS = ("text", "json", "paths")


def run(
    path: Path,
    *,
    base: str,
    head: str | None = None,
    with_dependents: bool = False,
    fmt: str = "text",
) -> int:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(FORMATS)}.")
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder.")
    start = os.path.realpath(path)
    folder = Path(picture.folder_of(start))
    asked = git.state(folder, [base, *([head] if head else [])], working_tree=head is None)

    def key() -> str | None:
        said = asked()
        where = os.getcwd()  # --format paths is relative to it
        parts = (start, base, head, with_dependents, fmt, where, said)
        return None if said is None else picture.key_of("affected", os.environ, *parts)

    drawn = picture.answered(start, key, lambda: _drawn(path, base, head, with_dependents, fmt))
    return drawn.show()


def _drawn(
    path: Path, base: str, head: str | None, with_dependents: bool, fmt: str
) -> tuple[picture.Answer, set[str]]:
    from tfrun.affected import affected

    report = affected(path, base, head, with_dependents=with_dependents)
    answer = picture.Answer()
    if report.change is not None:
        for note in report.change.notes:
            answer.say("info", f"note: {note}.")
    if fmt == "json":
        answer.say("out", json.dumps(to_json(report), indent=2))
    elif fmt == "paths":
        # Relative to where the command runs, so `for p in $(tfrun affected ...)` works as is.
        lines = [os.path.relpath(report.root / a.stack.rel, Path.cwd()) for a in report.stacks]
        if lines:
            answer.say("out", "\n".join(lines))
    else:
        text = to_text(report)
        if text:
            answer.say("out", text)
    for gone in report.deleted:
        answer.say("info", f"warning: {deleted_message(gone.rel, gone.key, gone.renamed_to)}")
    if not report.stacks and not report.deleted and fmt == "text":
        answer.say("info", f"no stacks are affected by the change from {base}.")
    modules = picture.module_dirs(report.facts)
    return answer, modules


def deleted_message(rel: str, key: str | None, renamed_to: str | None) -> str:
    state = f"its state ({key})" if key else "its state"
    moved = (
        f" Its files moved to {renamed_to}, which has a state key of its own and so starts "
        f"empty: move the state (terraform state mv, or keep the key in {renamed_to}'s "
        "stack.hcl) rather than create everything twice."
        if renamed_to
        else ""
    )
    return (
        f"{rel} was deleted, but {state} still records its resources. They need a destroy, "
        "which tfrun never runs on its own: restore the folder, run 'tfrun destroy' on it, "
        f"then delete it again.{moved}"
    )


def to_text(report: Report) -> str:
    lines = []
    for item in report.stacks:
        lines.append(item.stack.rel + ("  (dependent)" if item.dependent else ""))
        lines += [f"  {reason.text}" for reason in item.reasons]
    for gone in report.deleted:
        lines.append(f"{gone.rel}  (deleted)")
        lines.append(f"  {deleted_message(gone.rel, gone.key, gone.renamed_to)}")
    return "\n".join(lines)


def to_json(report: Report) -> dict[str, Any]:
    change = report.change
    return {
        "base": None if change is None else change.base,
        "base_commit": None if change is None else change.base_commit,
        "compared_to": None if change is None else change.compared_to,
        "head": None if change is None else change.head,
        "notes": [] if change is None else list(change.notes),
        "stacks": [
            {
                "path": item.stack.rel,
                "env": item.stack.env,
                "region": item.stack.region,
                "stack": item.stack.name,
                "key": item.stack.key,
                "dependent": item.dependent,
                "dependencies": list(report.graph.dependencies[item.stack.rel]),
                "reasons": [
                    {"kind": str(r.kind), "text": r.text, "files": list(r.files)}
                    for r in item.reasons
                ],
            }
            for item in report.stacks
        ],
        "deleted": [
            {"path": gone.rel, "key": gone.key, "renamed_to": gone.renamed_to}
            for gone in report.deleted
        ],
    }
