"""Facts of many files for one extraction: from the cache by stat, else by content, else by
reading the file; what the first passes leave to python-hcl2 is parsed in one batch."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tfrun.discovery import GENERATED_NAMES
from tfrun.errors import ConfigError
from tfrun.scan.blocks import Extraction, Facts, Pass
from tfrun.scan.cache import CACHE_DIR, Cache
from tfrun.scan.parse import parse_all, parse_snippet


@dataclass
class ScanStats:
    """What a scan had to do; the cache works when a second scan reads nothing."""

    files: int = 0  # .tf files looked at
    read: int = 0  # read from disk (not known by their stat)
    lexed: int = 0  # not known by content either, and past the prefilter: read by the lexer
    parsed: int = 0  # blocks that needed python-hcl2


class Reader:
    def __init__(
        self, root: Path, extraction: Extraction, *, use_cache: bool = True, jobs: int | None
    ) -> None:
        self.extraction = extraction
        self.jobs = jobs
        path = root / CACHE_DIR / extraction.cache_file if use_cache else None
        self.cache = Cache(path, root, extraction.version)
        self.stats = ScanStats()

    def by_dir(
        self, dirs: Sequence[Path], *, keep_errors: bool = False
    ) -> dict[Path, list[tuple[Path, Facts]]]:
        """Per folder, its .tf files that say something, with their facts, in name order.

        Files tfrun generated are left out: it wrote them from config, which the callers read
        directly. A person's file of a generated name stays (the rules look at it). A file
        that is not valid HCL is an error, or with `keep_errors` a file whose facts say so.
        """
        suffixes = self.extraction.suffixes
        listing = {d: tf_files(d, suffixes) for d in dirs}
        self.cache.note_listed(dirs)
        facts = self.facts([e for entries in listing.values() for e in entries])
        out: dict[Path, list[tuple[Path, Facts]]] = {}
        for d, entries in listing.items():
            found = out[d] = []
            for entry in entries:
                fact = facts[entry.path]
                if fact.get("signed") and entry.name in GENERATED_NAMES:
                    continue
                if "error" in fact and not keep_errors:
                    raise ConfigError(f"{entry.path}:{fact['error']}")
                if len(fact) > 1:  # more than "signed", which every file has
                    found.append((Path(entry.path), fact))
        return out

    def save(self) -> None:
        self.cache.save()

    def amend(self, path: Path, data: bytes, facts: Facts) -> None:
        """Keep `facts`, read further from the file's `data`, for that content."""
        self.cache.amend(str(path), hashlib.sha256(data).hexdigest(), facts)

    def facts(self, entries: Sequence[os.DirEntry[str]]) -> dict[str, Facts]:
        """Facts by path: from the cache by stat, else by content, else by reading the file."""
        out: dict[str, Facts] = {}
        todo: list[tuple[str, os.stat_result, str, Pass]] = []
        self.stats.files += len(entries)
        for entry in entries:
            path = entry.path
            try:
                st = entry.stat()
                hit = self.cache.by_stat(path, st)
                if hit is not None:
                    out[path] = hit
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
                self.stats.read += 1
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read this file ({exc}).") from None
            sha = hashlib.sha256(data).hexdigest()
            hit = self.cache.by_content(sha)
            if hit is None:
                first = self.extraction.first_pass(entry.name, data)
                self.stats.lexed += first.lexed
                if first.snippets:
                    todo.append((path, st, sha, first))
                    continue
                hit = self.extraction.finish(first)
            self.cache.remember(path, st, sha, hit)
            out[path] = hit
        # What the line patterns could not read goes to python-hcl2, in one batch.
        snippets = [(i, snippet) for i, t in enumerate(todo) for snippet in t[3].snippets]
        self.stats.parsed += len(snippets)
        parsed_all = parse_all([s for _, s in snippets], self.jobs)
        for (i, _), parsed in zip(snippets, parsed_all, strict=True):
            if isinstance(parsed, str):
                todo[i][3].facts["error"] = parsed
            else:
                todo[i][3].blocks.extend(parsed)
        for path, st, sha, first in todo:
            fact = self.extraction.finish(first)
            if "error" not in fact:  # an error is reported now and checked afresh next time
                self.cache.remember(path, st, sha, fact)
            out[path] = fact
        return out


def extract(extraction: Extraction, name: str, data: bytes) -> Facts:
    """One file's facts, all in this process and without the cache."""
    first = extraction.first_pass(name, data)
    for snippet in first.snippets:
        parsed = parse_snippet(snippet)
        if isinstance(parsed, str):
            first.facts["error"] = parsed
            break
        first.blocks.extend(parsed)
    return extraction.finish(first)


def tf_files(
    directory: Path, suffixes: tuple[str, ...] = (".tf", ".tf.json")
) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            found = [e for e in entries if e.name.endswith(suffixes) and e.is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda e: e.name)
