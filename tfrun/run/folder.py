"""A run's folder under <live root>/.tfrun/runs: its logs and plans, the owner's alone, and
only the last few runs' kept."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from tfrun.files import PRIVATE_DIR_MODE, make_private_dir

RUNS_DIR = Path(".tfrun") / "runs"
# Run folders kept under .tfrun/runs: their logs and plans hold secrets and add up.
DEFAULT_KEEP_RUNS = 20

_COMMAND_IN_NAME = re.compile(r"[^\w.-]+")


def new_run_dir(root: Path, command: str, keep: int = DEFAULT_KEEP_RUNS) -> Path:
    """A private folder for this run's logs and plans; the oldest beyond `keep` runs go."""
    runs = root / RUNS_DIR
    make_private_dir(runs)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{_COMMAND_IN_NAME.sub('_', command)}"
    path = runs / name
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:  # two runs in one second
        path = runs / f"{name}-{os.getpid()}"
        make_private_dir(path)
    prune_runs(runs, keep, current=path)
    return path


def prune_runs(runs: Path, keep: int, *, current: Path) -> None:
    """Best effort: the runs before the last `keep` (this one included) are removed."""
    try:
        # Names start with the time: sorted by name, oldest first.
        older = sorted(p for p in runs.iterdir() if p.is_dir() and p != current)
    except OSError:
        return
    for path in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(path, ignore_errors=True)
