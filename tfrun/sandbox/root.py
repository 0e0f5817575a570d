"""A sandbox per live root: started or found, and filled with what the root config names
(profiles, the state bucket, the lock table)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from tfrun import state_store
from tfrun.config import ROOT_FILE, build, load_file
from tfrun.errors import ConfigError, TfrunError
from tfrun.sandbox.server import (
    LOCK_TIMEOUT_S,
    STATE_FILE,
    Sandbox,
    SandboxError,
    our_server,
    read_state,
    start_server,
    state_dir_for,
    stop,
    write_profiles,
)


@contextlib.contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    """Two `tfrun sandbox up` at once must not start two servers for one root."""
    lock_path = state_dir_for(root).parent / "sandbox.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(lock_path), timeout=LOCK_TIMEOUT_S):
            yield
    except Timeout:
        raise SandboxError(
            f"Another tfrun has held {lock_path} for {LOCK_TIMEOUT_S:g} s while starting or "
            "stopping the sandbox. Wait for it, or remove the file if no tfrun is running."
        ) from None


def current(root: Path) -> Sandbox | None:
    """The sandbox running for this live root; a state file left by a dead one is removed."""
    state_dir = state_dir_for(root)
    state_file = state_dir / STATE_FILE
    if not state_file.exists():
        return None
    box = read_state(state_dir)
    if box is not None and our_server(box.pid, box.port) is not None:
        return box
    # The log stays: it says why the old server died.
    with contextlib.suppress(OSError):
        state_file.unlink()
    return None


@dataclass(frozen=True)
class _Backend:
    bucket: str
    region: str
    lock_table: str | None
    profiles: tuple[str, ...]


def _backend(root: Path) -> _Backend:
    path = root / ROOT_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path}: there is no {ROOT_FILE} here, and the sandbox reads the state bucket, "
            "lock table and profiles from it. Run 'tfrun sandbox up' inside a live repository."
        )
    config = build([(path, load_file(path, is_root=True, is_stack=False))], path)
    assert config.state.bucket is not None and config.state.region is not None  # build checks
    profiles = {env.profile for env in config.environments.values() if env.profile}
    if config.state.profile:
        profiles.add(config.state.profile)
    return _Backend(
        bucket=config.state.bucket,
        region=config.state.region,
        lock_table=config.state.dynamodb_table,
        profiles=tuple(sorted(profiles)),
    )


def up(root: Path) -> Sandbox:
    """Start (or find) this root's sandbox and create its bucket, lock table and profiles."""
    root = root.resolve()
    backend = _backend(root)
    with _root_lock(root):
        box = current(root)
        started = box is None
        if box is None:
            box = start_server(state_dir_for(root))
        try:
            provision(box, backend.bucket, backend.region, backend.lock_table, backend.profiles)
        except BaseException:
            if started:
                stop(box)
                shutil.rmtree(box.state_dir, ignore_errors=True)
            raise
    return box


def down(root: Path) -> bool:
    """Stop this root's sandbox and remove its state; False when none was running."""
    root = root.resolve()
    if not (state_dir_for(root) / STATE_FILE).exists():
        return False
    with _root_lock(root):
        box = current(root)
        if box is None:
            return False
        stop(box)
        shutil.rmtree(box.state_dir, ignore_errors=True)
    return True


# ---------------------------------------------------------------------------------------------
# What the sandbox holds: profiles, the state bucket, the lock table.


def provision(
    sandbox: Sandbox,
    bucket: str,
    region: str,
    lock_table: str | None,
    profiles: Iterable[str],
) -> None:
    """Create the state bucket (versioned), the lock table and the profiles; idempotent."""
    write_profiles(sandbox, {**{name: region for name in profiles}, "default": region})
    what = f"the state bucket '{bucket}'"
    try:
        state_store.ensure_bucket(sandbox.client, bucket, region)
        if lock_table:
            what = f"the lock table '{lock_table}'"
            state_store.ensure_lock_table(sandbox.client, lock_table, region)
    except TfrunError:
        raise
    except Exception as exc:
        raise SandboxError(
            f"Could not create {what} in the sandbox at {sandbox.endpoint} ({exc}). "
            f"Its log is {sandbox.log_file}; 'tfrun sandbox down' then 'up' starts afresh."
        ) from None
