"""A local AWS on loopback: moto's server, started detached, one per live root.

`up` starts it, writes `<live root>/.tfrun/sandbox/sandbox.json` and creates the state bucket,
the lock table and an AWS config that defines every profile the root config names, so that
unchanged stacks (`profile = "prod"`) run real terraform with no AWS account. Later tfrun
commands find the running sandbox through `current`; one whose server has died stops them
(`SandboxDeadError`) until `up` replaces it or `down` removes its record. Nothing here talks
to anything but 127.0.0.1. `server` is the process and its record; `root` what a live root's
sandbox holds.
"""

from __future__ import annotations

from tfrun.sandbox.root import Record, SandboxDeadError, current, down, lookup, provision, up
from tfrun.sandbox.server import (
    ACCESS_KEY_ID,
    HOST,
    SECRET_ACCESS_KEY,
    STATE_FILE,
    Sandbox,
    SandboxError,
    ensure_profiles,
    start_server,
    state_dir_for,
    stop,
)

__all__ = [
    "ACCESS_KEY_ID",
    "HOST",
    "SECRET_ACCESS_KEY",
    "STATE_FILE",
    "Record",
    "Sandbox",
    "SandboxDeadError",
    "SandboxError",
    "current",
    "down",
    "ensure_profiles",
    "lookup",
    "provision",
    "start_server",
    "state_dir_for",
    "stop",
    "up",
]
