"""`tfrun drift` with real terraform, the aws provider and the sandbox: a tag changed behind
terraform's back is found, named by stack and resource address, and the stack nobody touched
is clean."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import LiveRepo, StateBackend, run_cli

pytestmark = pytest.mark.slow

PARAMETER = """
resource "aws_ssm_parameter" "motd" {{
  name  = "/{env}/motd"
  type  = "String"
  value = "hello"
  tags  = {{ Team = "platform" }}
}}
"""
STAGING = "staging-eu-west-1/app"
PROD = "prod-eu-west-1/app"


def test_drift_finds_a_tag_changed_outside_terraform(
    make_repo: Callable[..., LiveRepo],
    state_backend: StateBackend,
    tf_env: dict[str, str],
    tmp_path: Path,
) -> None:
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            f"live/{STAGING}/main.tf": PARAMETER.format(env="staging"),
            f"live/{PROD}/main.tf": PARAMETER.format(env="prod"),
        }
    ).live
    # Applies to prod run in CI (from a laptop they ask for prod's name on a terminal).
    run_cli(["run-all", "apply", "--yes"], live, {**tf_env, "CI": "true"}).assert_success()
    reports = ["--json", str(tmp_path / "drift.json"), "--markdown", str(tmp_path / "drift.md")]
    run_cli(["drift", *reports], live, tf_env).assert_exit(0)
    assert json.loads((tmp_path / "drift.json").read_text())["counts"]["drifted"] == 0

    ssm = state_backend.sandbox.client("ssm", "eu-west-1")
    ssm.add_tags_to_resource(
        ResourceType="Parameter",
        ResourceId="/prod/motd",
        Tags=[{"Key": "Team", "Value": "changed-by-hand"}],
    )

    # From a laptop, on the protected prod environment: a read-only plan, nothing asked.
    result = run_cli(["drift", *reports], live, tf_env).assert_exit(2)
    document = json.loads((tmp_path / "drift.json").read_text())
    [drifted] = document["drifted"]
    assert (drifted["path"], drifted["env"], drifted["key"]) == (
        PROD,
        "prod",
        "prod/eu-west-1/app.tfstate",
    )
    assert {"address": "aws_ssm_parameter.motd", "actions": ["update"]} in drifted["resource_drift"]
    assert drifted["resource_changes"] == [
        {"address": "aws_ssm_parameter.motd", "actions": ["update"]}
    ]
    assert [s["path"] for s in document["clean"]] == [STAGING]
    assert document["failed"] == []
    markdown = (tmp_path / "drift.md").read_text()
    assert "| `prod-eu-west-1/app` | prod | eu-west-1 | **drifted** |" in markdown
    assert "- `aws_ssm_parameter.motd`: update" in markdown
    assert "- `staging-eu-west-1/app`" in markdown
    assert "prod-eu-west-1/app drifted" in result.stdout

    # Read-only: the tag is still the one set by hand, and no saved plan is left to apply.
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/prod/motd")
    assert {"Key": "Team", "Value": "changed-by-hand"} in tags["TagList"]
    assert not list(Path(document["run_dir"]).rglob("*.tfplan"))
