"""The CI templates in docs/ci.md install tfrun one way: the shell line in the variable
TFRUN_INSTALL, defined once per template and run (with eval) by every job that calls tfrun
before it does; the pipelines tfrun generates get the same line. The pinned version is the
package's. tests/test_ci_gitlab_local.py checks the GitLab blocks against GitLab's schema and
runs the parent pipeline's generate job with the line pointed at a freshly built wheel."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO_ROOT

import tfrun

DOC = REPO_ROOT / "docs" / "ci.md"
RUN_INSTALL = 'eval "$TFRUN_INSTALL"'
# tfrun run as a command: at the start of a line or after a shell separator.
CALLS_TFRUN = re.compile(r"(?:^|[\s;&|(`])tfrun\s", re.M)


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def yaml_blocks(text: str) -> list[Any]:
    return [yaml.safe_load(block) for block in code_blocks(text, "yaml")]


def is_github_workflow(document: Any) -> bool:
    # PyYAML reads the key `on` as True (YAML 1.1).
    return isinstance(document, dict) and "jobs" in document and True in document


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def lines(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def gitlab_problems(document: dict[str, Any]) -> list[str]:
    """What is wrong with one GitLab pipeline's way of installing tfrun."""
    problems = []
    variables = document.get("variables") or {}
    install = variables.get("TFRUN_INSTALL")
    jobs = {
        name: job
        for name, job in document.items()
        if isinstance(job, dict) and ("script" in job or "trigger" in job)
    }
    calling = {name for name, job in jobs.items() if CALLS_TFRUN.search("\n".join(strings(job)))}
    if calling or "include" in document:
        if not (isinstance(install, dict) and install.get("expand") is False):
            problems.append(
                "TFRUN_INSTALL must be a global variable with expand: false (the child "
                "pipeline's jobs expand $CI_JOB_TOKEN themselves)"
            )
        elif f"tfrun=={tfrun.__version__} " not in install["value"]:
            problems.append(f"TFRUN_INSTALL does not pin tfrun=={tfrun.__version__}")
    default = (document.get("default") or {}).get("before_script")
    for name in sorted(calling):
        job = jobs[name]
        before = lines(job.get("before_script", default))
        if before[:1] != [RUN_INSTALL]:
            problems.append(f"{name}: before_script does not start with {RUN_INSTALL}")
        for line in lines(job.get("script")):
            if "tfrun ci gitlab" in line and '--before-script "$TFRUN_INSTALL"' not in line:
                problems.append(f'{name}: tfrun ci gitlab without --before-script "$TFRUN_INSTALL"')
    for name in sorted(calling):
        for text in strings(jobs[name]):
            if "pip install" in text:
                problems.append(f"{name}: installs with its own line: {text}")
    return problems


def github_problems(workflows: dict[str, dict[str, Any]]) -> list[str]:
    """What is wrong with the GitHub workflows' way of installing tfrun. `workflows` by file
    name; a job that calls another file passes it TFRUN_INSTALL as the input `install`."""
    problems = []
    for file, workflow in workflows.items():
        workflow_env = workflow.get("env") or {}
        for name, job in workflow["jobs"].items():
            where = f"{file}: {name}"
            if "uses" in job:
                called = workflows.get(Path(job["uses"]).name)
                if called and (called.get(True) or {}).get("workflow_call"):
                    source = job.get("with", {}).get("install", "")
                    if not re.fullmatch(r"\$\{\{ needs\.\w+\.outputs\.install \}\}", source):
                        problems.append(f"{where}: does not pass TFRUN_INSTALL as `install`")
                continue
            env = {**workflow_env, **(job.get("env") or {})}
            runs = [step.get("run", "") for step in job.get("steps", [])]
            first_call = next((i for i, run in enumerate(runs) if CALLS_TFRUN.search(run)), None)
            if first_call is None:
                continue
            if RUN_INSTALL not in runs[:first_call]:
                problems.append(f"{where}: calls tfrun before (or without) {RUN_INSTALL}")
            if "TFRUN_INSTALL" not in env:
                problems.append(f"{where}: has no TFRUN_INSTALL in its env")
            problems += [f"{where}: installs with its own line: {r}" for r in runs if "pip " in r]
        install = workflow_env.get("TFRUN_INSTALL")
        if install is not None and f"@v{tfrun.__version__}" not in install:
            problems.append(f"{file}: TFRUN_INSTALL does not pin v{tfrun.__version__}")
        for name, job in workflow["jobs"].items():
            for output, value in (job.get("outputs") or {}).items():
                if output == "install" and value != "${{ env.TFRUN_INSTALL }}":
                    problems.append(f"{file}: {name}: output install is not TFRUN_INSTALL")
    return problems


def workflow_files(text: str) -> dict[str, dict[str, Any]]:
    """The workflows of the GitHub section by the file each is to be copied to: the
    paragraph before each block names it."""
    found = {}
    for match in re.finditer(r"`(?:\.github/workflows/)?([\w.-]+\.yml)`[^`]*?:\n\n```yaml\n", text):
        block = text[match.end() :].split("```", 1)[0]
        found[match[1]] = yaml.safe_load(block)
    return found


def test_every_template_block_is_a_gitlab_pipeline_or_a_github_workflow() -> None:
    documents = yaml_blocks(DOC.read_text(encoding="utf-8"))
    github = [d for d in documents if is_github_workflow(d)]
    gitlab = [d for d in documents if not is_github_workflow(d)]
    # The parent pipeline, the --static include, the publish job; terraform.yml, tfrun-apply.yml.
    assert (len(gitlab), len(github)) == (3, 2)


def test_every_gitlab_job_that_calls_tfrun_installs_it_with_tfrun_install() -> None:
    documents = yaml_blocks(DOC.read_text(encoding="utf-8"))
    gitlab = [d for d in documents if not is_github_workflow(d)]
    for document in gitlab:
        assert gitlab_problems(document) == [], yaml.safe_dump(document)
    # One line, the same in both templates that define it.
    values = {d["variables"]["TFRUN_INSTALL"]["value"] for d in gitlab if "variables" in d}
    assert len(values) == 1, values


def test_the_static_pipeline_is_generated_to_run_tfrun_install() -> None:
    text = DOC.read_text(encoding="utf-8")
    commands = [b for b in code_blocks(text, "sh") if "tfrun ci gitlab --static" in b]
    assert len(commands) == 1
    assert "--before-script 'eval \"$TFRUN_INSTALL\"'" in commands[0]
    assert "pip install" not in commands[0]


def test_every_github_job_that_calls_tfrun_installs_it_with_tfrun_install() -> None:
    workflows = workflow_files(DOC.read_text(encoding="utf-8"))
    assert sorted(workflows) == ["terraform.yml", "tfrun-apply.yml"]
    assert github_problems(workflows) == []
    apply = workflows["tfrun-apply.yml"]
    assert apply[True]["workflow_call"]["inputs"]["install"]["type"] == "string"
    assert apply["jobs"]["apply"]["env"]["TFRUN_INSTALL"] == "${{ inputs.install }}"


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('    - eval "$TFRUN_INSTALL"\n', "    - pip install tfrun\n", "generate: before_script"),
        ('--before-script "$TFRUN_INSTALL"', "--before-script x", "generate: tfrun ci gitlab"),
        ("    expand: false\n", "", "expand: false"),
        ("tfrun==", "tfrun>=", "does not pin"),
    ],
)
def test_the_gitlab_check_catches_a_job_that_installs_another_way(
    old: str, new: str, problem: str
) -> None:
    text = DOC.read_text(encoding="utf-8")
    parent = text.split("## GitLab: a child pipeline", 1)[1].split("```yaml\n", 1)[1]
    parent = parent.split("```", 1)[0]
    assert old in parent
    problems = gitlab_problems(yaml.safe_load(parent.replace(old, new, 1)))
    assert [p for p in problems if problem in p], problems


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('      - run: eval "$TFRUN_INSTALL"\n      - id', "      - id", "affected: calls tfrun"),
        (
            "      - run: tfrun plan",
            "      - run: pip install tfrun\n      - run: tfrun plan",
            "own",
        ),
        ("      install: ${{ needs.affected.outputs.install }}\n", "", "apply-0: does not pass"),
        ("      TFRUN_INSTALL: ${{ inputs.install }}\n", "", "apply: has no TFRUN_INSTALL"),
    ],
)
def test_the_github_check_catches_a_job_that_installs_another_way(
    old: str, new: str, problem: str
) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert old in text
    problems = github_problems(workflow_files(text.replace(old, new, 1)))
    assert [p for p in problems if problem in p], problems


@pytest.mark.parametrize("doc", ["README.md", "docs/ci.md"])
def test_the_docs_name_the_version_tfrun_has(doc: str) -> None:
    text = (REPO_ROOT / doc).read_text(encoding="utf-8")
    named = re.findall(
        r"tfrun==([\d.]+)|tfrun-([\d.]+)-py3|tfrun(?:\.git)?@v([\d.]+)|tag `v([\d.]+)`", text
    )
    versions = {v for groups in named for v in groups if v}
    assert versions == {tfrun.__version__}
