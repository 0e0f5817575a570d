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
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO_ROOT, StateBackend, cli_environ, run_cli
from test_ci import stack as ci_stack

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
