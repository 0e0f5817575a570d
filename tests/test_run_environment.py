"""Run options from TFRUN_ environment variables (run_args.from_environment), and the one
table in docs/configuration.md that lists every TFRUN_ variable tfrun reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tfrun.commands.run_args import RUN_OPTIONS, parse_run
from tfrun.errors import UsageError

REPO = Path(__file__).resolve().parent.parent


def test_options_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "TFRUN_YES": "yes",
        "TFRUN_PARALLELISM": "3",
        "TFRUN_FAIL_FAST": "1",
        "TFRUN_LOCK_TIMEOUT": "2.5",
        "TFRUN_TIMEOUT": "30m",
    }
    args = parse_run(["apply"], tmp_path, env)
    assert (args.yes, args.parallelism, args.fail_fast) == (True, 3, True)
    assert (args.lock_timeout, args.timeout) == (2.5, 1800.0)


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    env = {"TFRUN_PARALLELISM": "not a number", "TFRUN_TIMEOUT": "1h", "TFRUN_FAIL_FAST": "0"}
    args = parse_run(["plan", "--parallelism", "2", "--timeout=90s", "--fail-fast"], tmp_path, env)
    assert (args.parallelism, args.timeout, args.fail_fast) == (2, 90.0, True)


def test_unset_and_empty_variables_change_nothing(tmp_path: Path) -> None:
    args = parse_run(["apply"], tmp_path, {"TFRUN_YES": "", "TFRUN_PARALLELISM": " "})
    assert (args.yes, args.parallelism) == (False, None)
    assert parse_run(["apply"], tmp_path).yes is False  # no environ: none is read


def test_selection_is_never_from_the_environment(tmp_path: Path) -> None:
    chosen = {"--env", "--region", "--include", "--exclude", "--with-dependencies"}
    lifting = {"--allow-recreate", "--skip-auth-check"}
    assert not [flag for flag in chosen | lifting if RUN_OPTIONS[flag].variable]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TFRUN_PARALLELISM", "0", "TFRUN_PARALLELISM takes a whole number of 1 or more"),
        ("TFRUN_LOCK_TIMEOUT", "soon", "TFRUN_LOCK_TIMEOUT takes a number of seconds"),
        ("TFRUN_TIMEOUT", "forever", "TFRUN_TIMEOUT:"),
        ("TFRUN_FAIL_FAST", "sometimes", "TFRUN_FAIL_FAST='sometimes'"),
    ],
)
def test_a_bad_value_names_the_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        parse_run(["plan"], tmp_path, {variable: value})
    assert caught.value.exit_code == 4


def _documented_variables() -> set[str]:
    text = (REPO / "docs/configuration.md").read_text(encoding="utf-8")
    section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(TFRUN_[A-Z_]+)", row.split("|")[1])}


def _variables_read_by_the_code() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "tfrun").rglob("*.py"):
        found.update(re.findall(r"""["'](TFRUN_[A-Z_]+)["']""", path.read_text(encoding="utf-8")))
    return found


def test_every_variable_the_code_names_is_in_the_one_table() -> None:
    documented = _documented_variables()
    missing = _variables_read_by_the_code() - documented
    assert not missing, f"TFRUN_ variables missing from docs/configuration.md: {missing}"
    options = {option.variable for option in RUN_OPTIONS.values() if option.variable}
    assert options <= documented
    assert {"TFRUN_YES", "TFRUN_PARALLELISM", "TFRUN_DEBUG", "TFRUN_TERRAFORM"} <= documented


def test_the_command_help_names_the_variables(tmp_path: Path) -> None:
    from tfrun.commands.run_args import command_help

    shown = " ".join(command_help(parse_run(["plan", "--help"], tmp_path)).split())
    assert "TFRUN_YES (--yes)" in shown and "A flag wins." in shown


@pytest.mark.parametrize("value", ["x", "0", "-5", "inf", "nan"])
def test_a_bad_heartbeat_is_the_runs_one_error_not_a_crash(value: str, tmp_path: Path) -> None:
    """Found in a trial: TFRUN_HEARTBEAT_S=x was read on import, a traceback in every command."""
    from fake_terraform import FakeRepo
    from helpers import run_cli

    from tfrun.ui import heartbeat_interval

    with pytest.raises(UsageError, match="TFRUN_HEARTBEAT_S"):
        heartbeat_interval({"TFRUN_HEARTBEAT_S": value})
    assert heartbeat_interval({}) == 30 and heartbeat_interval({"TFRUN_HEARTBEAT_S": "2"}) == 2
    repo = FakeRepo(tmp_path)
    env = {**repo.env, "TFRUN_HEARTBEAT_S": value}
    run_cli(["graph"], repo.live, env).assert_success()  # a command that shows no run
    result = run_cli(["plan", "staging-eu-west-1"], repo.live, env)
    result.assert_exit(4)
    assert "TFRUN_HEARTBEAT_S=" in result.stderr and "Traceback" not in result.stderr
    assert "plan" not in repo.commands()
