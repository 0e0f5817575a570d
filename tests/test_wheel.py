"""The wheel a team builds and installs (README "Installing tfrun"): built offline from this
checkout, holding tfrun's code and console script and nothing else, and working when installed
into a new venv, run from outside the checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from helpers import EXAMPLES, REPO_ROOT, clean_environ, make_clean_venv, run_cli

import tfrun

pytestmark = pytest.mark.slow


def test_the_wheel_holds_tfrun_its_script_and_nothing_else(built_wheel: Path) -> None:
    assert built_wheel.name == f"tfrun-{tfrun.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(built_wheel) as wheel:
        names = wheel.namelist()
        info = f"tfrun-{tfrun.__version__}.dist-info"
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n], names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")], names
    assert {n.split("/")[0] for n in names} == {"tfrun", info}, names
    # Every module of the checkout, and tfrun reads no data file that is not a module (the
    # sandbox starts moto with `python -m`, process.py runs launch.py by path).
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "tfrun").rglob("*.py")}
    assert modules == {n for n in names if n.startswith("tfrun/")}
    assert "[console_scripts]\ntfrun = tfrun.cli:main" in entry_points
    assert f"\nVersion: {tfrun.__version__}\n" in metadata
    assert "Requires-Dist: boto3" in metadata


def test_the_installed_wheel_runs_outside_the_checkout(built_wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    site = make_clean_venv(venv)
    env = clean_environ()
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-deps", "--no-index", str(built_wheel)],
        env=env,
        check=True,
        capture_output=True,
    )
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    live = tmp_path / "examples" / "live"
    script = str(venv / "bin" / "tfrun")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *args], cwd=live, env=env, capture_output=True, text=True, check=False
        )

    version = run("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"tfrun {tfrun.__version__}")
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import tfrun; print(tfrun.__file__)"],
        cwd=live,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(site), where

    graph = run("graph", "--format", "json")
    assert graph.returncode == 0, graph.stderr
    from_checkout = run_cli(["graph", "--format", "json"], tmp_path / "examples" / "live")
    assert json.loads(graph.stdout) == json.loads(from_checkout.assert_success().stdout)
    assert len(json.loads(graph.stdout)["stacks"]) == 7

    check = run("check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "tfrun: no findings in 7 stacks." in check.stderr
