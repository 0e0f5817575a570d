"""End to end with real terraform and moto: the single-stack wrapper on examples/live."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import StateBackend, run_cli

pytestmark = pytest.mark.slow


def test_apply_writes_state_locks_tags_and_remote_state_reads(
    examples_copy: Path, state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    live = examples_copy
    network = live / "staging-eu-west-1/network"

    run_cli(["apply", "--yes", "-no-color"], network, tf_env).assert_success()

    # State at env/region/stack in the bucket; the examples lock in S3 (use_lockfile), and the
    # lock object is gone once the apply ends.
    keys = state_backend.object_keys()
    assert "staging/eu-west-1/network.tfstate" in keys
    assert not [key for key in keys if key.endswith(".tflock")], keys
    state = state_backend.read_json("staging/eu-west-1/network.tfstate")
    vpc_id = state["outputs"]["vpc_id"]["value"]

    # The VPC carries the standard tags from the generated provider's default_tags.
    ec2 = state_backend.sandbox.client("ec2", "eu-west-1")
    (vpc,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    tags = {tag["Key"]: tag["Value"] for tag in vpc["Tags"]}
    assert tags["ManagedBy"] == "terraform"
    assert tags["Environment"] == "staging"
    assert tags["Repo"] == "infra"
    assert tags["Stack"] == "network"
    assert tags["Owner"] == "platform"

    # platform reads network (and iam) through hand-written remote state with literal keys.
    run_cli(["apply", "--yes", "shared-services/iam"], live, tf_env).assert_success()
    platform = live / "staging-eu-west-1/platform"
    run_cli(["apply", "--yes", "staging-eu-west-1/platform"], live, tf_env).assert_success()
    outputs = json.loads(run_cli(["output", "-json"], platform, tf_env).assert_success().stdout)
    platform_state = state_backend.read_json("staging/eu-west-1/platform.tfstate")
    assert vpc_id in json.dumps(platform_state["resources"])
    assert outputs, "platform has outputs"

    # A second plan: no changes, and init does not run again.
    marker = platform / ".terraform" / "tfrun-init.json"
    before = marker.stat().st_mtime_ns
    plan = run_cli(["plan", "-detailed-exitcode", "-no-color"], platform, tf_env)
    plan.assert_success()
    assert "No changes." in plan.stdout
    assert "running terraform init" not in plan.stderr
    assert marker.stat().st_mtime_ns == before


def test_output_stdout_stays_clean_when_init_runs(
    examples_copy: Path, tf_env: dict[str, str]
) -> None:
    iam = examples_copy / "shared-services/iam"
    run_cli(["apply", "--yes"], iam, tf_env).assert_success()
    (iam / ".terraform" / "tfrun-init.json").unlink()
    result = run_cli(["output", "-json"], iam, tf_env).assert_success()
    assert "running terraform init" in result.stderr
    json.loads(result.stdout)  # init's chatter went to stderr


def test_apply_without_terminal_needs_yes(examples_copy: Path, tf_env: dict[str, str]) -> None:
    result = run_cli(["apply"], examples_copy / "staging-eu-west-1/data", tf_env)
    result.assert_exit(4)
    assert "--yes" in result.stderr
    assert not (examples_copy / "staging-eu-west-1/data/backend.tf").exists()
