"""Stacks' reads and local modules: each folder's facts (cached), module calls followed from
folder to folder, then every read resolved where it is (`resolve`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfrun.scan.blocks import Facts
from tfrun.scan.links import LINKS
from tfrun.scan.reader import Reader, ScanStats
from tfrun.scan.reads import RemoteStateRead, StackFacts
from tfrun.scan.resolve import Dir, Resolver
from tfrun.scan.scope import DirValues
from tfrun.scan.values import VALUES, amend

if TYPE_CHECKING:
    from tfrun.discovery import Stack

__all__ = ["RemoteStateRead", "Scanner", "StackFacts", "own_remote_state_reads", "scan"]


def scan(
    root: Path,
    stacks: Iterable[Stack],
    *,
    use_cache: bool = True,
    jobs: int | None = None,
    parameters: bool | None = None,
) -> dict[str, StackFacts]:
    """Facts for each stack, keyed by its `rel` path. `parameters`: whether SSM parameters
    are read (default: the root config's `graph.ssm_edges`)."""
    stack_list = list(stacks)
    if parameters is None:
        parameters = ssm_edges(stack_list)
    scanner = Scanner(root, use_cache=use_cache, jobs=jobs, parameters=parameters)
    facts = scanner.scan_dirs([s.path for s in stack_list])
    return {s.rel: facts[s.path] for s in stack_list}


def ssm_edges(stacks: Sequence[Stack]) -> bool:
    """The root config's `graph.ssm_edges` (a root-only key: every stack has the same)."""
    if not stacks:
        return True
    setting = stacks[0].config.graph.ssm_edges
    return True if setting is None else setting


_shared: dict[Path, Scanner] = {}
_shared_lock = threading.Lock()


def own_reads(root: Path, stack_dir: Path) -> list[RemoteStateRead]:
    """Every read written in the stack's own files (not in the modules it uses), one per
    instance; the scanner is shared per live root (see own_remote_state_reads)."""
    with _shared_lock:
        scanner = _shared.get(root)
        if scanner is None:
            scanner = _shared[root] = Scanner(root)
        return list(scanner.own_reads(stack_dir))


def own_remote_state_reads(root: Path, stack_dir: Path) -> list[RemoteStateRead]:
    """The S3 remote-state reads written in the stack's own files, not in the modules it uses,
    whose whole `config` evaluates (so that an override file can copy it), one per block.

    Asked once per stack before each terraform run, so one scanner per live root serves every
    call: its cache is loaded once, and its stat records keep its answers current.
    """
    reads = own_reads(root, stack_dir)
    # An override replaces the block's config for all its instances: only when they agree.
    blocks: dict[tuple[Path, int], list[RemoteStateRead]] = {}
    for read in reads:
        blocks.setdefault((read.file, read.line), []).append(read)
    out = []
    for instances in blocks.values():
        first = instances[0]
        if first.backend != "s3" or first.config is None:
            continue
        if all(r.backend == "s3" and r.config == first.config for r in instances):
            out.append(first)
    return out


class Scanner:
    def __init__(
        self,
        root: Path,
        *,
        use_cache: bool = True,
        jobs: int | None = None,
        parameters: bool = True,
    ) -> None:
        self.root = root
        self.reader = Reader(root, LINKS, use_cache=use_cache, jobs=jobs)
        self.stats = self.reader.stats
        self.parameters = parameters
        self._use_cache = use_cache
        self._jobs = jobs
        self._values_reader: Reader | None = None
        self._values: dict[Path, DirValues] = {}

    def scan_dirs(self, dirs: Sequence[Path]) -> dict[Path, StackFacts]:
        known: dict[Path, Dir] = {}
        pending = list(dict.fromkeys(dirs))
        # Breadth first, so that each level's files are read in one (possibly parallel) batch.
        while pending:
            known.update(self._read_dirs(pending))
            pending = sorted({m for d in pending for m in known[d].modules if m not in known})
        self.reader.save()
        self._values.clear()
        resolver = Resolver(self.root, known, self.values, parameters=self.parameters)
        closures: dict[Path, tuple[Path, ...]] = {}
        found = {d: resolver.stack(d) for d in dirs}
        parameter_reads = [r for f in found.values() for r in f.parameter_reads]
        out = {}
        for d, f in found.items():
            writes = resolver.writes(f.pending_writes, parameter_reads) if parameter_reads else []
            out[d] = StackFacts(
                reads=tuple(f.reads),
                modules=frozenset(_closure(d, known, closures)),
                parameter_writes=tuple(writes),
                parameter_reads=tuple(f.parameter_reads),
            )
        self._save_values()
        return out

    def own_reads(self, directory: Path) -> tuple[RemoteStateRead, ...]:
        """The reads in the folder's own files, each with its whole config evaluated."""
        # A long-lived scanner: files are checked now, which is what the racy check needs.
        now = time.time_ns()
        self.reader.cache.now = now
        if self._values_reader is not None:
            self._values_reader.cache.now = now
        self._values.clear()
        known = self._read_dirs([directory])
        self.reader.save()
        found = Resolver(self.root, known, self.values, parameters=False).own_reads(directory)
        self._save_values()
        return tuple(found)

    @property
    def values_stats(self) -> ScanStats | None:
        """What reading variables and locals had to do (None when nothing asked for them)."""
        return None if self._values_reader is None else self._values_reader.stats

    def values(self, directory: Path, whole: bool = False) -> DirValues:
        """The folder's variables, locals and variable files; read when first asked for.
        `whole`: with the items the line patterns left unread parsed too (and kept so)."""
        known = self._values.get(directory)
        if known is not None and (known.whole or not whole):
            return known
        if self._values_reader is None:
            self._values_reader = Reader(
                self.root, VALUES, use_cache=self._use_cache, jobs=self._jobs
            )
        reader = self._values_reader
        found = DirValues(whole=whole)
        tfvars = []
        for path, fact in reader.by_dir([directory], keep_errors=True)[directory]:
            if whole and "error" not in fact:
                fact = self._amend(reader, path, fact)
            if "error" in fact:
                found.errors.append(f"{path}:{fact['error']}")
            for name, entry in fact.get("variables", {}).items():
                found.variables[name] = (path, entry)
            for name, entry in fact.get("locals", {}).items():
                found.locals[name] = (path, entry)
            if "tfvars" in fact:
                tfvars.append((path, fact["tfvars"]))
        found.tfvars = sorted(tfvars, key=lambda item: _load_order(item[0].name))
        self._values[directory] = found
        return found

    @staticmethod
    def _amend(reader: Reader, path: Path, fact: Facts) -> Facts:
        if not any(
            entry.get("unread")
            for kind in ("variables", "locals")
            for entry in fact.get(kind, {}).values()
        ):
            return fact
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return {**fact, "error": f" cannot read this file ({exc})."}
        whole = amend(fact, text)
        if "error" not in whole:
            reader.amend(path, data, whole)
        return whole

    def _save_values(self) -> None:
        if self._values_reader is not None:
            self._values_reader.save()

    def _read_dirs(self, dirs: Sequence[Path]) -> dict[Path, Dir]:
        out: dict[Path, Dir] = {}
        module_dirs: dict[tuple[str, str], Path | None] = {}
        for d, files in self.reader.by_dir(dirs).items():
            reads: list[tuple[Path, dict[str, Any]]] = []
            calls: list[tuple[Path, dict[str, Any], Path | None]] = []
            parameters: list[tuple[Path, dict[str, Any]]] = []
            for path, fact in files:
                reads.extend((path, r) for r in fact.get("reads", ()))
                parameters.extend((path, p) for p in fact.get("parameters", ()))
                for m in fact.get("modules", ()):
                    where = (str(d), m["source"])
                    if where not in module_dirs:
                        module_dirs[where] = _module_dir(d, m["source"])
                    calls.append((path, m, module_dirs[where]))
            out[d] = Dir(tuple(reads), tuple(calls), tuple(parameters))
        return out


def _load_order(name: str) -> tuple[int, str]:
    """terraform.tfvars, then terraform.tfvars.json, then *.auto.tfvars(.json) by name: a
    later file wins."""
    return ({"terraform.tfvars": 0, "terraform.tfvars.json": 1}.get(name, 2), name)


def _module_dir(directory: Path, source: str) -> Path | None:
    if not source.startswith(("./", "../")):
        return None
    # normpath, not resolve(): cheaper, and a symlinked module keeps the path its caller used.
    return Path(os.path.normpath(os.path.join(directory, source)))


def _closure(
    directory: Path, known: Mapping[Path, Dir], memo: dict[Path, tuple[Path, ...]]
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
