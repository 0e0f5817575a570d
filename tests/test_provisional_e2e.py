"""With real terraform on the sandbox: a new environment's `run-all plan` plans every stack in
one run, the readers of unapplied stacks against their planned outputs (provisional), and the
ones that a placeholder cannot carry as waiting; `mock_outputs` stand in; a provisional plan is
never applied, and nothing of it is left in the stacks."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import LiveRepo, StateBackend, Terminal, run_cli

from tfrun import planned
from tfrun.errors import ExitCode

pytestmark = pytest.mark.slow

E = "staging-eu-west-1"


def files(state_backend: StateBackend) -> dict[str, str]:
    up = {"bucket": state_backend.bucket, "region": state_backend.region}
    return {
        "live/tfrun.hcl": state_backend.root_hcl(),
        f"live/{E}/up/main.tf": """
            resource "terraform_data" "a" { input = "x" }
            output "id" { value = terraform_data.a.id }
            output "name" { value = "net" }
            output "size" { value = length(terraform_data.a.id) }
        """,
        # A generated read (remote_state in stack.hcl).
        f"live/{E}/generated/stack.hcl": 'remote_state = { up = "../up" }\n',
        f"live/{E}/generated/main.tf": """
            resource "terraform_data" "m" { input = data.terraform_remote_state.up.outputs.id }
            output "seen" { value = data.terraform_remote_state.up.outputs.name }
        """,
        # A hand-written read of the same state.
        f"live/{E}/hand/main.tf": f"""
            data "terraform_remote_state" "net" {{
              backend = "s3"
              config = {{
                bucket = "{up["bucket"]}"
                key    = "staging/eu-west-1/up.tfstate"
                region = "{up["region"]}"
              }}
            }}
            resource "terraform_data" "h" {{
              input = data.terraform_remote_state.net.outputs.id
            }}
        """,
        # A number unknown until apply: its placeholder is a string, so this plan must wait.
        f"live/{E}/numeric/stack.hcl": 'remote_state = { up = "../up" }\n',
        f"live/{E}/numeric/main.tf": """
            resource "terraform_data" "n" {
              input = tonumber(data.terraform_remote_state.up.outputs.size) + 1
            }
            output "n" { value = terraform_data.n.output }
        """,
        f"live/{E}/after/stack.hcl": 'remote_state = { numeric = "../numeric" }\n',
        f"live/{E}/after/main.tf": (
            'output "n" { value = data.terraform_remote_state.numeric.outputs.n }\n'
        ),
        # The same read, with a mock for what the plan cannot know.
        f"live/{E}/mocked/stack.hcl": (
            'remote_state = { up = "../up" }\nmock_outputs = { up = { size = 3 } }\n'
        ),
        f"live/{E}/mocked/main.tf": """
            resource "terraform_data" "n" {
              input = tonumber(data.terraform_remote_state.up.outputs.size) + 1
            }
        """,
    }


def by_path(report: Path) -> dict[str, Any]:
    document = json.loads(report.read_text())
    return {s["path"].removeprefix(f"{E}/"): s for s in document["stacks"]}


def test_a_new_environment_plans_through_its_unapplied_stacks(
    make_repo: Callable[..., LiveRepo],
    state_backend: StateBackend,
    tf_env: dict[str, str],
    tmp_path: Path,
) -> None:
    repo = make_repo(files(state_backend), git=True)
    report = tmp_path / "plan.json"
    plan = run_cli(["run-all", "plan", "--json", str(report), "-no-color"], repo.live, tf_env)
    plan.assert_success()  # waiting is not a failure
    stacks = by_path(report)
    assert {name: s["status"] for name, s in stacks.items()} == {
        "up": "succeeded",
        "generated": "succeeded",
        "hand": "succeeded",
        "numeric": "waiting",
        "after": "waiting",
        "mocked": "succeeded",
    }
    assert not stacks["up"]["provisional"]
    for name in ("generated", "hand", "mocked"):
        assert stacks[name]["provisional"] and stacks[name]["provisional_because"] == [f"{E}/up"]
    assert stacks["generated"]["planned_outputs"] == [
        f"{E}/up: up (planned name; placeholder id, size)"
    ]
    assert stacks["hand"]["planned_outputs"] == [
        f"{E}/up: net (planned name; placeholder id, size)"
    ]
    assert stacks["mocked"]["planned_outputs"] == [
        f"{E}/up: up (planned name; placeholder id; mocked size)"
    ]
    assert stacks["generated"]["changes"] == {"add": 1, "change": 0, "destroy": 0}
    assert stacks["numeric"]["reason"].startswith(f"waiting for {E}/up to be applied")
    assert f"(through {E}/numeric)" in stacks["after"]["reason"]
    assert "provisional, read the planned outputs of" in plan.stderr

    # Nothing of the provisional plans is left in the stacks.
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=repo.top, capture_output=True, text=True
    ).stdout
    assert planned.OVERRIDE_FILE not in status
    assert not list(repo.live.rglob(planned.OVERRIDE_FILE))

    # A provisional saved plan is refused by apply; a plan of a stack that reads applied state
    # is not provisional.
    saved = Path(stacks["generated"]["plan_file"])
    (repo.live / E / "generated" / "p.tfplan").write_bytes(saved.read_bytes())
    refused = run_cli(["apply", f"{E}/generated", "p.tfplan"], repo.live, tf_env)
    refused.assert_exit(int(ExitCode.REFUSED))
    assert "is provisional" in refused.stderr and "Nothing ran" in refused.stderr

    # Outputs across stacks: one JSON object on stdout; nothing applied yet, so all null.
    before = run_cli(["run-all", "output", "-json"], repo.live, tf_env).assert_success()
    assert json.loads(before.stdout) == {f"{E}/{name}": None for name in stacks}
    assert "no state yet: its outputs are null" in before.stderr

    # Once applied (apply always reads real state), nothing is left to plan.
    applied = tmp_path / "apply.json"
    apply = ["run-all", "apply", "--yes", "-no-color", "--json", str(applied)]
    run_cli(apply, repo.live, tf_env).assert_success()
    # The apply says what it did, from terraform's own summary line.
    assert by_path(applied)["up"]["changes"] == {"add": 1, "change": 0, "destroy": 0}
    assert by_path(applied)["after"]["changes"] == {"add": 0, "change": 0, "destroy": 0}
    # A reviewed apply: readers of planned outputs were planned again once up was applied.
    reasons = {name: s["reason"] for name, s in by_path(applied).items()}
    assert reasons["up"] is None
    assert reasons["generated"] == "planned again: its plan read planned outputs"
    assert reasons["numeric"] == (
        "planned again: its plan had to wait for what it reads to be applied"
    )
    again = run_cli(
        ["run-all", "plan", "-detailed-exitcode", "--json", str(report)], repo.live, tf_env
    )
    again.assert_success()
    assert not any(s["provisional"] for s in by_path(report).values())
    outputs = run_cli(["run-all", "output", "-json"], repo.live, tf_env).assert_success()
    document = json.loads(outputs.stdout)
    assert next(iter(document)) == f"{E}/up"  # dependency order
    assert document[f"{E}/up"]["name"]["value"] == "net"
    assert document[f"{E}/generated"]["seen"]["value"] == "net"
    assert document[f"{E}/mocked"] == {}  # applied, and it has no outputs
    plain = run_cli(["run-all", "output"], repo.live, tf_env).assert_success()
    assert f"# {E}/up\n" in plain.stdout and 'name = "net"' in plain.stdout


def test_a_copy_of_staging_plans_and_applies_in_one_run_each(
    examples_copy: Path, tf_env: dict[str, str], tmp_path: Path
) -> None:
    """The bring-up merge request of a new environment, as a user writes it: staging copied to
    dev (keys and tfvars edited), dev added to tfrun.hcl and to the IAM stack's accounts."""
    live = examples_copy
    shutil.copytree(live / "staging-eu-west-1", live / "dev-eu-west-1")
    for path in (live / "dev-eu-west-1").rglob("*"):
        if path.suffix in (".tf", ".tfvars"):
            path.write_text(path.read_text().replace("staging", "dev"))
    root = live / "tfrun.hcl"
    root.write_text(
        root.read_text().replace(
            "environments {\n",
            'environments {\n  dev = { account_id = "444444444444", profile = "staging" }\n',
        )
    )
    iam = live / "shared-services/iam/terraform.tfvars"
    accounts = '  prod    = "222222222222"\n'
    iam.write_text(iam.read_text().replace(accounts, accounts + '  dev     = "444444444444"\n'))
    selection = ["--env", "dev", "--with-dependencies"]
    report = tmp_path / "plan.json"
    plan = ["run-all", "plan", *selection, "--json", str(report), "-no-color"]
    run_cli(plan, live, tf_env).assert_success()
    stacks = {s["path"]: s for s in json.loads(report.read_text())["stacks"]}
    assert {p: s["status"] for p, s in stacks.items()} == {
        "dev-eu-west-1/network": "succeeded",
        "shared-services/iam": "succeeded",
        "dev-eu-west-1/platform": "succeeded",
        "dev-eu-west-1/data": "succeeded",
    }
    platform = stacks["dev-eu-west-1/platform"]
    assert platform["provisional"] and platform["changes"]["add"] > 0
    assert "dev-eu-west-1/network: network (planned vpc_cidr; placeholder" in " ".join(
        platform["planned_outputs"]
    )
    assert stacks["dev-eu-west-1/data"]["provisional"]

    applied = tmp_path / "apply.json"
    apply = ["run-all", "apply", *selection, "--yes", "-no-color", "--json", str(applied)]
    run_cli(apply, live, tf_env).assert_success()
    done = {s["path"]: s for s in json.loads(applied.read_text())["stacks"]}
    assert list(done) == list(stacks)  # in dependency order
    assert all(s["status"] == "succeeded" for s in done.values())
    assert done["dev-eu-west-1/platform"]["reason"].startswith("planned again")
    again = ["run-all", "plan", *selection, "-detailed-exitcode", "-no-color"]
    run_cli(again, live, tf_env).assert_success()


@pytest.mark.parametrize("again", ["yes", "no"])
def test_a_plan_that_changes_mid_apply_is_asked_about_again_on_a_terminal(
    make_repo: Callable[..., LiveRepo],
    state_backend: StateBackend,
    tf_env: dict[str, str],
    again: str,
) -> None:
    """down's approved plan counts on a mock (size 1, unknown until up is applied); up's
    apply makes it 2, so down's new plan creates two resources instead of one."""
    repo = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            f"live/{E}/up/main.tf": """
                resource "terraform_data" "a" { input = "x" }
                output "size" { value = terraform_data.a.id != "" ? 2 : 0 }
            """,
            f"live/{E}/down/stack.hcl": (
                'remote_state = { up = "../up" }\nmock_outputs = { up = { size = 1 } }\n'
            ),
            f"live/{E}/down/main.tf": """
                resource "terraform_data" "d" {
                  count = data.terraform_remote_state.up.outputs.size
                  input = count.index
                }
            """,
        }
    )
    terminal = Terminal(repo.live, tf_env, ["run-all", "apply"])
    terminal.read_until("Type 'yes' to go on:", timeout=180)
    terminal.answer("yes")
    terminal.read_until("Apply the new plan?", timeout=180)
    said = " ".join(terminal.seen.decode().split())
    assert "the plan changed after approval (its plan read planned outputs)" in said
    assert "terraform_data.d[1]: nothing → create" in said
    terminal.answer(again)
    code = terminal.finish()
    state = state_backend.read_json("staging/eu-west-1/up.tfstate")
    assert state["outputs"]["size"]["value"] == 2  # up was applied either way
    keys = state_backend.object_keys()
    if again == "yes":
        assert code == 0, terminal.seen.decode()
        down = state_backend.read_json("staging/eu-west-1/down.tfstate")
        (made,) = [r for r in down["resources"] if r["type"] == "terraform_data"]
        assert len(made["instances"]) == 2
    else:
        assert code == ExitCode.REFUSED, terminal.seen.decode()
        assert "plan changed after approval" in terminal.seen.decode()
        assert "staging/eu-west-1/down.tfstate" not in keys
