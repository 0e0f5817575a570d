"""The content-keyed cache of facts under `<live root>/.tfrun/cache/`.

Facts are stored by the sha256 of a file's bytes, and a stat record (size, mtime, ctime,
inode) per path saves even reading the file when nothing changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tfrun import hcl
from tfrun.files import write_atomically
from tfrun.scan.blocks import Facts

CACHE_DIR = Path(".tfrun") / "cache"
# A file changed within this long before we looked at it could change again within the
# same timestamp tick without its stat changing; such entries are re-hashed next time.
RACY_NS = 2_000_000_000
# How long the facts of a file's earlier content are kept after no file has it any more.
RETAIN_S = 7 * 24 * 3600

EMPTY: Facts = {"signed": False}


class Cache:
    """Facts by content hash, and a stat record per path so unchanged files are not even read.

    Only a speed-up: a missing, unreadable or corrupt cache file means a cold run, and a cache
    that cannot be written is ignored. Files that hold nothing of interest (most of them) keep
    only their stat record, which keeps the cache small and quick to load.
    """

    def __init__(self, path: Path | None, root: Path, version: int) -> None:
        self.path = path
        self.extraction_version = version
        self.prefix = str(root) + os.sep
        # relative path -> [size, mtime_ns, ctime_ns, inode, checked_ns, sha or None]
        self.files: dict[str, list[Any]] = {}
        self.facts: dict[str, Facts] = {}
        self.last_used: dict[str, int] = {}  # sha -> seconds: when some file last had it
        # Folders listed in this run, and the files seen in them.
        self.listed: set[str] = set()
        self.seen: set[str] = set()
        self.dirty = False
        self.now = time.time_ns()
        if path is None:
            return
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == _version(version):
            self.files = data.get("files") or {}
            self.facts = data.get("facts") or {}
            self.last_used = data.get("last_used") or {}

    def note_listed(self, dirs: Iterable[Path]) -> None:
        self.listed.update(self._key(d) for d in dirs)

    def _key(self, path: str | Path) -> str:
        text = str(path)
        return text[len(self.prefix) :] if text.startswith(self.prefix) else text

    def by_stat(self, path: str, st: os.stat_result) -> Facts | None:
        key = self._key(path)
        self.seen.add(key)
        entry = self.files.get(key)
        if entry is None or entry[:4] != [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]:
            return None
        if max(st.st_mtime_ns, st.st_ctime_ns) > entry[4] - RACY_NS:
            return None
        return EMPTY if entry[5] is None else self.facts.get(entry[5])

    def by_content(self, sha: str) -> Facts | None:
        return self.facts.get(sha)

    def remember(self, path: str, st: os.stat_result, sha: str, facts: Facts) -> None:
        keep = facts != EMPTY
        stat = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        self.files[self._key(path)] = [*stat, self.now, sha if keep else None]
        if keep:
            self.facts[sha] = facts
        self.dirty = True

    def amend(self, path: str, sha: str, facts: Facts) -> None:
        """Replace the facts of a content this file had when it was read (the same content,
        read further); nothing when the file has changed since."""
        entry = self.files.get(self._key(path))
        if entry is not None and entry[5] == sha:
            self.facts[sha] = facts
            self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        # Forget files gone from the folders listed in this run, and facts no file has had
        # for a while, so the cache does not grow with every edit. Facts of an old version of
        # a file stay a while: switching branches back and forth then costs no parsing.
        files = {
            p: e
            for p, e in self.files.items()
            if p in self.seen or os.path.dirname(p) not in self.listed
        }
        now = self.now // 1_000_000_000
        for entry in files.values():
            if entry[5] is not None:
                self.last_used[entry[5]] = now
        keep = {sha for sha, when in self.last_used.items() if when > now - RETAIN_S}
        data = {
            "version": _version(self.extraction_version),
            "files": files,
            "facts": {sha: f for sha, f in self.facts.items() if sha in keep},
            "last_used": {sha: self.last_used[sha] for sha in self.facts if sha in keep},
        }
        with contextlib.suppress(OSError):
            write_atomically(self.path, json.dumps(data, separators=(",", ":")))
        self.dirty = False


def _version(extraction: int) -> list[object]:
    # Unusual blocks are read by python-hcl2, so its version is part of what facts depend on.
    return [extraction, hcl.hcl2_version()]
