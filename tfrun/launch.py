"""Run as a script between tfrun and each terraform it starts (Linux only), then replaced by
terraform itself (exec: same pid, same process group):

    python -S launch.py TFRUN_PID EXECUTABLE ARGS...

It asks the kernel to send the child one SIGINT when tfrun dies, however it dies (SIGKILL
included): terraform then stops gracefully and releases its state lock instead of running on
unsupervised. Python's subprocess has a preexec_fn for this, but anyio's open_process has none.
Nothing of tfrun is imported: this runs before every terraform command.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    parent, executable, args = int(argv[0]), argv[1], argv[1:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    if os.getppid() != parent:
        return 130  # tfrun died before the signal was armed: terraform must not start
    os.execv(executable, args)
    return 127  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
