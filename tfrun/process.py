"""The one place that starts processes.

Three shapes: `run` captures output (short helper commands), `run_foreground` hands the
terminal to the child (the single-stack wrapper), `spawn_detached` leaves a daemon running
(the sandbox). The concurrent runner uses `start_in_group` so each terraform gets its own
process group and can be sent exactly one SIGINT.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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
