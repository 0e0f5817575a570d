"""Git, for `tfrun affected` and `tfrun ci`: which files a change holds, the files of a commit,
and a temporary copy of them. Every git command starts through tfrun/process.py.

The change is `git diff` between the merge base of BASE and HEAD (so a branch's change, not
what happened on the base branch since) and HEAD, or the working tree with untracked files
when no HEAD is given.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfrun import process
from tfrun.errors import ConfigError, UsageError


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the git top level, with forward slashes
    status: str  # A, M, D, T, R (at the new path), C (copy, at the new path)
    old_path: str | None = None  # for R and C: where it came from


@dataclass(frozen=True)
class Change:
    top: Path  # the git top level
    base: str  # the base commit, as given
    base_commit: str
    compared_to: str  # the merge base of base and head (or the base when there is none)
    head: str | None  # the head commit; None: the working tree, uncommitted changes included
    files: tuple[FileChange, ...]
    notes: tuple[str, ...] = ()  # what the user should know about how it was compared


def _git(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    *,
    stdin: str | None = None,
) -> process.Outcome:
    # --no-optional-locks: a diff against the working tree must not take the index lock that
    # the person's own git commands may be waiting for.
    return process.run(["git", "--no-optional-locks", *args], cwd, env, stdin=stdin)


def _git_out(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    *,
    stdin: str | None = None,
) -> str:
    outcome = _git(args, cwd, env, stdin=stdin)
    if outcome.returncode != 0:
        raise ConfigError(
            f"git {' '.join(args)} failed in {cwd} (exit {outcome.returncode}): "
            f"{outcome.stderr.strip() or 'no message'}"
        )
    return outcome.stdout


def git_top(path: Path) -> Path:
    """The top level of the git repository that holds `path`."""
    start = path if path.is_dir() else path.parent
    outcome = _git(["rev-parse", "--show-toplevel"], start)
    if outcome.returncode != 0:
        raise ConfigError(
            f"{path}: this is not inside a git repository, and tfrun affected compares git "
            "commits. Run it in a clone of the repository."
        )
    return Path(outcome.stdout.strip()).resolve()


def head_commit(top: Path) -> str:
    """The commit checked out at `top`."""
    return _git_out(["rev-parse", "HEAD"], top).strip()


def _commit(top: Path, ref: str, what: str) -> str:
    """The commit `ref` names; `what` is the option it came from, for the message."""
    if ref.startswith("-"):
        raise UsageError(f"--{what} {ref!r}: a git ref does not start with '-'.")
    outcome = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top)
    if outcome.returncode == 0:
        return outcome.stdout.strip()
    shallow = _git(["rev-parse", "--is-shallow-repository"], top).stdout.strip() == "true"
    hint = (
        "This clone is shallow, so older commits are not in it: fetch the base first, for "
        f"example 'git fetch --depth=1 origin {ref.removeprefix('origin/')}' (or deepen the "
        "clone: GIT_DEPTH in GitLab, fetch-depth in GitHub Actions)."
        if shallow
        else "Fetch it first (git fetch origin), or name a branch, tag or commit that exists here."
    )
    raise UsageError(f"--{what} {ref!r} is not a commit in the repository at {top}. {hint}")


def _parse_name_status(output: str) -> list[FileChange]:
    """`git diff --name-status -z`: a status, then one path (two for renames and copies)."""
    tokens = output.split("\0")
    changes: list[FileChange] = []
    i = 0
    while i < len(tokens) and tokens[i]:
        status = tokens[i][0]
        if status in "RC":
            changes.append(FileChange(tokens[i + 2], status, old_path=tokens[i + 1]))
            i += 3
        else:
            changes.append(FileChange(tokens[i + 1], status))
            i += 2
    return changes


def git_change(
    top: Path,
    base: str,
    head: str | None,
    *,
    counts: Callable[[Path, str], bool] = lambda _top, _path: True,
) -> Change:
    """The files changed from BASE (its merge base with HEAD) to HEAD or the working tree.

    Without HEAD, untracked files are added too, those for which `counts(top, path)` holds:
    the caller knows which files a tool leaves behind that no .gitignore lists yet.
    """
    base_commit = _commit(top, base, "base")
    head_commit = _commit(top, head, "head") if head is not None else None
    notes: list[str] = []
    merge_base = _git(["merge-base", base_commit, head_commit or "HEAD"], top)
    if merge_base.returncode == 0 and merge_base.stdout.strip():
        compared_to = merge_base.stdout.strip()
    else:
        # A shallow clone may hold the base but not the history that joins it to HEAD. The
        # base itself is then the best there is: what changed on the base branch since the
        # branch point shows up as changed too, which costs plans, never misses one.
        compared_to = base_commit
        notes.append(
            f"no common ancestor of {base} and {head or 'HEAD'} in this clone (a shallow "
            f"clone?), so the change is compared with {base} itself"
        )
    diff = ["diff", "--name-status", "-z", "-M", "--no-relative", "--no-ext-diff", compared_to]
    files = _parse_name_status(_git_out([*diff, *([head_commit] if head_commit else [])], top))
    if head_commit is None:
        untracked = _git_out(
            ["ls-files", "--others", "--exclude-standard", "-z", "--full-name"], top
        )
        files += [FileChange(p, "A") for p in untracked.split("\0") if p and counts(top, p)]
    return Change(
        top=top,
        base=base,
        base_commit=base_commit,
        compared_to=compared_to,
        head=head_commit,
        files=tuple(files),
        notes=tuple(notes),
    )


def state(where: Path, refs: Sequence[str], *, working_tree: bool) -> Callable[[], str | None]:
    """What a change's answer depends on in git, asked in the background: the commits `refs`
    and HEAD name, and (`working_tree`) which files differ from HEAD or are untracked. Call
    the result for it; None when git cannot say (a ref that is not a commit: the full run
    explains)."""
    quiet = ["git", "--no-optional-locks"]
    names = [*(f"{ref}^{{commit}}" for ref in refs), "HEAD"]
    asked = [process.started([*quiet, "rev-parse", "--end-of-options", *names], where)]
    if working_tree:
        # Not what tfrun and terraform keep (their caches, this answer's own among them).
        mine = [f":(top,exclude,glob)**/{folder}/**" for folder in (".tfrun", ".terraform")]
        status = ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ":/", *mine]
        asked.append(process.started([*quiet, *status], where))

    def answer() -> str | None:
        outputs = []
        for child in asked:
            out, _err = child.communicate()
            if child.returncode != 0:
                return None
            outputs.append(out)
        return "\0".join(outputs)

    return answer


def tree_files(top: Path, commit: str, under: str) -> list[str]:
    """Every file of `commit` below `under` (relative to the top; "" for all)."""
    out = _git_out(["ls-tree", "-r", "-z", "--name-only", commit, "--", under or "."], top)
    return [path for path in out.split("\0") if path]


@contextlib.contextmanager
def checkout(top: Path, commit: str, paths: Sequence[str] | None) -> Iterator[Path]:
    """A temporary copy of `paths` (None: every file) as they are in `commit`; yields the
    copy's top level. The repository's index and working tree are not touched."""
    with tempfile.TemporaryDirectory(prefix="tfrun-affected-") as tmp:
        # Same folder name as the real top level: the `Repo` tag defaults to it.
        copy = Path(tmp) / top.name
        copy.mkdir()
        (copy / ".git").touch()
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git_out(["read-tree", commit], top, env)
        if paths is None:
            _git_out(["checkout-index", "-a", f"--prefix={copy}/"], top, env)
        elif paths:
            argv = ["checkout-index", "-z", "--stdin", f"--prefix={copy}/"]
            _git_out(argv, top, env, stdin="\0".join(paths))
        yield copy
