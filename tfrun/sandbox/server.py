"""The sandbox's server: moto on 127.0.0.1, started detached, and its record on disk."""

from __future__ import annotations

import configparser
import contextlib
import importlib.util
import json
import os
import re
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from tfrun import process
from tfrun.config import ROOT_FILE
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
# The sandbox's AWS config and credentials, and their folder, are the owner's alone, as the
# AWS CLI keeps its own: someone may yet paste a real key into them.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
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
    # When the server was started (ISO 8601, local time); "" in a record of an older tfrun.
    started: str = ""

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


def _sandbox_at(state_dir: Path, pid: int, port: int, started: str = "") -> Sandbox:
    return Sandbox(
        pid=pid,
        port=port,
        endpoint=f"http://{HOST}:{port}",
        state_dir=state_dir,
        config_file=state_dir / "aws-config",
        credentials_file=state_dir / "aws-credentials",
        log_file=state_dir / "moto.log",
        started=started,
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


def _answers(endpoint: str) -> bool:
    import urllib.error
    import urllib.request

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
    state = {
        "pid": box.pid,
        "port": box.port,
        "endpoint": box.endpoint,
        "started": box.started,
        "python": sys.executable,
    }
    write_atomically(box.state_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")


def read_state(state_dir: Path) -> Sandbox | None:
    try:
        state = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        pid, port = state["pid"], state["port"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(pid, int) or not isinstance(port, int) or pid <= 0:
        return None
    started = state.get("started")
    return _sandbox_at(state_dir, pid, port, started if isinstance(started, str) else "")


def start_server(
    state_dir: Path, *, port: int | None = None, timeout: float = START_TIMEOUT_S
) -> Sandbox:
    """Start moto on 127.0.0.1 (a free port unless one is given) and wait until it answers."""
    from tfrun.sandbox import server_process

    _require_moto()
    state_dir = state_dir.resolve()
    _make_private_dir(state_dir)
    port = port or _free_port()
    provisional = _sandbox_at(state_dir, 0, port)
    write_profiles(provisional, {"default": DEFAULT_REGION}, replace=True)
    log_file = provisional.log_file
    offset = log_file.stat().st_size if log_file.exists() else 0
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    pid = process.spawn_detached(
        [sys.executable, "-m", server_process.SERVER_MODULE, "-H", HOST, "-p", str(port)], log_file
    )
    box = _sandbox_at(state_dir, pid, port, started)
    server = server_process.find_process(pid)
    deadline = time.monotonic() + timeout
    while True:
        if server is None or not server_process.alive(server):
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
    if server_process.our_server(pid, port) is None:
        raise SandboxError(
            f"Another program answers on {HOST}:{port} and moto's server (pid {pid}) could "
            f"not take the port. The end of its log {log_file}:\n{_log_tail(log_file, offset)}"
        )
    _write_state(box)
    return box


def stop(box: Sandbox, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop the server, if that pid is still our moto; SIGKILL only if it ignores SIGTERM.

    psutil signals only the process it looked at, never another that took its pid since.
    """
    import psutil

    from tfrun.sandbox import server_process

    server = server_process.our_server(box.pid, box.port)
    if server is None:
        return
    for send in (server.terminate, server.kill):
        try:
            send()
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:
            raise SandboxError(
                f"tfrun may not stop moto's server (pid {box.pid}). "
                f"Stop it by hand, then remove {box.state_dir}."
            ) from None
        if server_process.exits_within(server, timeout):
            return
    raise SandboxError(
        f"moto's server (pid {box.pid}) did not stop, even after SIGKILL. "
        f"Stop it by hand, then remove {box.state_dir}."
    )


# ---------------------------------------------------------------------------------------------
# Profiles: every profile the root config names resolves to the sandbox.


def _profile_regions(config_file: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    with contextlib.suppress(configparser.Error):
        parser.read(config_file, encoding="utf-8")
    regions = {}
    for section in parser.sections():
        name = section.removeprefix("profile ").strip()
        regions[name] = parser.get(section, "region", fallback=DEFAULT_REGION)
    return regions


def ensure_profiles(box: Sandbox, regions: Mapping[str, str]) -> None:
    """Add the profiles the sandbox does not define yet: an environment added to the config
    after `tfrun sandbox up` works without another `up`."""
    defined = _profile_regions(box.config_file)
    missing = {name: region for name, region in regions.items() if name not in defined}
    if missing:
        write_profiles(box, missing)


def write_profiles(box: Sandbox, regions: Mapping[str, str], *, replace: bool = False) -> None:
    for name in regions:
        if not _PROFILE_NAME.fullmatch(name):
            raise ConfigError(
                f"The AWS profile name {name!r} (from 'environments' or 'state' in "
                f"{ROOT_FILE}) cannot be written to an AWS config file; use letters, digits "
                "and _.+=,@-."
            )
    # Again here: provision may write into a folder that an older tfrun made open to all.
    _make_private_dir(box.state_dir)
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
        _write_private(box.config_file, "\n".join(config))
        _write_private(box.credentials_file, "\n".join(credentials))


def _make_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # chmod, not mkdir's mode: a folder that exists already keeps its own.
    os.chmod(path, PRIVATE_DIR_MODE)


def _write_private(path: Path, text: str) -> None:
    """write_atomically gives the file the umask's mode; until the chmod narrows it, the
    private folder keeps other users out."""
    write_atomically(path, text)
    os.chmod(path, PRIVATE_FILE_MODE)


def _access_key(profile: str) -> str:
    """Distinct per profile, so a test can tell which profile a client resolved."""
    return f"SANDBOX{re.sub(r'[^A-Z0-9]', '', profile.upper())}"[:20]
