"""`tfrun run-all` through the real CLI, real terraform and the sandbox: order from
hand-written remote state, a failure that skips only its dependents, two tfrun processes on
one stack, and many inits against one plugin cache."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import LiveRepo, StateBackend, cli_environ, run_cli

pytestmark = pytest.mark.slow


def remote_read(name: str, bucket: str, key: str) -> str:
    """Hand-written, with literal bucket and key, as teams write them."""
    return f"""
        data "terraform_remote_state" "{name}" {{
          backend = "s3"
          config = {{
            bucket = "{bucket}"
            key    = "{key}"
            region = "eu-west-1"
          }}
        }}
    """


def test_run_all_orders_by_hand_written_reads_and_a_failure_skips_only_dependents(
    make_repo: Callable[..., LiveRepo],
    state_backend: StateBackend,
    tf_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bucket = state_backend.bucket
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            "live/staging-eu-west-1/network/main.tf": """
                resource "terraform_data" "vpc" { input = "vpc-42" }
                output "vpc_id" { value = terraform_data.vpc.output }
            """,
            "live/staging-eu-west-1/platform/main.tf": remote_read(
                "network", bucket, "staging/eu-west-1/network.tfstate"
            )
            + """
                resource "terraform_data" "cluster" {
                  input = data.terraform_remote_state.network.outputs.vpc_id
                }
                output "cluster_vpc" { value = terraform_data.cluster.output }
            """,
            "live/staging-eu-west-1/data/main.tf": remote_read(
                "platform", bucket, "staging/eu-west-1/platform.tfstate"
            )
            + """
                resource "terraform_data" "db" {
                  input = data.terraform_remote_state.platform.outputs.cluster_vpc
                }
            """,
            "live/shared-services/iam/main.tf": 'resource "terraform_data" "role" { input = 1 }',
        }
    ).live
    report = tmp_path / "apply.json"
    run_cli(["run-all", "apply", "--yes", "--json", str(report)], live, tf_env).assert_success()
    stacks = json.loads(report.read_text())["stacks"]
    assert [s["path"] for s in stacks].index("staging-eu-west-1/network") < [
        s["path"] for s in stacks
    ].index("staging-eu-west-1/platform")
    # platform read network's output through the hand-written block (redirected by the
    # generated override file), and data read platform's.
    data_state = state_backend.read_json("staging/eu-west-1/data.tfstate")
    assert "vpc-42" in json.dumps(data_state["resources"])

    # A runtime failure in network: platform and data are skipped, iam still runs.
    (live / "staging-eu-west-1/network/main.tf").write_text(
        # Replaced (triggers_replace is new), and its create-time provisioner fails.
        'resource "terraform_data" "vpc" {\n  input = "vpc-43"\n  triggers_replace = "2"\n'
        '  provisioner "local-exec" {\n    command = "exit 7"\n  }\n}\n'
        'output "vpc_id" {\n  value = terraform_data.vpc.output\n}\n'
    )
    (live / "shared-services/iam/main.tf").write_text(
        'resource "terraform_data" "role" { input = "r2" }\n'
    )
    result = run_cli(["run-all", "apply", "--yes", "--json", str(report)], live, tf_env)
    result.assert_exit(1)
    status = {s["path"]: s for s in json.loads(report.read_text())["stacks"]}
    assert status["staging-eu-west-1/network"]["status"] == "failed"
    assert status["staging-eu-west-1/platform"]["status"] == "skipped"
    assert "staging-eu-west-1/network" in status["staging-eu-west-1/platform"]["reason"]
    assert status["staging-eu-west-1/data"]["status"] == "skipped"
    assert status["shared-services/iam"]["status"] == "succeeded"


def test_two_tfrun_processes_never_run_terraform_in_one_stack_at_once(
    make_repo: Callable[..., LiveRepo], state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            "live/staging-eu-west-1/slow/main.tf": """
                resource "terraform_data" "slow" {
                  provisioner "local-exec" { command = "sleep 8" }
                }
            """,
        }
    ).live
    stack = live / "staging-eu-west-1/slow"
    run_cli(["init"], stack, tf_env).assert_success()
    first = subprocess.Popen(
        [sys.executable, "-m", "tfrun", "run-all", "apply", "--yes"],
        cwd=stack, env=cli_environ(tf_env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        lock_dir = live / ".tfrun" / "locks"
        deadline = time.monotonic() + 120
        while not any(lock_dir.glob("**/*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        second = run_cli(
            ["run-all", "apply", "--yes", "--lock-timeout", "1"], stack, tf_env, timeout=120
        )
        assert first.wait(timeout=300) == 0, first.stdout.read() if first.stdout else ""
    finally:
        if first.poll() is None:
            first.kill()
    second.assert_exit(1)
    assert "waiting for" in second.output
    # One apply ran terraform: the resource was created once, by the first.
    state = state_backend.read_json("staging/eu-west-1/slow.tfstate")
    assert len(state["resources"]) == 1 and state["serial"] <= 2


def test_twenty_stacks_initialise_concurrently_against_one_plugin_cache(
    make_repo: Callable[..., LiveRepo], state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    files = {"live/tfrun.hcl": state_backend.root_hcl(extra='providers { aws = "~> 5.0" }')}
    for i in range(20):
        files[f"live/staging-eu-west-1/s{i:02d}/main.tf"] = 'output "n" { value = 1 }\n'
    live = make_repo(files).live
    result = run_cli(["run-all", "init", "--parallelism", "8"], live, tf_env)
    result.assert_success()
    for i in range(20):
        providers = live / f"staging-eu-west-1/s{i:02d}/.terraform/providers"
        assert any(providers.glob("registry.terraform.io/hashicorp/aws/*/*")), i
        # The provider is linked from the shared cache, not copied into each stack.
        assert (
            sum(
                p.stat().st_size for p in providers.rglob("*") if p.is_file() and not p.is_symlink()
            )
            < 1 << 20
        )


def test_one_stack_with_json_writes_the_report(
    make_repo: Callable[..., LiveRepo],
    state_backend: StateBackend,
    tf_env: dict[str, str],
    tmp_path: Path,
) -> None:
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            "live/staging-eu-west-1/one/main.tf": 'resource "terraform_data" "x" { input = 1 }',
        }
    ).live
    report = tmp_path / "plan.json"
    run_cli(
        ["plan", "--json", str(report), "--detailed-exitcode"],
        live / "staging-eu-west-1/one",
        tf_env,
    ).assert_exit(2)
    (stack,) = json.loads(report.read_text())["stacks"]
    assert stack["path"] == "staging-eu-west-1/one" and stack["status"] == "succeeded"
    assert stack["changes"] == {"add": 1, "change": 0, "destroy": 0}


def test_many_stacks_without_a_terminal_need_yes(
    make_repo: Callable[..., LiveRepo], state_backend: StateBackend
) -> None:
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            "live/staging-eu-west-1/a/main.tf": "",
            "live/staging-eu-west-1/b/main.tf": "",
        }
    ).live
    result = run_cli(["run-all", "apply"], live).assert_exit(4)
    assert "over 2 stacks" in result.stderr and "--yes" in result.stderr
    assert not (live / "staging-eu-west-1/a/backend.tf").exists()
