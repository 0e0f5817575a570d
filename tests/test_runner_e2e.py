"""The runner end to end: real terraform, state in the moto sandbox, three `terraform_data`
stacks (network ← platform, and data on its own)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_terraform import Recorder
from helpers import LiveRepo, StateBackend, cli_environ

from tfrun.discovery import Repository
from tfrun.errors import ExitCode
from tfrun.report import RunReport, Status
from tfrun.run import engine

pytestmark = pytest.mark.slow

NETWORK = "staging-eu-west-1/network"
PLATFORM = "staging-eu-west-1/platform"
DATA = "staging-eu-west-1/data"
DEPS = {PLATFORM: {NETWORK}}


def network_tf(vpc: str) -> str:
    return f"""
        resource "terraform_data" "vpc" {{
          input = "{vpc}"
        }}
        output "vpc_id" {{
          value = terraform_data.vpc.output
        }}
    """


@pytest.fixture
def live(
    make_repo: Callable[..., LiveRepo], state_backend: StateBackend, tf_env: dict[str, str]
) -> Path:
    repo = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            f"live/{NETWORK}/main.tf": network_tf("vpc-1"),
            f"live/{PLATFORM}/stack.hcl": 'remote_state = { network = "../network" }\n',
            f"live/{PLATFORM}/main.tf": """
                resource "terraform_data" "cluster" {
                  input = data.terraform_remote_state.network.outputs.vpc_id
                }
            """,
            f"live/{DATA}/main.tf": 'resource "terraform_data" "db" {\n  input = "db"\n}\n',
        }
    )
    return repo.live


def run(live: Path, command: str, run_dir: Path, **options: Any) -> RunReport:
    stacks = Repository(live).stacks()
    chosen = engine.RunOptions(run_dir=run_dir, sink=Recorder(), **options)
    return engine.run(stacks, DEPS, command, [], chosen)


def test_apply_plan_and_destroy_many_stacks(
    live: Path, state_backend: StateBackend, tmp_path: Path
) -> None:
    applied = run(live, "apply", tmp_path / "apply")
    assert {r.status for r in applied.results.values()} == {Status.SUCCEEDED}, applied
    assert {f"staging/eu-west-1/{n}.tfstate" for n in ("network", "platform", "data")} <= set(
        state_backend.object_keys()
    )
    # Init ran once per stack, through the one plugin cache.
    log = (tmp_path / "apply" / f"{NETWORK}.log").read_text()
    assert "init -input=false" in log and "apply -input=false -auto-approve" in log

    # Nothing changed: no changes anywhere, and init is not run again.
    quiet = run(live, "plan", tmp_path / "plan0", detailed_exitcode=True)
    assert [r.has_changes for r in quiet.results.values()] == [False, False, False]
    assert engine.exit_code(quiet, engine.RunOptions(detailed_exitcode=True)) == ExitCode.OK
    assert "init" not in (tmp_path / "plan0" / f"{NETWORK}.log").read_text()

    # network's output will change, so platform's plan (which reads it) is provisional.
    (live / NETWORK / "main.tf").write_text(network_tf("vpc-2"), encoding="utf-8")
    report_file = tmp_path / "report.json"
    planned = run(live, "plan", tmp_path / "plan1", detailed_exitcode=True, json_path=report_file)
    network, platform, data = (planned.results[n] for n in (NETWORK, PLATFORM, DATA))
    assert network.has_changes and network.output_changes == ("vpc_id",)
    assert network.changes is not None and network.changes.total >= 1
    assert network.plan_file is not None and network.plan_file.is_file()
    assert platform.provisional == (NETWORK,)
    assert not data.has_changes and not data.provisional
    options = engine.RunOptions(detailed_exitcode=True)
    assert engine.exit_code(planned, options) == ExitCode.CHANGES_PRESENT
    stacks = {s["path"]: s for s in json.loads(report_file.read_text())["stacks"]}
    assert stacks[NETWORK]["status"] == "succeeded" and stacks[NETWORK]["exit_code"] == 2
    assert stacks[PLATFORM]["provisional"] is True

    # Destroy takes the graph the other way round: platform before network.
    destroyed = run(live, "destroy", tmp_path / "destroy", destroy_order=True)
    assert {r.status for r in destroyed.results.values()} == {Status.SUCCEEDED}, destroyed
    state = state_backend.read_json("staging/eu-west-1/network.tfstate")
    assert state["resources"] == []


DRIVER = """
import sys
from pathlib import Path

from tfrun.run import engine
from tfrun.discovery import Repository

live, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
stacks = [s for s in Repository(live).stacks() if s.rel == sys.argv[3]]
options = engine.RunOptions(run_dir=run_dir)
sys.exit(engine.exit_code(engine.run(stacks, {}, "apply", [], options), options))
"""


def test_ctrl_c_lets_terraform_release_its_state_lock(
    live: Path, state_backend: StateBackend, tf_env: dict[str, str], tmp_path: Path
) -> None:
    (live / DATA / "main.tf").write_text(
        'resource "terraform_data" "slow" {\n'
        '  provisioner "local-exec" {\n    command = "sleep 120"\n  }\n}\n',
        encoding="utf-8",
    )
    script = tmp_path / "driver.py"
    script.write_text(DRIVER, encoding="utf-8")
    run_dir = tmp_path / "run"
    log = run_dir / f"{DATA}.log"
    tfrun = subprocess.Popen(
        [sys.executable, str(script), str(live), str(run_dir), DATA],
        env=cli_environ(tf_env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not (log.exists() and "local-exec" in log.read_text()):
            assert tfrun.poll() is None and time.monotonic() < deadline, "apply never started"
            time.sleep(0.2)
        state_lock = f"{state_backend.bucket}/staging/eu-west-1/data.tfstate"
        assert state_lock in {item["LockID"] for item in state_backend.lock_items()}
        tfrun.send_signal(signal.SIGINT)
        assert tfrun.wait(timeout=120) == ExitCode.INTERRUPTED
    finally:
        if tfrun.poll() is None:
            tfrun.kill()
    # terraform saw one SIGINT, stopped the provisioner, and released the lock itself.
    assert state_lock not in {item["LockID"] for item in state_backend.lock_items()}
    assert "Interrupt received" in log.read_text()
    # No child outlived tfrun: no process is left working in the repository.
    assert processes_in(live) == []
    # And the state is whole and readable.
    assert state_backend.read_json("staging/eu-west-1/data.tfstate")["version"] == 4


def processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is in `folder` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(int(entry.name))
    return found
