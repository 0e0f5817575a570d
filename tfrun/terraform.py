"""How terraform runs in the stacks of one live root: which binary, with which environment
and endpoint (resolved once per command), and what must happen before a command runs in a
stack (generated files written, init when needed)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfrun import generate, process, provider_mirror, sandbox, scan
from tfrun.discovery import Repository, Stack
from tfrun.generate import GeneratedFile, OverriddenRead

ENDPOINT_VARIABLE = "TFRUN_AWS_ENDPOINT"
BINARY_VARIABLE = "TFRUN_TERRAFORM"
INIT_MARKER = "tfrun-init.json"
# Files whose change means `terraform init` must run again.
INIT_INPUTS = ("backend.tf", "provider.tf", "versions.tf", ".terraform.lock.hcl")


def _sandbox_in_use(repo: Repository, environ: Mapping[str, str]) -> sandbox.Sandbox | None:
    """The live root's running sandbox, unless TFRUN_AWS_ENDPOINT names another endpoint.

    A sandbox that was in use and has died stops the command here (`SandboxDeadError`) rather
    than let it fall back to AWS; that is also so when the variable names its endpoint, as
    `eval "$(tfrun sandbox env)"` does."""
    named = environ.get(ENDPOINT_VARIABLE)
    if not named:
        return sandbox.current(repo.root)
    record = sandbox.lookup(repo.root)
    if record is None or record.box is None or record.box.endpoint != named.rstrip("/"):
        return None
    if not record.running:
        raise sandbox.SandboxDeadError(repo.root, record)
    return record.box


def local_endpoint(repo: Repository, environ: Mapping[str, str] = os.environ) -> str | None:
    """The local AWS endpoint: the variable wins, then the root config, then a running sandbox."""
    running = _sandbox_in_use(repo, environ)
    return (
        environ.get(ENDPOINT_VARIABLE)
        or repo.root_endpoint
        or (running.endpoint if running is not None else None)
    )


def plugin_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """One provider cache for every stack, so 30 stacks share one copy of the aws provider."""
    if environ.get("TF_PLUGIN_CACHE_DIR"):
        return Path(environ["TF_PLUGIN_CACHE_DIR"])
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tfrun" / "plugin-cache"


@dataclass(frozen=True)
class Terraform:
    """What every stack of one command runs with, resolved once."""

    binary: str  # the executable's full path: the init fingerprint hashes it
    env: Mapping[str, str]
    endpoint: str | None
    cache_dir: Path
    sandbox: bool = False  # the endpoint is the live root's sandbox

    def init_argv(self, *, reconfigure: bool = False) -> list[str]:
        """`reconfigure`: the target or the backend's settings changed (`Prepared.reconfigure`)."""
        argv = [self.binary, "init", "-input=false"]
        if self.endpoint or reconfigure:
            # A local endpoint's state is throwaway and its URL changes from one sandbox to
            # the next; there is nothing to migrate, so take the new backend as it is.
            argv.append("-reconfigure")
        return argv

    def target(self, stack: Stack) -> str:
        """Where the stack's state is, as the one-line notice of a switch names it."""
        if self.endpoint is None:
            return f"s3://{stack.config.state.bucket} (AWS)"
        if self.sandbox:
            return f"the sandbox at {self.endpoint}"
        return f"the local endpoint {self.endpoint}"


def _aws(
    repo: Repository, base: Mapping[str, str]
) -> tuple[dict[str, str], str | None, sandbox.Sandbox | None]:
    env = dict(base)
    running = _sandbox_in_use(repo, base)
    if running is not None:
        sandbox.ensure_profiles(running, repo.profiles())
        env.update(running.environ())
    endpoint = (
        base.get(ENDPOINT_VARIABLE)
        or repo.root_endpoint
        or (running.endpoint if running is not None else None)
    )
    return env, endpoint, running


def aws_environment(
    repo: Repository, base: Mapping[str, str] = os.environ
) -> tuple[dict[str, str], str | None]:
    """The environment and the endpoint AWS calls of `repo` use (a sandbox's, when it runs)."""
    env, endpoint, _ = _aws(repo, base)
    return env, endpoint


def resolve(
    repo: Repository, binary_name: str | None = None, base: Mapping[str, str] = os.environ
) -> Terraform:
    """The binary (an error before anything is written when it is missing), the environment
    and the endpoint of one command in `repo`; a dead sandbox is an error here too."""
    binary = process.resolve_executable(binary_name or base.get(BINARY_VARIABLE) or "terraform")
    env, endpoint, running = _aws(repo, base)
    provider_mirror.apply(repo.root, env)
    cache = plugin_cache_dir(env)
    cache.mkdir(parents=True, exist_ok=True)
    env["TF_PLUGIN_CACHE_DIR"] = str(cache)
    env.setdefault("TF_IN_AUTOMATION", "1")
    in_sandbox = running is not None and (endpoint or "").rstrip("/") == running.endpoint
    return Terraform(binary, env, endpoint, cache, sandbox=in_sandbox)


@dataclass(frozen=True)
class Prepared:
    stack: Stack
    binary: str
    written: tuple[Path, ...]
    init_needed: bool
    endpoint: str | None = None  # what init runs against: a local endpoint, or None for AWS
    target: str = ""  # the same, as `Terraform.target` names it
    # What the last init ran against when that was another target: the person switched
    # (`tfrun sandbox up` or `down`), and init must take the new backend with -reconfigure.
    switched_from: str | None = None
    # The backend's settings changed but its state is where it was (a role, use_lockfile, a
    # KMS key): init takes them with -reconfigure, as there is nothing to move.
    backend_changed: bool = False
    # Where the state was at the last init, when config has since moved it: only the person
    # can say whether to copy it (-migrate-state) or whether it is there already.
    moved_from: str | None = None

    @property
    def reconfigure(self) -> bool:
        return self.switched_from is not None or self.backend_changed

    @property
    def switch_notice(self) -> str | None:
        if self.switched_from is None:
            return None
        return f"backend now {self.target}, was {self.switched_from}"


def _fingerprint(stack: Stack, binary: str) -> str:
    digest = hashlib.sha256(binary.encode())
    for name in INIT_INPUTS:
        path = stack.path / name
        digest.update(name.encode() + b"\0")
        if path.exists():
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def state_location(stack: Stack) -> str:
    state = stack.config.state
    return f"s3://{state.bucket}/{stack.key} in {state.region}"


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _marker(stack: Stack) -> Path:
    return stack.path / ".terraform" / INIT_MARKER


def hand_written_reads(stack: Stack) -> list[OverriddenRead]:
    """The stack's own `terraform_remote_state` blocks with the S3 backend and a literal
    config, which an override file can point elsewhere. (Blocks inside modules cannot be
    overridden from the stack; those keep reading what they name.)"""
    return [
        OverriddenRead(read.name, read.config)
        for read in scan.own_remote_state_reads(stack.root, stack.path)
        if read.config is not None
    ]


def render(repo: Repository, stack: Stack, endpoint: str | None) -> list[GeneratedFile]:
    reads = hand_written_reads(stack) if generate.overrides_reads(stack, endpoint) else []
    return generate.render(repo, stack, endpoint=endpoint, hand_written_reads=reads)


def _recorded(stack: Stack) -> dict[str, object]:
    try:
        recorded = json.loads(_marker(stack).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def prepare(
    repo: Repository,
    stack: Stack,
    terraform: Terraform,
    files: Sequence[GeneratedFile] | None = None,
) -> Prepared:
    """Write the generated files (`files`, rendered before the run, or rendered now) and tell
    whether `terraform init` must run first, and whether the target changed since it last ran."""
    written = generate.write(
        stack, render(repo, stack, terraform.endpoint) if files is None else files
    )
    recorded = _recorded(stack)
    init_needed = recorded.get("fingerprint") != _fingerprint(stack, terraform.binary)
    switched_from = moved_from = None
    backend_changed = False
    location = state_location(stack)
    # A marker of an older tfrun does not say what init ran against; terraform's own error
    # then names -reconfigure.
    if "endpoint" in recorded and recorded["endpoint"] != terraform.endpoint:
        init_needed = True
        switched_from = str(recorded.get("target") or recorded["endpoint"] or "AWS")
    elif terraform.endpoint is None and recorded.get("state", location) != location:
        moved_from = str(recorded["state"])
    elif "backend" in recorded and recorded["backend"] != _digest(stack.path / "backend.tf"):
        backend_changed = True
    return Prepared(
        stack,
        terraform.binary,
        tuple(written),
        init_needed,
        endpoint=terraform.endpoint,
        target=terraform.target(stack),
        switched_from=switched_from,
        backend_changed=backend_changed,
        moved_from=moved_from,
    )


def mark_initialised(prepared: Prepared) -> None:
    """Record what init ran against: the inputs (including the lock file init itself wrote)
    and the target, local endpoint or AWS."""
    marker = _marker(prepared.stack)
    marker.parent.mkdir(exist_ok=True)
    recorded = {
        "fingerprint": _fingerprint(prepared.stack, prepared.binary),
        "endpoint": prepared.endpoint,
        "target": prepared.target,
        "state": state_location(prepared.stack),
        "backend": _digest(prepared.stack.path / "backend.tf"),
    }
    marker.write_text(json.dumps(recorded), encoding="utf-8")
