"""Cheap, standard-library-only ways to tell that nothing changed: a file's signature,
tfrun's own code, the live root of a folder. Used before anything heavy is imported (the
short way of tfrun/express.py, the repository picture of tfrun/picture.py)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping

ROOT_FILE = "tfrun.hcl"
# What a shell changes from one prompt to the next and no part of tfrun reads.
_VOLATILE = frozenset({"_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES"})


def signature(path: str) -> list[int] | None:
    """What changes with any write to a file (ctime too: an edit that puts the mtime back)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]


def environment_key(environ: Mapping[str, str]) -> str:
    """The environment, hashed: what tfrun does may depend on any of it (a CI's variables, the
    user's name in a session name, a profile), so a stored answer holds for the same one only."""
    seen = sorted((k, v) for k, v in environ.items() if k not in _VOLATILE)
    return hashlib.sha256(json.dumps(seen).encode()).hexdigest()


def code_key() -> str:
    """tfrun's own code as it is: a record of another version (or of an edit) is not used."""
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for folder, dirs, names in os.walk(here):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                digest.update(f"{folder}/{name}{signature(os.path.join(folder, name))}".encode())
    return digest.hexdigest()


def find_root(start: str) -> str | None:
    """The folder of the top-most tfrun.hcl at or above `start` (discovery.find_root's rule)."""
    root = None
    folder = start
    while True:
        if os.path.isfile(os.path.join(folder, ROOT_FILE)):
            root = folder
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if root is None and os.path.isfile(os.path.join(start, "live", ROOT_FILE)):
        root = os.path.join(start, "live")
    return root
