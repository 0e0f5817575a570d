"""The generated GitLab pipelines against GitLab's own CI schema, and one of them run for real
with gitlab-ci-local: plan and apply jobs of real tfrun and terraform against the moto
sandbox, in dependency order, the states landing in the bucket.

The schema is the one gitlab-ci-local 4.60.1 bundles (GitLab's `ci.json`), checked with the
same validator (ajv) and options it uses itself. scripts/setup.sh installs gitlab-ci-local
and rsync; without them these tests fail, loudly, rather than skip.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_terraform import write_shim
from helpers import (
    EXAMPLES,
    REPO_ROOT,
    StateBackend,
    clean_environ,
    cli_environ,
    make_clean_venv,
    root_hcl,
    run_cli,
    write_tree,
)
from test_ci import stack as ci_stack

import tfrun
from tfrun import ci, generate, yaml_text

VERSION = "4.60.1"
S = "staging-eu-west-1"

VALIDATE_JS = """\
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [pkg, file] = process.argv.slice(2);
const require = createRequire(path.join(pkg, "package.json"));
const yaml = require("js-yaml");
const Ajv = require("ajv").default;
const schemaUrl = pathToFileURL(path.join(pkg, "src", "schema", "index.js")).href;
const { default: schema } = await import(schemaUrl);
const document = yaml.load(fs.readFileSync(file, "utf8"));
// The options gitlab-ci-local validates with (src/validator.js).
const ajv = new Ajv({
  allErrors: true,
  allowUnionTypes: true,
  validateFormats: false,
  strictTypes: false,
  keywords: ["markdownDescription"],
});
const validate = ajv.compile(schema);
const ok = validate(document);
process.stdout.write(JSON.stringify({ ok, errors: validate.errors ?? [], document }));
"""


def _fail(message: str) -> None:
    pytest.fail(message + " Run scripts/setup.sh, which installs both.", pytrace=False)


@pytest.fixture(scope="session")
def gitlab_ci_local() -> tuple[str, Path]:
    """The gitlab-ci-local executable and its package folder (which holds the schema)."""
    executable = shutil.which("gitlab-ci-local")
    if executable is None:
        _fail(f"gitlab-ci-local is not on PATH (npm install -g gitlab-ci-local@{VERSION}).")
    assert executable is not None
    package = Path(executable).resolve().parents[1]
    try:
        version = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError) as exc:
        _fail(f"{package}: not a gitlab-ci-local package ({exc}).")
    if version != VERSION:
        _fail(f"gitlab-ci-local is {version}; these tests are written for {VERSION}.")
    if shutil.which("rsync") is None:
        _fail("rsync is not on PATH; gitlab-ci-local's shell isolation copies jobs with it.")
    if shutil.which("node") is None:
        _fail("node is not on PATH.")
    return executable, package


@pytest.fixture(scope="session")
def validator(gitlab_ci_local: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    script = tmp_path_factory.mktemp("schema") / "validate.mjs"
    script.write_text(VALIDATE_JS, encoding="utf-8")
    return script


def validate(validator: Path, package: Path, text: str, tmp_path: Path) -> dict[str, Any]:
    file = tmp_path / "pipeline.yml"
    file.write_text(text, encoding="utf-8")
    done = subprocess.run(
        ["node", str(validator), str(package), str(file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def stack(rel: str, *needs: str, protected: bool = False) -> ci.CIStack:
    return ci_stack(
        rel,
        *needs,
        protected=protected,
        changes=(f"live/{rel}/**/*", "live/tfrun.hcl", "modules/vpc/**/*"),
    )


STACKS = [
    stack(f"{S}/network"),
    stack(f"{S}/platform", f"{S}/network"),
    stack("prod-eu-west-1/network", protected=True),
    stack("prod-eu-west-1/data", "prod-eu-west-1/network", protected=True),
]
OPTIONS = ci.GitLabOptions(
    live_rel="live",
    image="python:3.12-slim",
    tags=("aws",),
    before_script=("pip install tfrun", "tfrun --version"),
)

PIPELINES = {
    "child": ci.gitlab_child(STACKS, OPTIONS, ["prod-eu-west-1/old was deleted"]),
    "empty": ci.gitlab_child([], OPTIONS, ["x was deleted"]),
    "empty-no-options": ci.gitlab_child([], ci.GitLabOptions()),
    "plan-only": ci.gitlab_child(STACKS, ci.GitLabOptions(live_rel="live", plan_only=True)),
    "static": ci.gitlab_static(STACKS, OPTIONS),
    "web-identity": ci.gitlab_child(
        STACKS,
        ci.GitLabOptions(live_rel="live", ci_role_arn="arn:aws:iam::111111111111:role/gitlab-ci"),
    ),
    # Strings YAML 1.1 or 1.2 would read as other types, a multi-line and a very long script.
    "odd-strings": ci.gitlab_child(
        STACKS[:1],
        ci.GitLabOptions(
            live_rel="live",
            image="1e3",
            tags=("yes", "0o17", "on", "null", "1.0"),
            before_script=("set -e\necho 'two lines'\n", "echo " + "x" * 300),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipelines_match_gitlabs_schema(
    name: str, gitlab_ci_local: tuple[str, Path], validator: Path, tmp_path: Path
) -> None:
    document = PIPELINES[name]
    text = yaml_text.to_yaml(document, "comment")
    result = validate(validator, gitlab_ci_local[1], text, tmp_path)
    assert result["ok"], json.dumps(result["errors"], indent=2)
    # And the YAML reads back (with js-yaml, as gitlab-ci-local reads it) as what was written.
    assert result["document"] == json.loads(json.dumps(document))


def test_the_schema_check_catches_a_broken_pipeline(
    gitlab_ci_local: tuple[str, Path], validator: Path, tmp_path: Path
) -> None:
    broken = {"job": {"script": ["x"], "needs": [{"artifacts": True}], "when": "sometimes"}}
    result = validate(validator, gitlab_ci_local[1], yaml_text.to_yaml(broken), tmp_path)
    assert not result["ok"]


def test_the_parent_pipeline_in_the_docs_matches_the_schema(
    gitlab_ci_local: tuple[str, Path], validator: Path, tmp_path: Path
) -> None:
    """docs/ci.md promises a ready .gitlab-ci.yml: the first YAML block of its GitLab section."""
    text = (REPO_ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    section = text.split("## GitLab: a child pipeline", 1)[1]
    parent = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    result = validate(validator, gitlab_ci_local[1], parent, tmp_path)
    assert result["ok"], json.dumps(result["errors"], indent=2)
    trigger = result["document"]["terraform"]["trigger"]
    assert trigger["include"] == [{"artifact": "child-pipeline.yml", "job": "generate"}]
    assert "tfrun ci gitlab" in result["document"]["generate"]["script"][0]


def gitlab_blocks_of_the_docs() -> list[str]:
    """The YAML blocks of docs/ci.md that are GitLab pipelines: all but the GitHub workflows
    and the steps of one (GitHub's `${{ }}` expressions)."""
    text = (REPO_ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, re.M | re.S)
    return [b for b in blocks if not re.search(r"^on:", b, re.M) and "${{" not in b]


def test_every_gitlab_block_in_the_docs_matches_the_schema(
    gitlab_ci_local: tuple[str, Path], validator: Path, tmp_path: Path
) -> None:
    """The parent pipeline, the --static include with its TFRUN_INSTALL, the publish job."""
    blocks = gitlab_blocks_of_the_docs()
    assert len(blocks) == 3
    for block in blocks:
        result = validate(validator, gitlab_ci_local[1], block, tmp_path)
        assert result["ok"], block + json.dumps(result["errors"], indent=2)


# ---------------------------------------------------------------------------- the real run


def git(top: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=top, check=True, capture_output=True)


def job_events(output: str) -> list[tuple[str, str]]:
    """(job, "start" | "end") in the order gitlab-ci-local printed them."""
    events = []
    for line in output.splitlines():
        started = re.match(r"(\S.*?)\s+starting shell \(", line)
        if started:
            events.append((started[1], "start"))
        finished = re.match(r"(\S.*?)\s+finished in ", line)
        if finished:
            events.append((finished[1], "end"))
    return events


def artifacts(top: Path, path: str) -> list[Path]:
    """The files at `path` among the artifacts gitlab-ci-local kept, one per job that
    uploaded it."""
    kept = top / ".gitlab-ci-local" / "artifacts"
    return [job / path for job in kept.iterdir() if (job / path).is_file()]


def run_pipeline(executable: str, top: Path, tf_env: dict[str, str]) -> str:
    """child.yml in `top` run by gitlab-ci-local as runners would run it; its output, after
    checking that every job passed."""
    env = cli_environ(tf_env)
    # The jobs call `tfrun`: this checkout's, from the interpreter running the tests.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(
        [
            executable,
            "--file", "child.yml",
            "--force-shell-executor",  # no docker here; the jobs name no image anyway
            "--shell-isolation",  # each job in its own copy of the tracked files, like a runner
            "--no-artifacts-to-source",
            "--no-color",
            "--max-job-name-padding", "0",
        ],
        cwd=top,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=480,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


@pytest.mark.slow
def test_the_child_pipeline_runs_with_gitlab_ci_local(
    gitlab_ci_local: tuple[str, Path],
    examples_copy: Path,
    state_backend: StateBackend,
    tf_env: dict[str, str],
) -> None:
    """examples/live in a git repository, one commit changing modules/vpc: the pipeline for
    staging (with the stacks that read network's state) plans and applies network, then
    platform, then data, each job in a copy of the repository as a runner would have it."""
    live = examples_copy
    top = live.parent
    generate.ensure_gitignore(live)
    git(top, "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "examples")

    # platform reads shared-services/iam's state, which the staging pipeline does not apply.
    run_cli(["apply", "live/shared-services/iam", "--yes"], top, tf_env).assert_success()

    vpc = top / "modules" / "vpc" / "main.tf"
    vpc.write_text(
        vpc.read_text(encoding="utf-8").replace(
            'Name = "${var.name}-vpc"', 'Name = "${var.name}-vpc-v2"'
        ),
        encoding="utf-8",
    )
    git(top, "commit", "-q", "-am", "vpc: rename the VPC")

    generated = run_cli(
        ["ci", "gitlab", "--base", "HEAD~1", "--with-dependents", f"live/{S}"], top, tf_env
    ).assert_success()
    (top / "child.yml").write_text(generated.stdout, encoding="utf-8")
    expected = [f"{S}/network", f"{S}/platform", f"{S}/data"]
    plans = [name for name in yaml.safe_load(generated.stdout) if name.startswith("plan ")]
    assert plans == [f"plan {rel}" for rel in expected]

    output = run_pipeline(gitlab_ci_local[0], top, tf_env)

    events = job_events(output)
    order = [job for job, what in events if what == "end"]
    chain = [f"{kind} {rel}" for rel in expected for kind in ("plan", "apply")]
    assert [job for job in order if job in chain] == chain, output
    # Each job started only after the one before it in the chain had finished.
    for before, after in itertools.pairwise(chain):
        assert events.index((before, "end")) < events.index((after, "start")), output
    assert "summary" in order
    for job in [*chain, "summary"]:
        assert re.search(rf"PASS\s+{re.escape(job)}\s*$", output, re.M), output

    # The summary read the plan reports the plan jobs left as artifacts.
    for rel in expected:
        assert re.search(rf"\| {re.escape(rel)} \| succeeded \| \+\d+ ~\d+ -\d+ \|", output), output
    # Each plan job's artifacts hold the widget's report, with the counts of its plan, and the
    # plan as text for the comment.
    for rel in expected:
        [widget] = artifacts(top, f"live/.tfrun/ci/gitlab/{rel}.json")
        [report] = artifacts(top, f"live/.tfrun/ci/plan/{rel}.json")
        [text] = artifacts(top, f"live/.tfrun/ci/plan/{rel}.txt")
        counts = json.loads(report.read_text())["stacks"][0]["changes"]
        assert json.loads(widget.read_text()) == {
            "create": counts["add"],
            "update": counts["change"],
            "delete": counts["destroy"],
        }
        assert sum(counts.values()) > 0, counts
        assert "Terraform will perform the following actions" in text.read_text(), rel

    keys = state_backend.object_keys()
    for rel in ("network", "platform", "data"):
        key = f"staging/eu-west-1/{rel}.tfstate"
        assert key in keys, keys
        assert state_backend.read_json(key)["resources"], key
    vpcs = [
        r
        for r in state_backend.read_json("staging/eu-west-1/network.tfstate")["resources"]
        if r["type"] == "aws_vpc"
    ]
    assert vpcs[0]["instances"][0]["attributes"]["tags"]["Name"].endswith("-vpc-v2")
    # Nothing of prod was in the staging pipeline.
    assert not [k for k in keys if k.startswith("prod/")], keys


@pytest.mark.slow
def test_a_merge_request_of_a_new_environment_plans_every_stack(
    gitlab_ci_local: tuple[str, Path],
    make_repo: Any,
    state_backend: StateBackend,
    tf_env: dict[str, str],
) -> None:
    """A plan-only pipeline (merge requests) for an environment nothing of which is applied:
    the reader's plan job waits for the plan job of the stack it reads and plans against
    that plan's outputs, from its report; the summary says the plan is provisional."""
    repo = make_repo({"live/tfrun.hcl": state_backend.root_hcl()}, git=True)
    top = repo.top
    generate.ensure_gitignore(repo.live)
    (repo.live / f"{S}/up").mkdir(parents=True)
    (repo.live / f"{S}/up/main.tf").write_text(
        'resource "terraform_data" "a" { input = "x" }\n'
        'output "id" { value = terraform_data.a.id }\n'
        'output "name" { value = "net" }\n'
    )
    (repo.live / f"{S}/down").mkdir()
    (repo.live / f"{S}/down/stack.hcl").write_text('remote_state = { up = "../up" }\n')
    (repo.live / f"{S}/down/main.tf").write_text(
        'resource "terraform_data" "d" { input = data.terraform_remote_state.up.outputs.name }\n'
    )
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "a new environment")
    generated = run_cli(
        ["ci", "gitlab", "--base", "HEAD~1", "--plan-only"], top, tf_env
    ).assert_success()
    (top / "child.yml").write_text(generated.stdout, encoding="utf-8")
    output = run_pipeline(gitlab_ci_local[0], top, tf_env)
    events = job_events(output)
    assert events.index((f"plan {S}/up", "end")) < events.index((f"plan {S}/down", "start"))
    for job in (f"plan {S}/up", f"plan {S}/down", "summary"):
        assert re.search(rf"PASS\s+{re.escape(job)}\s*$", output, re.M), output
    assert f"| {S}/down | succeeded (provisional: {S}/up: up (planned name; placeholder id))" in (
        output
    ), output
    assert not state_backend.object_keys(), "a plan-only pipeline wrote state"


# ---------------------------------------------------------------------------- at scale

# Stacks the wide one reads, and the most needs a job may have: barriers of barriers of
# barriers (20 → 7 → 3 → 1), in a pipeline gitlab-ci-local runs in a minute or two.
# bench/pipeline.py runs one of hundreds of stacks at GitLab's own limit.
LEAVES = 20
LIMIT = 3


def wide_repository(top: Path) -> Path:
    """A live root of LEAVES stacks and one that reads them all, in one commit; its
    terraform is tests/fake_terraform.py (which records every start with a clock)."""
    leaves = [f"{S}/s{i:03}" for i in range(LEAVES)]
    files = {"live/tfrun.hcl": root_hcl()}
    for rel in leaves:
        files[f"live/{rel}/main.tf"] = 'output "id" { value = "x" }\n'
    names = [rel.rsplit("/", 1)[1] for rel in leaves]
    files[f"live/{S}/wide/stack.hcl"] = (
        "remote_state = {\n" + "".join(f'  {n} = "../{n}"\n' for n in names) + "}\n"
    )
    files[f"live/{S}/wide/main.tf"] = (
        'output "ids" {\n  value = [\n'
        + "".join(f"    data.terraform_remote_state.{n}.outputs.id,\n" for n in names)
        + "  ]\n}\n"
    )
    write_tree(top, files)
    generate.ensure_gitignore(top / "live")
    git(top, "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "wide")
    return top / "live"


@pytest.mark.slow
def test_a_pipeline_past_the_needs_limit_keeps_the_order_through_barriers(
    gitlab_ci_local: tuple[str, Path], validator: Path, tmp_path: Path
) -> None:
    """21 stacks, one of which reads the other 20, with at most 3 needs a job: the wide
    stack's plan and apply, and the summary, wait through barriers of barriers. The
    pipeline is valid, and run by gitlab-ci-local (real tfrun, a fake terraform) every
    upstream apply ends before the wide stack's plan starts, and the summary reads every
    report the barriers passed on."""
    top = tmp_path / "infra"
    wide_repository(top)
    record = tmp_path / "record.jsonl"
    env = {
        **os.environ,
        "TFRUN_TERRAFORM": str(write_shim(tmp_path / "bin")),
        "FAKE_TF_RECORD": str(record),
        "TF_PLUGIN_CACHE_DIR": str(tmp_path / "plugins"),
    }
    argv = ["ci", "gitlab", "live", "--needs-limit", str(LIMIT)]
    generated = run_cli(argv, top, env).assert_success()
    document = yaml.safe_load(generated.stdout)
    jobs = {name: job for name, job in document.items() if "script" in job}
    assert all(len(job.get("needs", ())) <= LIMIT for job in jobs.values())
    wide = f"plan {S}/wide"
    assert needed_jobs(document, wide) == {f"wait {n}/3 for {wide}" for n in (1, 2, 3)}
    assert needed_jobs(document, f"wait 1/3 for {wide}") == {
        f"wait {n}/7 for {wide}" for n in (1, 2, 3)
    }
    assert needed_jobs(document, f"wait 7/7 for {wide}") == {f"apply {S}/s018", f"apply {S}/s019"}
    result = validate(validator, gitlab_ci_local[1], generated.stdout, tmp_path)
    assert result["ok"], json.dumps(result["errors"], indent=2)
    (top / "child.yml").write_text(generated.stdout, encoding="utf-8")

    output = run_pipeline(gitlab_ci_local[0], top, env)

    for job in jobs:
        assert re.search(rf"PASS\s+{re.escape(job)}\s*$", output, re.M), (job, output)
    events = job_events(output)
    last_leaf = max(events.index((f"apply {S}/s{i:03}", "end")) for i in range(LEAVES))
    assert last_leaf < events.index((wide, "start")), output
    assert events.index((wide, "end")) < events.index((f"apply {S}/wide", "start")), output
    starts = [json.loads(line) for line in record.read_text().splitlines()]
    applied = [r["t"] for r in starts if r["event"] == "start" and r["args"][0] == "apply"]
    [planned] = [
        r["t"]
        for r in starts
        if r["event"] == "start" and r["args"][0] == "plan" and r["cwd"].endswith("/wide")
    ]
    assert len(applied) == LEAVES + 1 and sorted(applied)[-2] < planned < max(applied)
    # The summary had every plan's report, passed on by two levels of barriers.
    assert f"{LEAVES + 1} stacks, " in output, output
    assert "no report" not in output, output


def needed_jobs(document: dict[str, Any], name: str) -> set[str]:
    return {need["job"] for need in document[name]["needs"]}


@pytest.mark.slow
def test_the_parent_pipeline_generates_with_tfrun_install_pointed_at_a_wheel(
    gitlab_ci_local: tuple[str, Path], built_wheel: Path, tmp_path: Path
) -> None:
    """The parent pipeline of docs/ci.md, run by gitlab-ci-local with TFRUN_INSTALL set (as a
    team would set it) to install the wheel just built into a venv, offline: the generate job
    installs it, runs the installed tfrun (this checkout is on no path) and writes a child
    pipeline whose jobs start with the same line."""
    top = shutil.copytree(EXAMPLES, tmp_path / "infra")
    text = (REPO_ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    parent = text.split("## GitLab: a child pipeline", 1)[1].split("```yaml\n", 1)[1]
    (top / ".gitlab-ci.yml").write_text(parent.split("```", 1)[0], encoding="utf-8")
    generate.ensure_gitignore(top / "live")
    git(top, "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "examples")

    venv = tmp_path / "venv"
    make_clean_venv(venv)
    # gitlab-ci-local expands $ in variables given on its command line: the line has none.
    install = (
        f"{shlex.quote(str(venv / 'bin' / 'pip'))} install --no-deps --no-index "
        f"{shlex.quote(str(built_wheel))} && . {shlex.quote(str(venv / 'bin' / 'activate'))} "
        "&& command -v tfrun"
    )
    done = subprocess.run(
        [
            gitlab_ci_local[0], "generate",
            "--force-shell-executor",
            "--variable", f"TFRUN_INSTALL={install}",
            "--no-color",
            "--max-job-name-padding", "0",
        ],
        cwd=top,
        env=clean_environ(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"PASS\s+generate\s*$", output, re.M), output
    assert f"Successfully installed tfrun-{tfrun.__version__}" in output, output
    assert f"> {venv / 'bin' / 'tfrun'}\n" in output, output

    child = yaml.safe_load((top / "child-pipeline.yml").read_text(encoding="utf-8"))
    assert child["default"]["before_script"] == [install]
    assert child["default"]["image"] == "python:3.12"
    plans = [name for name in child if name.startswith("plan ")]
    assert len(plans) == 7, plans


# ---------------------------------------------------------------------------- drift


@pytest.mark.parametrize(
    "options",
    [OPTIONS, ci.GitLabOptions(), ci.GitLabOptions(live_rel="live", ci_role_arn="arn:x")],
)
def test_the_drift_pipeline_matches_gitlabs_schema(
    options: ci.GitLabOptions,
    gitlab_ci_local: tuple[str, Path],
    validator: Path,
    tmp_path: Path,
) -> None:
    document = ci.gitlab_drift("live", ["prod", "shared-services", "staging"], options)
    text = yaml_text.to_yaml(document, "comment")
    result = validate(validator, gitlab_ci_local[1], text, tmp_path)
    assert result["ok"], json.dumps(result["errors"], indent=2)
    assert result["document"] == json.loads(json.dumps(document))


def test_the_drift_schedule_in_the_docs_matches_the_schema(
    gitlab_ci_local: tuple[str, Path], validator: Path, tmp_path: Path
) -> None:
    """docs/drift.md promises a ready .gitlab-ci.yml: the last YAML block of its GitLab
    section, which generates the drift pipeline and triggers it."""
    text = (REPO_ROOT / "docs" / "drift.md").read_text(encoding="utf-8")
    section = text.split("## A scheduled drift check in GitLab", 1)[1]
    parent = section.split("```yaml\n")[2].split("```", 1)[0]
    result = validate(validator, gitlab_ci_local[1], parent, tmp_path)
    assert result["ok"], json.dumps(result["errors"], indent=2)
    document = result["document"]
    assert document["drift"]["trigger"]["include"] == [
        {"artifact": "drift-pipeline.yml", "job": "drift-generate"}
    ]
    assert document["drift"]["trigger"]["strategy"] == "depend"
    assert "tfrun ci gitlab --drift" in document["drift-generate"]["script"][0]
    # The job shown in the docs is what the command writes.
    shown = yaml.safe_load(section.split("```yaml\n")[1].split("```", 1)[0])
    written = ci.gitlab_drift("live", ["prod"], ci.GitLabOptions(live_rel="live"))
    assert shown == {"drift prod": written["drift prod"]}
