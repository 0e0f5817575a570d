"""The one place that starts processes.

Three shapes: `run` captures output (short helper commands), `run_foreground` hands the
terminal to the child (the single-stack wrapper), `spawn_detached` leaves a daemon running
(the sandbox). The concurrent runner uses `run_in_group` so each terraform gets its own
process group and can be sent exactly one SIGINT.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import anyio
import anyio.abc

from tfrun.errors import ToolMissingError


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


@contextmanager
def _sigint_deferred() -> Iterator[list[int]]:
    """While a foreground child runs, Ctrl-C is the child's to handle (terraform releases its
    state lock on SIGINT); tfrun only remembers that it happened."""
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def run_foreground(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    *,
    stdout: IO[str] | None = None,
) -> int:
    """Run with the terminal attached; returns the exit code, or 130 after a Ctrl-C."""
    executable = resolve_executable(argv[0])
    if stdout is not None:
        stdout.flush()
    with _sigint_deferred() as interrupted:
        child = subprocess.Popen([executable, *argv[1:]], cwd=cwd, env=_environ(env), stdout=stdout)
        while True:
            try:
                returncode = child.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
    return 130 if interrupted else returncode


def run_to_file(
    argv: Sequence[str], cwd: Path, log: IO[bytes], env: Mapping[str, str] | None = None
) -> int:
    """Run with stdout and stderr appended to `log`; returns the exit code."""
    executable = resolve_executable(argv[0])
    return subprocess.run(
        [executable, *argv[1:]],
        cwd=cwd,
        env=_environ(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        check=False,
    ).returncode


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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate(pid: int) -> None:
    """Stop a process we started detached, politely first."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return


# --- Process groups, for the concurrent runner --------------------------------------------
#
# Each terraform the runner starts leads its own process group (a new session), so that:
# a Ctrl-C at the terminal reaches tfrun alone, and tfrun decides what each terraform gets;
# one signal to the group reaches terraform and its provider plugins together, as a terminal's
# Ctrl-C would; and nothing that terraform started is left behind when it exits.


@dataclass(frozen=True)
class Launch:
    """One command of the runner: stdout and stderr appended to `log`, unless `stdout` names
    a file of its own (machine output such as `terraform show -json`)."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    log: Path
    stdout: Path | None = None


@dataclass(frozen=True)
class Exited:
    returncode: int
    start: float  # time.monotonic()
    end: float
    signalled: bool  # tfrun sent it a signal before it exited

    @property
    def duration_s(self) -> float:
        return self.end - self.start


class ProcessGroups:
    """The process groups of the runner's running children, and the signals each was sent.

    SIGINT goes to each group at most once: terraform takes a second SIGINT as "stop now,
    abandon the state lock", which is what escalation is for and nothing else.
    """

    def __init__(self) -> None:
        self._sent: dict[int, set[int]] = {}
        self._level: signal.Signals | None = None

    def __len__(self) -> int:
        return len(self._sent)

    def send(self, pgid: int, signum: signal.Signals) -> bool:
        sent = self._sent.get(pgid)
        if sent is None or (signum == signal.SIGINT and signum in sent):
            return False
        sent.add(signum)
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            return False
        return True

    def signal_all(self, signum: signal.Signals) -> int:
        """Send `signum` to every running group, and to any that starts from now on (one may be
        between spawn and registration when the signal comes); returns how many were sent."""
        self._level = signum
        return sum(self.send(pgid, signum) for pgid in list(self._sent))

    def add(self, pgid: int) -> None:
        self._sent[pgid] = set()
        if self._level is not None:
            self.send(pgid, self._level)

    def discard(self, pgid: int) -> bool:
        """Forget a group whose leader exited; True when tfrun had signalled it."""
        return bool(self._sent.pop(pgid, None))


async def run_in_group(launch: Launch, groups: ProcessGroups, *, grace_s: float = 10.0) -> Exited:
    """Run a command in its own process group and wait for it.

    However this returns (the command exits, the caller is cancelled, tfrun fails), the group
    is gone afterwards: a child still running gets SIGINT, SIGTERM, then SIGKILL, `grace_s`
    apart, and whatever the leader left behind in its group is killed.
    """
    executable = resolve_executable(launch.argv[0])
    with ExitStack() as files:
        log = files.enter_context(launch.log.open("ab"))
        out = files.enter_context(launch.stdout.open("wb")) if launch.stdout else log
        start = time.monotonic()
        # Shielded: a cancellation between fork and registration would leave a child no one
        # knows about.
        with anyio.CancelScope(shield=True):
            child = await anyio.open_process(
                [executable, *launch.argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
                cwd=launch.cwd,
                env=_environ(launch.env),
                start_new_session=True,
            )
            groups.add(child.pid)
        try:
            returncode = await child.wait()
        finally:
            with anyio.CancelScope(shield=True):
                if child.returncode is None:
                    await _stop(child, groups, grace_s)
                signalled = groups.discard(child.pid)
                _kill_leftovers(child.pid)
                await child.aclose()
        return Exited(returncode, start, time.monotonic(), signalled)


async def _stop(child: anyio.abc.Process, groups: ProcessGroups, grace_s: float) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        groups.send(child.pid, signum)
        with anyio.move_on_after(grace_s if signum != signal.SIGKILL else None):
            await child.wait()
            return


def _kill_leftovers(pgid: int) -> None:
    """Provider plugins of a terraform that crashed would otherwise outlive it (and tfrun)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
