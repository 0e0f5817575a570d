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

from tfrun import generate, process, sandbox, scan
from tfrun.discovery import Repository, Stack
from tfrun.generate import GeneratedFile, OverriddenRead

ENDPOINT_VARIABLE = "TFRUN_AWS_ENDPOINT"
BINARY_VARIABLE = "TFRUN_TERRAFORM"
INIT_MARKER = "tfrun-init.json"
# Files whose change means `terraform init` must run again.
INIT_INPUTS = ("backend.tf", "provider.tf", "versions.tf", ".terraform.lock.hcl")


def local_endpoint(repo: Repository, environ: Mapping[str, str] = os.environ) -> str | None:
    """The local AWS endpoint: the variable wins, then the root config, then a running sandbox."""
    if environ.get(ENDPOINT_VARIABLE):
        return environ[ENDPOINT_VARIABLE]
    if repo.root_endpoint:
        return repo.root_endpoint
    running = sandbox.current(repo.root)
    return running.endpoint if running else None


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

    def init_argv(self) -> list[str]:
        argv = [self.binary, "init", "-input=false"]
        if self.endpoint:
            # A local endpoint's state is throwaway and its URL changes from one sandbox to
            # the next; there is nothing to migrate, so take the new backend as it is.
            argv.append("-reconfigure")
        return argv


def resolve(
    repo: Repository, binary_name: str | None = None, base: Mapping[str, str] = os.environ
) -> Terraform:
    """The binary (an error before anything is written when it is missing), the environment
    and the endpoint of one command in `repo`."""
    binary = process.resolve_executable(binary_name or base.get(BINARY_VARIABLE) or "terraform")
    env = dict(base)
    running = None if base.get(ENDPOINT_VARIABLE) else sandbox.current(repo.root)
    if running is not None:
        env.update(running.environ())
    endpoint = (
        base.get(ENDPOINT_VARIABLE)
        or repo.root_endpoint
        or (running.endpoint if running is not None else None)
    )
    cache = plugin_cache_dir(env)
    cache.mkdir(parents=True, exist_ok=True)
    env["TF_PLUGIN_CACHE_DIR"] = str(cache)
    env.setdefault("TF_IN_AUTOMATION", "1")
    return Terraform(binary, env, endpoint, cache)


@dataclass(frozen=True)
class Prepared:
    stack: Stack
    binary: str
    written: tuple[Path, ...]
    init_needed: bool


def _fingerprint(stack: Stack, binary: str) -> str:
    digest = hashlib.sha256(binary.encode())
    for name in INIT_INPUTS:
        path = stack.path / name
        digest.update(name.encode() + b"\0")
        if path.exists():
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


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
    reads = hand_written_reads(stack) if endpoint else []
    return generate.render(repo, stack, endpoint=endpoint, hand_written_reads=reads)


def prepare(
    repo: Repository,
    stack: Stack,
    terraform: Terraform,
    files: Sequence[GeneratedFile] | None = None,
) -> Prepared:
    """Write the generated files (`files`, rendered before the run, or rendered now) and tell
    whether `terraform init` must run first."""
    written = generate.write(
        stack, render(repo, stack, terraform.endpoint) if files is None else files
    )
    fingerprint = _fingerprint(stack, terraform.binary)
    init_needed = True
    try:
        recorded = json.loads(_marker(stack).read_text(encoding="utf-8"))
        init_needed = recorded.get("fingerprint") != fingerprint
    except (OSError, ValueError):
        pass
    return Prepared(stack, terraform.binary, tuple(written), init_needed)


def mark_initialised(prepared: Prepared) -> None:
    """Record what init ran against, including the lock file init itself wrote."""
    marker = _marker(prepared.stack)
    marker.parent.mkdir(exist_ok=True)
    fingerprint = _fingerprint(prepared.stack, prepared.binary)
    marker.write_text(json.dumps({"fingerprint": fingerprint}), encoding="utf-8")
