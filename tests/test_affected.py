"""`tfrun affected`: real git repositories in temp dirs, one test per reason a stack can be
affected, and the ways the comparison can go wrong (renames, deletions, shallow clones). How
git's side is read (merge base, refs that are not commits): test_git.py."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import LiveRepo, commit, git, root_hcl, write_tree

from tfrun import cli, generate
from tfrun.affected import Kind, Report, affected
from tfrun.ci import PLAN_FILE
from tfrun.errors import ConfigError, UsageError

P = "prod-eu-west-1"
S = "staging-eu-west-1"
EMPTY = 'resource "terraform_data" "x" {}\n'


def module_call(name: str, source: str) -> str:
    return f'module "{name}" {{\n  source = "{source}"\n}}\n'


def reads(env: str, stack: str, region: str = "eu-west-1") -> str:
    return (
        f'data "terraform_remote_state" "{stack.replace("/", "_")}" {{\n  backend = "s3"\n'
        f'  config = {{\n    bucket = "acme-tfstate"\n'
        f'    key    = "{env}/{region}/{stack}.tfstate"\n  }}\n}}\n'
    )


# staging: network <- platform <- app (hand-written remote state); network uses modules/vpc,
# which uses modules/labels, which uses modules/naming; app uses modules/service.
BASE_FILES: dict[str, str] = {
    "live/tfrun.hcl": root_hcl(),
    f"live/{S}/network/main.tf": module_call("vpc", "../../../modules/vpc"),
    f"live/{S}/platform/main.tf": reads("staging", "network"),
    f"live/{S}/platform/eks/main.tf": EMPTY,
    f"live/{S}/app/main.tf": reads("staging", "platform")
    + module_call("svc", "../../../modules/service"),
    f"live/{P}/network/main.tf": module_call("vpc", "../../../modules/vpc"),
    f"live/{P}/data/main.tf": EMPTY,
    "live/shared-services/iam/main.tf": EMPTY,
    "modules/vpc/main.tf": module_call("labels", "../labels"),
    "modules/labels/main.tf": module_call("naming", "../naming"),
    "modules/naming/main.tf": 'output "name" { value = "x" }\n',
    "modules/service/main.tf": EMPTY,
    "README.md": "infra\n",
}


@pytest.fixture
def repo(make_repo: Callable[..., LiveRepo]) -> LiveRepo:
    return make_repo(BASE_FILES, git=True)


def change(repo: LiveRepo, files: dict[str, str]) -> None:
    write_tree(repo.top, files)


def why(report: Report) -> dict[str, list[Kind]]:
    return {a.stack.rel: [r.kind for r in a.reasons] for a in report.stacks}


def texts(report: Report, rel: str) -> str:
    found = [a for a in report.stacks if a.stack.rel == rel]
    assert found, f"{rel} is not affected: {why(report)}"
    return " | ".join(r.text for r in found[0].reasons)


# ---------------------------------------------------------------------------- each reason


def test_a_file_in_the_stack(repo: LiveRepo) -> None:
    change(repo, {f"live/{S}/network/variables.tf": 'variable "x" {}\n'})
    commit(repo.top)
    report = affected(repo.live, "HEAD~1", "HEAD")
    assert why(report) == {f"{S}/network": [Kind.FILES]}
    assert "variables.tf (added)" in texts(report, f"{S}/network")
    assert report.stacks[0].reasons[0].files == (f"live/{S}/network/variables.tf",)


def test_a_nested_stack_owns_its_folder(repo: LiveRepo) -> None:
    change(repo, {f"live/{S}/platform/eks/main.tf": EMPTY + "# more\n"})
    commit(repo.top)
    assert why(affected(repo.live, "HEAD~1", "HEAD")) == {f"{S}/platform/eks": [Kind.FILES]}


def test_a_module_through_modules_that_call_modules(repo: LiveRepo) -> None:
    change(repo, {"modules/naming/main.tf": 'output "name" { value = "y" }\n'})
    commit(repo.top)
    report = affected(repo.live, "HEAD~1", "HEAD")
    assert why(report) == {f"{P}/network": [Kind.MODULE], f"{S}/network": [Kind.MODULE]}
    text = texts(report, f"{S}/network")
    assert "modules/naming through modules/labels, modules/vpc" in text
    assert "modules/naming/main.tf" in text


def test_a_tfrun_hcl_above_it(repo: LiveRepo) -> None:
    change(repo, {f"live/{S}/tfrun.hcl": 'tags = { Team = "web" }\n'})
    commit(repo.top)
    report = affected(repo.live, "HEAD~1", "HEAD")
    staging = {f"{S}/network", f"{S}/platform", f"{S}/platform/eks", f"{S}/app"}
    assert set(why(report)) == staging
    assert f"live/{S}/tfrun.hcl above it changed" in texts(report, f"{S}/app")
    # The tag lands in provider.tf, so the generated files say so too.
    assert "its generated files would change: provider.tf" in texts(report, f"{S}/app")


def test_the_root_tfrun_hcl_touches_every_stack(repo: LiveRepo) -> None:
    change(repo, {"live/tfrun.hcl": root_hcl() + "# a comment only\n"})
    commit(repo.top)
    report = affected(repo.live, "HEAD~1", "HEAD")
    assert len(report.stacks) == 7
    # A comment changes no generated file: only the config reason is given.
    assert all(why(report)[rel] == [Kind.CONFIG] for rel in why(report))


def test_generated_files_that_would_change(make_repo: Callable[..., LiveRepo]) -> None:
    """A stack whose remote_state names another: when that stack's key moves, the reader's
    generated remote_state.tf changes though none of its own files did."""
    repo = make_repo(
        {
            "live/tfrun.hcl": root_hcl(),
            f"live/{S}/network/main.tf": EMPTY,
            f"live/{S}/app/main.tf": EMPTY,
            f"live/{S}/app/stack.hcl": 'remote_state = { network = "../network" }\n',
            f"live/{S}/other/main.tf": EMPTY,
        },
        git=True,
    )
    change(repo, {f"live/{S}/network/stack.hcl": 'key = "staging/eu-west-1/net-v2.tfstate"\n'})
    commit(repo.top)
    report = affected(repo.live, "HEAD~1", "HEAD")
    assert why(report) == {
        f"{S}/network": [Kind.FILES, Kind.GENERATED],  # its backend.tf has the new key
        f"{S}/app": [Kind.GENERATED],
    }
    assert "its generated files would change: remote_state.tf" in texts(report, f"{S}/app")


def test_uncommitted_and_untracked_changes_count_without_head(repo: LiveRepo) -> None:
    change(repo, {f"live/{S}/network/main.tf": "# edited\n", f"live/{P}/data/new.tf": EMPTY})
    report = affected(repo.live, "HEAD")
    assert set(why(report)) == {f"{S}/network", f"{P}/data"}
    # With --head, only commits count.
    assert affected(repo.live, "HEAD", "HEAD").stacks == ()


def test_what_tfrun_and_terraform_leave_behind_does_not_count(repo: LiveRepo) -> None:
    from tfrun.generate import HEADER

    change(
        repo,
        {
            f"live/{S}/network/backend.tf": HEADER + "\n",
            f"live/{S}/network/.terraform/terraform.tfstate": "{}",
            "live/.tfrun/cache/scan.json": "{}",
        },
    )
    assert affected(repo.live, "HEAD").stacks == ()


def test_saved_plans_are_gitignored_and_do_not_count(repo: LiveRepo) -> None:
    """Plan files hold secrets in clear text: git must not offer them, and affected must not
    plan a stack again because CI left its plan file there."""
    generate.ensure_gitignore(repo.live)
    commit(repo.top)
    plans = [f"live/{S}/network/{PLAN_FILE}", f"live/{S}/app/prod.tfplan"]
    change(repo, dict.fromkeys(plans, "plan"))
    assert git(repo.top, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(repo.top, "check-ignore", *plans).split() == plans
    assert affected(repo.live, "HEAD").stacks == ()


def test_saved_plans_do_not_count_where_no_gitignore_lists_them(repo: LiveRepo) -> None:
    change(repo, {f"live/{S}/network/{PLAN_FILE}": "plan", f"live/{P}/data/x.tfplan": "plan"})
    assert PLAN_FILE in git(repo.top, "status", "--porcelain", "--untracked-files=all")
    assert affected(repo.live, "HEAD").stacks == ()
    # A file of another name in the same place still counts.
    change(repo, {f"live/{S}/network/tfplan.tf": EMPTY})
    assert why(affected(repo.live, "HEAD")) == {f"{S}/network": [Kind.FILES]}


def test_files_outside_stacks_and_modules_do_not_count(repo: LiveRepo) -> None:
    change(repo, {"README.md": "changed\n", f"live/{S}/notes.md": "x\n"})
    commit(repo.top)
    assert affected(repo.live, "HEAD~1", "HEAD").stacks == ()


# ---------------------------------------------------------------------------- dependents


def test_with_dependents_follows_state_reads_transitively(repo: LiveRepo) -> None:
    change(repo, {f"live/{S}/network/main.tf": "# edited\n"})
    commit(repo.top)
    plain = affected(repo.live, "HEAD~1", "HEAD")
    assert [a.stack.rel for a in plain.stacks] == [f"{S}/network"]
    report = affected(repo.live, "HEAD~1", "HEAD", with_dependents=True)
    # In dependency order, the dependents marked as such.
    assert [(a.stack.rel, a.dependent) for a in report.stacks] == [
        (f"{S}/network", False),
        (f"{S}/platform", True),
        (f"{S}/app", True),
    ]
    assert f"depends on {S}/network" in texts(report, f"{S}/platform")
    assert f"depends on {S}/platform" in texts(report, f"{S}/app")


def test_a_path_narrows_the_list(repo: LiveRepo) -> None:
    change(repo, {"modules/vpc/variables.tf": 'variable "cidr" {}\n'})
    commit(repo.top)
    report = affected(repo.live / P, "HEAD~1", "HEAD")
    assert list(why(report)) == [f"{P}/network"]
    # From the repository's top, above the live root: all of it.
    assert len(affected(repo.top, "HEAD~1", "HEAD").stacks) == 2


# ---------------------------------------------------------------------------- renames, deletions


def test_a_deleted_stack_is_reported_with_its_state_key(repo: LiveRepo) -> None:
    shutil.rmtree(repo.path(f"{P}/data"))
    commit(repo.top)
    report = affected(repo.live, "HEAD~1", "HEAD")
    assert report.stacks == ()
    [gone] = report.deleted
    assert (gone.rel, gone.key, gone.renamed_to) == (
        f"{P}/data",
        "prod/eu-west-1/data.tfstate",
        None,
    )


def test_a_renamed_stack_is_new_and_its_old_name_deleted(repo: LiveRepo) -> None:
    git(repo.top, "mv", f"live/{S}/app", f"live/{S}/web")
    commit(repo.top)
    report = affected(repo.live, "HEAD~1", "HEAD")
    assert list(why(report)) == [f"{S}/web"]
    assert f"renamed from live/{S}/app/main.tf" in texts(report, f"{S}/web")
    [gone] = report.deleted
    assert (gone.rel, gone.key, gone.renamed_to) == (
        f"{S}/app",
        "staging/eu-west-1/app.tfstate",
        f"{S}/web",
    )


def test_a_move_that_keeps_the_state_key_deletes_nothing(repo: LiveRepo) -> None:
    git(repo.top, "mv", f"live/{S}/app", f"live/{S}/web")
    change(repo, {f"live/{S}/web/stack.hcl": 'key = "staging/eu-west-1/app.tfstate"\n'})
    commit(repo.top)
    report = affected(repo.live, "HEAD~1", "HEAD")
    assert report.deleted == ()
    assert f"moved from {S}/app, with the same state key" in texts(report, f"{S}/web")


def test_deleting_a_stack_another_one_names_is_an_error(
    make_repo: Callable[..., LiveRepo],
) -> None:
    """The change breaks the repository: say where, rather than list a partial answer."""
    repo = make_repo(
        {
            "live/tfrun.hcl": root_hcl(),
            f"live/{S}/network/main.tf": EMPTY,
            f"live/{S}/app/main.tf": EMPTY,
            f"live/{S}/app/stack.hcl": 'remote_state = { network = "../network" }\n',
        },
        git=True,
    )
    shutil.rmtree(repo.path(f"{S}/network"))
    commit(repo.top)
    with pytest.raises(ConfigError, match=r"app/stack.hcl: remote_state.network = '../network'"):
        affected(repo.live, "HEAD~1", "HEAD")


# ---------------------------------------------------------------------------- refs and clones


def test_head_can_be_another_commit_than_the_checked_out_one(repo: LiveRepo) -> None:
    change(repo, {f"live/{S}/network/main.tf": "# one\n"})
    first = commit(repo.top)
    change(repo, {f"live/{P}/data/main.tf": "# two\n"})
    commit(repo.top)
    report = affected(repo.live, "HEAD~2", first)
    assert list(why(report)) == [f"{S}/network"]
    assert report.stacks[0].stack.rel == f"{S}/network"


def test_a_shallow_clone_works_once_the_base_is_fetched(repo: LiveRepo, tmp_path: Path) -> None:
    base = git(repo.top, "rev-parse", "HEAD").strip()
    change(repo, {f"live/{S}/network/main.tf": "# edited\n"})
    commit(repo.top)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth=1", f"file://{repo.top}", str(clone))
    live = clone / "live"
    with pytest.raises(UsageError, match="This clone is shallow") as error:
        affected(live, base)
    assert "git fetch --depth=1 origin" in str(error.value)
    git(clone, "fetch", "-q", "--depth=1", "origin", base)
    report = affected(live, base)
    assert list(why(report)) == [f"{S}/network"]
    # Without the history between them there is no merge base; the base itself is used.
    assert report.change is not None and report.change.notes


# ---------------------------------------------------------------------------- the command


def run(args: list[str], cwd: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        code = cli.main(args)
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_three_formats(repo: LiveRepo, capsys: pytest.CaptureFixture[str]) -> None:
    change(repo, {"modules/vpc/main.tf": "# edited\n"})
    shutil.rmtree(repo.path(f"{P}/data"))
    commit(repo.top)

    code, out, err = run(["affected", "--base", "HEAD~1", "--with-dependents"], repo.top, capsys)
    assert code == 0
    assert out.splitlines()[:2] == [
        f"{P}/network",
        "  uses the module modules/vpc, which changed: modules/vpc/main.tf",
    ]
    assert f"{S}/platform  (dependent)" in out
    assert f"{P}/data  (deleted)" in out
    assert "never runs on its own" in err

    code, out, _ = run(
        ["affected", "--base", "HEAD~1", "--format", "json", "live"], repo.top, capsys
    )
    document = json.loads(out)
    assert [s["path"] for s in document["stacks"]] == [f"{P}/network", f"{S}/network"]
    assert document["stacks"][0]["reasons"][0]["kind"] == "module"
    assert document["deleted"] == [
        {"path": f"{P}/data", "key": "prod/eu-west-1/data.tfstate", "renamed_to": None}
    ]

    # Paths relative to where the command runs, ready for a shell loop.
    code, out, _ = run(["affected", "--base", "HEAD~1", "--format", "paths"], repo.live, capsys)
    assert out.split() == [f"{P}/network", f"{S}/network"]


def test_the_command_needs_a_base_and_says_when_nothing_changed(
    repo: LiveRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code, _, err = run(["affected"], repo.top, capsys)
    except SystemExit as exc:  # argparse's own exit, where usage errors are not yet tfrun's
        code, err = int(str(exc.code)), capsys.readouterr().err
    assert code != 0 and "--base" in err
    code, out, err = run(["affected", "--base", "HEAD"], repo.top, capsys)
    assert (code, out) == (0, "")
    assert "no stacks are affected" in err
    code, _, err = run(["affected", "--base", "nope"], repo.top, capsys)
    assert code == 4 and "'nope' is not a commit" in err
