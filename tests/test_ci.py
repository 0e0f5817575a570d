"""Pipeline generation (`tfrun ci`): the pure documents, their YAML, and the commands on
real git repositories. Schema validation and running the pipeline: test_ci_gitlab_local.py."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import LiveRepo, write_tree
from test_affected import BASE_FILES, P, S, commit

from tfrun import ci, ci_github, cli, yaml_text
from tfrun.commands.ci import default_base
from tfrun.errors import ConfigError


def stack(
    rel: str, *needs: str, protected: bool = False, changes: tuple[str, ...] = ()
) -> ci.CIStack:
    env = rel.split("-")[0]
    return ci.CIStack(
        rel=rel,
        path=f"live/{rel}",
        env=env,
        region="eu-west-1",
        key=f"{env}/eu-west-1/{rel.split('/', 1)[1]}.tfstate",
        bucket="acme-tfstate",
        protected=protected,
        needs=needs,
        changes=changes,
    )


NETWORK = stack(f"{S}/network")
PLATFORM = stack(f"{S}/platform", f"{S}/network")
PROD_NETWORK = stack(f"{P}/network", protected=True)
PROD_DATA = stack(f"{P}/data", f"{P}/network", protected=True)
OPTIONS = ci.GitLabOptions(live_rel="live")


def names(document: dict[str, Any]) -> list[str]:
    return [k for k in document if k not in ("default", "stages")]


def job_list(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [document[name] for name in names(document) if name != "variables"]


def needed(job: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(n["job"], n["artifacts"]) for n in job["needs"]]


# ---------------------------------------------------------------------------- the child pipeline


def test_plan_and_apply_jobs_form_the_dag() -> None:
    document = ci.gitlab_child([NETWORK, PLATFORM], OPTIONS)
    assert document["stages"] == ["plan", "apply", "summary"]
    assert names(document) == [
        f"plan {S}/network",
        f"apply {S}/network",
        f"plan {S}/platform",
        f"apply {S}/platform",
        "summary",
    ]
    plan = document[f"plan {S}/network"]
    assert plan["stage"] == "plan" and plan["needs"] == []
    assert plan["script"] == [
        f"tfrun plan live/{S}/network --include {S}/network "
        f"--json live/.tfrun/ci/plan/{S}/network.json "
        f"--gitlab-report live/.tfrun/ci/gitlab/{S}/network.json -out=tfplan",
        f"if [ -f live/{S}/network/tfplan ]; then tfrun show live/{S}/network -no-color tfplan "
        f"> live/.tfrun/ci/plan/{S}/network.txt; fi",
    ]
    assert plan["artifacts"] == {
        "name": f"{S}/network",  # the merge request's widget lists the plan by this name
        "when": "always",
        "expire_in": "1 week",
        "paths": [
            f"live/{S}/network/tfplan",
            f"live/{S}/network/.terraform.lock.hcl",
            f"live/.tfrun/ci/plan/{S}/network.json",
            f"live/.tfrun/ci/plan/{S}/network.txt",
            f"live/.tfrun/ci/gitlab/{S}/network.json",
        ],
        "reports": {"terraform": f"live/.tfrun/ci/gitlab/{S}/network.json"},
    }
    apply = document[f"apply {S}/network"]
    assert needed(apply) == [(f"plan {S}/network", True)]
    assert apply["script"] == [f"tfrun apply live/{S}/network --yes tfplan"]
    assert apply["interruptible"] is False and "when" not in apply
    # The dependent plans after its dependency is applied (it reads the new outputs), in the
    # apply stage since a job may only need jobs of its own or earlier stages.
    later = document[f"plan {S}/platform"]
    assert later["stage"] == "apply"
    assert needed(later) == [(f"apply {S}/network", False)]
    assert needed(document[f"apply {S}/platform"]) == [
        (f"plan {S}/platform", True),
        (f"apply {S}/network", False),
    ]


def test_one_resource_group_per_state_key() -> None:
    document = ci.gitlab_child([NETWORK, PLATFORM], OPTIONS)
    group = "tfstate/acme-tfstate/staging/eu-west-1/network.tfstate"
    assert document[f"plan {S}/network"]["resource_group"] == group
    assert document[f"apply {S}/network"]["resource_group"] == group
    odd = ci.CIStack("x/y", "x/y", "x", "global", "a b/{c}$d.tfstate", "bkt", False)
    assert ci.resource_group(odd) == "tfstate/bkt/a_b/_c_d.tfstate"


def test_protected_environments_apply_in_manual_jobs() -> None:
    document = ci.gitlab_child([PROD_NETWORK, PROD_DATA], OPTIONS)
    for rel in (PROD_NETWORK.rel, PROD_DATA.rel):
        apply = document[f"apply {rel}"]
        assert (apply["when"], apply["allow_failure"]) == ("manual", False)
        assert "when" not in document[f"plan {rel}"]  # plans are read-only: they just run


def test_the_summary_job() -> None:
    notes = ["prod-eu-west-1/old was deleted"]
    summary = ci.gitlab_child([NETWORK, PLATFORM], OPTIONS, notes)["summary"]
    assert summary["when"] == "always"
    assert needed(summary) == [(f"plan {S}/network", True), (f"plan {S}/platform", True)]
    assert summary["script"] == [
        "echo 'prod-eu-west-1/old was deleted'",
        f"tfrun ci summary live/.tfrun/ci/plan --expect {S}/network --expect {S}/platform",
        'if [ -n "$TFRUN_GITLAB_TOKEN" ]; then tfrun ci comment live/.tfrun/ci/plan '
        f"--expect {S}/network --expect {S}/platform; fi",
    ]


def test_an_empty_change_is_a_valid_pipeline_with_a_no_op_job() -> None:
    document = ci.gitlab_child([], OPTIONS, ["x was deleted"])
    assert document["stages"] == ["summary"]
    assert document[ci.EMPTY_JOB]["script"] == [
        "echo 'tfrun: no stacks are affected by this change.'",
        "echo 'x was deleted'",
    ]


def test_options_image_tags_and_before_script() -> None:
    options = ci.GitLabOptions(
        live_rel="",
        image="python:3.12",
        tags=("aws", "small"),
        before_script=("pip install tfrun",),
    )
    document = ci.gitlab_child([stack(f"{S}/network")], options)
    assert document["default"] == {
        "image": "python:3.12",
        "tags": ["aws", "small"],
        "before_script": ["pip install tfrun"],
    }
    assert ci.gitlab_child([], options)["default"] == document["default"]
    assert "default" not in ci.gitlab_child([], OPTIONS)
    # A live root at the top of the repository: no prefix.
    assert ci.report_path("", f"{S}/network") == f".tfrun/ci/plan/{S}/network.json"


def test_jobs_authenticate_with_gitlabs_oidc_token_and_no_stored_keys() -> None:
    role = "arn:aws:iam::111111111111:role/gitlab-ci"
    options = ci.GitLabOptions(live_rel="live", ci_role_arn=role, before_script=("pip install",))
    document = ci.gitlab_child([NETWORK], options)
    assert document["default"]["id_tokens"] == {ci.ID_TOKEN_VARIABLE: {"aud": "sts.amazonaws.com"}}
    first, second = document["default"]["before_script"]
    assert ci.ID_TOKEN_VARIABLE in first and "$AWS_WEB_IDENTITY_TOKEN_FILE" in first
    assert second == "pip install"
    variables = document["variables"]
    assert variables["AWS_ROLE_ARN"] == role
    assert variables["AWS_WEB_IDENTITY_TOKEN_FILE"].startswith("${CI_PROJECT_DIR}/.tfrun/")
    assert "variables" not in ci.gitlab_child([NETWORK], OPTIONS)


def test_plan_only_pipelines_have_no_apply_jobs() -> None:
    options = ci.GitLabOptions(live_rel="live", plan_only=True)
    document = ci.gitlab_child([NETWORK, PLATFORM], options)
    assert names(document) == [f"plan {S}/network", f"plan {S}/platform", "summary"]
    # platform plans after network's plan, against the outputs network's plan says it will
    # have (its report is an artifact); network, reading nothing, plans at once.
    platform = document[f"plan {S}/platform"]
    assert platform["needs"] == [{"job": f"plan {S}/network", "artifacts": True}]
    assert platform["stage"] == "plan"
    assert "--upstream-plans live/.tfrun/ci/plan" in platform["script"][0]
    assert document[f"plan {S}/network"]["needs"] == []
    assert "--upstream-plans" not in document[f"plan {S}/network"]["script"][0]
    assert document["stages"] == ["plan", "summary"]


def test_a_stack_that_needs_more_jobs_than_gitlab_allows_waits_through_barriers() -> None:
    deps = [f"{S}/d{i:03}" for i in range(120)]
    wide = stack(f"{S}/wide", *deps)
    document = ci.gitlab_child([*(stack(d) for d in deps), wide], OPTIONS)
    apply = document[f"apply {S}/wide"]
    # Its own plan directly (its saved plan is in those artifacts), the rest through barriers.
    assert needed(apply) == [
        (f"plan {S}/wide", True),
        *((f"wait {n}/3 for apply {S}/wide", False) for n in (1, 2, 3)),
    ]
    barriers = [document[f"wait {n}/3 for apply {S}/wide"] for n in (1, 2, 3)]
    waited = [need for barrier in barriers for need in needed(barrier)]
    assert waited == [(f"apply {d}", False) for d in deps]
    assert [len(b["needs"]) for b in barriers] == [50, 50, 20]
    for barrier in barriers:
        assert barrier["stage"] == "apply" and "when" not in barrier and "artifacts" not in barrier
        assert "variables" not in barrier and barrier["before_script"] == []
    # A barrier comes before the job that needs it; every job is within GitLab's limit.
    order = names(document)
    assert order.index(f"wait 3/3 for apply {S}/wide") < order.index(f"apply {S}/wide")
    assert all(len(job.get("needs", ())) <= ci.NEEDS_LIMIT for job in job_list(document))


def test_barriers_pass_the_plan_reports_on_and_the_summary_still_runs_after_failures() -> None:
    many = [stack(f"{S}/s{i:04}") for i in range(ci.NEEDS_LIMIT * ci.NEEDS_LIMIT + 1)]
    document = ci.gitlab_child(many, ci.GitLabOptions(live_rel="live", plan_only=True))
    summary = document["summary"]
    # 2,501 plans: 51 barriers, too many for one job, so barriers of barriers.
    assert needed(summary) == [("wait 1/2 for summary", True), ("wait 2/2 for summary", True)]
    top = document["wait 1/2 for summary"]
    assert needed(top) == [(f"wait {n}/51 for summary", True) for n in range(1, 51)]
    first = document["wait 1/51 for summary"]
    assert needed(first) == [(f"plan {s.rel}", True) for s in many[:50]]
    for barrier in (top, first):
        assert barrier["when"] == "always"  # failed plans are listed too
        assert barrier["artifacts"]["paths"] == ["live/.tfrun/ci/"]
        assert "reports" not in barrier["artifacts"]  # one widget entry per plan job
    assert all(len(job.get("needs", ())) <= ci.NEEDS_LIMIT for job in job_list(document))


def test_static_barriers_keep_the_rules_of_the_job_they_stand_for() -> None:
    deps = [f"{S}/d{i:02}" for i in range(60)]
    globs = ("live/x/**/*",)
    stacks = [
        ci.CIStack(rel, f"live/{rel}", "staging", "eu-west-1", rel, "b", True, needs, changes=globs)
        for rel, needs in [*((d, ()) for d in deps), (f"{S}/wide", tuple(deps))]
    ]
    document = ci.gitlab_static(stacks, OPTIONS)
    barrier = document[f"wait 1/2 for apply {S}/wide"]
    # The apply's rule without its manual gate: only the apply itself waits for a person.
    assert barrier["rules"] == [{"if": ci.DEFAULT_BRANCH_RULE, "changes": list(globs)}]
    assert all(need["optional"] for need in barrier["needs"])
    links = document[f"apply {S}/wide"]["needs"][1:]
    assert all(link["optional"] for link in links)


def test_static_jobs_run_on_their_own_changes() -> None:
    globs = (f"live/{S}/platform/**/*", "live/tfrun.hcl", "modules/platform/**/*")
    stacks = [
        stack(f"{S}/network", changes=(f"live/{S}/network/**/*",)),
        stack(f"{S}/platform", f"{S}/network", changes=globs),
        stack(f"{P}/network", protected=True, changes=(f"live/{P}/network/**/*",)),
    ]
    document = ci.gitlab_static(stacks, OPTIONS)
    plan = document[f"plan {S}/platform"]
    assert plan["rules"] == [{"changes": list(globs)}]
    # The dependency's jobs exist only when its files changed: optional needs.
    assert plan["needs"] == [{"job": f"apply {S}/network", "artifacts": False, "optional": True}]
    apply = document[f"apply {S}/platform"]
    assert apply["rules"] == [{"if": ci.DEFAULT_BRANCH_RULE, "changes": list(globs)}]
    assert apply["needs"][0] == {"job": f"plan {S}/platform", "artifacts": True}
    assert document[f"apply {P}/network"]["rules"][0]["when"] == "manual"
    assert document[f"apply {P}/network"]["rules"][0]["allow_failure"] is False
    summary = document["summary"]
    assert summary["rules"][0]["when"] == "always"
    assert all(n["optional"] for n in summary["needs"])
    with pytest.raises(ConfigError):
        ci.gitlab_static([], OPTIONS)


# ---------------------------------------------------------------------------- GitHub


def test_the_github_matrix_is_ordered_in_waves() -> None:
    app = stack(f"{S}/app", f"{S}/platform")
    matrix = ci_github.github_matrix([app, PLATFORM, NETWORK, PROD_NETWORK])
    assert [(e["stack"], e["wave"]) for e in matrix["include"]] == [
        (f"{P}/network", 0),
        (f"{S}/network", 0),
        (f"{S}/platform", 1),
        (f"{S}/app", 2),
    ]
    assert matrix["include"][2] == {
        "stack": f"{S}/platform",
        "path": f"live/{S}/platform",
        "env": "staging",
        "region": "eu-west-1",
        "key": "staging/eu-west-1/platform.tfstate",
        "protected": False,
        "needs": [f"{S}/network"],
        "wave": 1,
    }
    assert ci_github.github_matrix([]) == {"include": []}


def test_waves_refuse_a_cycle_and_ignore_needs_outside_the_run() -> None:
    a, b = stack(f"{S}/a", f"{S}/b"), stack(f"{S}/b", f"{S}/a")
    with pytest.raises(ConfigError, match=f"in a cycle: {S}/a[.]"):
        ci_github.waves([a, b, NETWORK])
    with pytest.raises(ConfigError, match=f"in a cycle: {S}/a[.]"):
        ci_github.waves([stack(f"{S}/a", f"{S}/a")])
    assert ci_github.waves([b, NETWORK]) == {f"{S}/b": 0, f"{S}/network": 0}


def test_waves_of_a_long_chain() -> None:
    chain = [stack(f"{S}/s{i:04}", *([f"{S}/s{i - 1:04}"] if i else [])) for i in range(3000)]
    assert ci_github.waves(chain[::-1])[f"{S}/s2999"] == 2999


# ---------------------------------------------------------------------------- summary, YAML


def test_the_summary_table() -> None:
    report = {
        "command": "plan",
        "stacks": [
            {
                "path": f"{S}/network",
                "status": "succeeded",
                "changes": {"add": 2, "change": 1, "destroy": 0},
            }
        ],
    }
    text = ci.summary_text({f"{S}/network": report, "broken": None}, [f"{S}/network", f"{S}/app"])
    assert text.splitlines() == [
        "| stack | plan | changes |",
        "| --- | --- | --- |",
        "| broken | unreadable report |  |",
        f"| {S}/network | succeeded | +2 ~1 -0 |",
        f"| {S}/app | no report (the plan job did not run or failed early) |  |",
        "",
        "3 stacks, 1 with changes.",
    ]
    assert ci.summary_text({}) == "No plan reports.\n"


def test_the_summary_table_says_which_plans_are_provisional() -> None:
    planned = f"{S}/network: network (planned vpc_cidr; placeholder vpc_id)"
    report = {
        "stacks": [
            {"path": f"{S}/app", "status": "succeeded", "provisional": True,
             "planned_outputs": [planned], "changes": {"add": 1}},
            {"path": f"{S}/data", "status": "waiting", "reason": "waiting for ..."},
        ]
    }  # fmt: skip
    rows = ci.summary_text({"r": report}).splitlines()
    assert f"| {S}/app | succeeded (provisional: {planned}) | +1 ~0 -0 |" in rows
    assert f"| {S}/data | waiting |  |" in rows


def test_yaml_reads_back_as_the_document() -> None:
    long_line = "tfrun plan " + "live/stack " * 40
    document = {
        "stages": ["plan"],
        "plan a/b": {
            "needs": [],
            "when": "on_success",
            "rules": [{"if": "$X == $Y", "changes": ["a/**/*", "*/tfrun.hcl"]}],
            "list": [["x"]],
            "flags": [True, None, 3, "yes", "No", "on", "1 week", "3", "1.0", "1e3", "0o17"],
            "script": ['say "hi"\necho done\n', long_line, "trailing \nspace"],
            "empty": {},
        },
    }
    text = yaml_text.to_yaml(document, "Generated.\nTwo lines.")
    assert text.startswith("# Generated.\n# Two lines.\n\n")
    # Strings that look like booleans or numbers stay strings, for YAML 1.1 and 1.2 readers.
    assert yaml.safe_load(text) == document
    # PyYAML reads YAML 1.1, where these two are strings anyway; YAML 1.2 reads numbers.
    assert "- '1e3'" in text and "- '0o17'" in text
    lines = text.splitlines()
    # Keys keep their order; a long script line is never folded; a multi-line one reads as is.
    assert [line for line in lines if line and not line[0].isspace()] == [
        "# Generated.",
        "# Two lines.",
        "stages:",
        "plan a/b:",
    ]
    assert any(long_line.strip() in line for line in lines)
    assert '      say "hi"' in lines and "      echo done" in lines
    assert yaml_text.to_yaml({"a": ("x", "y")}) == "a:\n  - x\n  - y\n"


# ---------------------------------------------------------------------------- the commands


@pytest.fixture
def repo(make_repo: Callable[..., LiveRepo]) -> LiveRepo:
    repo = make_repo(BASE_FILES, git=True)
    write_tree(repo.top, {"modules/vpc/main.tf": BASE_FILES["modules/vpc/main.tf"] + "# changed\n"})
    commit(repo.top)
    return repo


@pytest.fixture
def in_dir(repo: LiveRepo) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(repo.top)
    try:
        yield repo.top
    finally:
        os.chdir(old)


def jobs(text: str, kind: str) -> list[str]:
    return [name for name in yaml.safe_load(text) if name.startswith(f"{kind} ")]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_ci_gitlab_for_a_change(in_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["ci", "gitlab", "--base", "HEAD~1", "--with-dependents"], capsys)
    assert code == 0, err
    assert out.startswith("# Generated by tfrun ci gitlab: 4 stacks affected")
    assert names(yaml.safe_load(out)) == [
        f"plan {P}/network",
        f"apply {P}/network",
        f"plan {S}/network",
        f"apply {S}/network",
        f"plan {S}/platform",
        f"apply {S}/platform",
        f"plan {S}/app",
        f"apply {S}/app",
        "summary",
    ]
    assert "4 stacks in the pipeline" in err


def test_ci_gitlab_takes_the_base_from_gitlab(
    in_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = os.popen("git rev-parse HEAD~1").read().strip()
    assert default_base({"CI_COMMIT_BEFORE_SHA": "0" * 40}) is None
    assert (
        default_base({"CI_MERGE_REQUEST_DIFF_BASE_SHA": "abc", "CI_COMMIT_BEFORE_SHA": "d"})
        == "abc"
    )
    monkeypatch.setenv("CI_COMMIT_BEFORE_SHA", before)
    _, out, _ = run(["ci", "gitlab", "live"], capsys)
    assert "2 stacks affected" in out
    # A new branch's first push has no before: every stack.
    monkeypatch.setenv("CI_COMMIT_BEFORE_SHA", "0" * 40)
    _, out, err = run(["ci", "gitlab", "--plan-only"], capsys)
    assert "every stack is in the pipeline" in err
    assert len(jobs(out, "plan")) == 7 and jobs(out, "apply") == []


def test_ci_gitlab_static_lists_paths_modules_and_config(
    in_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(in_dir, {f"live/{S}/platform/templates/policy.json": "{}"})
    code, out, _ = run(["ci", "gitlab", "--static", "--image", "img:1"], capsys)
    assert code == 0
    document = yaml.safe_load(out)
    assert len(jobs(out, "plan")) == 7
    assert document["default"] == {"image": "img:1"}
    assert document[f"plan {S}/network"]["rules"] == [
        {
            "changes": [
                f"live/{S}/network/**/*",
                "live/tfrun.hcl",
                "modules/labels/**/*",
                "modules/naming/**/*",
                "modules/vpc/**/*",
            ]
        }
    ]
    # platform holds the nested stack platform/eks: its own files and other folders only.
    platform = document[f"plan {S}/platform"]
    assert f"live/{S}/platform/*" in platform["rules"][0]["changes"]
    assert f"live/{S}/platform/templates/**/*" in platform["rules"][0]["changes"]
    assert "eks" not in json.dumps(platform)
    code, _, err = run(["ci", "gitlab", "--static", "--base", "HEAD"], capsys)
    assert code == 4 and "--static writes jobs for every stack" in err


def test_ci_github(in_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["ci", "github", "--base", "HEAD~1", "--with-dependents"], capsys)
    assert code == 0 and len(out.splitlines()) == 1
    matrix = json.loads(out)
    assert [(e["stack"], e["wave"], e["needs"]) for e in matrix["include"]] == [
        (f"{P}/network", 0, []),
        (f"{S}/network", 0, []),
        (f"{S}/platform", 1, [f"{S}/network"]),
        (f"{S}/app", 2, [f"{S}/platform"]),
    ]
    code, out, _ = run(["ci", "github", "--base", "HEAD"], capsys)
    assert json.loads(out) == {"include": []}


def test_ci_summary_reads_a_folder_of_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "plan"
    write_tree(
        reports,
        {
            f"{S}/network.json": json.dumps(
                {"stacks": [{"path": f"{S}/network", "status": "succeeded", "changes": None}]}
            ),
            f"{S}/bad.json": "{not json",
        },
    )
    code, out, _ = run(["ci", "summary", str(reports), "--expect", f"{P}/x"], capsys)
    assert code == 0
    assert f"| {S}/bad | unreadable report |  |" in out
    assert f"| {S}/network | succeeded |  |" in out
    assert f"| {P}/x | no report" in out
