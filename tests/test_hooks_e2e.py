"""extra_arguments, var_files and hooks with real terraform on the sandbox: the arguments reach
terraform, var files are found up the tree with the nearer one winning, a failing before-hook
stops its stack and the stack's dependents, an after-hook reads the saved plan."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import LiveRepo, StateBackend, run_cli

pytestmark = pytest.mark.slow

VARIABLES = """
variable "a" {}
variable "b" {}
variable "c" {}
resource "terraform_data" "values" { input = "${var.a} ${var.b} ${var.c}" }
output "a" { value = var.a }
output "b" { value = var.b }
output "c" { value = var.c }
"""


def commands_in(log: Path, command: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("$ ") and
            f" {command} " in f"{line} "]  # fmt: skip


def test_extra_arguments_and_var_files_reach_terraform_nearer_files_winning(
    make_repo: Callable[..., LiveRepo],
    state_backend: StateBackend,
    tf_env: dict[str, str],
    tmp_path: Path,
) -> None:
    config = """
        extra_arguments "locking" {
          commands  = ["plan", "apply"]
          arguments = ["-lock-timeout=5m"]
        }
        var_files = ["common.tfvars", "{env}.tfvars"]
    """
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(extra=config),
            "live/common.tfvars": 'a = "root common"\nb = "root common"\n',
            "live/staging.tfvars": 'c = "root staging"\n',
            "live/prod.tfvars": 'a = "another environment"\n',
            "live/staging-eu-west-1/staging.tfvars": 'b = "env folder"\n',
            # The stack's folder comes last whatever the file's name: its common beats the
            # root's staging.
            "live/staging-eu-west-1/app/common.tfvars": 'c = "stack folder"\n',
            "live/staging-eu-west-1/app/main.tf": VARIABLES,
        }
    ).live
    report = tmp_path / "apply.json"
    # Over many stacks an apply plans (var files in) and applies the saved plans (terraform
    # refuses -var-file there, so tfrun leaves them out).
    run_cli(["run-all", "apply", "--yes", "--json", str(report)], live, tf_env).assert_success()
    [stack] = json.loads(report.read_text())["stacks"]
    apply_log = Path(stack["log"])
    plan_log = apply_log.parents[2] / "plan" / "staging-eu-west-1" / "app.log"
    [plan] = commands_in(plan_log, "plan")
    assert "-lock-timeout=5m" in plan
    assert plan.endswith(
        "-var-file=../../common.tfvars -var-file=../../staging.tfvars "
        "-var-file=../staging.tfvars -var-file=common.tfvars"
    )
    [apply] = commands_in(apply_log, "apply")
    assert "-lock-timeout=5m" in apply and "-var-file" not in apply

    outputs = run_cli(["output", "-json"], live / "staging-eu-west-1/app", tf_env)
    values = {
        name: out["value"] for name, out in json.loads(outputs.assert_success().stdout).items()
    }
    assert values == {"a": "root common", "b": "env folder", "c": "stack folder"}

    # A single-stack apply without a saved plan gets the var files, and nothing changes.
    again = run_cli(
        ["apply", "--yes", "-no-color"], live / "staging-eu-west-1/app", tf_env
    ).assert_success()
    assert "No changes." in again.stdout


def hook(kind: str, name: str, commands: str, argv: list[str]) -> str:
    return f'{kind} "{name}" {{\n  commands = [{commands}]\n  execute = {json.dumps(argv)}\n}}\n'


def test_hooks_with_real_commands_in_a_run_of_many_stacks(
    make_repo: Callable[..., LiveRepo],
    state_backend: StateBackend,
    tf_env: dict[str, str],
    tmp_path: Path,
) -> None:
    seen = tmp_path / "seen.json"
    # Reads the saved plan the hook is told of with terraform itself, and keeps its env.
    reader = (
        "import json, os, subprocess; "
        "plan = subprocess.run(['terraform', 'show', '-json', os.environ['TFRUN_PLAN_FILE']], "
        "capture_output=True, text=True, check=True).stdout; "
        f"open({str(seen)!r}, 'w').write(json.dumps({{'env': {{k: v for k, v in "
        "os.environ.items() if k.startswith('TFRUN_')}, 'cwd': os.getcwd(), "
        "'plan': json.loads(plan)}))"
    )
    fmt = hook("before_hook", "fmt", '"plan", "apply"', ["terraform", "fmt", "-check"])
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(extra=fmt),
            # Badly formatted: `terraform fmt -check` fails on it.
            "live/staging-eu-west-1/network/main.tf": (
                'resource "terraform_data" "vpc" {\ninput="vpc-1"\n}\n'
            ),
            "live/staging-eu-west-1/platform/main.tf": (
                'resource "terraform_data" "cluster" {\n  input = "c-1"\n}\n'
            ),
            "live/staging-eu-west-1/platform/stack.hcl": 'dependencies = ["../network"]\n',
            "live/shared-services/iam/main.tf": (
                'resource "terraform_data" "role" {\n  input = 1\n}\n'
            ),
            "live/shared-services/iam/stack.hcl": hook(
                "after_hook", "read_plan", '"plan"', [sys.executable, "-c", reader]
            ),
        }
    ).live
    report = tmp_path / "plan.json"
    result = run_cli(["run-all", "plan", "--json", str(report)], live, tf_env)
    result.assert_exit(1)
    stacks = {s["path"]: s for s in json.loads(report.read_text())["stacks"]}
    network = stacks["staging-eu-west-1/network"]
    assert network["status"] == "failed"
    assert network["reason"].startswith(
        'the before_hook "fmt" failed (exit 3), so terraform plan did not run'
    )
    network_log = Path(network["log"]).read_text()
    assert "main.tf" in network_log  # fmt -check names the file it would change
    assert not commands_in(Path(network["log"]), "plan")
    assert stacks["staging-eu-west-1/platform"]["status"] == "skipped"
    assert "staging-eu-west-1/network" in stacks["staging-eu-west-1/platform"]["reason"]

    # iam ran, and its after-hook read the plan terraform saved.
    assert stacks["shared-services/iam"]["status"] == "succeeded"
    kept = json.loads(seen.read_text())
    iam = live / "shared-services/iam"
    assert kept["cwd"] == str(iam)
    assert kept["env"]["TFRUN_STACK"] == "shared-services/iam"
    assert kept["env"]["TFRUN_STACK_DIR"] == str(iam)
    assert (kept["env"]["TFRUN_ENV"], kept["env"]["TFRUN_REGION"]) == ("shared-services", "global")
    assert kept["env"]["TFRUN_COMMAND"] == "plan"
    assert kept["env"]["TFRUN_PLAN_FILE"] == str(stacks["shared-services/iam"]["plan_file"])
    [change] = kept["plan"]["resource_changes"]
    assert change["address"] == "terraform_data.role"

    # Formatted, network plans, and platform after it.
    # (terraform's own fmt: `tfrun fmt` formats tfrun.hcl and stack.hcl, not .tf files)
    subprocess.run(["terraform", "fmt"], cwd=live / "staging-eu-west-1/network", check=True)
    again = run_cli(["run-all", "plan", "--json", str(report)], live, tf_env)
    again.assert_success()
    statuses = {s["path"]: s["status"] for s in json.loads(report.read_text())["stacks"]}
    assert set(statuses.values()) == {"succeeded"}
