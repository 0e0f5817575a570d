"""What the .tf files of each stack say: hand-written remote-state reads and local modules.

This runs over every file of the repository on every `graph`, `affected` or `run-all`, so it
is built to be fast without skipping anything that matters:

1. A byte prefilter: a file that contains neither `terraform_remote_state` nor a `module`
   token cannot hold what we look for, and is never parsed.
2. In a file that passes, a small lexer that knows HCL's strings, templates, comments and
   heredocs finds the top-level blocks. Only `data "terraform_remote_state"` and `module`
   blocks are read; each one either has the canonical shape (one plain string per line,
   which a line pattern reads exactly) or goes to python-hcl2, which decides.
3. A content-keyed cache under `<live root>/.tfrun/cache/`: facts are stored by the sha256 of
   the file's bytes, and a stat record (size, mtime, ctime, inode) per path saves even
   reading the file when nothing changed.
4. When many blocks need python-hcl2 (a cold run over unusual files), worker processes
   share them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from tfrun import generate
from tfrun.discovery import GENERATED_NAMES
from tfrun.errors import ConfigError
from tfrun.files import write_atomically
from tfrun.hcl import context_line, read_options

if TYPE_CHECKING:
    from tfrun.discovery import Stack

SIGNATURE = generate.SIGNATURE.encode()
CACHE_DIR = Path(".tfrun") / "cache"
CACHE_FILE = "scan.json"
# Bump when what `extract` returns changes, so old caches are ignored rather than trusted.
CACHE_VERSION = 1
# A file changed within this long before we looked at it could change again within the
# same timestamp tick without its stat changing; such entries are re-hashed next time.
RACY_NS = 2_000_000_000
# How long the facts of a file's earlier content are kept after no file has it any more.
RETAIN_S = 7 * 24 * 3600
# Below this many blocks for python-hcl2 (about 2 ms each), worker processes cost more
# than they save: each needs about 150 ms to start and load the grammar.
PARALLEL_MIN_BLOCKS = 128

Facts: TypeAlias = dict[str, Any]  # what one file says, as JSON-able data (see `extract`)

_CANDIDATE = re.compile(rb'terraform_remote_state|\bmodule\b\s*["\w{]')
_HEADER_WORDS = re.compile(r"terraform_remote_state|\bmodule\b")


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

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _module_dir(directory: Path, source: str) -> Path | None:
    if not source.startswith(("./", "../")):
        return None
    # normpath, not resolve(): cheaper, and a symlinked module keeps the path its caller used.
    return Path(os.path.normpath(os.path.join(directory, source)))


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


@dataclass(frozen=True)
class _Dir:
    reads: tuple[RemoteStateRead, ...]
    modules: tuple[Path, ...]  # local module folders it calls directly


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


@dataclass
class ScanStats:
    """What a scan had to do; the cache works when a second scan reads nothing."""

    files: int = 0  # .tf files looked at
    read: int = 0  # read from disk (not known by their stat)
    lexed: int = 0  # not known by content either, and holding the words: read by the lexer
    parsed: int = 0  # blocks that needed python-hcl2


class Scanner:
    def __init__(self, root: Path, *, use_cache: bool = True, jobs: int | None = None) -> None:
        self.root = root
        self.jobs = jobs
        self.cache = _Cache(root / CACHE_DIR / CACHE_FILE if use_cache else None, root)
        self.stats = ScanStats()

    def scan_dirs(self, dirs: Sequence[Path]) -> dict[Path, StackFacts]:
        known: dict[Path, _Dir] = {}
        pending = list(dict.fromkeys(dirs))
        # Breadth first, so that each level's files are read in one (possibly parallel) batch.
        while pending:
            known.update(self._read_dirs(pending))
            pending = sorted({m for d in pending for m in known[d].modules if m not in known})
        self.cache.save()
        closures: dict[Path, tuple[Path, ...]] = {}
        out = {}
        for d in dirs:
            modules = _closure(d, known, closures)
            reads = known[d].reads + tuple(r for m in modules for r in known[m].reads)
            out[d] = StackFacts(reads=reads, modules=frozenset(modules))
        return out

    def _read_dirs(self, dirs: Sequence[Path]) -> dict[Path, _Dir]:
        listing = {d: _tf_files(d) for d in dirs}
        self.cache.note_listed(dirs)
        facts = self._facts([e for entries in listing.values() for e in entries])
        out: dict[Path, _Dir] = {}
        module_dirs: dict[tuple[str, str], Path | None] = {}
        for d, entries in listing.items():
            reads: list[RemoteStateRead] = []
            modules: dict[Path, None] = {}
            for entry in entries:
                fact = facts[entry.path]
                if fact.get("signed") and entry.name in GENERATED_NAMES:
                    continue  # tfrun wrote it from config, which the graph reads directly
                if "error" in fact:
                    raise ConfigError(f"{entry.path}:{fact['error']}")
                if "reads" not in fact and "modules" not in fact:
                    continue
                path = Path(entry.path)
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

    def _facts(self, entries: Sequence[os.DirEntry[str]]) -> dict[str, Facts]:
        """Facts by path: from the cache by stat, else by content, else by reading the file."""
        out: dict[str, Facts] = {}
        todo: list[tuple[str, os.stat_result, str, _Pass]] = []
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
                first = _first_pass(entry.name, data)
                self.stats.lexed += first.lexed
                if first.snippets:
                    todo.append((path, st, sha, first))
                    continue
                hit = _finish(first)
            self.cache.remember(path, st, sha, hit)
            out[path] = hit
        # What the line patterns could not read goes to python-hcl2, in one batch.
        snippets = [(i, snippet) for i, t in enumerate(todo) for snippet in t[3].snippets]
        self.stats.parsed += len(snippets)
        for (i, _), parsed in zip(snippets, self._parse_all([s for _, s in snippets]), strict=True):
            if isinstance(parsed, str):
                todo[i][3].facts["error"] = parsed
            else:
                todo[i][3].blocks.extend(parsed)
        for path, st, sha, first in todo:
            fact = _finish(first)
            if "error" not in fact:  # an error is reported now and checked afresh next time
                self.cache.remember(path, st, sha, fact)
            out[path] = fact
        return out

    def _parse_all(self, snippets: list[_Snippet]) -> list[list[_Block] | str]:
        workers = self.jobs if self.jobs is not None else _cpu_count()
        if workers < 2 or len(snippets) < PARALLEL_MIN_BLOCKS:
            return [_parse_snippet(s) for s in snippets]
        # Imported here: a warm run never needs them, and they cost 30 ms to import.
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        # fork is the cheapest start and lets the workers share the parser loaded here first,
        # but it is only safe while this process runs a single thread.
        method = "fork" if threading.active_count() == 1 else "forkserver"
        if method == "fork":
            _load_parser()
        chunk = max(1, len(snippets) // (workers * 4))
        with ProcessPoolExecutor(workers, mp_context=get_context(method)) as pool:
            return list(pool.map(_parse_snippet, snippets, chunksize=chunk))


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _tf_files(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            found = [e for e in entries if e.name.endswith((".tf", ".tf.json")) and e.is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda e: e.name)


# ---------------------------------------------------------------------------- the cache


class _Cache:
    """Facts by content hash, and a stat record per path so unchanged files are not even read.

    Only a speed-up: a missing, unreadable or corrupt cache file means a cold run, and a cache
    that cannot be written is ignored. Files that hold nothing of interest (most of them) keep
    only their stat record, which keeps the cache small and quick to load.
    """

    def __init__(self, path: Path | None, root: Path) -> None:
        self.path = path
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
        if isinstance(data, dict) and data.get("version") == _version():
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
        return _EMPTY if entry[5] is None else self.facts.get(entry[5])

    def by_content(self, sha: str) -> Facts | None:
        return self.facts.get(sha)

    def remember(self, path: str, st: os.stat_result, sha: str, facts: Facts) -> None:
        keep = facts != _EMPTY
        stat = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        self.files[self._key(path)] = [*stat, self.now, sha if keep else None]
        if keep:
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
            "version": _version(),
            "files": files,
            "facts": {sha: f for sha, f in self.facts.items() if sha in keep},
            "last_used": {sha: self.last_used[sha] for sha in self.facts if sha in keep},
        }
        with contextlib.suppress(OSError):
            write_atomically(self.path, json.dumps(data, separators=(",", ":")))
        self.dirty = False


_EMPTY: Facts = {"signed": False}


def _version() -> list[object]:
    # Unusual blocks are read by python-hcl2, so its version is part of what facts depend on.
    try:
        return [CACHE_VERSION, importlib.metadata.version("python-hcl2")]
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a vendored copy
        return [CACHE_VERSION, None]


# ---------------------------------------------------------------------------- extraction
#
# Plain functions over a file's name and bytes (the parser's part runs in worker processes
# too), returning JSON-able facts for the cache:
#   {"signed": bool,
#    "reads":   [{"line", "name", "backend", "bucket", "key", "problem"}],
#    "modules": [{"line", "name", "source"}],
#    "error":   "LINE:COL: message"}   (only when the file is not valid HCL)


_Block: TypeAlias = tuple[str, list[str], Any, int]  # block type, labels, body, line
_Snippet: TypeAlias = tuple[str, int]  # HCL text for python-hcl2, and the line it starts on


@dataclass
class _Pass:
    """One file after the first, cheap pass: what it read, and what the parser must read."""

    facts: Facts
    blocks: list[_Block]
    snippets: list[_Snippet]
    lexed: bool = False


def extract(name: str, data: bytes) -> Facts:
    """The remote-state reads and module calls in one file's bytes."""
    first = _first_pass(name, data)
    for snippet in first.snippets:
        parsed = _parse_snippet(snippet)
        if isinstance(parsed, str):
            first.facts["error"] = parsed
            break
        first.blocks.extend(parsed)
    return _finish(first)


def _first_pass(name: str, data: bytes) -> _Pass:
    first = _Pass({"signed": data.startswith(SIGNATURE)}, [], [])
    if _CANDIDATE.search(data) is None:
        return first
    first.lexed = True
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first.facts["error"] = f" this file is not UTF-8 ({exc})."
        return first
    if name.endswith(".json"):
        try:
            first.blocks.extend(_from_json(text))
        except ValueError as exc:
            first.facts["error"] = f"{getattr(exc, 'lineno', 1)}: this is not valid JSON ({exc})."
        return first
    layout = _layout(text)
    if layout is None:
        # The lexer is lost (most likely the file is broken): the parser says where and why.
        first.snippets.append((text, 1))
        return first
    lines = text.split("\n")
    for start, end in layout.blocks:
        header = lines[start]
        if not _HEADER_WORDS.search(header):
            continue
        quick = _quick_header(header)
        if quick is not None and not _wanted(*quick):
            continue
        block = _fast_block(lines[start : end + 1], layout.depths[start : end + 1])
        if block is not None:
            first.blocks.append((*block, start + 1))
        else:
            first.snippets.append(("\n".join(lines[start : end + 1]), start + 1))
    return first


def _finish(first: _Pass) -> Facts:
    facts = dict(first.facts)
    if "error" in facts:
        return facts
    reads: list[dict[str, Any]] = []
    modules: list[dict[str, Any]] = []
    for kind, labels, body, line in sorted(first.blocks, key=lambda b: b[3]):
        _interpret(kind, labels, body, line, reads, modules)
    if reads:
        facts["reads"] = reads
    if modules:
        facts["modules"] = modules
    return facts


def _wanted(kind: str, labels: Sequence[str]) -> bool:
    return kind == "module" or (kind == "data" and labels[:1] == ["terraform_remote_state"])


def _interpret(
    kind: str,
    labels: Sequence[str],
    body: Any,
    line: int,
    reads: list[dict[str, Any]],
    modules: list[dict[str, Any]],
) -> None:
    if not isinstance(body, dict):
        return
    if kind == "module" and len(labels) == 1:
        source = _literal(body.get("source"))
        if source is not None:
            modules.append({"line": line, "name": labels[0], "source": source})
    elif _wanted(kind, labels) and len(labels) == 2:
        reads.append({"line": line, "name": labels[1], **_read(body)})


def _read(body: dict[str, Any]) -> dict[str, Any]:
    backend = _literal(body.get("backend"))
    config = body.get("config")
    config = config if isinstance(config, dict) else {}
    bucket = _literal(config.get("bucket"))
    key = _literal(config.get("key"))
    problem = None
    if backend is None:
        problem = "its backend is not a plain string"
    elif backend != "s3":
        problem = f'it reads the "{backend}" backend, not s3'
    elif not isinstance(body.get("config"), dict):
        problem = "its config is not a plain map { bucket = ..., key = ... }"
    elif "key" not in config:
        problem = "its config has no key"
    elif key is None:
        problem = f"its key is computed ({_show(config['key'])}), so tfrun cannot tell whose it is"
    elif "bucket" not in config:
        problem = "its config has no bucket"
    elif bucket is None:
        problem = f"its bucket is computed ({_show(config['bucket'])}), so tfrun cannot place it"
    elif "workspace" in body and _literal(body["workspace"]) != "default":
        problem = "it reads a workspace other than default, which tfrun stacks do not use"
    return {"backend": backend, "bucket": bucket, "key": key, "problem": problem}


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _literal(value: Any) -> str | None:
    """The string a value stands for, or None when it is computed (a reference, a template)."""
    if not isinstance(value, str):
        return None
    plain = value.replace("$${", "").replace("%%{", "")
    if "${" in plain or "%{" in plain:
        return None
    return value.replace("$${", "${").replace("%%{", "%{")


# ---- the lexer: top-level blocks and the bracket depth at the start of each line


@dataclass(frozen=True)
class _Layout:
    blocks: list[tuple[int, int]]  # (header line, closing line), 0-based, top-level { } blocks
    depths: list[int | None]  # per line: bracket depth at its start; None inside a string,
    # heredoc or template; _IN_COMMENT inside a block comment


_IN_COMMENT = -1
_CODE_TOKEN = re.compile(r'"|#|//|/\*|<<|[{}\[\]()]|\n')
_STRING_TOKEN = re.compile(r'\\.|\$\$\{|%%\{|\$\{|%\{|"|\n', re.S)
_HEREDOC = re.compile(r"<<-?([A-Za-z_][\w-]*)[ \t]*\r?\n")


def _layout(text: str) -> _Layout | None:
    """None when the text does not lex (the parser then says why)."""
    depth = 0
    templates: list[int] = []  # depth at which each open `${` began
    in_string = False
    line = 0
    depths: list[int | None] = [0]
    blocks: list[tuple[int, int]] = []
    opened_line = 0
    pos = 0
    size = len(text)
    while pos < size:
        if in_string:
            m = _STRING_TOKEN.search(text, pos)
            if m is None or m.group() == "\n":
                return None  # quoted strings do not span lines
            pos = m.end()
            tok = m.group()
            if tok == '"':
                in_string = False
            elif tok in ("${", "%{"):
                templates.append(depth)
                depth += 1
                in_string = False
            continue
        m = _CODE_TOKEN.search(text, pos)
        if m is None:
            break
        tok = m.group()
        pos = m.end()
        if tok == "\n":
            line += 1
            depths.append(None if templates else depth)
        elif tok == '"':
            in_string = True
        elif tok in ("#", "//"):
            newline = text.find("\n", pos)
            pos = size if newline < 0 else newline
        elif tok == "/*":
            close = text.find("*/", pos)
            if close < 0:
                return None
            count = text.count("\n", pos, close)
            line += count
            depths.extend([_IN_COMMENT] * count)
            pos = close + 2
        elif tok == "<<":
            heredoc = _HEREDOC.match(text, m.start())
            if heredoc is None:
                return None
            marker = re.compile(rf"^[ \t]*{re.escape(heredoc[1])}[ \t]*\r?$", re.M)
            end = marker.search(text, heredoc.end())
            if end is None:
                return None
            count = text.count("\n", m.start(), end.start())
            line += count
            depths.extend([None] * count)
            pos = end.end()
        elif tok in "{[(":
            if depth == 0:
                opened_line = line
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                return None
            if templates and depth == templates[-1]:
                templates.pop()
                in_string = True
            elif depth == 0 and tok == "}":
                blocks.append((opened_line, line))
    if in_string or depth or templates:
        return None
    return _Layout(blocks, depths)


# ---- the fast path: blocks written the canonical way, read line by line

_IDENT = r"[A-Za-z_][\w-]*"
_PLAIN = r'"([^"\\$%\r\n]*)"'  # a string with no escapes and no templates: its text is its value
_TAIL = r"\s*(?:(?:#|//).*)?$"
_QUICK_HEADER = re.compile(rf'\s*({_IDENT})((?:\s+"[^"\\$%\r\n]*")*)\s*\{{')
_HEADER = re.compile(rf'\s*({_IDENT})((?:\s+"[^"\\$%\r\n]*")*)\s*\{{{_TAIL}')
_LABEL = re.compile(r'"([^"]*)"')
_CLOSE = re.compile(rf"\s*\}}{_TAIL}")
_LEADING_IDENT = re.compile(rf"\s*({_IDENT})")
_STRING_ATTR = re.compile(rf"\s*({_IDENT})\s*=\s*{_PLAIN}\s*,?{_TAIL}")
_SIMPLE_ATTR = re.compile(rf"\s*({_IDENT})\s*=\s*(?:{_PLAIN}|[\w.\-]+)\s*,?{_TAIL}")
_OPEN_ATTR = re.compile(rf"\s*({_IDENT})\s*=\s*[{{\[]{_TAIL}")
_BLANK = re.compile(_TAIL)


def _quick_header(header: str) -> tuple[str, list[str]] | None:
    m = _QUICK_HEADER.match(header)
    return (m[1], _LABEL.findall(m[2])) if m else None


def _fast_block(
    lines: Sequence[str], depths: Sequence[int | None]
) -> tuple[str, list[str], dict[str, Any]] | None:
    """(type, labels, body) for a block in the canonical shape; None means "ask the parser".

    Only lines that start in code count, and depth 1 lines are the block's own items (HCL
    ends an item at a newline unless a bracket is open), so a line pattern reads them exactly.
    Anything unusual about an attribute we need sends the block to the parser.
    """
    header = _HEADER.match(lines[0])
    if header is None or len(lines) < 2 or not _CLOSE.match(lines[-1]) or depths[-1] != 1:
        return None
    if _IN_COMMENT in depths:
        return None
    kind, labels = header[1], _LABEL.findall(header[2])
    body: dict[str, Any] = {}
    config: dict[str, Any] | None = None
    in_config = False
    needed = {"source"} if kind == "module" else {"backend", "config", "workspace"}
    for text, depth in zip(lines[1:-1], depths[1:-1], strict=True):
        if depth is None:
            continue  # inside a heredoc or template: not where an item starts
        if _BLANK.match(text):
            continue
        if depth == 1:
            in_config = False
            lead = _LEADING_IDENT.match(text)
            if lead is None:
                return None
            name = lead[1]
            if name not in needed:
                continue
            if name in body or name == "workspace":
                return None
            if name == "config":
                if not re.match(rf"\s*config\s*=\s*\{{{_TAIL}", text):
                    return None
                config = body["config"] = {}
                in_config = True
                continue
            attr = _STRING_ATTR.match(text)
            if attr is None:
                return None
            body[name] = attr[2]
        elif depth == 2 and in_config:
            assert config is not None
            if _CLOSE.match(text):
                continue
            opened = _OPEN_ATTR.match(text)
            if opened is not None and opened[1] not in ("bucket", "key"):
                continue
            attr = _SIMPLE_ATTR.match(text)
            if attr is None or attr[1] in config:
                return None
            if attr[1] in ("bucket", "key") and attr[2] is None:
                return None  # a reference: the parser says how to show it
            config[attr[1]] = attr[2]
    if not all(name in body for name in needed - {"workspace"}):
        return None
    return kind, labels, body


# ---- the slow path: python-hcl2 on just the block


def _parse_snippet(snippet: _Snippet) -> list[_Block] | str:
    """The blocks in `snippet`, or "LINE:COL: message" when it is not valid HCL."""
    text, first_line = snippet
    hcl2 = _load_parser()
    from lark.exceptions import UnexpectedInput

    options = read_options()
    try:
        tree = hcl2.parses_to_tree(text)
        start = hcl2.transform(tree)
        # Lines come from the raw tree; labels and values from the transformed one, in step.
        raw = [c for c in tree.children[0].children if getattr(c, "data", None) == "block"]
        rules = [c for c in start.body.children if isinstance(c, hcl2.rules.base.BlockRule)]
        return [
            (
                str(rule.labels[0].serialize(options)),
                [str(label.serialize(options)) for label in rule.labels[1:]],
                rule.body.serialize(options),
                node.meta.line + first_line - 1,
            )
            for node, rule in zip(raw, rules, strict=True)
        ]
    except UnexpectedInput as exc:
        return (
            f"{exc.line + first_line - 1}:{exc.column}: this is not valid HCL "
            f"(the parser stopped at {context_line(text, exc.line)!r})."
        )
    except Exception as exc:  # python-hcl2 raises plain exceptions for some inputs
        return f"{first_line}: this is not valid HCL ({exc})."


def _load_parser() -> Any:
    # Imported only when a block needs it: the import alone costs more than a warm run.
    import hcl2

    hcl2.parser.parser()  # builds (or loads) the grammar once per process
    return hcl2


# ---- Terraform's JSON syntax (*.tf.json)


def _from_json(text: str) -> list[_Block]:
    document = json.loads(text)
    if not isinstance(document, dict):
        return []
    blocks: list[_Block] = []
    for data in _json_objects(document.get("data")):
        for name, body in _json_named(data.get("terraform_remote_state")):
            blocks.append(("data", ["terraform_remote_state", name], body, _json_line(text, name)))
    for name, body in _json_named(document.get("module")):
        blocks.append(("module", [name], body, _json_line(text, name)))
    return blocks


def _json_objects(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _json_named(value: Any) -> list[tuple[str, Any]]:
    out = []
    for item in _json_objects(value):
        for name, body in item.items():
            for one in body if isinstance(body, list) else [body]:
                out.append((name, one))
    return out


def _json_line(text: str, name: str) -> int:
    found = text.find(json.dumps(name) + ":")
    if found < 0:
        found = text.find(json.dumps(name))
    return text.count("\n", 0, max(found, 0)) + 1
