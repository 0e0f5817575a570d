"""tfrun/git.py on real git repositories in temp dirs: the files a change holds (renames,
untracked files, the merge base), refs that are not commits, and copies of a commit that leave
the working tree alone. What the change means for stacks: test_affected.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import commit, git, write_tree

from tfrun.errors import ConfigError, UsageError
from tfrun.git import FileChange, checkout, git_change, git_top, head_commit, tree_files


@pytest.fixture
def top(tmp_path: Path) -> Path:
    """A repository with one commit on main: a.txt, dir/b.txt, dir/c.txt."""
    repo = write_tree(tmp_path / "repo", {"a.txt": "a\n", "dir/b.txt": "b\n", "dir/c.txt": "c\n"})
    git(repo, "init", "-q")
    commit(repo, "initial")
    return repo.resolve()


def test_git_top_from_a_folder_or_file_inside(top: Path) -> None:
    assert git_top(top / "dir") == top
    assert git_top(top / "dir" / "b.txt") == top


def test_git_top_outside_a_repository(tmp_path: Path) -> None:
    outside = write_tree(tmp_path / "plain", {"x.txt": "x\n"})
    with pytest.raises(ConfigError, match="not inside a git repository"):
        git_top(outside)


def test_a_change_between_commits_with_a_rename(top: Path) -> None:
    base = head_commit(top)
    git(top, "mv", "dir/b.txt", "dir/renamed.txt")
    write_tree(top, {"a.txt": "changed\n", "new.txt": "n\n"})
    (top / "dir" / "c.txt").unlink()
    head = commit(top)
    change = git_change(top, base, "HEAD")
    assert (change.base_commit, change.compared_to, change.head) == (base, base, head)
    assert sorted(change.files, key=lambda f: f.path) == [
        FileChange("a.txt", "M"),
        FileChange("dir/c.txt", "D"),
        FileChange("dir/renamed.txt", "R", old_path="dir/b.txt"),
        FileChange("new.txt", "A"),
    ]
    assert change.notes == ()


def test_the_working_tree_with_untracked_files_that_count(top: Path) -> None:
    write_tree(top, {"a.txt": "edited\n", "keep.txt": "k\n", "skip.txt": "s\n"})
    change = git_change(top, "HEAD", None, counts=lambda _top, path: path != "skip.txt")
    assert change.head is None
    assert set(change.files) == {FileChange("a.txt", "M"), FileChange("keep.txt", "A")}
    # With a head, only commits count.
    assert git_change(top, "HEAD", "HEAD").files == ()


def test_the_change_is_from_the_merge_base(top: Path) -> None:
    """A branch's change, not what landed on the base branch since the branch point."""
    git(top, "switch", "-q", "-c", "feature")
    write_tree(top, {"dir/b.txt": "feature\n"})
    commit(top)
    git(top, "switch", "-q", "main")
    write_tree(top, {"a.txt": "main moved on\n"})
    commit(top)
    git(top, "switch", "-q", "feature")
    change = git_change(top, "main", "HEAD")
    assert change.files == (FileChange("dir/b.txt", "M"),)
    assert change.compared_to == git(top, "merge-base", "main", "HEAD").strip()


def test_a_missing_base_is_a_clear_error(top: Path) -> None:
    with pytest.raises(UsageError, match=r"--base 'origin/nope' is not a commit"):
        git_change(top, "origin/nope", None)
    with pytest.raises(UsageError, match=r"--head 'nope' is not a commit"):
        git_change(top, "HEAD", "nope")
    # Never passed on to git as an option.
    with pytest.raises(UsageError, match="does not start with '-'"):
        git_change(top, "--output=x", None)


def test_tree_files_and_a_checkout_of_another_commit(top: Path) -> None:
    first = head_commit(top)
    write_tree(top, {"dir/b.txt": "later\n"})
    commit(top)
    assert tree_files(top, first, "dir") == ["dir/b.txt", "dir/c.txt"]
    assert tree_files(top, first, "") == ["a.txt", "dir/b.txt", "dir/c.txt"]
    with checkout(top, first, ["dir/b.txt"]) as copy:
        assert copy.name == top.name
        assert (copy / "dir" / "b.txt").read_text() == "b\n"
        assert not (copy / "a.txt").exists()
    assert not copy.exists()
    with checkout(top, first, None) as copy:
        assert sorted(p.name for p in copy.rglob("*.txt")) == ["a.txt", "b.txt", "c.txt"]
    # The repository's own index and working tree are as they were.
    assert (top / "dir" / "b.txt").read_text() == "later\n"
    assert git(top, "status", "--porcelain") == ""
