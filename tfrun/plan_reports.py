"""The plan jobs' files, read from disk for `tfrun ci summary` and `tfrun ci comment`.

Each plan job leaves `<live root>/.tfrun/ci/plan/<stack>.json` (the `--json` report) and may
leave `<stack>.txt` beside it (`terraform show -no-color tfplan`). A stack's name is its
report's path below the folder given, without `.json`; a report named on its own is named
after its file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT_SUFFIX = ".txt"


@dataclass
class PlanFiles:
    # None: the report is there but is not a JSON object (a job that died while writing it).
    reports: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)


def read(paths: Sequence[Path], *, texts: bool = False) -> PlanFiles:
    """The reports under `paths` (folders or report files), and with `texts` the plan texts
    beside them. A plan text that cannot be read is left out, as if the job wrote none."""
    found = PlanFiles()
    for path in paths:
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        for file in files:
            name = file.relative_to(path).with_suffix("").as_posix() if path.is_dir() else file.stem
            try:
                loaded = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = None
            found.reports[name] = loaded if isinstance(loaded, dict) else None
            if texts:
                try:
                    text = file.with_suffix(TEXT_SUFFIX).read_text(
                        encoding="utf-8", errors="replace"
                    )
                except OSError:
                    continue
                found.texts[name] = text
    return found
