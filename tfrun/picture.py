"""One picture of the repository, checked rather than rebuilt: `graph`, `check`, `affected`
and `ci gitlab` answer again from it while no file they read changed (and, for the last two,
while git says what it said: tfrun/git.py's `state`).

The first run stores its answer with the signature of the repository as it was when that run
began: every folder under the live root (but .tfrun, .terraform and .git), and the name and stat
of every file tfrun reads there (.tf, .tf.json, .hcl, .tfvars, .tfvars.json), with the module
folders outside the root that the stacks call; the question's key holds the environment (what
tfrun generates depends on a CI's variables and the user's name). The next run walks the same
tree, one `stat` per file and nothing read or parsed (the floor of any check that misses
nothing), and when the signature is the same, prints the stored answer (`graph` imports nothing
heavier than the standard library on the way).

Nothing is stored when a file changed within two seconds of the walk (its timestamps might not
show a second change in the same tick), and another version of tfrun keeps a picture of its own.
The module folders outside the root are known once the answer is drawn: they are walked then,
which is sound only because nothing in them changed since the run began (a change would show in
a file's or the folder's change time).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field

from tfrun.fingerprint import code_key, environment_key, find_root, signature

TYPE_CHECKING = False
if TYPE_CHECKING:  # not imported: `graph` answers with the standard library alone
    from tfrun.scan import StackFacts

FILE = os.path.join(".tfrun", "cache", "picture.json")  # the module folders outside the root
ANSWERS = os.path.join(".tfrun", "cache", "answers")  # one file per question
KEEP_ANSWERS = 64
READ = (".tf", ".tf.json", ".hcl", ".tfvars", ".tfvars.json")
SKIPPED = frozenset({".tfrun", ".terraform", ".git"})
# A file changed this close to the walk is not trusted (scan/cache.py has the same rule).
RACY_NS = 2_000_000_000
_FORMAT = 1


def walk(folders: Iterable[str], *, below: bool) -> tuple[str, int]:
    """The signature of `folders` (with every folder below them when `below`) and the newest
    change in them, in ns: of a file tfrun reads, or (when not `below`) of a folder's entries.
    Change times only: a write always sets ctime to now, whatever mtime is set to."""
    seen: list[object] = []
    add = seen.append
    changed = [0]
    keep = changed.append
    pending = sorted(folders, reverse=True)
    while pending:
        folder = pending.pop()
        add(folder)
        try:
            if not below:
                keep(os.stat(folder).st_ctime_ns)
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    if name.endswith(READ):
                        if entry.is_symlink():  # what is read is the target's content
                            add(os.readlink(entry.path))
                        try:
                            st = entry.stat()
                        except OSError:
                            add((name, None))
                            continue
                        add((name, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
                        keep(st.st_ctime_ns)
                    elif entry.is_dir(follow_symlinks=False):
                        if below and name not in SKIPPED:
                            pending.append(entry.path)
                    elif entry.is_symlink():
                        add((name, os.readlink(entry.path)))
        except OSError:
            add(None)
    return hashlib.sha256(repr(seen).encode()).hexdigest(), max(changed)


@dataclass
class Answer:
    """What a command said, in order (`out` on stdout; `info` and `error` on stderr, as
    tfrun/ui.py says them), and its exit code: kept, and said again the same way."""

    said: list[tuple[str, str]] = field(default_factory=list)
    code: int = 0

    def say(self, kind: str, text: str) -> None:
        self.said.append((kind, text))

    def show(self) -> int:
        from tfrun import ui

        for kind, text in self.said:
            getattr(ui, kind)(text)
        return self.code


def sandbox_state(root: str) -> list[object]:
    """The live root's sandbox as commands that render generated files see it: its record,
    and whether its server still runs (a dead one is an error, not an answer to keep)."""
    path = os.path.join(root, ".tfrun", "sandbox", "sandbox.json")
    try:
        with open(path, encoding="utf-8") as handle:
            pid = json.load(handle)["pid"]
        os.kill(int(pid), 0)
        alive = True
    except (OSError, ValueError, KeyError, TypeError):
        alive = False
    return [signature(path), alive]


def key_of(command: str, environ: Mapping[str, str], *parts: object) -> str:
    """A stored answer's key: the command, what else it depends on, and the environment."""
    return json.dumps([command, *parts, environment_key(environ)])


_SAYING = ("out", "info", "error")


class Picture:
    """The stored answers of one live root, and whether they still hold."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.began_ns = time.time_ns()
        self.code = code_key()
        stored = _load(os.path.join(root, FILE), self.code)
        outside = stored.get("outside")
        self.outside = [str(d) for d in outside] if isinstance(outside, list) else []
        self.tree, newest = walk([root], below=True)
        self.modules, newest_module = walk(self.outside, below=False)
        self.settled = max(newest, newest_module) < self.began_ns - RACY_NS

    def answer(self, key: str) -> Answer | None:
        found = _load(self._answer_path(key), self.code)
        if found.get("key") != key or found.get("signature") != [self.tree, self.modules]:
            return None
        try:
            said = [(str(kind), str(text)) for kind, text in found["said"]]  # type: ignore[attr-defined]
            answer = Answer(said, int(found["code"]))  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError):
            return None
        return answer if all(kind in _SAYING for kind, _ in said) else None

    def keep(self, key: str, answer: Answer, outside: Iterable[str]) -> None:
        """Store an answer computed from the files as this picture's walk found them;
        `outside`: the module folders outside the root that the answer read."""
        root = self.root + os.sep
        wanted = sorted({d for d in outside if not (d + os.sep).startswith(root)})
        settled, modules = self.settled, self.modules
        if wanted != self.outside:
            # Walked after the answer was drawn: sound only if nothing in them (files, or a
            # folder's entries) changed since this run began, for any change would show.
            modules, newest = walk(wanted, below=False)
            settled = settled and newest < self.began_ns - RACY_NS
            self._write(os.path.join(self.root, FILE), {"outside": wanted})
        if settled:
            stored = {"key": key, "signature": [self.tree, modules], **asdict(answer)}
            self._write(self._answer_path(key), stored)
            _prune(os.path.join(self.root, ANSWERS))

    def _answer_path(self, key: str) -> str:
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        return os.path.join(self.root, ANSWERS, f"{name}.json")

    def _write(self, path: str, data: dict[str, object]) -> None:
        from pathlib import Path

        from tfrun.files import write_atomically

        # A read-only checkout answers in full every time, and is no worse for it.
        with contextlib.suppress(OSError):
            text = json.dumps({"format": _FORMAT, "tfrun": self.code, **data})
            write_atomically(Path(path), text, private=True)


def _load(path: str, code: str) -> dict[str, object]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _FORMAT or data.get("tfrun") != code:
        return {}
    return data


def _prune(folder: str) -> None:
    """Answers to questions nobody asked lately go (each commit asks `affected` anew)."""
    with contextlib.suppress(OSError):
        with os.scandir(folder) as entries:
            kept = sorted(
                ((e.stat().st_mtime_ns, e.path) for e in entries if e.name.endswith(".json")),
                reverse=True,
            )
        for _mtime, path in kept[KEEP_ANSWERS:]:
            os.unlink(path)


def folder_of(start: str) -> str:
    """The folder a command given `start` (a folder or a file in one) works from."""
    return start if os.path.isdir(start) else os.path.dirname(start)


def module_dirs(facts: Mapping[str, StackFacts]) -> set[str]:
    """Every local module folder the stacks use, directly or through other modules."""
    return {str(m) for found in facts.values() for m in found.modules}


def answered(
    start: str,
    key: str | Callable[[], str | None],
    draw: Callable[[], tuple[Answer, Iterable[str]]],
) -> Answer:
    """The answer to `key` for the live root holding `start`: from its picture when that
    holds, else drawn (`draw` gives it and the module folders outside the root it read) and
    kept. A `key` to call is asked after the walk (what it waits for runs meanwhile); None
    from it: this answer is not one to keep."""
    root = find_root(folder_of(start))
    picture = Picture(root) if root is not None else None
    named = key() if callable(key) else key
    found = picture.answer(named) if picture is not None and named is not None else None
    if found is None:
        found, outside = draw()
        if picture is not None and named is not None:
            picture.keep(named, found, outside)
    return found
