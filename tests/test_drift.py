"""`tfrun drift` and `tfrun ci gitlab --drift`: the pure report and its Markdown, the command
over the fake terraform (exit codes, what it runs and leaves behind, its usage errors), and the
scheduled pipeline's document. Real terraform against the sandbox: test_drift_e2e.py; the
pipeline against GitLab's schema: test_ci_gitlab_local.py."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_terraform import PROD_REL, STACK_REL, FakeRepo
from helpers import LiveRepo, run_cli
from test_affected import BASE_FILES, P, S

from tfrun import ci, cli, drift
from tfrun.discovery import Repository
from tfrun.report import Result

# --------------------------------------------------------------------------- the pure report


def change(address: str, *actions: str) -> dict[str, Any]:
    return {"address": address, "change": {"actions": list(actions)}}


PLAN = {
    "format_version": "1.2",
    "resource_drift": [change("aws_ssm_parameter.motd", "update")],
    "resource_changes": [
        change("aws_ssm_parameter.motd", "update"),
        change("aws_s3_bucket.logs", "no-op"),
        change("data.aws_caller_identity.me", "read"),
        change("aws_iam_role.ci", "delete", "create"),
        {"address": "broken", "change": {"actions": "update"}},  # not a list: left out
        "not an entry",
    ],
}


def test_resources_are_the_drift_and_the_changes_an_apply_would_make() -> None:
    drifted, changes = drift.resources(PLAN)
    assert [str(c) for c in drifted] == ["aws_ssm_parameter.motd (update)"]
    assert [(c.address, c.actions) for c in changes] == [
        ("aws_ssm_parameter.motd", ("update",)),
        ("aws_iam_role.ci", ("delete", "create")),
    ]
    assert drift.resources({}) == ((), ())
    assert drift.resources({"resource_drift": "nonsense"}) == ((), ())


@pytest.fixture
def stacks(tmp_path: Path) -> dict[str, Any]:
    repo = FakeRepo(tmp_path)
    found = Repository(repo.live).stacks(repo.live)
    return {stack.rel: stack for stack in found}


def test_a_stack_that_failed_is_failed_never_clean(stacks: dict[str, Any]) -> None:
    stack = stacks[STACK_REL]
    failed = drift.stack_drift(stack, Result.failed("terraform plan failed (exit 1)"), None)
    assert failed.verdict is drift.Verdict.FAILED
    assert failed.to_json()["reason"] == "terraform plan failed (exit 1)"
    skipped = drift.stack_drift(stack, Result.skipped("dependency x failed"), None)
    assert skipped.verdict is drift.Verdict.FAILED
    assert skipped.status == "skipped"
    clean = drift.stack_drift(stack, Result.succeeded(exit_code=0), None)
    assert clean.verdict is drift.Verdict.CLEAN
    drifted = drift.stack_drift(stack, Result.succeeded(exit_code=2, has_changes=True), PLAN)
    assert drifted.verdict is drift.Verdict.DRIFTED
    assert [c.address for c in drifted.drift] == ["aws_ssm_parameter.motd"]


def test_the_json_document(stacks: dict[str, Any]) -> None:
    results = {
        STACK_REL: Result.succeeded(exit_code=2, has_changes=True, output_changes=("vpc_id",)),
        PROD_REL: Result.succeeded(exit_code=0),
    }
    asked: list[str] = []

    def plan_of(stack: Any) -> dict[str, Any]:
        asked.append(stack.rel)
        return PLAN

    report = drift.build(list(stacks.values()), results, plan_of, exit_code=2, run_dir="/r")
    assert asked == [STACK_REL], "only plans with changes are read"
    document = report.to_json()
    assert document["format"] == "tfrun-drift" and document["version"] == 1
    assert document["exit_code"] == 2
    assert document["counts"] == {"drifted": 1, "clean": 1, "failed": 0}
    [entry] = document["drifted"]
    assert entry["path"] == STACK_REL
    assert (entry["env"], entry["region"]) == ("staging", "eu-west-1")
    assert entry["key"] == "staging/eu-west-1/network.tfstate"
    assert entry["resource_drift"] == [{"address": "aws_ssm_parameter.motd", "actions": ["update"]}]
    assert [c["address"] for c in entry["resource_changes"]] == [
        "aws_ssm_parameter.motd",
        "aws_iam_role.ci",
    ]
    assert entry["output_changes"] == ["vpc_id"]
    assert document["clean"] == [
        {
            "path": PROD_REL,
            "env": "prod",
            "region": "eu-west-1",
            "key": "prod/eu-west-1/network.tfstate",
        }
    ]
    assert document["failed"] == []
    assert document["run_dir"] == "/r"


def _report(*stacks: drift.StackDrift) -> drift.DriftReport:
    return drift.DriftReport(tuple(stacks), exit_code=0)


def _stack(path: str, verdict: drift.Verdict, **details: Any) -> drift.StackDrift:
    return drift.StackDrift(path, "staging", "eu-west-1", f"{path}.tfstate", verdict, **details)


def test_markdown_tables_the_drifted_and_failed_and_lists_the_resources() -> None:
    text = drift.markdown(
        _report(
            _stack(
                "s/network",
                drift.Verdict.DRIFTED,
                drift=(drift.ResourceChange("aws_vpc.main", ("update",)),),
                changes=(
                    drift.ResourceChange("aws_vpc.main", ("update",)),
                    drift.ResourceChange('aws_s3_bucket.b["`odd`"]', ("delete", "create")),
                ),
                outputs=("vpc_id",),
            ),
            _stack(
                "s/data",
                drift.Verdict.FAILED,
                status="failed",
                reason="terraform plan failed (exit 1): Error: a | b <script>",
            ),
            _stack("s/iam", drift.Verdict.CLEAN),
        )
    )
    lines = text.splitlines()
    assert lines[0] == "## Drift: 1 drifted, 1 failed, 1 clean"
    assert (
        "| `s/network` | staging | eu-west-1 | **drifted** | 1 resource | 2 resources, 1 output |"
        in lines
    )
    # A reason can neither break the table nor inject HTML.
    assert (
        "| `s/data` | staging | eu-west-1 | **failed**: terraform plan failed (exit 1): "
        "Error: a \\| b &lt;script&gt; | | |" in lines
    )
    assert "<details><summary>1 clean stack</summary>" in lines and "- `s/iam`" in lines
    section = text.split("### `s/network`", 1)[1]
    assert "State key: `s/network.tfstate`" in section
    assert "Changed outside terraform:\n\n- `aws_vpc.main`: update" in section
    # An address with backticks stays one code span.
    assert '- ``aws_s3_bucket.b["`odd`"]``: delete, create' in section
    assert "Outputs an apply would change: `vpc_id`" in section


def test_markdown_when_nothing_drifted() -> None:
    text = drift.markdown(_report(_stack("s/iam", drift.Verdict.CLEAN)))
    assert text.startswith("## Drift: 0 drifted, 0 failed, 1 clean\n\nNothing drifted.\n")
    assert "|" not in text


# ------------------------------------------------------------------- the command, fake terraform


@pytest.fixture
def fake_repo(tmp_path: Path) -> FakeRepo:
    return FakeRepo(tmp_path)


def drift_cli(repo: FakeRepo, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli(["drift", *args], repo.live, {**repo.env, **(env or {})})


def reports(repo: FakeRepo) -> list[str]:
    folder = repo.live.parent
    return ["--json", str(folder / "drift.json"), "--markdown", str(folder / "drift.md")]


def load(repo: FakeRepo) -> tuple[dict[str, Any], str]:
    folder = repo.live.parent
    document = json.loads((folder / "drift.json").read_text(encoding="utf-8"))
    return document, (folder / "drift.md").read_text(encoding="utf-8")


def test_nothing_drifted_exits_0_with_every_stack_clean(fake_repo: FakeRepo) -> None:
    result = drift_cli(fake_repo, *reports(fake_repo)).assert_exit(0)
    document, markdown = load(fake_repo)
    assert document["counts"] == {"drifted": 0, "clean": 2, "failed": 0}
    assert sorted(s["path"] for s in document["clean"]) == [PROD_REL, STACK_REL]
    assert "Nothing drifted." in markdown
    assert "drift: 0 drifted, 0 failed, 2 clean" in result.stdout
    # Read-only: plans with -detailed-exitcode, nothing else but init and show.
    assert set(fake_repo.commands()) == {"init", "plan"}
    for record in fake_repo.records("start"):
        if record["args"][0] == "plan":
            assert "-detailed-exitcode" in record["args"]


def test_drift_exits_2_names_the_stack_and_resource_and_keeps_no_plan(
    fake_repo: FakeRepo,
) -> None:
    """From a laptop (no CI, no terminal to ask on) on the protected prod environment: a plan
    is read-only, so nothing refuses it or asks."""
    fake_repo.fake(PROD_REL, {"changes": {"change": 1, "drift": ["aws_vpc.main"]}})
    result = drift_cli(fake_repo, *reports(fake_repo)).assert_exit(2)
    document, markdown = load(fake_repo)
    [entry] = document["drifted"]
    assert entry["path"] == PROD_REL
    assert entry["resource_drift"] == [{"address": "aws_vpc.main", "actions": ["update"]}]
    assert [s["path"] for s in document["clean"]] == [STACK_REL]
    assert "### `prod-eu-west-1/network`" in markdown and "- `aws_vpc.main`: update" in markdown
    assert "prod-eu-west-1/network drifted" in result.stdout
    assert "changed outside terraform: aws_vpc.main (update)" in result.stdout
    assert "apply" not in fake_repo.commands()
    # The saved plans were only for reading: none is left to apply.
    run_dir = Path(document["run_dir"])
    assert not list(run_dir.rglob("*.tfplan")), list(run_dir.rglob("*"))
    assert (run_dir / f"{PROD_REL}.plan.json").is_file()


def test_a_failure_wins_over_drift(fake_repo: FakeRepo) -> None:
    fake_repo.fake(STACK_REL, {"changes": {"add": 1}})
    fake_repo.fake(PROD_REL, {"plan": {"exit": 1}})
    drift_cli(fake_repo, *reports(fake_repo)).assert_exit(1)
    document, markdown = load(fake_repo)
    assert document["exit_code"] == 1
    assert [s["path"] for s in document["drifted"]] == [STACK_REL]
    [failed] = document["failed"]
    assert failed["path"] == PROD_REL and failed["status"] == "failed"
    assert "terraform plan failed (exit 1)" in failed["reason"]
    assert document["clean"] == []
    assert "| `prod-eu-west-1/network` | prod | eu-west-1 | **failed**" in markdown


def test_stacks_do_not_wait_for_each_other(fake_repo: FakeRepo) -> None:
    """platform reads network; network's plan fails, and platform is planned all the same
    (against network's applied state), not skipped."""
    platform = "staging-eu-west-1/platform"
    (fake_repo.live / platform).mkdir()
    (fake_repo.live / platform / "main.tf").write_text("# reads network\n", encoding="utf-8")
    (fake_repo.live / platform / "stack.hcl").write_text(
        'dependencies = ["../network"]\n', encoding="utf-8"
    )
    fake_repo.fake(STACK_REL, {"plan": {"exit": 1}})
    drift_cli(fake_repo, "--env", "staging", *reports(fake_repo)).assert_exit(1)
    document, _ = load(fake_repo)
    assert [s["path"] for s in document["failed"]] == [STACK_REL]
    assert [s["path"] for s in document["clean"]] == [platform]


def test_selection_flags_choose_the_stacks(fake_repo: FakeRepo) -> None:
    fake_repo.fake(PROD_REL, {"changes": {"change": 1}})
    drift_cli(fake_repo, "--env", "staging", *reports(fake_repo)).assert_exit(0)
    assert [s["path"] for s in load(fake_repo)[0]["clean"]] == [STACK_REL]
    drift_cli(fake_repo, "--exclude", "staging*", *reports(fake_repo)).assert_exit(2)
    assert [s["path"] for s in load(fake_repo)[0]["drifted"]] == [PROD_REL]


def test_drift_in_gitlab_ci_on_prod(fake_repo: FakeRepo) -> None:
    fake_repo.fake(PROD_REL, {"changes": {"change": 1}})
    ci_env = {"CI": "true", "GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "schedule"}
    drift_cli(fake_repo, "--env", "prod", env=ci_env).assert_exit(2)


def test_one_stack_runs_in_the_background_and_never_the_short_way(fake_repo: FakeRepo) -> None:
    """tfrun/express.py is for foreground laptop commands: drift in one stack, twice, plans
    with a saved plan each time and leaves no record for the short way to replay."""
    stack = fake_repo.live / STACK_REL
    for _ in range(2):
        run_cli(["drift"], stack, fake_repo.env).assert_exit(0)
    plans = [r["args"] for r in fake_repo.records("start") if r["args"][0] == "plan"]
    assert len(plans) == 2
    assert all(any(arg.startswith("-out=") for arg in argv) for argv in plans)
    express = fake_repo.live / ".tfrun" / "cache" / "express"
    assert not express.exists() or not list(express.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "nowhere: no such folder"),
        (["tfrun.hcl"], "tfrun.hcl: this is a file, not a folder"),
        (["--env", "qa"], "--env qa: no stack of this repository has this env"),
        (["--region", "mars-1"], "--region mars-1: no stack"),
        (["--parallelism", "0"], "--parallelism takes a whole number of 1 or more, not 0"),
        (["--parallelism", "many"], "argument --parallelism: invalid int value"),
        (["--json", "."], "--json .: it is a folder; name a file"),
        (["--markdown", "tfrun.hcl/x.md"], "--markdown tfrun.hcl/x.md"),
        (["--json", "r.out", "--markdown", "r.out"], "--json and --markdown both name r.out"),
        (["--envv", "prod"], "unrecognized arguments: --envv"),
        (["--include", "nothing*"], "no stacks here or below match"),
    ],
)
def test_usage_errors_exit_4_before_terraform(
    fake_repo: FakeRepo, args: list[str], message: str
) -> None:
    result = drift_cli(fake_repo, *args).assert_exit(4)
    assert message in result.stderr, result.stderr
    assert fake_repo.records() == []


# ------------------------------------------------------------------- tfrun ci gitlab --drift


def test_the_drift_pipeline_has_one_job_per_environment() -> None:
    options = ci.GitLabOptions(live_rel="live", image="img:1", tags=("aws",))
    document = ci.gitlab_drift("live", ["prod", "staging"], options)
    assert document["stages"] == ["drift"]
    assert document["default"] == {"image": "img:1", "tags": ["aws"]}
    job = document["drift prod"]
    assert job["script"] == [
        "tfrun drift live --env prod --json live/.tfrun/ci/drift/prod.json "
        "--markdown live/.tfrun/ci/drift/prod.md"
    ]
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["paths"] == [
        "live/.tfrun/ci/drift/prod.json",
        "live/.tfrun/ci/drift/prod.md",
    ]
    assert job["rules"] == [{"if": ci.DRIFT_RULE}]
    assert '$CI_PIPELINE_SOURCE == "schedule"' in ci.DRIFT_RULE
    # Drift fails the job, so the schedule's pipeline shows red.
    assert "allow_failure" not in job
    assert [n for n in document if n.startswith("drift ")] == ["drift prod", "drift staging"]


def test_the_drift_pipeline_needs_stacks() -> None:
    with pytest.raises(ci.ConfigError, match="no stacks to check for drift"):
        ci.gitlab_drift("live", [], ci.GitLabOptions())


@pytest.fixture
def in_repo(make_repo: Callable[..., LiveRepo]) -> Iterator[Path]:
    repo = make_repo(BASE_FILES, git=True)
    old = Path.cwd()
    os.chdir(repo.top)
    try:
        yield repo.top
    finally:
        os.chdir(old)


def test_ci_gitlab_drift_command(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ci", "gitlab", "--drift", "--tag", "aws"]) == 0
    out, err = capsys.readouterr()
    document = yaml.safe_load(out)
    assert out.startswith("# Generated by tfrun ci gitlab --drift")
    assert [n for n in document if n.startswith("drift ")] == [
        "drift prod",
        "drift shared-services",
        "drift staging",
    ]
    assert "3 environments (prod, shared-services, staging)" in err
    assert document["drift prod"]["script"][0].startswith("tfrun drift . --env prod ")
    # PATH narrows the environments, and names the folder the jobs check.
    assert cli.main(["ci", "gitlab", "--drift", f"live/{P}"]) == 0
    out, err = capsys.readouterr()
    document = yaml.safe_load(out)
    assert [n for n in document if n.startswith("drift ")] == ["drift prod"]
    assert document["drift prod"]["script"][0].startswith(f"tfrun drift live/{P} --env prod ")
    assert S not in out


@pytest.mark.parametrize("flag", [["--base", "HEAD"], ["--static"], ["--plan-only"]])
def test_ci_gitlab_drift_refuses_change_flags(
    in_repo: Path, capsys: pytest.CaptureFixture[str], flag: list[str]
) -> None:
    assert cli.main(["ci", "gitlab", "--drift", *flag]) == 4
    assert f"{flag[0]} is for pipelines of a change" in capsys.readouterr().err


def test_every_plan_refreshes_whatever_the_config_adds(fake_repo: FakeRepo) -> None:
    """A configured `-refresh=false` (fast everyday plans) would hide every change made
    outside terraform: drift's `-refresh=true` comes after it, and terraform takes the last."""
    root = fake_repo.live / "tfrun.hcl"
    root.write_text(
        root.read_text(encoding="utf-8")
        + '\nextra_arguments "fast" {\n  commands  = ["plan"]\n'
        + '  arguments = ["-refresh=false"]\n}\n',
        encoding="utf-8",
    )
    drift_cli(fake_repo, *reports(fake_repo)).assert_exit(0)
    plans = [r["args"] for r in fake_repo.records("start") if r["args"][0] == "plan"]
    assert len(plans) == 2
    for argv in plans:
        assert argv.index("-refresh=false") < argv.index("-refresh=true"), argv


def test_configured_arguments_that_narrow_the_plan_are_refused(fake_repo: FakeRepo) -> None:
    (fake_repo.live / PROD_REL / "stack.hcl").write_text(
        'extra_arguments "focus" {\n  commands  = ["plan"]\n'
        '  arguments = ["-target=aws_vpc.main"]\n}\n',
        encoding="utf-8",
    )
    result = drift_cli(fake_repo, *reports(fake_repo)).assert_exit(4)
    assert (
        f'{PROD_REL} plans with -target=aws_vpc.main (extra_arguments "focus" in '
        f"live/{PROD_REL}/stack.hcl)"
    ) in result.stderr
    assert "Nothing ran." in result.stderr
    assert fake_repo.records() == []
    # Without that stack, the rest is checked.
    drift_cli(fake_repo, "--exclude", PROD_REL).assert_exit(0)
