"""With real terraform on the sandbox: a new environment whose reads use a variable from
terraform.tfvars and a module that wraps the read applies in the right order, and each reader
sees what the stack it reads wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import LiveRepo, StateBackend, run_cli

pytestmark = pytest.mark.slow

# The read a team writes once and calls from every stack that needs another's outputs.
LOOKUP_MODULE = """
    variable "bucket" { type = string }
    variable "key" { type = string }
    # Only for the sandbox: tfrun points the stacks' own reads at it, not those in modules.
    variable "endpoint" { type = string }

    data "terraform_remote_state" "this" {
      backend = "s3"
      config = {
        bucket                      = var.bucket
        key                         = var.key
        region                      = "eu-west-1"
        endpoints                   = { s3 = var.endpoint, sts = var.endpoint }
        use_path_style              = true
        skip_credentials_validation = true
        skip_requesting_account_id  = true
        skip_metadata_api_check     = true
        skip_region_validation      = true
      }
    }

    output "outputs" { value = data.terraform_remote_state.this.outputs }
"""


def test_a_new_environment_applies_in_the_order_its_computed_reads_give(
    make_repo: Callable[..., LiveRepo],
    state_backend: StateBackend,
    tf_env: dict[str, str],
    tmp_path: Path,
) -> None:
    env = "staging-eu-west-1"
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            f"live/{env}/network/main.tf": """
                resource "terraform_data" "vpc" { input = "vpc-42" }
                output "vpc_id" { value = terraform_data.vpc.output }
            """,
            # The key and the bucket from terraform.tfvars (and a local).
            f"live/{env}/platform/main.tf": """
                variable "env" { type = string }
                variable "tf_state_bucket" { type = string }
                locals { region = "eu-west-1" }

                data "terraform_remote_state" "network" {
                  backend = "s3"
                  config = {
                    bucket = var.tf_state_bucket
                    key    = "${var.env}/${local.region}/network.tfstate"
                    region = "eu-west-1"
                  }
                }

                resource "terraform_data" "cluster" {
                  input = data.terraform_remote_state.network.outputs.vpc_id
                }
                output "cluster_vpc" { value = terraform_data.cluster.output }
            """,
            f"live/{env}/platform/terraform.tfvars": (
                f'env             = "staging"\ntf_state_bucket = "{state_backend.bucket}"\n'
            ),
            # The read inside a local module, its key the call's argument. "data" sorts
            # before the stacks it depends on: only the graph puts it last.
            f"live/{env}/data/main.tf": f"""
                module "platform" {{
                  source   = "../../../modules/lookup"
                  bucket   = "{state_backend.bucket}"
                  key      = "staging/eu-west-1/platform.tfstate"
                  endpoint = "{state_backend.sandbox.endpoint}"
                }}

                resource "terraform_data" "db" {{
                  input = module.platform.outputs.cluster_vpc
                }}
            """,
            "modules/lookup/main.tf": LOOKUP_MODULE,
        }
    ).live

    graph = run_cli(["graph", "--format", "json"], live, tf_env).assert_success()
    document = json.loads(graph.stdout)
    assert document["unresolved"] == [] and "cannot tell" not in graph.stderr
    dependencies = {s["path"]: s["dependencies"] for s in document["stacks"]}
    assert dependencies[f"{env}/platform"] == [f"{env}/network"]
    assert dependencies[f"{env}/data"] == [f"{env}/platform"]

    report = tmp_path / "apply.json"
    result = run_cli(["run-all", "apply", "--yes", "--json", str(report)], live, tf_env)
    result.assert_success()
    stacks = json.loads(report.read_text())["stacks"]
    assert {s["path"]: s["status"] for s in stacks} == {
        f"{env}/network": "succeeded",
        f"{env}/platform": "succeeded",
        f"{env}/data": "succeeded",
    }
    # In dependency order; and had a reader started before what it reads had applied, its
    # read would have failed (no state yet), so success is the order kept.
    assert [s["path"] for s in stacks] == [f"{env}/network", f"{env}/platform", f"{env}/data"]
    # And saw the upstream outputs: network's vpc id went through platform to data.
    data_state = state_backend.read_json("staging/eu-west-1/data.tfstate")
    assert "vpc-42" in json.dumps(data_state["resources"])
