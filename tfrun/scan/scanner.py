"""Stacks' remote-state reads and local modules, following module calls from folder to folder."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfrun.scan.links import LINKS
from tfrun.scan.reader import Reader

if TYPE_CHECKING:
    from tfrun.discovery import Stack


@dataclass(frozen=True)
class RemoteStateRead:
    """One `data "terraform_remote_state"` block a person wrote."""

    file: Path
    line: int
    name: str
    backend: str | None
    bucket: str | None
    key: str | None
    # Why tfrun cannot tell statically which state this reads; None when it can.
    problem: str | None = None
    # The whole `config` map when every key and value in it is a literal, else None.
    config: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class StackFacts:
    reads: tuple[RemoteStateRead, ...]  # its own, then those inside the local modules it uses
    modules: frozenset[Path]  # local module folders it uses, directly or through modules


def scan(
    root: Path, stacks: Iterable[Stack], *, use_cache: bool = True, jobs: int | None = None
) -> dict[str, StackFacts]:
    """Facts for each stack, keyed by its `rel` path."""
    scanner = Scanner(root, use_cache=use_cache, jobs=jobs)
    stack_list = list(stacks)
    facts = scanner.scan_dirs([s.path for s in stack_list])
    return {s.rel: facts[s.path] for s in stack_list}


_shared: dict[Path, Scanner] = {}
_shared_lock = threading.Lock()


def own_remote_state_reads(root: Path, stack_dir: Path) -> list[RemoteStateRead]:
    """The S3 remote-state reads written in the stack's own files, not in the modules it uses,
    whose whole `config` is literal (so that an override file can copy it).

    Asked once per stack before each terraform run, so one scanner per live root serves every
    call: its cache is loaded once, and its stat records keep its answers current.
    """
    with _shared_lock:
        scanner = _shared.get(root)
        if scanner is None:
            scanner = _shared[root] = Scanner(root)
        reads = scanner.own_reads(stack_dir)
    return [r for r in reads if r.backend == "s3" and r.config is not None]


@dataclass(frozen=True)
class _Dir:
    reads: tuple[RemoteStateRead, ...]
    modules: tuple[Path, ...]  # local module folders it calls directly


class Scanner:
    def __init__(self, root: Path, *, use_cache: bool = True, jobs: int | None = None) -> None:
        self.root = root
        self.reader = Reader(root, LINKS, use_cache=use_cache, jobs=jobs)
        self.stats = self.reader.stats

    def scan_dirs(self, dirs: Sequence[Path]) -> dict[Path, StackFacts]:
        known: dict[Path, _Dir] = {}
        pending = list(dict.fromkeys(dirs))
        # Breadth first, so that each level's files are read in one (possibly parallel) batch.
        while pending:
            known.update(self._read_dirs(pending))
            pending = sorted({m for d in pending for m in known[d].modules if m not in known})
        self.reader.save()
        closures: dict[Path, tuple[Path, ...]] = {}
        out = {}
        for d in dirs:
            modules = _closure(d, known, closures)
            reads = known[d].reads + tuple(r for m in modules for r in known[m].reads)
            out[d] = StackFacts(reads=reads, modules=frozenset(modules))
        return out

    def own_reads(self, directory: Path) -> tuple[RemoteStateRead, ...]:
        """The reads in the folder's own files."""
        # A long-lived scanner: files are checked now, which is what the racy check needs.
        self.reader.cache.now = time.time_ns()
        found = self._read_dirs([directory])[directory].reads
        self.reader.save()
        return found

    def _read_dirs(self, dirs: Sequence[Path]) -> dict[Path, _Dir]:
        out: dict[Path, _Dir] = {}
        module_dirs: dict[tuple[str, str], Path | None] = {}
        for d, files in self.reader.by_dir(dirs).items():
            reads: list[RemoteStateRead] = []
            modules: dict[Path, None] = {}
            for path, fact in files:
                reads.extend(RemoteStateRead(file=path, **r) for r in fact.get("reads", ()))
                for m in fact.get("modules", ()):
                    where = (str(d), m["source"])
                    if where not in module_dirs:
                        module_dirs[where] = _module_dir(d, m["source"])
                    module = module_dirs[where]
                    if module is not None:
                        modules[module] = None
            out[d] = _Dir(tuple(reads), tuple(modules))
        return out


def _module_dir(directory: Path, source: str) -> Path | None:
    if not source.startswith(("./", "../")):
        return None
    # normpath, not resolve(): cheaper, and a symlinked module keeps the path its caller used.
    return Path(os.path.normpath(os.path.join(directory, source)))


def _closure(
    directory: Path, known: Mapping[Path, _Dir], memo: dict[Path, tuple[Path, ...]]
) -> tuple[Path, ...]:
    """The module folders `directory` uses, directly or through other modules, in BFS order."""
    if directory in memo:
        return memo[directory]
    found: dict[Path, None] = {}
    queue = [directory]
    while queue:
        for module in known[queue.pop(0)].modules:
            if module != directory and module not in found:
                found[module] = None
                queue.append(module)
    memo[directory] = tuple(found)
    return memo[directory]
