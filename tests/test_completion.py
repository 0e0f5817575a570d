"""`tfrun completion bash|zsh|fish`: the scripts, loaded in a real bash and completing in a
copy of examples/live (stack paths and environment names asked of tfrun itself)."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, cli_environ, run_cli

from tfrun.commands.run_args import RUN_OPTIONS


@pytest.fixture
def live(tmp_path: Path) -> Path:
    copy = tmp_path / "live"
    shutil.copytree(REPO_ROOT / "examples" / "live", copy)
    return copy


@pytest.fixture
def tfrun_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has a `tfrun` that runs this checkout, as the scripts call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "tfrun"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tfrun "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    env = cli_environ()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def _complete(script: Path, cwd: Path, env: dict[str, str], line: str) -> list[str]:
    """What bash offers for the last word of `line` (a trailing space: an empty word)."""
    words = line.split(" ")
    program = f"""
source {script}
complete -p tfrun
COMP_WORDS=({" ".join(repr(word) for word in words)})
COMP_CWORD={len(words) - 1}
_tfrun
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # nothing is ever printed into the shell
    first, *offered = done.stdout.splitlines()
    assert first == "complete -o default -F _tfrun tfrun"
    return [word for word in offered if word]


@pytest.fixture
def bash_script(tmp_path: Path, live: Path) -> Path:
    result = run_cli(["completion", "bash"], live).assert_success()
    script = tmp_path / "tfrun.bash"
    script.write_text(result.stdout)
    return script


def test_bash_completes_commands_options_environments_and_stacks(
    bash_script: Path, live: Path, tfrun_on_path: dict[str, str]
) -> None:
    top = _complete(bash_script, live, tfrun_on_path, "tfrun ")
    assert {"generate", "check", "drift", "fmt", "schema", "plan", "apply", "run-all"} <= set(top)
    assert "__complete" not in top
    assert _complete(bash_script, live, tfrun_on_path, "tfrun dr") == ["drift"]
    assert _complete(bash_script, live, tfrun_on_path, "tfrun run-all ap") == ["apply"]
    assert _complete(bash_script, live, tfrun_on_path, "tfrun state l") == ["list"]
    assert _complete(bash_script, live, tfrun_on_path, "tfrun ci ") == [
        "gitlab",
        "github",
        "summary",
        "comment",
    ]
    # tfrun's run options, from RUN_OPTIONS, on a terraform command.
    options = _complete(bash_script, live, tfrun_on_path, "tfrun run-all plan --")
    assert set(RUN_OPTIONS) <= set(options)
    assert _complete(bash_script, live, tfrun_on_path, "tfrun plan --inc") == ["--include"]
    # An own command's options, from its parser.
    assert _complete(bash_script, live, tfrun_on_path, "tfrun ci gitlab --dr") == ["--drift"]
    assert _complete(bash_script, live, tfrun_on_path, "tfrun graph --format ") == [
        "text",
        "dot",
        "mermaid",
        "json",
    ]
    # Environment names from the root tfrun.hcl, for the run options and drift's.
    assert _complete(bash_script, live, tfrun_on_path, "tfrun run-all plan --env ") == [
        "prod",
        "shared-services",
        "staging",
    ]
    assert _complete(bash_script, live, tfrun_on_path, "tfrun drift --env st") == ["staging"]
    # Stack paths, relative to where the shell is.
    assert _complete(
        bash_script, live, tfrun_on_path, "tfrun plan --env prod prod-eu-west-1/n"
    ) == ["prod-eu-west-1/network"]
    stacks = _complete(bash_script, live, tfrun_on_path, "tfrun run-all apply staging")
    assert stacks == [
        "staging-eu-west-1",
        "staging-eu-west-1/data",
        "staging-eu-west-1/network",
        "staging-eu-west-1/platform",
    ]
    inside = _complete(bash_script, live / "prod-eu-west-1", tfrun_on_path, "tfrun apply ")
    assert {"data", "network", "platform"} <= set(inside)
    # After --, everything is terraform's: nothing of tfrun's is offered.
    assert _complete(bash_script, live, tfrun_on_path, "tfrun plan -- -") == []


def test_bash_completion_is_silent_outside_a_live_repository(
    bash_script: Path, tmp_path: Path, tfrun_on_path: dict[str, str]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert _complete(bash_script, outside, tfrun_on_path, "tfrun plan --env ") == []
    assert _complete(bash_script, outside, tfrun_on_path, "tfrun plan x") == []
    result = run_cli(["__complete", "stacks"], outside).assert_success()
    assert result.stdout.strip() == "" and result.stderr == ""


def test_broken_root_config_completes_nothing_and_says_nothing(live: Path) -> None:
    (live / "tfrun.hcl").write_text("environments {\n")
    result = run_cli(["__complete", "envs"], live).assert_success()
    assert result.stdout.strip() == "" and result.stderr == ""


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts(shell: str, live: Path, tmp_path: Path) -> None:
    result = run_cli(["completion", shell], live).assert_success()
    text = result.stdout
    assert "__complete" in text and "run-all" in text and "--with-dependencies" in text
    if shell == "zsh":
        assert text.startswith("#compdef tfrun\n")
        assert "complete -o default -F _tfrun tfrun" in text
    else:
        assert "complete -c tfrun -f -a '(__tfrun_complete)'" in text
    binary = shutil.which(shell)
    if binary is None:
        # The text is checked above; that it parses needs the shell, absent on this machine.
        return
    script = tmp_path / f"tfrun.{shell}"
    script.write_text(text)
    parsed = subprocess.run(
        [binary, "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, parsed.stderr


def test_unknown_shell_is_a_usage_error(live: Path) -> None:
    result = run_cli(["completion", "powershell"], live).assert_exit(4)
    assert "invalid choice: 'powershell'" in result.stderr
