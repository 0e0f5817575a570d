"""Writing a file whole or not at all, and the private files and folders of a run (logs,
saved plans and reports hold variable values: the owner's alone)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# mkstemp makes private files; what tfrun writes gets the mode any new file would have.
_FILE_MODE = _new_file_mode()
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def make_private_dir(path: Path) -> None:
    """`path` and the folders made for it, the owner's alone (an existing one is narrowed)."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)


def open_private(path: Path, mode: str = "ab") -> int:
    """A descriptor for appending to (or, with "wb", replacing) a file only its owner reads."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    return os.open(path, flags, PRIVATE_FILE_MODE)


def write_atomically(path: Path, text: str, *, private: bool = False) -> None:
    """Readers see the old content or the new, never half of it (a temp file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, PRIVATE_FILE_MODE if private else _FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
