""".pre-commit-hooks.yaml, run by pre-commit itself (`try-repo` on this checkout) in a git
repository made from examples/live."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import REPO_ROOT
from test_completion import tfrun_on_path

pytestmark = pytest.mark.slow  # tfrun fmt runs the real terraform's formatter

__all__ = ["tfrun_on_path"]  # the fixture, used here too


def _pre_commit() -> str:
    for candidate in (
        REPO_ROOT / ".venv" / "bin" / "pre-commit",
        Path("/work/main/.venv/bin/pre-commit"),
    ):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("pre-commit")
    assert found, "pre-commit is not installed: it is in the dev extra (bash scripts/setup.sh)"
    return found


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def infra(tmp_path: Path) -> Path:
    repo = tmp_path / "infra"
    ignored = shutil.ignore_patterns(".tfrun", ".terraform", ".terraform.lock.hcl")
    shutil.copytree(REPO_ROOT / "examples" / "live", repo / "live", ignore=ignored)
    # As a real repository has it: tfrun's caches and generated files are not committed.
    (repo / ".gitignore").write_text(".tfrun/\n.terraform/\n")
    _commit_all(repo)
    return repo


def _commit_all(repo: Path) -> None:
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c")


@pytest.fixture
def hooks(tmp_path: Path) -> Path:
    """A repository of this checkout's hook definitions, as written now (try-repo reads a
    repository's committed and changed files, not new ones)."""
    repo = tmp_path / "hooks"
    repo.mkdir()
    shutil.copy(REPO_ROOT / ".pre-commit-hooks.yaml", repo)
    _commit_all(repo)
    return repo


def _try(
    hooks: Path, hook: str, repo: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_pre_commit(), "try-repo", str(hooks), hook, "--all-files"],
        cwd=repo,
        env={**env, "PRE_COMMIT_HOME": str(repo.parent / "pre-commit-home")},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_hooks_pass_on_the_examples_and_fmt_fails_on_a_messy_file(
    hooks: Path, infra: Path, tfrun_on_path: dict[str, str]
) -> None:
    env = {**tfrun_on_path, "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.environ.get("HOME", "/root")}
    for hook in ("tfrun-check", "tfrun-fmt"):
        passed = _try(hooks, hook, infra, env)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "Passed" in passed.stdout
    stack = infra / "live" / "prod-eu-west-1" / "network" / "stack.hcl"
    stack.write_text(stack.read_text().replace(" = ", "=", 1))
    failed = _try(hooks, "tfrun-fmt", infra, env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout
    assert "live/prod-eu-west-1/network/stack.hcl" in failed.stdout
