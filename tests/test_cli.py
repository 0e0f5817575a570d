"""The command line: tfrun's options vs terraform's, PATH detection, and error paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import commit, git, run_cli, write_tree
from test_config import ROOT

from tfrun.cli import main
from tfrun.commands.run_args import parse_run
from tfrun.errors import UsageError


def test_terraform_flags_pass_through_and_tfrun_flags_are_taken(tmp_path: Path) -> None:
    args = parse_run(["output", "-raw", "vpc_id", "--debug"], tmp_path)
    assert (args.command, args.tf_args, args.path, args.debug) == (
        "output",
        ["-raw", "vpc_id"],
        None,
        True,
    )


def test_first_existing_folder_is_the_path(tmp_path: Path) -> None:
    (tmp_path / "live/net").mkdir(parents=True)
    (tmp_path / "plan.tfplan").write_text("")
    args = parse_run(["apply", "--yes", "live/net", "-var", "x=1"], tmp_path)
    assert args.path == (tmp_path / "live/net").resolve()
    assert args.tf_args == ["-var", "x=1"] and args.yes
    # A saved plan file is terraform's argument, not a PATH.
    assert parse_run(["apply", "plan.tfplan"], tmp_path).tf_args == ["plan.tfplan"]


def test_value_of_a_terraform_option_is_never_the_path(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    args = parse_run(["init", "-plugin-dir", "plugins"], tmp_path)
    assert args.path is None and args.tf_args == ["-plugin-dir", "plugins"]


def test_everything_after_double_dash_goes_to_terraform(tmp_path: Path) -> None:
    args = parse_run(["plan", "--", "--yes", "-target=x", "--bogus", "--help", "a/b"], tmp_path)
    assert args.tf_args == ["--yes", "-target=x", "--bogus", "--help", "a/b"]
    assert not args.yes and not args.help


def test_help_wins_over_the_rest_of_the_line(tmp_path: Path) -> None:
    args = parse_run(["run-all", "apply", "no/such/path", "--bogus", "-h"], tmp_path)
    assert (args.help, args.run_all, args.command) == (True, True, "apply")


def test_an_import_id_may_have_a_slash(tmp_path: Path) -> None:
    args = parse_run(["import", "aws_route_table_association.a", "subnet-1/rtb-2"], tmp_path)
    assert args.path is None and args.tf_args == ["aws_route_table_association.a", "subnet-1/rtb-2"]


def test_run_all_with_selection(tmp_path: Path) -> None:
    args = parse_run(
        ["run-all", "plan", "--env", "prod", "--env=staging", "--include", "platform*",
         "--parallelism=3", "--json", "r.json", "--lock-timeout", "2.5"],
        tmp_path,
    )  # fmt: skip
    assert args.run_all and args.command == "plan"
    assert args.env == ["prod", "staging"] and args.include == ["platform*"]
    assert (args.parallelism, args.json_path, args.lock_timeout) == (3, Path("r.json"), 2.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--parallelism", "0", "plan"], "--parallelism takes a whole number"),
        (["plan", "--parallelism"], "--parallelism needs a value"),
        (["plan", "--lock-timeout=soon"], "--lock-timeout takes a number of seconds"),
        (["plan", "--yes=1"], "--yes takes no value"),
        (["plan", "--lock-timeout=nan"], "--lock-timeout takes a number of seconds"),
        (["plan", "--lock-timeout", "inf"], "--lock-timeout takes a number of seconds"),
        (["--frobnicate", "plan"], "--frobnicate is not a tfrun option"),
        (["plan", "-raw", "--frobnicate"], "--frobnicate is not a tfrun option"),
        (["plan", "--envv", "prod"], "did you mean --env?"),
        (["run-all"], "name a terraform command"),
        (["run-all", ""], "name a terraform command"),
        ([""], "name a terraform command"),
        (["-raw"], "name a terraform command"),
        (["plan", "prod-eu-west-9/network"], "prod-eu-west-9/network: there is no such folder"),
    ],
)
def test_usage_errors(tmp_path: Path, argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_run(argv, tmp_path)


def test_errors_become_one_paragraph_and_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--parallelism", "x"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("tfrun: error: --parallelism") and "Traceback" not in err


def test_outside_a_live_repository(tmp_path: Path) -> None:
    result = run_cli(["plan"], tmp_path).assert_exit(4)
    assert "no tfrun.hcl here or in any folder above" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_names_the_file(tmp_path: Path) -> None:
    live = write_tree(
        tmp_path / "live", {"tfrun.hcl": ROOT + "\nbogus = 1\n", "prod-eu-west-1/a/main.tf": ""}
    )
    result = run_cli(["plan"], live / "prod-eu-west-1/a").assert_exit(4)
    line = (live / "tfrun.hcl").read_text().splitlines().index("bogus = 1") + 1
    assert f"{live / 'tfrun.hcl'}: unknown key 'bogus' (line {line})." in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run_cli(["plan", "--debug"], tmp_path).assert_exit(4)
    assert "Traceback" in result.stderr


def test_missing_terraform_binary(tmp_path: Path) -> None:
    live = write_tree(tmp_path / "live", {"tfrun.hcl": ROOT, "staging-eu-west-1/a/main.tf": ""})
    result = run_cli(["plan", "--terraform-bin", "no-such-terraform"], live / "staging-eu-west-1/a")
    result.assert_exit(1)
    assert "'no-such-terraform' was not found on PATH" in result.stderr
    assert not (live / "staging-eu-west-1/a/backend.tf").exists()  # nothing written first


def test_person_written_backend_is_refused_before_terraform(tmp_path: Path) -> None:
    live = write_tree(
        tmp_path / "live",
        {
            "tfrun.hcl": ROOT,
            "staging-eu-west-1/a/main.tf": "",
            "staging-eu-west-1/a/backend.tf": "x",
        },
    )
    result = run_cli(["plan", "--terraform-bin", "false"], live / "staging-eu-west-1/a")
    result.assert_exit(4)
    assert "backend.tf: this file was written by a person" in result.stderr
    assert (live / "staging-eu-west-1/a/backend.tf").read_text() == "x"


def test_generate_and_check(tmp_path: Path) -> None:
    live = write_tree(tmp_path / "live", {"tfrun.hcl": ROOT, "staging-eu-west-1/a/main.tf": ""})
    run_cli(["generate"], live).assert_success()
    assert (live / "staging-eu-west-1/a/backend.tf").exists()
    assert "backend.tf" in (live / ".gitignore").read_text()
    run_cli(["generate", "--check"], live).assert_success()
    (live / "tfrun.hcl").write_text(ROOT.replace('Owner = "platform"', 'Owner = "sre"'))
    stale = run_cli(["generate", "--check"], live).assert_exit(1)
    changed = [line for line in stale.stdout.splitlines() if line.startswith(("-", "+"))]
    assert any(line.startswith("-") and '"platform"' in line for line in changed)
    assert any(line.startswith("+") and '"sre"' in line for line in changed)
    assert "stale generated files" in stale.stderr
    assert "nothing to commit" in stale.stderr


def test_generate_check_on_a_fresh_clone(tmp_path: Path) -> None:
    """docs/configuration.md's CI use: the generated files are gitignored, so a clone has
    none; --check passes there, and still fails on a config that cannot be generated."""
    origin = tmp_path / "origin"
    write_tree(origin, {"live/tfrun.hcl": ROOT, "live/staging-eu-west-1/a/main.tf": ""})
    git(origin, "init", "-q")
    run_cli(["generate"], origin / "live").assert_success()
    commit(origin, "infra")
    assert "backend.tf" not in git(origin, "ls-files")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    assert not (clone / "live/staging-eu-west-1/a/backend.tf").exists()
    fresh = run_cli(["generate", "--check"], clone / "live").assert_success()
    assert "render" in fresh.stderr
    assert not (clone / "live/staging-eu-west-1/a/backend.tf").exists()  # --check writes nothing
    # A person's file of a generated name, and two stacks on one state, fail the check.
    (clone / "live/staging-eu-west-1/a/provider.tf").write_text("# mine\n")
    person = run_cli(["generate", "--check"], clone / "live").assert_exit(4)
    assert "provider.tf: this file was written by a person" in person.stderr
    (clone / "live/staging-eu-west-1/a/provider.tf").unlink()
    write_tree(
        clone / "live", {"staging-eu-west-1/b/stack.hcl": 'key = "staging/eu-west-1/a.tfstate"\n'}
    )
    shared = run_cli(["generate", "--check"], clone / "live")
    assert shared.exit_code == 3 and "staging-eu-west-1/b" in shared.stderr, shared


def test_help_and_version() -> None:
    assert "terraform" in run_cli(["--help"], Path.cwd()).assert_success().stdout
    assert run_cli(["--version"], Path.cwd()).assert_success().stdout.startswith("tfrun ")


def test_bad_option_of_an_own_command_exits_4_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse's own exit code 2 would read as "changes present".
    assert main(["graph", "--format", "bogus"]) == 4
    assert "invalid choice: 'bogus'" in capsys.readouterr().err
