"""A sandbox per live root: started or found, and filled with what the root config names
(profiles, the state bucket, the lock table)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

from tfrun import state_store
from tfrun.config import ROOT_FILE, build, load_file
from tfrun.errors import ConfigError, ExitCode
from tfrun.sandbox.server import (
    LOCK_TIMEOUT_S,
    STATE_FILE,
    Sandbox,
    SandboxError,
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


@dataclass(frozen=True)
class Record:
    """What `<live root>/.tfrun/sandbox/sandbox.json` says, and whether its server runs."""

    state_file: Path
    box: Sandbox | None  # None: the record cannot be read
    running: bool

    def describe(self) -> str:
        """When it started, its pid and endpoint, as messages name them."""
        if self.box is None:
            return f"its record {self.state_file} cannot be read"
        return f"started {_started(self)}, pid {self.box.pid}, endpoint {self.box.endpoint}"


class SandboxDeadError(SandboxError):
    """A live root's sandbox was in use and its server has died. tfrun stops rather than fall
    back to AWS: switching between the two is only ever the person's own `up` or `down`."""

    exit_code = ExitCode.BAD_CONFIG

    def __init__(self, root: Path, record: Record) -> None:
        log = f" (its log: {record.box.log_file})" if record.box is not None else ""
        super().__init__(
            f"The sandbox of the live root {root} ({record.describe()}) is not running{log}, "
            "so tfrun stops here rather than send this command to AWS. Run 'tfrun sandbox up' "
            "to start it again (a new, empty sandbox), or 'tfrun sandbox down' to forget it "
            "and target AWS."
        )


def _started(record: Record) -> str:
    started = record.box.started if record.box is not None else ""
    try:
        when = datetime.fromisoformat(started) if started else None
    except ValueError:
        when = None
    if when is None:
        # A record of an older tfrun: written once, when its server had started.
        try:
            when = datetime.fromtimestamp(record.state_file.stat().st_mtime)
        except OSError:
            return "at an unknown time"
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _our_server(pid: int, port: int) -> bool:
    from tfrun.sandbox import server_process  # psutil: only where a sandbox is recorded

    return server_process.our_server(pid, port) is not None


def lookup(root: Path) -> Record | None:
    """This live root's sandbox record, as it is (None: there is none). Cheap: one small file
    and one process table entry, for it is read by every command."""
    state_dir = state_dir_for(root)
    state_file = state_dir / STATE_FILE
    if not state_file.exists():
        return None
    box = read_state(state_dir)
    running = box is not None and _our_server(box.pid, box.port)
    return Record(state_file, box, running)


def current(root: Path) -> Sandbox | None:
    """The sandbox running for this live root; None when there is none. A recorded sandbox
    whose server has died is a `SandboxDeadError`, and its record stays: only `up` and `down`
    change what the root's commands target."""
    record = lookup(root)
    if record is None:
        return None
    if not record.running or record.box is None:
        raise SandboxDeadError(root.resolve(), record)
    return record.box


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
    if config.auth.laptop_profile:  # the source of the role chain, on a laptop
        profiles.add(config.auth.laptop_profile)
    return _Backend(
        bucket=config.state.bucket,
        region=config.state.region,
        lock_table=config.state.dynamodb_table,
        profiles=tuple(sorted(profiles)),
    )


def up(root: Path) -> Sandbox:
    """Start (or find) this root's sandbox and create its bucket, lock table and profiles.

    A recorded sandbox that has died is replaced by a new server (and record)."""
    root = root.resolve()
    backend = _backend(root)
    with _root_lock(root):
        record = lookup(root)
        box = record.box if record is not None and record.running else None
        started = box is None
        if box is None:
            box = start_server(state_dir_for(root))
        try:
            provision(box, backend.bucket, backend.region, backend.lock_table, backend.profiles)
        except BaseException:
            if started:
                stop(box)
                # A sandbox that was in use stays recorded (now dead, so commands stop): a
                # failed `up` must not switch the root to AWS.
                if record is None:
                    shutil.rmtree(box.state_dir, ignore_errors=True)
            raise
    return box


def down(root: Path) -> Record | None:
    """Stop this root's sandbox, if its server still runs, and remove its record and files,
    so that the root's commands target AWS again; what was recorded (None: nothing)."""
    root = root.resolve()
    if not (state_dir_for(root) / STATE_FILE).exists():
        return None
    with _root_lock(root):
        record = lookup(root)
        if record is None:
            return None
        if record.box is not None:
            # Only our moto on the recorded port is stopped; a pid reused since is left alone.
            stop(record.box)
        shutil.rmtree(state_dir_for(root), ignore_errors=True)
    return record


# ---------------------------------------------------------------------------------------------
# What the sandbox holds: profiles, the state bucket, the lock table.


def provision(
    sandbox: Sandbox,
    bucket: str,
    region: str,
    lock_table: str | None,
    profiles: Iterable[str],
) -> None:
    """Create the state bucket and the lock table as `tfrun bootstrap` does, and the
    profiles; idempotent."""
    write_profiles(sandbox, {**{name: region for name in profiles}, "default": region})
    # The sandbox is plain HTTP, where a TLS-only bucket policy would refuse every request;
    # and it has none of the KMS keys a real account's state.kms_key_id names.
    layout = state_store.Layout(bucket, region, lock_table, tls_policy=False)
    try:
        list(state_store.ensure(sandbox.client, layout))  # the sandbox shows no lines
    except state_store.StateStoreError as exc:
        raise SandboxError(
            f"Could not {exc.what} in the sandbox at {sandbox.endpoint} ({exc.cause}). "
            f"Its log is {sandbox.log_file}; 'tfrun sandbox down' then 'up' starts afresh."
        ) from None
