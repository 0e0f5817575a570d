"""`--gitlab-report FILE`: GitLab's Terraform report of a run's plans, the JSON the merge
request's widget reads ({"create": N, "update": N, "delete": N}), written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

from fake_terraform import PROD_REL, STACK_REL, FakeRepo
from helpers import run_cli

from tfrun.errors import ExitCode
from tfrun.report import Changes, Result, RunReport


def plan(*actions: list[str]) -> dict[str, object]:
    return {
        "resource_changes": [
            {"address": f"r.n{i}", "change": {"actions": a}} for i, a in enumerate(actions)
        ]
    }


def test_counts_follow_gitlabs_template_a_replacement_is_a_create_and_a_delete() -> None:
    changes, _ = Changes.from_plan(
        plan(["create"], ["update"], ["delete", "create"], ["no-op"], ["read"], ["delete"])
    )
    other, _ = Changes.from_plan(plan(["create"]))
    report = RunReport(
        "plan",
        {"a": Result.succeeded(changes=changes), "b": Result.succeeded(changes=other)},
    )
    assert report.gitlab_counts() == {"create": 3, "update": 1, "delete": 2}


def test_no_counts_unless_every_plan_was_counted() -> None:
    counted = Result.succeeded(changes=Changes(1, 0, 0))
    failed = Result.failed("terraform plan exited 1", exit_code=1)
    waiting = Result.waiting("waiting for x to be applied")
    assert RunReport("plan", {"a": counted, "b": failed}).gitlab_counts() is None
    assert RunReport("plan", {"a": counted, "b": waiting}).gitlab_counts() is None
    assert RunReport("plan", {"a": counted}, interrupted=True).gitlab_counts() is None
    assert RunReport("plan", {}).gitlab_counts() is None


def test_a_plan_writes_the_report(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    repo.fake(STACK_REL, {"changes": {"add": 2, "change": 1, "destroy": 1}})
    target = tmp_path / "reports" / "network.json"
    run_cli(
        ["plan", STACK_REL, "--gitlab-report", str(target)], repo.live, repo.env
    ).assert_success()
    assert json.loads(target.read_text()) == {"create": 2, "update": 1, "delete": 1}
    # The counts are read from the saved plan, so the one stack ran in the background.
    assert repo.commands() == ["init", "plan", "show"]


def test_a_failed_plan_leaves_no_report_not_even_an_old_one(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    repo.fake(STACK_REL, {"plan": {"exit": 1}})
    target = tmp_path / "network.json"
    target.write_text('{"create": 5, "update": 0, "delete": 0}\n')
    result = run_cli(["plan", STACK_REL, "--gitlab-report", str(target)], repo.live, repo.env)
    result.assert_exit(int(ExitCode.STACK_FAILED))
    assert not target.exists()


def test_only_a_plan_has_a_gitlab_report(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    target = tmp_path / "r.json"
    result = run_cli(["apply", PROD_REL, "--gitlab-report", str(target)], repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert "--gitlab-report is for plan" in result.stderr
    assert "'tfrun apply' makes no plan" in result.stderr
    assert repo.records() == [] and not target.exists()


def test_a_report_path_that_cannot_be_written_is_found_before_anything_runs(
    tmp_path: Path,
) -> None:
    repo = FakeRepo(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli(
        ["plan", STACK_REL, "--gitlab-report", str(blocker / "r.json")], repo.live, repo.env
    )
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert f"--gitlab-report {blocker / 'r.json'}: {blocker} is a file" in result.stderr
    assert "Nothing ran." in result.stderr
    assert repo.records() == []


def test_the_run_report_and_gitlabs_cannot_share_a_file(tmp_path: Path) -> None:
    repo = FakeRepo(tmp_path)
    target = tmp_path / "r.json"
    argv = ["plan", STACK_REL, "--json", str(target), "--gitlab-report", str(target)]
    result = run_cli(argv, repo.live, repo.env)
    result.assert_exit(int(ExitCode.BAD_CONFIG))
    assert f"--json and --gitlab-report both name {target}" in result.stderr
    assert repo.records() == [] and not target.exists()
