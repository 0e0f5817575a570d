"""`run-all apply` is a reviewed apply (docs/new-environment.md): every stack planned, one
approval, the saved plans applied in order; a stack whose plan read planned outputs is planned
again after its upstream is applied, and a plan that changed after approval is asked about
again or stopped. The scheduler's side, with the fake terraform; tests/test_provisional_e2e.py
does it with real terraform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_terraform import FakeRepo
from helpers import Terminal, run_cli, write_tree

from tfrun.errors import ExitCode

NETWORK = "staging-eu-west-1/network"
PLATFORM = "staging-eu-west-1/platform"
DATA = "staging-eu-west-1/data"
READS_NETWORK = 'remote_state = { network = "../network" }\n'


@pytest.fixture
def repo(tmp_path: Path) -> FakeRepo:
    return FakeRepo(
        tmp_path,
        {
            f"{PLATFORM}/main.tf": "",
            f"{PLATFORM}/stack.hcl": READS_NETWORK,
            f"{DATA}/main.tf": "",
        },
    )


def commands(repo: FakeRepo, rel: str) -> list[str]:
    """What terraform ran in one stack, init left out: 'plan', 'show', 'apply <plan file>'."""
    found = []
    for record in repo.records("start"):
        if Path(record["cwd"]) != repo.live / rel or record["args"][0] == "init":
            continue
        args = record["args"]
        found.append(f"apply {Path(args[-1]).name}" if args[0] == "apply" else args[0])
    return found


def report(tmp_path: Path) -> dict[str, Any]:
    document = json.loads((tmp_path / "r.json").read_text())
    return {s["path"]: s for s in document["stacks"]}


def apply(repo: FakeRepo, tmp_path: Path, *extra: str) -> Any:
    argv = ["run-all", "apply", "--env", "staging", "--json", str(tmp_path / "r.json"), *extra]
    return run_cli(argv, repo.live, repo.env)


def test_every_stack_is_planned_then_the_saved_plans_are_applied(
    repo: FakeRepo, tmp_path: Path
) -> None:
    repo.fake(NETWORK, {"changes": {"add": 2}})
    repo.fake(PLATFORM, {"changes": {"change": 1}})
    apply(repo, tmp_path, "--yes", "-var=size=2").assert_success()
    assert commands(repo, NETWORK) == ["plan", "show", "apply network.tfplan"]
    assert commands(repo, PLATFORM) == ["plan", "show", "apply platform.tfplan"]
    # No changes: planned, not applied.
    assert commands(repo, DATA) == ["plan"]
    results = report(tmp_path)
    assert results[DATA]["reason"] == "no changes: not applied"
    # The saved plan's apply gets no -var (terraform refuses them with a saved plan).
    applies = [r["args"] for r in repo.records("start") if r["args"][0] == "apply"]
    assert all(not any(a.startswith("-var") for a in args) for args in applies), applies
    plans = [r["args"] for r in repo.records("start") if r["args"][0] == "plan"]
    assert all("-var=size=2" in args for args in plans)


def test_a_provisional_plan_is_planned_again_after_its_upstream_is_applied(
    repo: FakeRepo, tmp_path: Path
) -> None:
    repo.fake(NETWORK, {"changes": {"add": 1, "outputs": ["vpc_id"]}})
    repo.fake(PLATFORM, {"changes": {"change": 1}})
    apply(repo, tmp_path, "--yes").assert_success()
    assert commands(repo, PLATFORM) == ["plan", "show", "plan", "show", "apply platform.tfplan"]
    # The second plan's file is the apply phase's, not the approved one.
    run_dirs = {
        Path(r["args"][-1]).parent.name for r in repo.records("start") if r["args"][0] == "apply"
    }
    assert run_dirs == {"staging-eu-west-1"}
    assert report(tmp_path)[PLATFORM]["reason"] == "planned again: its plan read planned outputs"


def test_with_yes_a_plan_that_changed_after_approval_is_applied(
    repo: FakeRepo, tmp_path: Path
) -> None:
    """--yes (CI) approves in advance, a plan that changes during the apply included."""
    repo.fake(NETWORK, {"changes": {"add": 1, "outputs": ["vpc_id"]}})
    repo.fake(PLATFORM, {"changes": {"change": 1}, "changes_again": {"destroy": 1}})
    apply(repo, tmp_path, "--yes").assert_success()
    assert commands(repo, PLATFORM)[-1] == "apply platform.tfplan"


@pytest.mark.parametrize("again", ["yes", "no"])
def test_on_a_terminal_a_plan_that_changed_after_approval_is_asked_about_again(
    repo: FakeRepo, again: str
) -> None:
    repo.fake(NETWORK, {"changes": {"add": 1, "outputs": ["vpc_id"]}})
    repo.fake(PLATFORM, {"changes": {"change": 1}, "changes_again": {"destroy": 1}})
    terminal = Terminal(repo.live, repo.env, ["run-all", "apply", "--env", "staging"])
    terminal.read_until("Type 'yes' to go on:")
    terminal.answer("yes")
    terminal.read_until("Apply the new plan?")
    said = terminal.seen.decode()
    assert "the plan changed after approval" in said
    assert "terraform_data.update0: update → nothing" in said
    assert "terraform_data.delete0: nothing → delete" in said
    terminal.answer(again)
    code = terminal.finish()
    applied = commands(repo, PLATFORM)[-1] == "apply platform.tfplan"
    if again == "yes":
        assert code == 0 and applied
    else:
        assert code == ExitCode.REFUSED and not applied
        assert "plan changed after approval" in terminal.seen.decode()
    assert commands(repo, NETWORK)[-1] == "apply network.tfplan"


def test_a_failed_plan_applies_nothing_of_its_own_and_the_others_go_on(
    repo: FakeRepo, tmp_path: Path
) -> None:
    repo.fake(NETWORK, {"changes": {"add": 1}, "plan": {"exit": 1}})
    repo.fake(DATA, {"changes": {"add": 1}})
    result = apply(repo, tmp_path, "--yes")
    result.assert_exit(int(ExitCode.STACK_FAILED))
    results = report(tmp_path)
    assert results[NETWORK]["status"] == "failed"
    assert results[NETWORK]["reason"].startswith("its plan failed: terraform plan failed")
    assert results[PLATFORM]["status"] == "skipped"
    assert commands(repo, DATA) == ["plan", "show", "apply data.tfplan"]
    assert "apply" not in " ".join(commands(repo, NETWORK) + commands(repo, PLATFORM))


def test_nothing_to_apply_asks_nothing_and_applies_nothing(repo: FakeRepo, tmp_path: Path) -> None:
    result = run_cli(["run-all", "apply", "--env", "staging", "--yes"], repo.live, repo.env)
    result.assert_success()
    assert "Nothing to apply" in result.stderr
    assert "apply" not in [r["args"][0] for r in repo.records("start")]


def test_without_a_terminal_or_yes_nothing_runs(repo: FakeRepo) -> None:
    result = run_cli(["run-all", "apply", "--env", "staging"], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "'tfrun run-all apply' over 3 stacks" in result.stderr
    assert "Add --yes" in result.stderr
    assert repo.records() == []


def test_what_the_plans_remove_is_listed_before_the_approval(
    repo: FakeRepo, tmp_path: Path
) -> None:
    repo.fake(DATA, {"changes": {"destroy": 1, "add": 1}})
    result = apply(repo, tmp_path, "--yes").assert_success()
    assert "Resources these plans remove:" in result.stderr
    assert f"{DATA} destroys: terraform_data.delete0" in result.stderr


def test_a_reviewed_plan_that_destroys_on_a_protected_stack_is_a_destroy(repo: FakeRepo) -> None:
    """A GitLab job that is not a manual one may apply to prod, but not destroy there: the
    reviewed plans are checked as `apply PLANFILE` would be, before anything is applied."""
    prod = "prod-eu-west-1/network"
    repo.fake(prod, {"changes": {"destroy": 1}})
    env = {**repo.env, "GITLAB_CI": "true", "CI": "true", "CI_PIPELINE_SOURCE": "push"}
    result = run_cli(["run-all", "apply", "--env", "prod", "--yes"], repo.live, env)
    result.assert_exit(int(ExitCode.REFUSED))
    assert "protected-destroy-gitlab-manual-job" in result.stderr
    assert "its plan removes terraform_data.delete0" in result.stderr
    assert "apply" not in [r["args"][0] for r in repo.records("start")]


def test_upstream_plans_must_be_a_folder_of_tfrun_reports(repo: FakeRepo, tmp_path: Path) -> None:
    missing = run_cli(
        ["plan", PLATFORM, "--upstream-plans", str(tmp_path / "nope")], repo.live, repo.env
    )
    missing.assert_exit(int(ExitCode.BAD_CONFIG))
    assert f"--upstream-plans {tmp_path / 'nope'}: no such folder or file" in missing.stderr
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "x.json").write_text('{"stacks": [{"status": "succeeded"}]}')
    broken = run_cli(["plan", PLATFORM, "--upstream-plans", str(reports)], repo.live, repo.env)
    broken.assert_exit(int(ExitCode.BAD_CONFIG))
    said = " ".join(broken.stderr.split())
    assert f"{reports / 'x.json'} is not a report of 'tfrun plan --json'" in said, said
    assert "(it has no list of stacks)" in said
    assert repo.records() == []


def test_a_plan_reads_the_planned_outputs_of_another_jobs_report(
    repo: FakeRepo, tmp_path: Path
) -> None:
    """As a merge request's plan job: network was planned by another job, whose report says
    it is new and will have vpc_id; platform's plan reads that, provisional."""
    view = {
        "planned_values": {"outputs": {"vpc_id": {"sensitive": False}}},
        "output_changes": {"vpc_id": {"actions": ["create"], "after_unknown": True}},
        "new": True,
    }
    entry = {"path": NETWORK, "status": "succeeded", "has_changes": True,
             "output_changes": ["vpc_id"], "outputs_plan": view}  # fmt: skip
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "network.json").write_text(json.dumps({"stacks": [entry]}))
    repo.fake(PLATFORM, {"changes": {"add": 1}})
    argv = ["plan", PLATFORM, "--upstream-plans", str(reports), "--json", str(tmp_path / "r.json")]
    run_cli(argv, repo.live, repo.env).assert_success()
    (result,) = json.loads((tmp_path / "r.json").read_text())["stacks"]
    assert result["provisional_because"] == [NETWORK]
    assert result["planned_outputs"] == [f"{NETWORK}: network (placeholder vpc_id)"]
    # One report, named as a file, serves as well as the folder.
    argv[argv.index(str(reports))] = str(reports / "network.json")
    run_cli(argv, repo.live, repo.env).assert_success()
    (again,) = json.loads((tmp_path / "r.json").read_text())["stacks"]
    assert again["provisional_because"] == [NETWORK]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("Invalid index: data.terraform_remote_state.network.outputs.ids[2]", "waiting"),
        ('cannot convert "tfrun-placeholder:x.y" to number', "waiting"),
        # Not what it read as planned: the real state of another stack. A failure.
        ("Invalid index: data.terraform_remote_state.iam.outputs.roles[var.env]", "failed"),
    ],
)
def test_a_provisional_plan_waits_only_when_it_failed_on_what_it_read_as_planned(
    repo: FakeRepo, tmp_path: Path, error: str, status: str
) -> None:
    repo.fake(NETWORK, {"changes": {"add": 1, "outputs": ["vpc_id"]}})
    repo.fake(PLATFORM, {"plan": {"fail_first": 1, "message": error}})
    argv = ["run-all", "plan", "--env", "staging", "--json", str(tmp_path / "r.json")]
    run_cli(argv, repo.live, repo.env)
    result = report(tmp_path)[PLATFORM]
    assert result["status"] == status, result
    if status == "waiting":
        assert result["reason"].startswith(f"waiting for {NETWORK} to be applied")
        assert result["has_changes"] is True


def test_a_waiting_stack_on_a_protected_environment_is_checked_when_planned_again(
    repo: FakeRepo, tmp_path: Path
) -> None:
    """prod's platform waits for prod's network (no plan to review yet): that is no reason to
    refuse the run; its plan is checked by the safety rules once it is made."""
    prod_platform = "prod-eu-west-1/platform"
    write_tree(
        repo.live, {f"{prod_platform}/main.tf": "", f"{prod_platform}/stack.hcl": READS_NETWORK}
    )
    repo.fake("prod-eu-west-1/network", {"changes": {"add": 1, "outputs": ["vpc_id"]}})
    error = "Invalid index: data.terraform_remote_state.network.outputs.ids[2]"
    repo.fake(prod_platform, {"changes": {"add": 1}, "plan": {"fail_first": 1, "message": error}})
    # A GitLab job that is not manual may apply to prod but not destroy there.
    env = {**repo.env, "GITLAB_CI": "true", "CI": "true", "CI_PIPELINE_SOURCE": "push"}
    argv = ["run-all", "apply", "--env", "prod", "--yes", "--json", str(tmp_path / "r.json")]
    run_cli(argv, repo.live, env).assert_success()
    assert commands(repo, prod_platform)[-1] == "apply platform.tfplan"


def test_when_every_plan_failed_it_does_not_say_there_is_nothing_to_apply(
    repo: FakeRepo, tmp_path: Path
) -> None:
    for rel in (NETWORK, DATA):
        repo.fake(rel, {"changes": {"add": 1}, "plan": {"exit": 1}})
    result = run_cli(["run-all", "apply", "--env", "staging", "--yes"], repo.live, repo.env)
    result.assert_exit(int(ExitCode.STACK_FAILED))
    assert "Nothing to apply" not in result.stderr
