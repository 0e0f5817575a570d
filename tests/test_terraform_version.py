"""The binary's version against terraform_version and .terraform-version
(tfrun/terraform_version.py): the constraint language, the file search, the cache, and the one
message before anything runs, with the real terraform in the slow test."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from helpers import StateBackend, root_hcl, run_cli, write_tree

from tfrun import terraform_version
from tfrun.discovery import Repository
from tfrun.errors import ConfigError

VERSION_11 = (1, 11, 4)


@pytest.mark.parametrize(
    ("constraint", "met"),
    [
        (">= 1.10", True),
        ("~> 1.10", True),
        ("~> 1.10.0", False),
        ("~> 1.11.0", True),
        ("< 1.11", False),
        (">= 1.6, < 2.0", True),
        ("1.11.4", True),
        ("= 1.9.0", False),
        ("!= 1.11.4", False),
        ("> 1.11.4", False),
        ("v1.11.4", True),
    ],
)
def test_constraints(constraint: str, met: bool) -> None:
    assert terraform_version.meets(VERSION_11, constraint) is met


def test_an_unreadable_constraint_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'>= one' is not a version constraint"):
        terraform_version.meets(VERSION_11, ">= 1.6, >= one")


def _fake_terraform(folder: Path, version: str) -> Path:
    """A terraform that answers `version -json` and counts how often it was asked."""
    path = folder / "terraform"
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        "count = pathlib.Path(__file__).with_name('asked')\n"
        "count.write_text(str(int(count.read_text() or 0) + 1) if count.exists() else '1')\n"
        f"print(json.dumps({{'terraform_version': {version!r}}}))\n",
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _stacks(top: Path, files: dict[str, str]) -> tuple[Path, Repository]:
    write_tree(top, files)
    (top / ".git").mkdir(exist_ok=True)
    live = top / "live"
    repo = Repository(live)
    return live, repo


def test_the_version_file_is_found_up_to_the_repository_top(tmp_path: Path) -> None:
    top = tmp_path / "infra"
    write_tree(tmp_path, {".terraform-version": "0.12.0\n"})  # above the repository: ignored
    live, repo = _stacks(
        top,
        {"live/tfrun.hcl": root_hcl(), "live/staging-eu-west-1/a/main.tf": ""},
    )
    [stack] = repo.stacks()
    assert terraform_version.version_file(stack) is None
    write_tree(top, {".terraform-version": "1.11.4\n"})
    assert terraform_version.version_file(stack) == top / ".terraform-version"
    write_tree(live, {"staging-eu-west-1/.terraform-version": "1.9.0\n"})
    assert terraform_version.version_file(stack) == live / "staging-eu-west-1/.terraform-version"


def test_check_names_the_file_asks_once_and_skips_tfenv_keywords(tmp_path: Path) -> None:
    live, repo = _stacks(
        tmp_path / "infra",
        {
            "live/tfrun.hcl": root_hcl(extra='terraform_version = "~> 1.11.0"'),
            "live/staging-eu-west-1/a/main.tf": "",
            "live/staging-eu-west-1/a/.terraform-version": "latest:^1.11\n",
        },
    )
    binary = _fake_terraform(tmp_path, "1.11.4")
    stacks = repo.stacks()
    terraform_version.check(stacks, str(binary), live, {})
    terraform_version.check(stacks, str(binary), live, {})
    assert (tmp_path / "asked").read_text() == "1"  # the second answer came from the cache
    (live / "staging-eu-west-1/a/.terraform-version").write_text("1.10.5\n")
    with pytest.raises(ConfigError) as caught:
        terraform_version.check(stacks, str(binary), live, {})
    message = str(caught.value)
    assert message.startswith(f"{live / 'staging-eu-west-1/a/.terraform-version'}: 1.10.5, ")
    assert "terraform 1.11.4, which does not meet it (stack staging-eu-west-1/a)" in message
    assert caught.value.exit_code == 4


def test_a_version_file_that_holds_no_version_is_an_error(tmp_path: Path) -> None:
    """Found in a trial: `.terraform-version` holding `garbage` was skipped like a keyword."""
    live, repo = _stacks(
        tmp_path / "infra",
        {
            "live/tfrun.hcl": root_hcl(),
            "live/staging-eu-west-1/a/main.tf": "",
            "live/staging-eu-west-1/a/.terraform-version": "garbage\n",
        },
    )
    binary = _fake_terraform(tmp_path, "1.11.4")
    with pytest.raises(ConfigError, match="'garbage' is no terraform version") as caught:
        terraform_version.check(repo.stacks(), str(binary), live, {})
    assert str(caught.value).startswith(str(live / "staging-eu-west-1/a/.terraform-version"))


def test_an_unreadable_constraint_names_the_config_file(tmp_path: Path) -> None:
    live, repo = _stacks(
        tmp_path / "infra",
        {
            "live/tfrun.hcl": root_hcl(),
            "live/staging-eu-west-1/a/main.tf": "",
            "live/staging-eu-west-1/a/stack.hcl": 'terraform_version = "newest"\n',
        },
    )
    binary = _fake_terraform(tmp_path, "1.11.4")
    with pytest.raises(ConfigError, match="'newest' is not a version constraint") as caught:
        terraform_version.check(repo.stacks(), str(binary), live, {})
    assert str(caught.value).startswith(str(live / "staging-eu-west-1/a/stack.hcl"))


@pytest.mark.slow
def test_real_terraform_against_the_constraint_and_the_version_file(
    tmp_path: Path, state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    top = write_tree(
        tmp_path / "infra",
        {
            "live/tfrun.hcl": state_backend.root_hcl(extra='terraform_version = ">= 1.10"'),
            "live/staging-eu-west-1/app/main.tf": 'resource "terraform_data" "x" {}\n',
        },
    )
    (top / ".git").mkdir()
    live = top / "live"
    app = live / "staging-eu-west-1/app"
    run_cli(["plan", "-no-color"], app, tf_env).assert_success()

    (live / "tfrun.hcl").write_text(
        state_backend.root_hcl(extra='terraform_version = ">= 1.99"'), encoding="utf-8"
    )
    (app / ".terraform").rename(tmp_path / "moved-away")  # would init again, if it got that far
    unmet = run_cli(["plan", "-no-color"], app, tf_env).assert_exit(4)
    assert f'{live / "tfrun.hcl"}: terraform_version = ">= 1.99", and ' in unmet.stderr
    assert "is terraform 1.11." in unmet.stderr and "Nothing was run" in unmet.stderr
    assert "running terraform init" not in unmet.stderr
    assert not (app / ".terraform").exists()

    (live / "tfrun.hcl").write_text(
        state_backend.root_hcl(extra='terraform_version = ">= 1.10"'), encoding="utf-8"
    )
    (top / ".terraform-version").write_text("1.9.8\n", encoding="utf-8")
    pinned = run_cli(["plan", "-no-color"], app, tf_env).assert_exit(4)
    assert f"{top / '.terraform-version'}: 1.9.8, and " in pinned.stderr
    assert not (app / ".terraform").exists()
