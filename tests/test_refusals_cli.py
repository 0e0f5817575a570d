"""The refusal matrix through the real CLI (DESIGN §7, §8): each destructive form tfrun accepts
on its command line, in each place that must refuse it, on a protected stack or not.

`tests/test_safety.py` covers the pure decisions; this file proves the wiring: the CLI in a
subprocess, with `--terraform-bin` pointing at a fake terraform that records every call. A
refused command must exit 3 with a message that names the stack and the rule, start no
terraform (a saved plan may be read with `show -json`, nothing else), and change no file:
the tree is compared byte for byte, with mtimes, before and after.

Every test passes the CI variables it means explicitly and clears the rest, because CI runs
this suite with CI=true in the environment.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import LiveRepo, is_isolated_variable, root_hcl, run_cli, write_tree

from tfrun.scan import RACY_NS

PROD = "prod-eu-west-1/network"
STAGING = "staging-eu-west-1/network"
PLAN = "destroy.tfplan"

# What `terraform show -json destroy.tfplan` prints: a plan that deletes the stack's resource.
DESTROY_PLAN = {
    "format_version": "1.2",
    "resource_changes": [
        {
            "address": "terraform_data.marker",
            "mode": "managed",
            "type": "terraform_data",
            "change": {"actions": ["delete"]},
        }
    ],
}

FAKE_TERRAFORM = """\
#!{python}
# A terraform that records each call (one JSON line) and succeeds; `show -json` prints a plan.
import json, os, sys
with open(os.environ["FAKE_TF_CALLS"], "a", encoding="utf-8") as calls:
    calls.write(json.dumps({{"cwd": os.getcwd(), "args": sys.argv[1:]}}) + "\\n")
if sys.argv[1:3] == ["show", "-json"]:
    with open(os.environ["FAKE_TF_PLAN"], encoding="utf-8") as plan:
        sys.stdout.write(plan.read())
"""

STACK_FILES = {
    "main.tf": 'resource "terraform_data" "marker" {\n  input = "keep me"\n}\n',
    PLAN: "a saved plan (the fake terraform reads its JSON from FAKE_TF_PLAN)\n",
}


@dataclass(frozen=True)
class Setup:
    repo: LiveRepo
    terraform: Path
    calls: Path
    plan_json: Path
    home: Path

    def environ(self, ci: dict[str, str]) -> dict[str, str]:
        """This process's environment without any CI (or TF_, AWS_) variable, plus `ci`."""
        env = {k: v for k, v in os.environ.items() if not is_isolated_variable(k)}
        env.update(ci)
        env["HOME"] = str(self.home)
        env["FAKE_TF_CALLS"] = str(self.calls)
        env["FAKE_TF_PLAN"] = str(self.plan_json)
        return env

    def recorded(self) -> list[list[str]]:
        if not self.calls.exists():
            return []
        lines = self.calls.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["args"] for line in lines]

    def cwd(self, where: str) -> Path:
        return {"top": self.repo.top, "live": self.repo.live}.get(where) or self.repo.live / where


def _make(base: Path) -> Setup:
    files: dict[str, str] = {"live/tfrun.hcl": root_hcl()}
    for stack in (PROD, STAGING):
        files.update({f"live/{stack}/{name}": text for name, text in STACK_FILES.items()})
    top = write_tree(base / "infra", files)
    bin_dir = base / "bin"
    bin_dir.mkdir()
    terraform = bin_dir / "terraform"
    terraform.write_text(FAKE_TERRAFORM.format(python=sys.executable), encoding="utf-8")
    terraform.chmod(terraform.stat().st_mode | stat.S_IXUSR)
    plan_json = bin_dir / "plan.json"
    plan_json.write_text(json.dumps(DESTROY_PLAN), encoding="utf-8")
    home = base / "home"
    home.mkdir()
    repo = LiveRepo(top, top / "live")
    return Setup(repo, terraform, bin_dir / "calls.jsonl", plan_json, home)


@pytest.fixture(scope="module")
def refusing_tree(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """One tree for the whole matrix: a refused command changes nothing, which each test
    checks, so sharing it is safe and saves making it anew."""
    made = _make(tmp_path_factory.mktemp("refusals"))
    # Warm tfrun's caches (parsed config, scanned .tf files), so that a refused run has
    # nothing of its own to save and the snapshot sees exactly what the command wrote. The
    # scan re-reads files changed within the last RACY_NS, so let that window pass first.
    time.sleep(RACY_NS / 1e9 + 0.2)
    run_cli(["graph", "--format", "json"], made.repo.live, made.environ({})).assert_success()
    return made


@pytest.fixture
def setup(refusing_tree: Setup) -> Setup:
    refusing_tree.calls.unlink(missing_ok=True)
    return refusing_tree


@pytest.fixture
def fresh(tmp_path: Path) -> Setup:
    """A tree of the test's own, for commands that do run (and write generated files)."""
    return _make(tmp_path)


def snapshot(root: Path) -> dict[str, tuple[int, bytes] | None]:
    """Every path under `root`: a file's mtime and bytes, a folder's presence."""
    found: dict[str, tuple[int, bytes] | None] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        found[rel] = (path.stat().st_mtime_ns, path.read_bytes()) if path.is_file() else None
    return found


# Each destructive form: (tfrun's arguments, where it runs, what the message calls it).
# `--yes` is in every one: it approves in advance and never bypasses a safety rule.
FORMS = {
    "destroy": (["destroy", "--yes"], PROD, "destroy"),
    "apply -destroy": (["apply", "-destroy", "--yes"], PROD, "apply -destroy"),
    "run-all destroy": (["run-all", "destroy", "--yes"], "live", "destroy"),
    "destroy PATH, one stack protected": (["destroy", "live", "--yes"], "top", "destroy"),
    "state rm": (["state", "rm", "terraform_data.marker", "--yes"], PROD, "state rm"),
    "workspace delete": (["workspace", "delete", "blue", "--yes"], PROD, "workspace delete"),
    "force-unlock": (["force-unlock", "-force", "1f2e3d4c", "--yes"], PROD, "force-unlock"),
    "workspace -- delete passthrough": (
        ["workspace", "--yes", "--", "delete", "blue"],
        PROD,
        "workspace delete",
    ),
    "apply -- -destroy passthrough": (["apply", "--yes", "--", "-destroy"], PROD, "-destroy"),
    "state -- rm passthrough": (["state", "--yes", "--", "rm", "x.y"], PROD, "state rm"),
    "apply a saved destroy plan": (["apply", PLAN, "--yes"], PROD, "saved plan"),
}

# Places that must refuse a destroy on a protected stack, and the rule each one names.
REFUSING = {
    "laptop": ({}, "protected-destroy-in-ci-only"),
    "GitLab, not a manual job": (
        {"CI": "true", "GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "push"},
        "protected-destroy-gitlab-manual-job",
    ),
    "GitLab manual job in a merge-request pipeline": (
        {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_JOB_MANUAL": "true",
            "CI_PIPELINE_SOURCE": "merge_request_event",
        },
        "protected-destroy-gitlab-not-from-merge-request",
    ),
    "GitHub push": (
        {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push"},
        "protected-destroy-github-workflow-dispatch",
    ),
}

GITLAB_MANUAL = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_JOB_MANUAL": "true",
    "CI_PIPELINE_SOURCE": "push",
}


def _args(setup: Setup, args: list[str]) -> list[str]:
    """`args` with --terraform-bin added before any `--` (after it, it would be terraform's)."""
    cut = args.index("--") if "--" in args else len(args)
    return [*args[:cut], "--terraform-bin", str(setup.terraform), *args[cut:]]


@pytest.mark.parametrize("place", REFUSING, ids=list(REFUSING))
@pytest.mark.parametrize("form", FORMS, ids=list(FORMS))
def test_a_protected_stack_refuses_every_destructive_form(
    setup: Setup, form: str, place: str
) -> None:
    args, where, described = FORMS[form]
    ci, rule = REFUSING[place]
    before = snapshot(setup.repo.top)

    result = run_cli(_args(setup, args), setup.cwd(where), setup.environ(ci))

    result.assert_exit(3)
    message = " ".join(result.stderr.split())
    assert message.startswith("tfrun: error: Refused:"), result
    assert f"Rule '{rule}'" in message, result
    assert PROD in message and "in the protected environment 'prod'" in message, result
    assert described in message, result
    assert "Nothing was run." in message, result
    assert "Traceback" not in result.output
    if where in ("live", "top"):  # the unprotected stack in the run is refused with it
        assert "the whole run of 2 stacks is refused" in message, result
        assert STAGING not in message, result
    # Terraform never started; a saved plan was only read (for renames, then for deletes).
    calls = setup.recorded()
    if form == "apply a saved destroy plan":
        assert calls and all(c[:2] == ["show", "-json"] and c[2].endswith(PLAN) for c in calls)
    else:
        assert calls == []
    assert snapshot(setup.repo.top) == before


# The single-stack forms on an unprotected stack, from a laptop: the same commands run there.
UNPROTECTED_FORMS = {name: form for name, form in FORMS.items() if form[1] == PROD}


@pytest.mark.parametrize("form", UNPROTECTED_FORMS, ids=list(UNPROTECTED_FORMS))
def test_the_same_forms_run_on_an_unprotected_stack(fresh: Setup, form: str) -> None:
    args, _, _ = UNPROTECTED_FORMS[form]

    result = run_cli(_args(fresh, args), fresh.cwd(STAGING), fresh.environ({}))

    result.assert_success()
    commands = [call for call in fresh.recorded() if call[:1] != ["init"]]
    assert len(commands) == 1, fresh.recorded()
    # The plan was not read: on an unprotected stack nothing needs to know what it does.
    assert commands[0][:2] != ["show", "-json"]
    assert (fresh.repo.live / STAGING / "backend.tf").exists()


def test_a_manual_gitlab_job_destroys_a_protected_stack(fresh: Setup) -> None:
    result = run_cli(
        _args(fresh, ["destroy", "--yes"]), fresh.cwd(PROD), fresh.environ(GITLAB_MANUAL)
    )

    result.assert_success()
    assert ["destroy", "-auto-approve"] in fresh.recorded()


def test_ci_false_is_a_laptop(setup: Setup) -> None:
    result = run_cli(
        _args(setup, ["destroy", "--yes"]), setup.cwd(PROD), setup.environ({"CI": "false"})
    )

    result.assert_exit(3)
    assert "protected-destroy-in-ci-only" in result.stderr
    assert setup.recorded() == []


def test_a_refusal_in_ci_says_how_to_do_it_legitimately(setup: Setup) -> None:
    ci = {"CI": "true", "GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "push"}

    result = run_cli(_args(setup, ["destroy", "--yes"]), setup.cwd(PROD), setup.environ(ci))

    result.assert_exit(3)
    assert "when: manual" in result.stderr
    assert setup.recorded() == []


def test_tfrun_yes_approves_like_yes_and_never_lifts_a_refusal(setup: Setup) -> None:
    result = run_cli(_args(setup, ["destroy"]), setup.cwd(PROD), setup.environ({"TFRUN_YES": "1"}))

    result.assert_exit(3)
    assert "protected-destroy-in-ci-only" in result.stderr
    assert setup.recorded() == []


def test_tfrun_yes_approves_an_unprotected_destroy(fresh: Setup) -> None:
    env = fresh.environ({"TFRUN_YES": "true"})
    run_cli(_args(fresh, ["destroy"]), fresh.cwd(STAGING), env).assert_success()
    assert ["destroy", "-auto-approve"] in fresh.recorded()


def test_tfrun_yes_off_and_bad(setup: Setup) -> None:
    off = run_cli(_args(setup, ["destroy"]), setup.cwd(STAGING), setup.environ({"TFRUN_YES": "0"}))
    off.assert_exit(4)
    assert "Add --yes" in off.stderr
    bad = run_cli(
        _args(setup, ["destroy"]), setup.cwd(STAGING), setup.environ({"TFRUN_YES": "maybe"})
    )
    bad.assert_exit(4)
    assert "TFRUN_YES='maybe'" in bad.stderr
    assert setup.recorded() == []
