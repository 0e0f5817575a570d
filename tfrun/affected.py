"""What a git change touches (`tfrun affected`): the stacks whose plan it may change, each with
the reasons, and the stacks it deletes.

A stack is affected when

* a file in its folder changed (nested stacks own their own folders);
* a local module it uses changed, directly or through modules that call modules;
* a `tfrun.hcl` above it changed;
* its generated files would change (a `remote_state` target's key moved, say);
* with `with_dependents`, it reads the state of an affected stack, transitively.

The change is `git diff` between the merge base of BASE and HEAD (so a branch's change, not
what happened on the base branch since) and HEAD, or the working tree with untracked files
when no HEAD is given (tfrun/git.py reads it). Stacks, modules and the graph are read from
the files on disk; when HEAD names another commit than the one checked out, from a temporary
checkout of it.

Long on purpose: each reason above needs its own look at the change (files, modules, config,
a render of the base's generated files, the base's stack list), and they share one analysis
object; split apart, each piece would need the whole of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from tfrun import generate, scan
from tfrun import graph as graphs
from tfrun.config import ROOT_FILE, STACK_FILE
from tfrun.discovery import (
    _SKIP_DIRS,
    GENERATED_NAMES,
    MAX_STACK_DEPTH,
    MIN_STACK_DEPTH,
    Repository,
    Stack,
    find_root,
)
from tfrun.errors import ConfigError, UsageError
from tfrun.git import Change, checkout, git_change, git_top, head_commit, tree_files
from tfrun.workspace import Workspace

# How many changed files a reason names in text before "and N more" (JSON has them all).
SHOWN_FILES = 5
_CACHE_FILES = (Path(".tfrun") / "cache" / "config.json", scan.CACHE_DIR / scan.CACHE_FILE)


class Kind(StrEnum):
    FILES = "files"  # a file in the stack's folder changed
    MODULE = "module"  # a local module it uses changed
    CONFIG = "config"  # a tfrun.hcl above it changed
    GENERATED = "generated"  # its generated files would change
    DEPENDENCY = "dependency"  # it reads the state of an affected stack
    ALL = "all"  # no base to compare with: every stack


@dataclass(frozen=True)
class Reason:
    kind: Kind
    text: str
    files: tuple[str, ...] = ()  # the changed files behind it, relative to the git top level


@dataclass(frozen=True)
class AffectedStack:
    stack: Stack
    reasons: tuple[Reason, ...]
    # Only here because it reads the state of an affected stack (--with-dependents).
    dependent: bool = False


@dataclass(frozen=True)
class DeletedStack:
    rel: str
    key: str | None  # its state key at the base, where its resources are still recorded
    renamed_to: str | None = None  # git saw its files move there (with a new state key)


@dataclass(frozen=True)
class Report:
    change: Change | None  # None when there was no base: every stack is listed
    root: Path  # the live root (of the working tree, even when HEAD was read from a copy)
    live_rel: str  # the live root relative to the git top level ("" when it is the top)
    graph: graphs.Graph
    stacks: tuple[AffectedStack, ...]  # in dependency order
    deleted: tuple[DeletedStack, ...] = ()
    # What each stack's .tf files say (local modules, remote-state reads), by rel path.
    facts: Mapping[str, scan.StackFacts] = field(default_factory=dict)

    @property
    def top(self) -> Path:
        """The git top level of the working tree."""
        depth = len(self.live_rel.split("/")) if self.live_rel else 0
        return self.root.parents[depth - 1] if depth else self.root

    def path_of(self, rel: str) -> str:
        """A stack's folder relative to the git top level, as CI jobs name it."""
        return f"{self.live_rel}/{rel}" if self.live_rel else rel


# ------------------------------------------------------------------------------ the change


def _counts(top: Path, untracked: str) -> bool:
    """Whether an untracked file is part of the change. What tfrun and terraform leave in a
    stack is not, even where no .gitignore lists it yet."""
    parts = untracked.split("/")
    if any(p in (".terraform", ".tfrun") for p in parts[:-1]):
        return False
    if generate.is_plan_file(parts[-1]):
        return False
    return not (parts[-1] in GENERATED_NAMES and generate.is_generated(top / untracked))


def _copy_caches(root: Path, into: Path) -> None:
    """The caches are keyed by content, so a checkout of another commit reuses them."""
    for rel in _CACHE_FILES:
        with contextlib.suppress(OSError):
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, into / rel)


# ------------------------------------------------------------------------------ the analysis


def _stack_dirs_in(files: Iterable[str]) -> set[str]:
    """Stack folders (relative to the live root) in a listing of files below the live root,
    by discovery's rules: own .tf files or a stack.hcl, two or three levels down."""
    found = set()
    for rel in files:
        folder, _, name = rel.rpartition("/")
        parts = folder.split("/") if folder else []
        if not MIN_STACK_DEPTH <= len(parts) <= MAX_STACK_DEPTH:
            continue
        if any(p.startswith(".") or p in _SKIP_DIRS for p in parts):
            continue
        if name == STACK_FILE or (name.endswith(".tf") and name not in GENERATED_NAMES):
            found.add(folder)
    return found


def _owner(rel: str, stacks: Mapping[str, object] | set[str]) -> str | None:
    """The stack whose folder holds `rel` (relative to the live root): the nearest one."""
    parts = rel.split("/")
    for depth in range(min(MAX_STACK_DEPTH, len(parts) - 1), MIN_STACK_DEPTH - 1, -1):
        candidate = "/".join(parts[:depth])
        if candidate in stacks:
            return candidate
    return None


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN_FILES])
    more = len(items) - SHOWN_FILES
    return shown + (f" and {more} more" if more > 0 else "")


_STATUS_WORD = {"A": "added", "D": "deleted", "R": "renamed", "C": "copied", "T": "type changed"}


@dataclass
class _Reasons:
    by_stack: dict[str, list[Reason]] = field(default_factory=dict)

    def add(self, rel: str, reason: Reason) -> None:
        self.by_stack.setdefault(rel, []).append(reason)


class _Analysis:
    def __init__(self, workspace: Workspace, change: Change, live_rel: str) -> None:
        self.repo = workspace.repo
        self.change = change
        self.live_rel = live_rel
        self.prefix = f"{live_rel}/" if live_rel else ""
        self.stacks = {s.rel: s for s in workspace.stacks}
        self.facts = workspace.facts
        self.reasons = _Reasons()
        self._base_listing: set[str] | None = None

    def live(self, path: str) -> str | None:
        """`path` (relative to the top) relative to the live root, or None when outside it."""
        if not self.prefix:
            return path
        return path[len(self.prefix) :] if path.startswith(self.prefix) else None

    # -- base

    def base_stacks(self) -> set[str]:
        if self._base_listing is None:
            files = tree_files(self.change.top, self.change.compared_to, self.live_rel)
            self._base_listing = _stack_dirs_in(
                rel for rel in (self.live(f) for f in files) if rel is not None
            )
        return self._base_listing

    @contextlib.contextmanager
    def base_repo(self) -> Iterator[Repository]:
        """The live root's config files as they were at the base, in a temporary folder."""
        top, commit = self.change.top, self.change.compared_to
        files = tree_files(top, commit, self.live_rel)
        wanted = [f for f in files if f.endswith((f"/{ROOT_FILE}", f"/{STACK_FILE}"))]
        wanted += [f for f in files if f in (ROOT_FILE, STACK_FILE)]
        with checkout(top, commit, wanted) as copy:
            root = copy / self.live_rel if self.live_rel else copy
            for folder in {os.path.dirname(f) for f in files}:
                (copy / folder).mkdir(parents=True, exist_ok=True)
            _copy_caches(self.repo.root, root)
            yield Repository(root)

    # -- reasons

    def files_and_config(self) -> None:
        names: dict[str, list[str]] = {}  # by stack: what changed, for the text
        paths: dict[str, list[str]] = {}  # by stack: the same files, relative to the top
        for change in self.change.files:
            sides = [(change.path, change.status)]
            if change.status == "R" and change.old_path is not None:
                sides.append((change.old_path, "D"))
            for path, status in sides:
                rel = self.live(path)
                if rel is None:
                    continue
                owner = _owner(rel, self.stacks)
                if owner is not None:
                    word = _STATUS_WORD.get(status)
                    if status == "R":
                        word = f"renamed from {change.old_path}"
                    name = rel[len(owner) + 1 :]
                    names.setdefault(owner, []).append(f"{name} ({word})" if word else name)
                    paths.setdefault(owner, []).append(path)
                if rel.rsplit("/", 1)[-1] == ROOT_FILE:
                    self._config_above(rel, path)
        for owner, changed in sorted(names.items()):
            count = "a file" if len(changed) == 1 else f"{len(changed)} files"
            text = f"{count} in the stack changed: {_listing(changed)}"
            self.reasons.add(owner, Reason(Kind.FILES, text, tuple(paths[owner])))

    def _config_above(self, rel: str, path: str) -> None:
        folder = rel.rpartition("/")[0]
        inside = f"{folder}/" if folder else ""
        for stack_rel in self.stacks:
            if stack_rel.startswith(inside) and stack_rel != folder:
                text = f"{path} above it changed"
                self.reasons.add(stack_rel, Reason(Kind.CONFIG, text, (path,)))

    def modules(self) -> None:
        users: dict[Path, list[str]] = {}
        for rel, facts in self.facts.items():
            for module in facts.modules:
                users.setdefault(module, []).append(rel)
        if not users:
            return
        changed: dict[Path, list[str]] = {}
        top = self.change.top
        for change in self.change.files:
            old = change.old_path if change.status == "R" else None
            for path in filter(None, (change.path, old)):
                folder = Path(os.path.normpath(top / path)).parent
                for candidate in (folder, *folder.parents):
                    if candidate in users:
                        changed.setdefault(candidate, []).append(path)
                    if candidate == top:
                        break
        if not changed:
            return
        # Each used module's own closure, to say through which modules a stack reaches one.
        readers = {rel for module in changed for rel in users[module]}
        used = sorted({m for rel in readers for m in self.facts[rel].modules})
        closures = scan.Scanner(self.repo.root).scan_dirs(used)
        for module, paths in sorted(changed.items()):
            name = self._top_rel(module)
            files = tuple(dict.fromkeys(paths))
            for rel in users[module]:
                through = sorted(
                    self._top_rel(m)
                    for m in self.facts[rel].modules
                    if m != module and module in closures[m].modules
                )
                via = f" through {', '.join(through)}" if through else ""
                text = f"uses the module {name}{via}, which changed: {_listing(files)}"
                self.reasons.add(rel, Reason(Kind.MODULE, text, files))

    def _top_rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.change.top).as_posix()
        except ValueError:
            return str(path)

    def generated_and_deleted(self) -> list[DeletedStack]:
        """Generated files that would change, and stacks that are gone. Both need the config at
        the base, so they are looked at only when config files changed or stacks went away."""
        config_changed = any(
            name.rsplit("/", 1)[-1] in (ROOT_FILE, STACK_FILE)
            for c in self.change.files
            for name in filter(None, (c.path, c.old_path))
            if self.live(name) is not None
        )
        gone: set[str] = set()
        for change in self.change.files:
            old = change.old_path if change.status == "R" else None
            for path in filter(None, (old, change.path if change.status == "D" else None)):
                rel = self.live(path)
                if rel is None:
                    continue
                owner = _owner(rel, self.base_stacks())
                if owner is not None and owner not in self.stacks:
                    gone.add(owner)
        if not config_changed and not gone:
            return []
        with self.base_repo() as base:
            self._generated(base)
            return self._deleted(base, gone)

    def _generated(self, base: Repository) -> None:
        # Stacks whose own config changed, and those whose generated remote_state.tf names
        # another stack's key, which may have moved or gone.
        candidates = {
            rel
            for rel, reasons in self.reasons.by_stack.items()
            for reason in reasons
            if reason.kind is Kind.CONFIG or any(f.endswith(f"/{STACK_FILE}") for f in reason.files)
        }
        candidates |= {rel for rel, s in self.stacks.items() if s.config.remote_state}
        base_stacks = self.base_stacks()
        for rel in sorted(candidates):
            head_files = _rendered(self.repo, self.stacks[rel])
            if rel not in base_stacks:
                continue  # a new stack: its files are its reason
            try:
                base_files = _rendered(base, base.stack(base.root / rel))
            except ConfigError:
                base_files = {}
            names = sorted(
                name
                for name in head_files.keys() | base_files.keys()
                if head_files.get(name) != base_files.get(name)
            )
            if names:
                text = f"its generated files would change: {', '.join(names)}"
                self.reasons.add(rel, Reason(Kind.GENERATED, text))

    def _deleted(self, base: Repository, gone: set[str]) -> list[DeletedStack]:
        new = {rel for rel in self.stacks if rel not in self.base_stacks()}
        keys = {self.stacks[rel].key: rel for rel in new}
        renamed: dict[str, str] = {}
        for change in self.change.files:
            if change.status == "R" and change.old_path is not None:
                old, now = self.live(change.old_path), self.live(change.path)
                if old is None or now is None:
                    continue
                was, is_now = _owner(old, gone), _owner(now, self.stacks)
                if was is not None and is_now is not None:
                    renamed.setdefault(was, is_now)
        out = []
        for rel in sorted(gone):
            try:
                key: str | None = base.stack(base.root / rel).key
            except ConfigError:
                key = None
            if key is not None and key in keys:
                # Same state key: the state moves with the folder, nothing is destroyed.
                text = f"moved from {rel}, with the same state key {key}"
                self.reasons.add(keys[key], Reason(Kind.FILES, text))
                continue
            out.append(DeletedStack(rel, key, renamed.get(rel)))
        return out


def _rendered(repo: Repository, stack: Stack) -> dict[str, str]:
    # No endpoint: the comparison is between two commits, not between two machines.
    files = generate.render(repo, stack, endpoint=None)
    return {f.path.name: f.content for f in files}


def _dependents(
    graph: graphs.Graph, direct: Iterable[str], reasons: _Reasons
) -> dict[str, list[Reason]]:
    """Stacks that read the state of the affected ones, transitively, each with what it reads."""
    seen = set(direct)
    queue = sorted(seen)
    added: dict[str, list[Reason]] = {}
    while queue:
        rel = queue.pop(0)
        for reader in graph.dependents[rel]:
            why = "; ".join(graph.reasons.get((reader, rel), []))
            text = f"depends on {rel}, which is affected" + (f" ({why})" if why else "")
            if reader not in reasons.by_stack:
                added.setdefault(reader, []).append(Reason(Kind.DEPENDENCY, text))
            if reader not in seen:
                seen.add(reader)
                queue.append(reader)
    return added


def _inside(rel: str, prefix: str) -> bool:
    return not prefix or rel == prefix or rel.startswith(prefix + "/")


def _prefix(root: Path, path: Path) -> str:
    """`path` relative to the live root ("" for the root); an error outside it."""
    folder = path.resolve()
    if not folder.is_dir():
        folder = folder.parent
    if folder in root.parents:
        return ""  # the repository's top, above the live root: all of it, as CI jobs run it
    try:
        rel = folder.relative_to(root).as_posix()
    except ValueError:
        raise UsageError(f"{path}: this is outside the live root {root}.") from None
    return "" if rel == "." else rel


def _report(
    root: Path,
    workspace: Workspace,
    change: Change,
    live_rel: str,
    prefix: str,
    with_dependents: bool,
) -> Report:
    analysis = _Analysis(workspace, change, live_rel)
    # First: a change that breaks the repository (a remote_state naming a deleted stack) is
    # an error that names the file, not a partial answer.
    graph = workspace.graph
    analysis.files_and_config()
    analysis.modules()
    deleted = analysis.generated_and_deleted()
    by_stack = analysis.reasons.by_stack
    dependents = _dependents(graph, by_stack, analysis.reasons) if with_dependents else {}
    chosen = [rel for rel in [*by_stack, *dependents] if _inside(rel, prefix)]
    ordered = graphs.order(graph, chosen)
    return Report(
        change=change,
        root=root,
        live_rel=live_rel,
        graph=graph,
        stacks=tuple(
            AffectedStack(
                s,
                tuple(by_stack.get(s.rel) or dependents[s.rel]),
                dependent=s.rel not in by_stack,
            )
            for s in ordered
        ),
        deleted=tuple(d for d in deleted if _inside(d.rel, prefix)),
        facts=analysis.facts,
    )


def affected(
    path: Path, base: str, head: str | None = None, *, with_dependents: bool = False
) -> Report:
    """The stacks at or below `path` that the change from `base` to `head` (or the working
    tree) touches, in dependency order, and the stacks it deletes."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder.")
    root = find_root(path)
    top = git_top(root)
    live_rel = _live_rel(root, top)
    prefix = _prefix(root, path)
    change = git_change(top, base, head, counts=_counts)
    if change.head is None or change.head == head_commit(top):
        return _report(root, Workspace(Repository(root)), change, live_rel, prefix, with_dependents)
    # Another commit than the one checked out: read its stacks and modules from a copy of it.
    with checkout(top, change.head, None) as copy:
        copy_root = copy / live_rel if live_rel else copy
        if not (copy_root / ROOT_FILE).is_file():
            raise UsageError(f"--head {head}: there is no {live_rel}/{ROOT_FILE} in that commit.")
        _copy_caches(root, copy_root)
        copied = Workspace(Repository(copy_root))
        return _report(root, copied, change, live_rel, prefix, with_dependents)


def everything(path: Path) -> Report:
    """Every stack at or below `path`, for pipelines made without a base to compare with."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder.")
    root = find_root(path)
    live_rel = _live_rel(root, git_top(root))
    prefix = _prefix(root, path)
    workspace = Workspace(Repository(root))
    if not workspace.stacks:
        raise ConfigError(f"{root}: no stacks here or below.")
    graph = workspace.graph
    ordered = graphs.order(graph, [s.rel for s in workspace.stacks if _inside(s.rel, prefix)])
    reason = Reason(Kind.ALL, "no base to compare with, so every stack")
    stacks_found = tuple(AffectedStack(s, (reason,)) for s in ordered)
    return Report(None, root, live_rel, graph, stacks_found, facts=workspace.facts)


def _live_rel(root: Path, top: Path) -> str:
    try:
        rel = root.relative_to(top).as_posix()
    except ValueError:
        raise ConfigError(
            f"{root}: the live root is not inside the git repository at {top}."
        ) from None
    return "" if rel == "." else rel
