"""`tfrun fmt [PATH] [--check]`: write, or verify, the canonical layout of the config files."""

from __future__ import annotations

import os
from pathlib import Path

from tfrun import ui
from tfrun.config_format import config_files, format_file
from tfrun.errors import ExitCode
from tfrun.files import write_atomically


def run(path: Path, *, check: bool) -> int:
    files = config_files(path)
    # Every file formatted before any is written: one that does not parse changes nothing.
    formatted = [format_file(file) for file in files]
    changed = [entry for entry in formatted if entry.changed]
    shown = {entry.path: os.path.relpath(entry.path) for entry in changed}
    if check:
        for entry in changed:
            ui.out(entry.diff(shown[entry.path]))
        if changed:
            ui.error(
                f"{len(changed)} of {len(files)} config files are not formatted: "
                f"{', '.join(shown.values())}. Run 'tfrun fmt' and commit the result."
            )
            return int(ExitCode.STACK_FAILED)
        ui.info(f"{len(files)} config files are formatted.")
        return 0
    for entry in changed:
        write_atomically(entry.path, entry.after)
        ui.info(f"formatted {shown[entry.path]}")
    ui.info(f"{len(changed)} of {len(files)} config files formatted.")
    return 0
