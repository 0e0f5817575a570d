"""Helpers for tests that use real parts: files on disk, the tfrun CLI in a subprocess,
terraform with a local provider mirror, the moto sandbox, and the watch on real tools that
keeps them out of the fast loop.

Test modules import them as `from helpers import ...` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfrun import sandbox

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"

# Variables that make tfrun (or terraform, git, boto) behave differently; the autouse fixture
# removes them so the real shell and CI do not leak into a test.
CI_VARIABLES = (
    "CI",
    "CONTINUOUS_INTEGRATION",
    "BUILD_ID",
    "BUILD_NUMBER",
    "RUN_ID",
    "HUDSON_URL",
    "TF_BUILD",
)
ISOLATED_PREFIXES = (
    "AWS_",
    "TF_",
    "TFRUN_",
    "CI_",
    "GITLAB_",
    "GITHUB_",
    "RUNNER_",
    "BUILDKITE",
    "CIRCLE",
    "TRAVIS",
    "JENKINS_",
    "TEAMCITY_",
    "BITBUCKET_",
    "CODEBUILD_",
    "DRONE",
    "SEMAPHORE",
    "APPVEYOR",
    "SYSTEM_TEAMFOUNDATION",
    "GIT_",
    "XDG_",
    "CHECKPOINT_",
)


def is_isolated_variable(name: str) -> bool:
    return name in CI_VARIABLES or name.startswith(ISOLATED_PREFIXES)


# ---------------------------------------------------------------------------------------------
# Files.


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write `{relative path: content}` under `root` (text is dedented); returns `root`."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


@dataclass(frozen=True)
class LiveRepo:
    top: Path  # the repository (git top level when made with git=True)
    live: Path  # the live root: the folder of the top-most tfrun.hcl

    def path(self, rel: str) -> Path:
        """A path relative to the live root."""
        return self.live / rel


def live_root_of(top: Path, files: Mapping[str, object]) -> Path:
    roots = sorted(
        (Path(rel).parent for rel in files if Path(rel).name == "tfrun.hcl"),
        key=lambda p: len(p.parts),
    )
    return top / roots[0] if roots else top


def root_hcl(
    bucket: str = "acme-tfstate",
    region: str = "eu-west-1",
    lock_table: str | None = "acme-tfstate-locks",
    *,
    extra: str = "",
) -> str:
    """A root tfrun.hcl in the shape of DESIGN §2 (prod, staging, shared-services)."""
    table = f'  dynamodb_table = "{lock_table}"\n' if lock_table else ""
    return (
        'repo = "infra"\n\n'
        "state {\n"
        f'  bucket = "{bucket}"\n'
        f'  region = "{region}"\n'
        f"{table}"
        "  encrypt = true\n"
        "}\n\n"
        "environments {\n"
        '  prod            = { account_id = "222222222222", profile = "prod", protected = true }\n'
        '  staging         = { account_id = "333333333333", profile = "staging" }\n'
        '  shared-services = { account_id = "111111111111", profile = "shared" }\n'
        "}\n" + (f"\n{textwrap.dedent(extra).strip()}\n" if extra.strip() else "")
    )


# ---------------------------------------------------------------------------------------------
# The CLI in a subprocess.


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str
    args: tuple[str, ...] = field(default=())

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (
            f"tfrun {' '.join(self.args)} exited {self.exit_code}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )

    def assert_exit(self, code: int) -> Result:
        assert self.exit_code == code, f"expected exit {code}\n{self}"
        return self

    def assert_success(self) -> Result:
        return self.assert_exit(0)


def cli_environ(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with this checkout first on PYTHONPATH, so the CLI under
    test is the code in this tree even when another tfrun is installed."""
    out = dict(os.environ if env is None else env)
    paths = [str(REPO_ROOT), *filter(None, out.get("PYTHONPATH", "").split(os.pathsep))]
    out["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return out


def run_cli(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    *,
    stdin: str | None = None,
    timeout: float = 600,
) -> Result:
    """Run `python -m tfrun ARGS` in a subprocess, as a user would, and capture its output."""
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "tfrun", *args],
            cwd=cwd,
            env=cli_environ(env),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"tfrun {' '.join(args)} did not finish within {timeout:g} s\n"
            f"--- stdout ---\n{_text(exc.stdout)}--- stderr ---\n{_text(exc.stderr)}"
        ) from None
    return Result(completed.returncode, completed.stdout, completed.stderr, tuple(args))


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


# ---------------------------------------------------------------------------------------------
# Terraform's provider mirror.

PROVIDER_MIRROR_VARIABLE = "TFRUN_PROVIDER_MIRROR"
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"
# An unpacked mirror (VERSION/OS_ARCH/binary) or a packed one (zip files) both work.
_MIRROR_GLOBS = (
    f"{AWS_PROVIDER}/*/*/terraform-provider-aws*",
    f"{AWS_PROVIDER}/terraform-provider-aws_*.zip",
)


def mirror_candidates(environ: Mapping[str, str]) -> list[Path]:
    home = Path(environ.get("HOME") or Path.home())
    data_home = Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return [
        Path("/opt/tf-plugins"),
        home / ".terraform.d" / "plugins",
        data_home / "terraform" / "plugins",
        Path("/usr/local/share/terraform/plugins"),
        Path("/usr/share/terraform/plugins"),
        home / ".terraform.d" / "plugin-mirror",
    ]


def has_aws_provider(mirror: Path) -> bool:
    return any(any(mirror.glob(pattern)) for pattern in _MIRROR_GLOBS)


def find_provider_mirror(
    environ: Mapping[str, str], candidates: Sequence[Path] | None = None
) -> Path | None:
    """TFRUN_PROVIDER_MIRROR when set (and only it: a wrong value must not be papered over),
    else the first likely folder that holds the aws provider."""
    if environ.get(PROVIDER_MIRROR_VARIABLE):
        named = Path(environ[PROVIDER_MIRROR_VARIABLE])
        return named if has_aws_provider(named) else None
    for candidate in mirror_candidates(environ) if candidates is None else candidates:
        if has_aws_provider(candidate):
            return candidate
    return None


def _hcl_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid HCL string for paths


def cli_config_text(mirror: Path, plugin_cache: Path) -> str:
    """A terraform CLI config that installs aws from the mirror and nothing else from the
    network, with one plugin cache for the whole session."""
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {_hcl_string(str(mirror))}\n"
        f'    include = ["{AWS_PROVIDER}"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{AWS_PROVIDER}"]\n'
        "  }\n"
        "}\n"
        f"plugin_cache_dir = {_hcl_string(str(plugin_cache))}\n"
        # Stacks in tests start without a lock file; without this terraform would copy the
        # provider again for each one instead of linking the cached copy.
        "plugin_cache_may_break_dependency_lock_file = true\n"
        "disable_checkpoint = true\n"
    )


# ---------------------------------------------------------------------------------------------
# A state bucket and lock table of one test, on the shared sandbox.


@dataclass(frozen=True)
class StateBackend:
    sandbox: sandbox.Sandbox
    bucket: str
    region: str
    lock_table: str

    def s3(self) -> Any:
        return self.sandbox.client("s3", self.region)

    def dynamodb(self) -> Any:
        return self.sandbox.client("dynamodb", self.region)

    def root_hcl(self, *, extra: str = "") -> str:
        """A root tfrun.hcl that stores state in this bucket and locks in this table."""
        return root_hcl(self.bucket, self.region, self.lock_table, extra=extra)

    def object_keys(self) -> list[str]:
        """Every object key in the bucket, sorted."""
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.s3().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def read_json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def versions(self, key: str) -> list[str]:
        """Version ids of one object, newest first (the bucket is versioned)."""
        listing = self.s3().list_object_versions(Bucket=self.bucket, Prefix=key)
        return [v["VersionId"] for v in listing.get("Versions", []) if v["Key"] == key]

    def lock_items(self) -> list[dict[str, Any]]:
        """The lock table's items as plain dicts ({"LockID": "...", "Digest": "...", ...})."""
        items = self.dynamodb().scan(TableName=self.lock_table).get("Items", [])
        return [{name: next(iter(v.values())) for name, v in item.items()} for item in items]


def retarget_state(tree: Path, old: Mapping[str, str]) -> None:
    """Replace quoted names (`"acme-tfstate"` → `"tfrun-test-…"`) in every config and
    terraform file under `tree`, so a copy of the examples uses a test's own bucket and table
    (hand-written terraform_remote_state blocks name the bucket too)."""
    patterns = {re.compile(f'"{re.escape(o)}"'): f'"{n}"' for o, n in old.items() if o != n}
    for path in tree.rglob("*"):
        if path.suffix not in (".hcl", ".tf", ".tfvars") or not path.is_file():
            continue
        text = original = path.read_text(encoding="utf-8")
        for pattern, replacement in patterns.items():
            text = pattern.sub(replacement, text)
        if text != original:
            path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Real tools only in tests marked slow (conftest.py's guard).

SLOW_MARKER = "slow"
# The tools that make a test slow: real terraform (provider start-up, the sandbox's API) and
# gitlab-ci-local (which runs whole jobs). tests/fake_terraform.py and the per-test fakes are
# other executables, so tests that use only them stay in the fast loop.
REAL_TOOL_NAMES = ("terraform", "gitlab-ci-local")
# Audit events of a process start and the index of (program, argv, env) in their arguments.
SPAWN_EVENTS = {
    "subprocess.Popen": (0, 1, 3),
    "os.posix_spawn": (0, 1, 2),
    "os.exec": (0, 1, 2),
    "os.spawn": (1, 2, 3),
}


def real_tools(environ: Mapping[str, str]) -> dict[str, str]:
    """{resolved path: name} of the real tools on `environ`'s PATH."""
    found = {}
    for name in REAL_TOOL_NAMES:
        path = shutil.which(name, path=environ.get("PATH"))
        if path is not None:
            found[os.path.realpath(path)] = name
    return found


def started_tool(
    event: str, args: tuple[Any, ...], tools: Mapping[str, str], environ: Mapping[str, str]
) -> str | None:
    """`"terraform init -input=false"` when this audit event starts one of `tools`, else None.

    A bare name is looked up on the PATH the child gets (its env, else `environ`), as the
    child's exec would."""
    if event not in SPAWN_EVENTS:
        return None
    program_at, argv_at, env_at = SPAWN_EVENTS[event]
    program = os.fsdecode(args[program_at])
    env = args[env_at] if isinstance(args[env_at], Mapping) else environ
    if os.sep not in program:
        path = env.get("PATH", environ.get("PATH"))
        program = shutil.which(program, path=os.fsdecode(path) if path else None) or program
    name = tools.get(os.path.realpath(program))
    if name is None:
        return None
    argv = [os.fsdecode(a) for a in list(args[argv_at])[1:]]
    return " ".join([name, *argv])


def terraform_shim_text(real_terraform: str, log: Path) -> str:
    """A `terraform` for the front of PATH that notes each run in `log` and then becomes the
    real one: it sees terraform started by anything below the test (the tfrun CLI, a
    gitlab-ci-local job), which the test process cannot watch itself. exec keeps the pid, so
    tfrun's signals and process checks reach terraform as they would without it."""
    return (
        "#!/bin/sh\n"
        "# Written by tests/conftest.py for its slow-marker guard; see terraform_shim_text.\n"
        f'printf \'%s: terraform %s\\n\' "$PWD" "$*" >> {shlex.quote(str(log))}\n'
        f'exec {shlex.quote(real_terraform)} "$@"\n'
    )


def git(top: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=top, check=True, capture_output=True, text=True)
    return done.stdout


def commit(top: Path, message: str = "change") -> str:
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", message)
    return git(top, "rev-parse", "HEAD").strip()


def wait_until(condition: Callable[[], object], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Terminal:
    """tfrun on a pseudo-terminal (stdin, stdout and stderr), answering its questions."""

    def __init__(self, cwd: Path, env: Mapping[str, str], argv: list[str]) -> None:
        self.main, child = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfrun", *argv],
            cwd=cwd,
            env={**cli_environ(env), "COLUMNS": "200", "LINES": "50"},
            stdin=child,
            stdout=child,
            stderr=child,
            close_fds=True,
        )
        os.close(child)
        self.seen = b""

    def read_until(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.seen.decode()}"
            ready, _, _ = select.select([self.main], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.main, 65536)
                except OSError:  # the child closed the terminal
                    break
        assert text.encode() in self.seen, f"no {text!r} in:\n{self.seen.decode()}"

    def answer(self, line: str) -> None:
        os.write(self.main, line.encode() + b"\n")

    def finish(self) -> int:
        with contextlib.suppress(AssertionError):
            self.read_until("\0", timeout=2)  # drain what is left
        code = self.process.wait(timeout=60)
        os.close(self.main)
        return code


# ---------------------------------------------------------------------------------------------
# The wheel, as a team builds and installs it.

# What a wheel is built from: the files pyproject.toml names, plus tests/ so that leaving it
# out is something the build does rather than something the copy did.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "tfrun", "tests")


def build_wheel(out: Path) -> Path:
    """The wheel of this checkout, built offline with the venv's own setuptools (build checks
    it meets [build-system] requires) from a copy, so no build/ or egg-info lands in the
    checkout and none left there can slip into the wheel. The copy's tfrun/ has compiled
    __pycache__ folders, which the wheel must not carry."""
    if importlib.util.find_spec("build") is None:
        raise AssertionError(
            f"{sys.executable} has no `build` module; scripts/setup.sh installs it (the dev extra)."
        )
    source = out / "source"
    for name in WHEEL_SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name)
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(source / "tfrun")],
        check=True,
        capture_output=True,
    )
    dist = out / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=source,
        env={**os.environ, "PIP_NO_INDEX": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def clean_environ(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with nothing that would put another tfrun on the path:
    what runs is what is installed."""
    out = dict(os.environ if env is None else env)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV"):
        out.pop(name, None)
    out["PYTHONNOUSERSITE"] = "1"
    return out


def make_clean_venv(venv: Path) -> Path:
    """A new venv (with its own pip) that sees this venv's packages through a .pth file, as
    the dependencies of a wheel installed with --no-deps. Python does not read the .pth files
    of a folder a .pth names, so this venv's editable tfrun stays out. Its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    site = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        env=clean_environ(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    here = sysconfig.get_paths()["purelib"]
    (Path(site) / "tfrun_test_dependencies.pth").write_text(here + "\n", encoding="utf-8")
    return Path(site)
