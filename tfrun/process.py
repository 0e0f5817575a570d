"""The one place that starts processes.

Three shapes: `run` captures output (short helper commands), `spawn_detached` leaves a daemon
running (the sandbox), and `run_in_group` runs terraform for the runner: in a process group of
its own with output to a log, or, for one stack in the foreground, with the terminal.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import anyio.abc

from tfrun.errors import ToolMissingError
from tfrun.files import open_private

_LAUNCHER = str(Path(__file__).with_name("launch.py"))


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def resolve_executable(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ToolMissingError(
            f"'{name}' was not found on PATH. Install it, or name the binary with "
            "--terraform-bin or TFRUN_TERRAFORM (for example: TFRUN_TERRAFORM=tofu)."
            if "terraform" in name or "tofu" in name
            else f"'{name}' was not found on PATH. Install it and run tfrun again."
        )
    return found


def _environ(env: Mapping[str, str] | None) -> dict[str, str]:
    return dict(os.environ if env is None else env)


def run(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    *,
    stdin: str | None = None,
) -> Outcome:
    executable = resolve_executable(argv[0])
    completed = subprocess.run(
        [executable, *argv[1:]],
        cwd=cwd,
        env=_environ(env),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    return Outcome(completed.returncode, completed.stdout, completed.stderr)


def started(argv: Sequence[str], cwd: Path) -> subprocess.Popen[str]:
    """A short command left running while tfrun does something else; its output is read
    with `communicate()`."""
    executable = resolve_executable(argv[0])
    return subprocess.Popen(
        [executable, *argv[1:]],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def spawn_detached(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start a daemon that outlives tfrun (its own session, output to a log); returns its pid."""
    executable = resolve_executable(argv[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            [executable, *argv[1:]],
            env=_environ(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return child.pid


# --- Process groups, for the concurrent runner --------------------------------------------
#
# Each terraform the runner starts leads its own process group (a new session), so that:
# a Ctrl-C at the terminal reaches tfrun alone, and tfrun decides what each terraform gets;
# one signal to the group reaches terraform and its provider plugins together, as a terminal's
# Ctrl-C would; and nothing that terraform started is left behind when it exits.


@dataclass(frozen=True)
class Launch:
    """One command of the runner: stdout and stderr appended to `log`, unless `stdout` names
    a file of its own (machine output such as `terraform show -json`).

    `terminal`: the child keeps tfrun's terminal and process group instead (one stack in the
    foreground: terraform may prompt, colours its output, and gets the terminal's Ctrl-C
    itself); nothing goes to `log`. `echo`: the log's bytes are also copied there as they
    come (the foreground's init, shown on stderr and kept for the retry's diagnosis).
    """

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    log: Path
    stdout: Path | None = None
    terminal: bool = False
    echo: IO[bytes] | None = None
    # Open descriptors the child keeps (the stack lock: held while terraform runs, even if
    # tfrun dies), and who to tell the child's pid once it runs.
    pass_fds: tuple[int, ...] = ()
    on_spawn: Callable[[int], None] | None = None


@dataclass(frozen=True)
class Exited:
    returncode: int  # negative: killed by that signal
    start: float  # time.monotonic()
    end: float
    signalled: bool  # tfrun sent it a signal before it exited

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def killed_by(self) -> signal.Signals | None:
        """The signal that killed the command (a crash, the OOM killer), if one did."""
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode)
        except ValueError:
            return None


def _supervised(executable: str, args: Sequence[str]) -> list[str]:
    """The command line that makes the child stop gracefully when tfrun dies (tfrun/launch.py);
    where the kernel cannot do that, the command itself."""
    if not sys.platform.startswith("linux"):
        return [executable, *args]
    return [sys.executable, "-S", _LAUNCHER, str(os.getpid()), executable, *args]


class ProcessGroups:
    """The process groups of the runner's running children, and the signals each was sent.

    SIGINT goes to each group at most once: terraform takes a second SIGINT as "stop now,
    abandon the state lock", which is what escalation is for and nothing else.
    """

    def __init__(self) -> None:
        self._sent: dict[int, set[int]] = {}
        self._level: signal.Signals | None = None
        # Children in tfrun's own process group (the terminal's): signalled one by one, and
        # the terminal already gives them its Ctrl-C.
        self._shared: set[int] = set()

    def __len__(self) -> int:
        return len(self._sent)

    def send(self, pgid: int, signum: signal.Signals) -> bool:
        sent = self._sent.get(pgid)
        if sent is None or (signum == signal.SIGINT and signum in sent):
            return False
        sent.add(signum)
        try:
            if pgid in self._shared:
                os.kill(pgid, signum)
            else:
                os.killpg(pgid, signum)
        except ProcessLookupError:
            return False
        return True

    def signal_all(self, signum: signal.Signals) -> int:
        """Send `signum` to every running group, and to any that starts from now on (one may be
        between spawn and registration when the signal comes); returns how many were sent."""
        self._level = signum
        return sum(self.send(pgid, signum) for pgid in list(self._sent))

    def add(self, pgid: int, *, terminal: bool = False) -> None:
        """`terminal`: `pgid` is a child in tfrun's own group, which the terminal's Ctrl-C
        reaches directly, so tfrun never sends it the first SIGINT itself (a second one makes
        terraform abandon its state lock)."""
        self._sent[pgid] = {signal.SIGINT} if terminal else set()
        if terminal:
            self._shared.add(pgid)
        if self._level is not None:
            self.send(pgid, self._level)

    def discard(self, pgid: int) -> bool:
        """Forget a group whose leader exited; True when tfrun had signalled it."""
        terminal = pgid in self._shared
        self._shared.discard(pgid)
        sent = self._sent.pop(pgid, None) or set()
        return bool(sent - ({signal.SIGINT} if terminal else set()))


async def run_in_group(launch: Launch, groups: ProcessGroups, *, grace_s: float = 10.0) -> Exited:
    """Run a command and wait for it; in its own process group unless `launch.terminal`.

    However this returns (the command exits, the caller is cancelled, tfrun fails), the child
    is gone afterwards: one still running gets SIGINT, SIGTERM, then SIGKILL, `grace_s` apart,
    and whatever the leader left behind in its own group is killed.
    """
    import anyio  # only to run terraform: commands that only read need none of it

    executable = resolve_executable(launch.argv[0])
    with ExitStack() as files:
        log = files.enter_context(os.fdopen(open_private(launch.log, "ab"), "ab"))
        out: IO[bytes] | int | None = log
        if launch.stdout:
            out = files.enter_context(os.fdopen(open_private(launch.stdout, "wb"), "wb"))
        elif launch.echo is not None:
            out = subprocess.PIPE
        start = time.monotonic()
        # Shielded: a cancellation between fork and registration would leave a child no one
        # knows about.
        with anyio.CancelScope(shield=True):
            child = await anyio.open_process(
                _supervised(executable, launch.argv[1:]),
                stdin=None if launch.terminal else subprocess.DEVNULL,
                stdout=None if launch.terminal else out,
                stderr=None
                if launch.terminal
                else (subprocess.STDOUT if out is subprocess.PIPE else log),
                cwd=launch.cwd,
                env=_environ(launch.env),
                start_new_session=not launch.terminal,
                pass_fds=launch.pass_fds,
            )
            groups.add(child.pid, terminal=launch.terminal)
        if launch.on_spawn is not None:
            launch.on_spawn(child.pid)
        try:
            if child.stdout is not None and launch.echo is not None:
                await _copy(child.stdout, (log, launch.echo))
            returncode = await child.wait()
        finally:
            with anyio.CancelScope(shield=True):
                if child.returncode is None:
                    await _stop(child, groups, grace_s)
                signalled = groups.discard(child.pid)
                if not launch.terminal:
                    _kill_leftovers(child.pid)
                await child.aclose()
        return Exited(returncode, start, time.monotonic(), signalled)


async def _copy(source: anyio.abc.ByteReceiveStream, targets: Sequence[IO[bytes]]) -> None:
    async for chunk in source:
        for target in targets:
            target.write(chunk)
            target.flush()


async def _stop(child: anyio.abc.Process, groups: ProcessGroups, grace_s: float) -> None:
    import anyio

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        groups.send(child.pid, signum)
        with anyio.move_on_after(grace_s if signum != signal.SIGKILL else None):
            await child.wait()
            return


def _kill_leftovers(pgid: int) -> None:
    """Provider plugins of a terraform that crashed would otherwise outlive it (and tfrun)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
