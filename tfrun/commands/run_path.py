"""A PATH on a terraform command line that names nothing: an error, with the stack folders
nearest to what was typed, rather than a wider run (run_args.parse_run)."""

from __future__ import annotations

import difflib
import os
import posixpath
from collections.abc import Callable
from pathlib import Path

from tfrun.errors import TfrunError, UsageError

# How close a stack's path must be to the one typed to be suggested (difflib's ratio), and
# how much less close than the nearest the other suggestions may be.
_CLOSE = 0.6
_NEAR = 0.05
# A path has none of these; resource addresses, ARNs and `-var` values often do.
_NOT_IN_PATHS = frozenset(':=[]"')


def kind_of(path: Path) -> str:
    """What `path` names: a folder, a file (or anything else there), a broken link, nothing."""
    try:
        if path.is_dir():
            return "folder"
        if path.exists():
            return "file"
        return "broken link" if path.is_symlink() else "nothing"
    except (OSError, ValueError):  # a name too long for the file system, say
        return "nothing"


def refuse_missing_path(command: str, word: str, cwd: Path, *, broken_link: bool) -> None:
    """An error when `word`, which names nothing, looks like a path: a slash, a symbolic link,
    or a first folder like an environment's (`prod-eu-west-2`) or one of the live root's."""
    if not broken_link and (not word.strip() or _NOT_IN_PATHS.intersection(word)):
        return
    from tfrun.discovery import REGION, find_root

    root = _live_root(cwd, find_root)
    if "/" not in word and not broken_link:
        # Terraform addresses and file names have dots; environment folders do not.
        if "." in word:
            return
        if not REGION.fullmatch(word) and not (root and kind_of(root / word) == "folder"):
            return
    suggestions = _nearest_stacks(word, cwd, root) if root is not None else []
    hint = f" Did you mean {' or '.join(suggestions)}?" if suggestions else ""
    problem = (
        f"this symbolic link in {cwd} leads nowhere (or round in a loop)"
        if broken_link
        else f"there is no such folder or file in {cwd}"
    )
    raise UsageError(
        f"{word}: {problem}, and tfrun does not run a wider set of stacks instead.{hint} "
        "An argument for terraform that only looks like a path goes after -- "
        f"(tfrun {command} -- {word})."
    )


def _live_root(cwd: Path, find_root: Callable[[Path], Path]) -> Path | None:
    try:
        return find_root(cwd)
    except TfrunError:
        return None


def _nearest_stacks(word: str, cwd: Path, root: Path) -> list[str]:
    """Stack folders, and the folders above them, whose path relative to the live root or to
    `cwd` is close to `word`; as paths relative to `cwd`, which the person can type."""
    from tfrun.discovery import Repository

    try:
        stacks = Repository(root).stack_paths(root)
    except TfrunError:
        return []
    folders = {p for stack in stacks for p in (stack, *stack.parents) if root in p.parents}
    here = cwd.resolve()
    shown: dict[str, str] = {}
    for folder in sorted(folders):
        typed = Path(os.path.relpath(folder, here)).as_posix()
        shown.setdefault(folder.relative_to(root).as_posix(), typed)
        shown.setdefault(typed, typed)
    wanted = posixpath.normpath(word)
    # A folder as deep as the one typed first: `prod-eu-west-1/netwrok` is a stack's typo,
    # and its environment folder, close as it is too, would be a wider run.
    depth = len(wanted.split("/"))
    same_depth = [name for name in shown if len(name.split("/")) == depth]
    for candidates in (same_depth, list(shown)):
        scored = sorted(
            ((difflib.SequenceMatcher(None, wanted, name).ratio(), name) for name in candidates),
            reverse=True,
        )
        if scored and scored[0][0] >= _CLOSE:
            # Only the nearest: siblings share the typed prefix and would all pass the cutoff.
            best = scored[0][0]
            near = [name for ratio, name in scored if ratio >= best - _NEAR]
            return list(dict.fromkeys(shown[name] for name in near))[:3]
    return []
