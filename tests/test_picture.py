"""The repository's picture (tfrun/picture.py): `tfrun graph` answers from it while nothing it
reads changed, byte for byte as a full run would, and sees every change."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO_ROOT, commit, git, run_cli

from tfrun import picture
from tfrun.commands.graph import graph

SENTINEL = "answered from the picture\n"


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of examples/ (its modules sit outside the live root), with the racy window
    closed: files written by the test count as settled at once."""
    shutil.copytree(
        REPO_ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns(".t*")
    )
    monkeypatch.setattr(picture, "RACY_NS", -(10**12))  # no file is newer than "now + 1000 s"
    return tmp_path / "examples" / "live"


def drawn(live: Path, capsys: pytest.CaptureFixture[str], fmt: str = "json") -> str:
    graph(live, fmt)
    return capsys.readouterr().out


def stored(live: Path) -> dict[Path, dict[str, Any]]:
    folder = live / picture.ANSWERS
    return {p: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def rewrite_answers(live: Path, **changes: object) -> None:
    for path, data in stored(live).items():
        path.write_text(json.dumps({**data, **changes}))


def mark_stored_answers(live: Path) -> None:
    """Replace each stored answer by a sentinel: printing it proves the picture answered."""
    rewrite_answers(live, said=[["out", SENTINEL]])


def test_the_second_graph_answers_from_the_picture_byte_for_byte(
    live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for fmt in ("json", "text", "dot", "mermaid"):
        cold = drawn(live, capsys, fmt)
        assert drawn(live, capsys, fmt) == cold, fmt
    assert len(stored(live)) == 4
    # The examples' modules are outside the live root: their folders are in the picture.
    outside = json.loads((live / picture.FILE).read_text())["outside"]
    assert str(live.parent / "modules" / "table") in outside
    mark_stored_answers(live)
    assert drawn(live, capsys) == SENTINEL


def _rewrite_keeping_mtime(path: Path) -> None:
    before = path.stat()
    path.write_text(path.read_text().replace("network", "netw0rk"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


CHANGES: dict[str, Callable[[Path], object]] = {
    "stack file edited, mtime kept": lambda live: _rewrite_keeping_mtime(
        live / "staging-eu-west-1/platform/main.tf"
    ),
    "stack added": lambda live: shutil.copytree(
        live / "staging-eu-west-1/network", live / "staging-eu-west-1/network2"
    ),
    "stack removed": lambda live: shutil.rmtree(live / "staging-eu-west-1/platform"),
    "stack renamed": lambda live: (live / "staging-eu-west-1/platform").rename(
        live / "staging-eu-west-1/platform2"
    ),
    "config edited": lambda live: (live / "tfrun.hcl").write_text(
        (live / "tfrun.hcl").read_text() + "\n# a comment\n"
    ),
    "variable file added": lambda live: (
        live / "staging-eu-west-1/platform/terraform.tfvars"
    ).write_text('x = "1"\n'),
    "module outside the root edited": lambda live: (
        live.parent / "modules/table/extra.tf"
    ).write_text("locals {}\n"),
    "module file outside the root removed": lambda live: next(
        (live.parent / "modules/table").glob("*.tf")
    ).unlink(),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_means_a_full_run(
    live: Path, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    drawn(live, capsys)
    mark_stored_answers(live)
    assert drawn(live, capsys) == SENTINEL
    CHANGES[change](live)
    after = drawn(live, capsys)
    assert after != SENTINEL, change
    # And it is what a run without any picture says.
    shutil.rmtree(live / picture.ANSWERS)
    assert drawn(live, capsys) == after


def test_a_picture_of_another_version_is_not_used(
    live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drawn(live, capsys)
    mark_stored_answers(live)
    rewrite_answers(live, tfrun="another tfrun")
    assert drawn(live, capsys) != SENTINEL


@pytest.mark.parametrize("content", ["{not json", "[]", '{"format": 1}'])
def test_a_broken_picture_is_not_used(
    live: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    cold = drawn(live, capsys)
    for path in [live / picture.FILE, *stored(live)]:
        path.write_text(content)
    assert drawn(live, capsys) == cold


def test_files_changed_just_before_the_walk_are_not_trusted(
    live: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(picture, "RACY_NS", 2_000_000_000)
    drawn(live, capsys)  # the copy was just written: nothing is stored
    assert not stored(live)


def test_warnings_are_said_again(live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (live / "staging-eu-west-1/platform/reads.tf").write_text(
        'data "terraform_remote_state" "x" {\n  backend = "s3"\n'
        "  config = { bucket = var.bucket, key = var.key, region = var.region }\n}\n"
    )
    graph(live, "text")
    cold = capsys.readouterr()
    assert "warning:" in cold.err
    graph(live, "text")
    warm = capsys.readouterr()
    assert (warm.out, warm.err) == (cold.out, cold.err)


def test_through_the_command_line(live: Path) -> None:
    """As a user runs it, in a subprocess: the racy window is the real one, waited out."""
    time.sleep(2.1)
    cold = run_cli(["graph", "--format", "json"], live).assert_success()
    assert stored(live)
    mark_stored_answers(live)
    warm = run_cli(["graph", "--format", "json"], live).assert_success()
    assert warm.stdout == SENTINEL
    (live / "staging-eu-west-1/platform/extra.tf").write_text("locals {}\n")
    again = run_cli(["graph", "--format", "json"], live).assert_success()
    assert again.stdout == cold.stdout


def test_a_linked_file_is_seen_through_its_link(
    live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stacks often link one shared file (`common.tf -> ../../common.tf`): what is read is
    the target, so an edit there is a change of every stack that links it."""
    shared = live.parent / "common.tf"
    shared.write_text("locals {}\n")
    (live / "staging-eu-west-1/platform/common.tf").symlink_to(shared)
    (live / "staging-eu-west-1/platform/gone.tf").symlink_to(live.parent / "missing.tf")
    drawn(live, capsys)
    mark_stored_answers(live)
    assert drawn(live, capsys) == SENTINEL
    shared.write_text(
        'data "terraform_remote_state" "n" {\n  backend = "s3"\n  config = {\n'
        '    bucket = "acme-tfstate"\n    key    = "staging/eu-west-1/network.tfstate"\n'
        '    region = "eu-west-1"\n  }\n}\n'
    )
    assert drawn(live, capsys) != SENTINEL


def test_check_answers_again_with_its_exit_code_and_sees_changes(
    live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfrun.commands.check import check

    network = live / "staging-eu-west-1/network"
    (network / "main.tf").write_text((network / "main.tf").read_text() + "\n")
    for fmt in ("text", "json"):
        codes = [check(live, fmt) for _ in range(2)]
        first = capsys.readouterr()
        assert codes[0] == codes[1]
        check(live, fmt)
        second = capsys.readouterr()
        assert second.out * 2 == first.out and second.err * 2 == first.err, fmt
    assert sum(data["key"].startswith('["check"') for data in stored(live).values()) == 2
    mark_stored_answers(live)
    check(live, "json")
    assert capsys.readouterr().out == SENTINEL
    (network / "versions.tf").write_text('terraform {\n  required_version = ">= 0.12"\n}\n')
    check(live, "json")
    assert capsys.readouterr().out != SENTINEL


def test_the_sandbox_and_the_binary_are_part_of_a_checks_key(tmp_path: Path) -> None:
    root = str(tmp_path)
    nothing = picture.sandbox_state(root)
    (tmp_path / ".tfrun/sandbox").mkdir(parents=True)
    (tmp_path / ".tfrun/sandbox/sandbox.json").write_text(json.dumps({"pid": os.getpid()}))
    running = picture.sandbox_state(root)
    (tmp_path / ".tfrun/sandbox/sandbox.json").write_text(json.dumps({"pid": 2**22 + 7}))
    dead = picture.sandbox_state(root)
    assert len({json.dumps(state) for state in (nothing, running, dead)}) == 3
    keys = {
        picture.key_of("check", environ, "text", root)
        for environ in ({}, {"TFRUN_AWS_ENDPOINT": "http://127.0.0.1:1"}, {"PATH": "/x"})
    }
    assert len(keys) == 3


@pytest.fixture
def repo_top(live: Path) -> Path:
    """The examples' copy as a git repository of two commits: the second edits a module."""
    top = live.parent
    git(top, "init", "-q", "-b", "main")
    commit(top, "one")
    table = next((top / "modules/table").glob("*.tf"))
    table.write_text(table.read_text() + "\n# a change\n")
    commit(top, "two")
    return top


def affected_json(live: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    from tfrun.commands.affected import run

    run(live, base="HEAD~1", fmt="json", head=extra[0] if extra else None)
    return capsys.readouterr().out


def test_affected_answers_again_while_git_says_the_same(
    live: Path, repo_top: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cold = affected_json(live, capsys)
    assert json.loads(cold)["stacks"], "the module change affects the stacks that use it"
    assert affected_json(live, capsys) == cold
    mark_stored_answers(live)
    assert affected_json(live, capsys) == SENTINEL
    # Another file in a stack's folder, not one tfrun reads: only git tells.
    (live / "staging-eu-west-1/network/README.md").write_text("notes\n")
    untracked = affected_json(live, capsys)
    assert untracked != SENTINEL
    assert "staging-eu-west-1/network" in [s["path"] for s in json.loads(untracked)["stacks"]]
    mark_stored_answers(live)
    commit(repo_top, "three")  # the same files, committed: HEAD moved
    assert affected_json(live, capsys) != SENTINEL


def test_affected_with_a_ref_git_does_not_know_says_why(
    live: Path, repo_top: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfrun.commands.affected import run
    from tfrun.errors import UsageError

    with pytest.raises(UsageError, match="not a commit"):
        run(live, base="no-such-branch", fmt="json")
    assert not stored(live)


def test_ci_gitlab_answers_again_and_follows_the_base_gitlab_names(
    live: Path, repo_top: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfrun.commands.ci import gitlab

    def pipeline(**environ: str) -> str:
        gitlab(live, environ=environ)
        return capsys.readouterr().out

    first = git(repo_top, "rev-list", "--max-parents=0", "HEAD").strip()
    cold = pipeline(CI_MERGE_REQUEST_DIFF_BASE_SHA=first)
    assert "table" in cold or "data" in cold
    assert pipeline(CI_MERGE_REQUEST_DIFF_BASE_SHA=first) == cold
    mark_stored_answers(live)
    assert pipeline(CI_MERGE_REQUEST_DIFF_BASE_SHA=first) == SENTINEL
    # Another base from GitLab's variables is another question.
    every = pipeline()
    assert every not in (SENTINEL, cold)
    head = git(repo_top, "rev-parse", "HEAD").strip()
    assert pipeline(CI_MERGE_REQUEST_DIFF_BASE_SHA=head) != SENTINEL


def test_affected_below_the_root_sees_a_change_anywhere_in_the_repository(
    live: Path, repo_top: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfrun.commands.affected import run

    below = live / "staging-eu-west-1"
    run(below, base="HEAD", fmt="json")
    cold = capsys.readouterr().out
    assert json.loads(cold)["stacks"] == []
    mark_stored_answers(live)
    # Not a file tfrun reads, outside the folder asked about: git's status tells.
    (repo_top / "modules/table/NOTES.md").write_text("why\n")
    run(below, base="HEAD", fmt="json")
    after = json.loads(capsys.readouterr().out)
    assert [s["path"] for s in after["stacks"]] == ["staging-eu-west-1/data"]


def test_an_answer_holds_for_the_same_environment_only(
    live: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What tfrun generates may depend on the environment (the user's name in a role's
    session name, a CI's variables): check's answer under one is not another's."""
    from tfrun.commands import generate
    from tfrun.commands.check import check

    (live / "tfrun.hcl").write_text(
        (live / "tfrun.hcl").read_text()
        + '\nauth {\n  role_name      = "TerraformAdmin"\n  laptop_profile = "company-sso"\n}\n'
    )
    network = live / "staging-eu-west-1/network"
    monkeypatch.setenv("LOGNAME", "alice")
    generate.run(network, check=False)
    capsys.readouterr()
    assert check(network, "text") == 0
    monkeypatch.setenv("LOGNAME", "bob")
    assert check(network, "text") == 1  # alice's session name is in provider.tf
    assert "stale-generated-file" in capsys.readouterr().out
    monkeypatch.setenv("LOGNAME", "alice")
    assert check(network, "text") == 0
