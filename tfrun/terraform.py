"""Per-stack terraform plumbing: which binary, with which environment, and what must happen
before a command runs in a stack (generated files written, init when needed)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tfrun import generate, sandbox
from tfrun.discovery import GENERATED_NAMES, Repository, Stack
from tfrun.generate import GeneratedFile, RemoteStateRead
from tfrun.hcl import parse_file

ENDPOINT_VARIABLE = "TFRUN_AWS_ENDPOINT"
BINARY_VARIABLE = "TFRUN_TERRAFORM"
INIT_MARKER = "tfrun-init.json"
# Files whose change means `terraform init` must run again.
INIT_INPUTS = ("backend.tf", "provider.tf", "versions.tf", ".terraform.lock.hcl")


def binary(override: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    return override or environ.get(BINARY_VARIABLE) or "terraform"


def endpoint(
    root: Path, stack: Stack | None, environ: Mapping[str, str] = os.environ
) -> str | None:
    """The local AWS endpoint: the variable wins, then the root config, then a running sandbox."""
    if environ.get(ENDPOINT_VARIABLE):
        return environ[ENDPOINT_VARIABLE]
    if stack is not None and stack.config.endpoint:
        return stack.config.endpoint
    running = sandbox.current(root)
    return running.endpoint if running else None


def plugin_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """One provider cache for every stack, so 30 stacks share one copy of the aws provider."""
    if environ.get("TF_PLUGIN_CACHE_DIR"):
        return Path(environ["TF_PLUGIN_CACHE_DIR"])
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tfrun" / "plugin-cache"


def environ(root: Path, base: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment terraform runs with in any stack of this live root."""
    env = dict(base)
    if not env.get(ENDPOINT_VARIABLE):
        running = sandbox.current(root)
        if running is not None:
            env.update(running.environ())
    cache = plugin_cache_dir(env)
    cache.mkdir(parents=True, exist_ok=True)
    env["TF_PLUGIN_CACHE_DIR"] = str(cache)
    env.setdefault("TF_IN_AUTOMATION", "1")
    return env


def init_argv(
    terraform_binary: str, root: Path, stack: Stack, environ: Mapping[str, str] = os.environ
) -> list[str]:
    argv = [terraform_binary, "init", "-input=false"]
    if endpoint(root, stack, environ):
        # A local endpoint's state is throwaway and its URL changes from one sandbox to the
        # next; there is nothing to migrate, so take the new backend as it is.
        argv.append("-reconfigure")
    return argv


@dataclass(frozen=True)
class Prepared:
    stack: Stack
    terraform_binary: str
    written: tuple[Path, ...]
    init_needed: bool


def _fingerprint(stack: Stack, terraform_binary: str) -> str:
    digest = hashlib.sha256(terraform_binary.encode())
    for name in INIT_INPUTS:
        path = stack.path / name
        digest.update(name.encode() + b"\0")
        if path.exists():
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _marker(stack: Stack) -> Path:
    return stack.path / ".terraform" / INIT_MARKER


def hand_written_reads(stack: Stack) -> list[RemoteStateRead]:
    """The stack's own `terraform_remote_state` blocks with the S3 backend and a literal
    config, which an override file can point elsewhere. (Blocks inside modules cannot be
    overridden from the stack; those keep reading what they name.)"""
    reads = []
    for path in sorted(stack.path.glob("*.tf")):
        if path.name in GENERATED_NAMES or b"terraform_remote_state" not in path.read_bytes():
            continue
        for block in parse_file(path).get("data", []):
            for name, body in block.get("terraform_remote_state", {}).items():
                config = body.get("config")
                if body.get("backend") == "s3" and isinstance(config, dict):
                    reads.append(RemoteStateRead(name, config))
    return reads


def render(
    repo: Repository, stack: Stack, environ: Mapping[str, str] = os.environ
) -> list[GeneratedFile]:
    url = endpoint(repo.root, stack, environ)
    reads = hand_written_reads(stack) if url else []
    return generate.render(repo, stack, endpoint=url, hand_written_reads=reads)


def prepare(
    repo: Repository,
    stack: Stack,
    terraform_binary: str,
    environ: Mapping[str, str] = os.environ,
) -> Prepared:
    """Write the generated files and tell whether `terraform init` must run first."""
    written = generate.write(stack, render(repo, stack, environ))
    fingerprint = _fingerprint(stack, terraform_binary)
    init_needed = True
    try:
        recorded = json.loads(_marker(stack).read_text(encoding="utf-8"))
        init_needed = recorded.get("fingerprint") != fingerprint
    except (OSError, ValueError):
        pass
    return Prepared(stack, terraform_binary, tuple(written), init_needed)


def mark_initialised(prepared: Prepared) -> None:
    """Record what init ran against, including the lock file init itself wrote."""
    marker = _marker(prepared.stack)
    marker.parent.mkdir(exist_ok=True)
    fingerprint = _fingerprint(prepared.stack, prepared.terraform_binary)
    marker.write_text(json.dumps({"fingerprint": fingerprint}), encoding="utf-8")
