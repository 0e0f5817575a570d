"""`tfrun sandbox up|down|status|env`: a local AWS on loopback for demos and tests.

`status` exits 0 while the sandbox runs, 1 when there is none (commands target AWS) and 4 when
it was started and has died (commands stop, as they do, until `up` or `down`).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from tfrun import provider_mirror, sandbox, ui
from tfrun.discovery import find_root
from tfrun.errors import ExitCode


def _exports(box: sandbox.Sandbox, root: Path) -> str:
    """The variables other tools need for the sandbox; with TFRUN_PROVIDER_MIRROR, terraform
    run directly gets the mirror's CLI config too, as tfrun's own runs do."""
    variables = dict(box.environ())
    mirror_config = provider_mirror.cli_config(root, os.environ)
    if mirror_config is not None:
        variables[provider_mirror.CLI_CONFIG_VARIABLE] = str(mirror_config)
    return "\n".join(
        f"export {name}={shlex.quote(value)}" for name, value in sorted(variables.items())
    )


def run(action: str, path: Path) -> int:
    root = find_root(path)
    if action == "up":
        before = sandbox.lookup(root)
        box = sandbox.up(root)
        if before is not None and not before.running:
            ui.info(
                f"the sandbox recorded here ({before.describe()}) was not running; "
                "this is a new one, empty."
            )
        ui.info(
            f"sandbox running at {box.endpoint} (pid {box.pid}, log {box.log_file}). "
            f"tfrun commands under {root} use it until 'tfrun sandbox down'; "
            'for other tools: eval "$(tfrun sandbox env)".'
        )
        return 0
    if action == "down":
        record = sandbox.down(root)
        if record is None:
            ui.info("no sandbox was running for this repository.")
        elif record.running:
            ui.info(f"sandbox stopped; tfrun commands under {root} target AWS again.")
        else:
            ui.info(
                f"the sandbox ({record.describe()}) was not running; its record is removed and "
                f"tfrun commands under {root} target AWS again."
            )
        return 0
    if action == "status":
        return _status(root)
    running = sandbox.current(root)  # a dead sandbox is an error here, as for any command
    if running is None:
        ui.info(f"no sandbox is running for {root}.")
        return int(ExitCode.STACK_FAILED)
    ui.out(_exports(running, root))
    return 0


def _status(root: Path) -> int:
    """Tells, and changes nothing: a dead sandbox's record stays until `up` or `down`."""
    record = sandbox.lookup(root)
    if record is None:
        ui.info(f"no sandbox is running for {root}; tfrun commands target AWS.")
        return int(ExitCode.STACK_FAILED)
    if record.running and record.box is not None:
        ui.info(f"sandbox running at {record.box.endpoint} (pid {record.box.pid}).")
        return 0
    ui.info(
        f"sandbox dead: {record.describe()}. tfrun commands under {root} stop until "
        "'tfrun sandbox up' starts it again or 'tfrun sandbox down' targets AWS."
    )
    return int(ExitCode.BAD_CONFIG)
