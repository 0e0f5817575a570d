"""The two locks of a run: one per stack, between tfrun processes, and one on the shared
provider plugin cache, between every init that uses it.

Both are waited for by polling in the event loop rather than by blocking a thread, so that a
Ctrl-C or --fail-fast ends the wait at once, and so the first failed try can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from tfrun.discovery import Stack
from tfrun.run.scheduler import Stop, Stopped

POLL_S = 0.1
LOCKS_DIR = Path(".tfrun") / "locks"
CACHE_LOCK_NAME = ".tfrun-init.lock"
# Generated files that never change which providers a stack needs.
_NOT_PROVIDER_INPUTS = frozenset(
    {"backend.tf", "provider.tf", "remote_state.tf", "tfrun_override.tf"}
)
_LOCKED_PROVIDER = re.compile(
    r'provider\s+"(?P<source>[^"]+)"\s*\{[^}]*?\bversion\s*=\s*"(?P<version>[^"]+)"', re.S
)
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class LockTimeout(Exception):
    """Another tfrun kept the stack for longer than --lock-timeout."""


def stack_lock_path(stack: Stack) -> Path:
    # Under the live root, not in the stack's .terraform: a user who deletes .terraform to
    # re-init would delete a held lock with it, and the next tfrun would take it too.
    return stack.root / LOCKS_DIR / f"{stack.rel}.lock"


def _holder(owner_file: Path) -> str:
    try:
        return owner_file.read_text(encoding="utf-8").strip() or "another tfrun"
    except OSError:
        return "another tfrun"


@asynccontextmanager
async def stack_lock(
    stack: Stack,
    *,
    command: str,
    timeout: float | None,
    stop: Stop,
    waiting: Callable[[str], None],
) -> AsyncIterator[int]:
    """Hold the stack against other tfrun processes; `timeout` None waits for as long as it
    takes (a Ctrl-C still ends the wait). Yields the lock's descriptor: a terraform that
    inherits it holds the stack with it, so a tfrun that dies mid-apply leaves the stack
    locked until its terraform has stopped.

    `waiting` is told once, with who holds it, when the first try fails.
    """
    path = stack_lock_path(stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner_file = owner_path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            holder = _holder(owner_file)
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeout(
                    f"{holder} is working in this stack; gave up waiting after "
                    f"{timeout:g}s (--lock-timeout)."
                )
            if not told:
                waiting(holder)
                told = True
            if not await stop.sleep(POLL_S):
                raise Stopped
        note_holder(
            path, f"tfrun (pid {os.getpid()}, {command}, since {time.strftime('%H:%M:%S')})"
        )
        yield fd
    finally:
        os.close(fd)  # closing tfrun's descriptor releases the lock unless a child holds it


def owner_path(lock_path: Path) -> Path:
    # The owner file stays (the next holder overwrites it): it is read only while the lock is
    # held, and creating a file per run costs more than the rest of the lock.
    return lock_path.with_name(lock_path.name + ".owner")


def note_holder(lock_path: Path, holder: str) -> None:
    """Who holds the stack, for the next tfrun that finds it locked."""
    with suppress(OSError):
        owner_path(lock_path).write_text(holder + "\n", encoding="utf-8")


def _platform() -> str | None:
    arch = _ARCH.get(platform.machine().lower())
    system = platform.system().lower()
    return f"{system}_{arch}" if arch and system in ("linux", "darwin") else None


def init_may_write_cache(stack_dir: Path, cache_dir: Path) -> bool:
    """Whether `terraform init` here might download a provider into the shared cache.

    It will not when the stack's dependency lock file pins every provider, each pinned version
    is already in the cache, and no configuration file changed since the lock file was written
    (a changed file may require a provider the lock file does not list yet). When in doubt:
    it may.
    """
    lock_file = stack_dir / ".terraform.lock.hcl"
    target = _platform()
    try:
        text = lock_file.read_text(encoding="utf-8")
        locked_at = lock_file.stat().st_mtime
        newer = any(
            path.stat().st_mtime > locked_at
            for path in stack_dir.glob("*.tf")
            if path.name not in _NOT_PROVIDER_INPUTS
        )
    except OSError:
        return True
    if newer or target is None:
        return True
    return not all(
        (cache_dir / match["source"] / match["version"] / target).is_dir()
        for match in _LOCKED_PROVIDER.finditer(text)
    )


class PluginCacheLock:
    """A readers-writer lock on the provider cache, shared by every tfrun on this machine.

    Terraform's plugin cache is not safe for concurrent writers, and a reader can see a
    provider another init is half-way through unpacking. So an init that may write holds it
    alone; inits that only read (the common case once the cache is warm) hold it together, so
    200 stacks do not init one at a time. flock, not filelock: filelock has no shared mode.
    """

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / CACHE_LOCK_NAME
        # Within this process a waiting writer holds new readers back, or a steady stream of
        # overlapping readers could keep it waiting for the whole run.
        self._writers_waiting = 0

    @asynccontextmanager
    async def hold(
        self, *, exclusive: bool, stop: Stop, waiting: Callable[[], None]
    ) -> AsyncIterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            await self._acquire(fd, exclusive, stop, waiting)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    async def _acquire(
        self, fd: int, exclusive: bool, stop: Stop, waiting: Callable[[], None]
    ) -> None:
        operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        self._writers_waiting += exclusive
        try:
            told = False
            while True:
                if exclusive or not self._writers_waiting:
                    try:
                        fcntl.flock(fd, operation)
                        return
                    except BlockingIOError:
                        pass
                if not told:
                    waiting()
                    told = True
                if not await stop.sleep(POLL_S):
                    raise Stopped
        finally:
            self._writers_waiting -= exclusive
