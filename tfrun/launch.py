"""Run as a script between tfrun and each terraform it starts (Linux only), then replaced by
terraform itself (exec: same pid, same process group, same exit status):

    python -S launch.py TFRUN_PID EXECUTABLE ARGS...

Before the exec it forks a watchdog that waits for tfrun or terraform to end. When tfrun ends
first, however it ends (SIGKILL included), the watchdog sends terraform exactly one SIGINT:
terraform stops gracefully and releases its state lock instead of running on unsupervised (a
second SIGINT would make it abandon the lock, which is why this is not the kernel's parent-death
signal: that one comes once per thread of tfrun's that exits). Python's subprocess has a
preexec_fn for this, but anyio's open_process has none. Nothing of tfrun is imported: this runs
before every terraform command.
"""

from __future__ import annotations

import os
import select
import signal
import sys

_POLL_S = 0.2


def _ended(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _watch(tfrun: int, terraform: int) -> None:
    """In the watchdog: wait for either to end; if tfrun did, interrupt terraform once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the group's signals are terraform's
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        watched = [os.pidfd_open(tfrun), os.pidfd_open(terraform)]
    except (AttributeError, OSError):
        watched = []
    # Nothing of terraform's stays open here: not its output, not the stack lock.
    start = 0
    for fd in sorted(watched):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, os.sysconf("SC_OPEN_MAX"))
    while True:
        if watched:
            ready, _, _ = select.select(watched, [], [])
            tfrun_ended = watched[0] in ready
            if tfrun_ended or watched[1] in ready:
                break
        else:
            tfrun_ended = _ended(tfrun) or os.getppid() != terraform
            if tfrun_ended or _ended(terraform):
                break
            select.select([], [], [], _POLL_S)
    if tfrun_ended and not _ended(terraform):
        os.kill(terraform, signal.SIGINT)


def main(argv: list[str]) -> int:
    tfrun, executable, args = int(argv[0]), argv[1], argv[1:]
    if os.getppid() != tfrun:
        return 130  # tfrun died before terraform started: it must not start
    terraform = os.getpid()
    if os.fork() == 0:
        try:
            _watch(tfrun, terraform)
        finally:
            os._exit(0)
    os.execv(executable, args)
    return 127  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
