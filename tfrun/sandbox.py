"""A local AWS on loopback: moto's server, started detached, one per live root.

`up` starts it, writes `<live root>/.tfrun/sandbox/sandbox.json` and creates the state bucket,
the lock table and an AWS config that defines every profile the root config names, so that
unchanged stacks (`profile = "prod"`) run real terraform with no AWS account. Later tfrun
commands find the running sandbox through `current`. Nothing here talks to anything but
127.0.0.1.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from tfrun import process
from tfrun.config import ROOT_FILE, build, load_file
from tfrun.errors import ConfigError, ExitCode, TfrunError, ToolMissingError
from tfrun.files import write_atomically

HOST = "127.0.0.1"
STATE_FILE = "sandbox.json"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
LOCK_TIMEOUT_S = 60.0
# Region of the `default` profile until `provision` names the state region.
DEFAULT_REGION = "us-east-1"
# Dummy credentials: moto accepts any key, and a fixed one keeps real keys from a shell out of
# the sandbox's requests and logs.
ACCESS_KEY_ID = "SANDBOXACCESSKEYID"
SECRET_ACCESS_KEY = "sandbox-secret-access-key"
INSTALL_HINT = "pip install 'tfrun[sandbox]'"
_SERVER_MODULE = "moto.server"
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_.+=,@-]+")


class SandboxError(TfrunError):
    """The local AWS could not be started, reached or stopped."""

    exit_code = ExitCode.STACK_FAILED


@dataclass(frozen=True)
class Sandbox:
    pid: int
    port: int
    endpoint: str  # "http://127.0.0.1:PORT"
    state_dir: Path
    config_file: Path
    credentials_file: Path
    log_file: Path

    def environ(self) -> dict[str, str]:
        """Variables that send terraform, the AWS CLI and boto3 to this sandbox.

        Merged over the caller's environment (`env.update(...)`), they also replace any real
        credentials or profile of the shell: under the sandbox every profile is a dummy one.
        """
        return {
            "TFRUN_AWS_ENDPOINT": self.endpoint,
            # A safety net for anything tfrun did not generate an endpoint for (the AWS CLI,
            # boto3, an SDK inside a provider): it reaches the sandbox, never real AWS.
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_CONFIG_FILE": str(self.config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file),
            # Stacks without a `profile` resolve through these; stacks with one use the
            # profile's own dummy keys (an explicit profile wins over the environment).
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": "",
            # A shell's AWS_PROFILE names a profile the sandbox's config does not define.
            "AWS_PROFILE": "default",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str, region: str) -> Any:
        """A boto3 client for this sandbox, independent of the caller's environment."""
        boto3, botocore_config = _boto3()
        return boto3.session.Session().client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=botocore_config(
                s3={"addressing_style": "path"},
                # An empty mapping, not None: a proxy from the environment must not see
                # loopback traffic.
                proxies={},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )


def state_dir_for(root: Path) -> Path:
    return root.resolve() / ".tfrun" / "sandbox"


def _sandbox_at(state_dir: Path, pid: int, port: int) -> Sandbox:
    return Sandbox(
        pid=pid,
        port=port,
        endpoint=f"http://{HOST}:{port}",
        state_dir=state_dir,
        config_file=state_dir / "aws-config",
        credentials_file=state_dir / "aws-credentials",
        log_file=state_dir / "moto.log",
    )


# ---------------------------------------------------------------------------------------------
# Dependencies that are optional for tfrun as a whole.


def _require_moto() -> None:
    missing = [m for m in ("moto", "flask", "werkzeug", "boto3") if _find_spec(m) is None]
    if missing:
        raise ToolMissingError(
            f"The sandbox runs moto's server, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed in the Python that runs "
            f"tfrun ({sys.executable}). Install it with: {INSTALL_HINT}"
        )


def _find_spec(name: str) -> object | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _boto3() -> tuple[Any, Any]:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ToolMissingError(
            f"The sandbox needs boto3, which is not installed in the Python that runs tfrun "
            f"({sys.executable}). Install it with: {INSTALL_HINT}"
        ) from None
    return boto3, Config


# ---------------------------------------------------------------------------------------------
# The server process.


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _running(pid: int) -> bool:
    """Alive and not a zombie. When this process started the server (tests, a fresh `up`),
    a dead server stays a zombie until reaped, and `kill(pid, 0)` still succeeds on it."""
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    return process.pid_alive(pid) and not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A dead server whose parent (the tfrun that started it, or an init that does not reap,
    as in some containers) has not collected it yet."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    # The state follows the command name, which is in parentheses and may hold anything.
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] in ("Z", "X")


def _command_line(pid: int) -> list[str]:
    if Path("/proc/self/cmdline").exists():
        try:
            raw = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            return []
        return [part for part in raw.decode(errors="replace").split("\0") if part]
    # No /proc (macOS): ps prints the command line, split on spaces, which is enough here.
    outcome = process.run(["ps", "-o", "command=", "-p", str(pid)], cwd=Path("/"))
    return outcome.stdout.split() if outcome.returncode == 0 else []


def _is_our_server(pid: int, port: int) -> bool:
    """A recorded pid may since belong to another program; only moto on our port is ours."""
    if not _running(pid):
        return False
    argv = _command_line(pid)
    return _SERVER_MODULE in argv and str(port) in argv


def _answers(endpoint: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{endpoint}/moto-api/data.json", timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _log_tail(log_file: Path, offset: int, lines: int = 15) -> str:
    try:
        with log_file.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return "    (no log was written)"
    tail = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"    {line}" for line in tail) if tail else "    (the log is empty)"


def _write_state(box: Sandbox) -> None:
    state = {"pid": box.pid, "port": box.port, "endpoint": box.endpoint, "python": sys.executable}
    write_atomically(box.state_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")


def _read_state(state_dir: Path) -> Sandbox | None:
    try:
        state = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        pid, port = state["pid"], state["port"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(pid, int) or not isinstance(port, int) or pid <= 0:
        return None
    return _sandbox_at(state_dir, pid, port)


def start_server(
    state_dir: Path, *, port: int | None = None, timeout: float = START_TIMEOUT_S
) -> Sandbox:
    """Start moto on 127.0.0.1 (a free port unless one is given) and wait until it answers."""
    _require_moto()
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    provisional = _sandbox_at(state_dir, 0, port)
    _write_profiles(provisional, {"default": DEFAULT_REGION}, replace=True)
    log_file = provisional.log_file
    offset = log_file.stat().st_size if log_file.exists() else 0
    pid = process.spawn_detached(
        [sys.executable, "-m", _SERVER_MODULE, "-H", HOST, "-p", str(port)], log_file
    )
    box = _sandbox_at(state_dir, pid, port)
    deadline = time.monotonic() + timeout
    while True:
        if not _running(pid):
            raise SandboxError(
                f"moto's server (pid {pid}) exited while starting on {HOST}:{port}. "
                f"The end of its log {log_file}:\n{_log_tail(log_file, offset)}"
            )
        if _answers(box.endpoint):
            break
        if time.monotonic() > deadline:
            stop(box)
            raise SandboxError(
                f"moto's server (pid {pid}) did not answer on {box.endpoint} within "
                f"{timeout:g} s, so it was stopped. The end of its log {log_file}:\n"
                f"{_log_tail(log_file, offset)}"
            )
        time.sleep(0.1)
    # Something else may have answered on the port while our server was failing to bind it.
    if not _is_our_server(pid, port):
        raise SandboxError(
            f"Another program answers on {HOST}:{port} and moto's server (pid {pid}) could "
            f"not take the port. The end of its log {log_file}:\n{_log_tail(log_file, offset)}"
        )
    _write_state(box)
    return box


def stop(box: Sandbox, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop the server, if that pid is still our moto; SIGKILL only if it ignores SIGTERM."""
    if not _is_our_server(box.pid, box.port):
        return
    process.terminate(box.pid)
    if _wait_for_exit(box.pid, timeout):
        return
    # Checked again right before: the pid is still our moto, never a reused one.
    if _is_our_server(box.pid, box.port):
        with contextlib.suppress(ProcessLookupError):
            os.kill(box.pid, signal.SIGKILL)
    if not _wait_for_exit(box.pid, timeout):
        raise SandboxError(
            f"moto's server (pid {box.pid}) did not stop, even after SIGKILL. "
            f"Stop it by hand, then remove {box.state_dir}."
        )


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------------------------------------
# Per live root.


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
    box = _read_state(state_dir)
    if box is not None and _is_our_server(box.pid, box.port):
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


def _profile_regions(config_file: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    with contextlib.suppress(configparser.Error):
        parser.read(config_file, encoding="utf-8")
    regions = {}
    for section in parser.sections():
        name = section.removeprefix("profile ").strip()
        regions[name] = parser.get(section, "region", fallback=DEFAULT_REGION)
    return regions


def _write_profiles(box: Sandbox, regions: Mapping[str, str], *, replace: bool = False) -> None:
    for name in regions:
        if not _PROFILE_NAME.fullmatch(name):
            raise ConfigError(
                f"The AWS profile name {name!r} (from 'environments' or 'state' in "
                f"{ROOT_FILE}) cannot be written to an AWS config file; use letters, digits "
                "and _.+=,@-."
            )
    with FileLock(str(box.state_dir / ".profiles.lock"), timeout=LOCK_TIMEOUT_S):
        merged = {} if replace else _profile_regions(box.config_file)
        merged.update(regions)
        merged.setdefault("default", DEFAULT_REGION)
        config, credentials = [], []
        for name, region in sorted(merged.items()):
            header = "default" if name == "default" else f"profile {name}"
            # endpoint_url and path-style S3 make `aws --profile prod s3 ls` work as it is.
            config.append(
                f"[{header}]\nregion = {region}\noutput = json\n"
                f"endpoint_url = {box.endpoint}\ns3 =\n    addressing_style = path\n"
            )
            credentials.append(
                f"[{name}]\naws_access_key_id = {_access_key(name)}\n"
                f"aws_secret_access_key = {SECRET_ACCESS_KEY}\n"
            )
        write_atomically(box.config_file, "\n".join(config))
        write_atomically(box.credentials_file, "\n".join(credentials))


def _access_key(profile: str) -> str:
    """Distinct per profile, so a test can tell which profile a client resolved."""
    return f"SANDBOX{re.sub(r'[^A-Z0-9]', '', profile.upper())}"[:20]


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _ensure_bucket(box: Sandbox, bucket: str, region: str) -> None:
    s3 = box.client("s3", region)
    request: dict[str, Any] = {"Bucket": bucket}
    # us-east-1 is the one region that refuses a location constraint naming itself.
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**request)
    except Exception as exc:
        if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _ensure_lock_table(box: Sandbox, table: str, region: str) -> None:
    dynamodb = box.client("dynamodb", region)
    try:
        dynamodb.describe_table(TableName=table)
        return
    except Exception as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
    try:
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except Exception as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 20}
    )


def provision(
    sandbox: Sandbox,
    bucket: str,
    region: str,
    lock_table: str | None,
    profiles: Iterable[str],
) -> None:
    """Create the state bucket (versioned), the lock table and the profiles; idempotent."""
    _write_profiles(sandbox, {**{name: region for name in profiles}, "default": region})
    what = f"the state bucket '{bucket}'"
    try:
        _ensure_bucket(sandbox, bucket, region)
        if lock_table:
            what = f"the lock table '{lock_table}'"
            _ensure_lock_table(sandbox, lock_table, region)
    except TfrunError:
        raise
    except Exception as exc:
        raise SandboxError(
            f"Could not create {what} in the sandbox at {sandbox.endpoint} ({exc}). "
            f"Its log is {sandbox.log_file}; 'tfrun sandbox down' then 'up' starts afresh."
        ) from None
