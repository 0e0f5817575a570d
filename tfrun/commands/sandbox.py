"""`tfrun sandbox up|down|status|env`: a local AWS on loopback for demos and tests."""

from __future__ import annotations

from pathlib import Path

from tfrun import sandbox, ui
from tfrun.discovery import find_root
from tfrun.errors import ExitCode


def _exports(box: sandbox.Sandbox) -> str:
    return "\n".join(f"export {name}={value}" for name, value in sorted(box.environ().items()))


def run(action: str, path: Path) -> int:
    root = find_root(path)
    if action == "up":
        box = sandbox.up(root)
        ui.info(
            f"sandbox running at {box.endpoint} (pid {box.pid}, log {box.log_file}). "
            f"tfrun commands under {root} use it until 'tfrun sandbox down'; "
            'for other tools: eval "$(tfrun sandbox env)".'
        )
        return 0
    if action == "down":
        if sandbox.down(root):
            ui.info("sandbox stopped.")
        else:
            ui.info("no sandbox was running for this repository.")
        return 0
    running = sandbox.current(root)
    if running is None:
        ui.info(f"no sandbox is running for {root}.")
        return int(ExitCode.STACK_FAILED)
    if action == "env":
        ui.out(_exports(running))
    else:
        ui.info(f"sandbox running at {running.endpoint} (pid {running.pid}).")
    return 0
