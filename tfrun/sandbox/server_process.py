"""Whether the sandbox's recorded server process is moto, ours, and alive (psutil): imported
only where a sandbox is recorded, not by every command."""

from __future__ import annotations

import time

import psutil

SERVER_MODULE = "moto.server"


def find_process(pid: int) -> psutil.Process | None:

    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def alive(server: psutil.Process) -> bool:
    """Running and not a zombie. A dead server stays a zombie until its parent collects it:
    the tfrun that started it, or an init that never does, as in some containers."""

    try:
        return server.is_running() and server.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        # It exists, and only its owner may see more of it.
        return True


def our_server(pid: int, port: int) -> psutil.Process | None:
    """A recorded pid may since belong to another program; only moto on our port is ours."""

    try:
        server = psutil.Process(pid)
        argv = server.cmdline()
    except psutil.Error:
        # Gone, or another user's: tfrun started its server as this user.
        return None
    if not alive(server) or SERVER_MODULE not in argv or str(port) not in argv:
        return None
    return server


def exits_within(server: psutil.Process, timeout: float) -> bool:
    """Wait for the server to end; a child of this process is collected on the way."""

    deadline = time.monotonic() + timeout
    while True:
        try:
            server.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            return True
        except psutil.TimeoutExpired:
            # psutil waits for a zombie that is not our child to vanish, which it may never do.
            if not alive(server):
                return True
        if time.monotonic() >= deadline:
            return False
