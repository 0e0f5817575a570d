"""Hooks (before_hook, after_hook) through the CLI, with the fake terraform: what runs, in which
order, with which environment, and what a failing or missing hook does to the stack."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fake_terraform import PROD_REL, STACK_REL, FakeRepo
from helpers import root_hcl, run_cli

from tfrun.run.folder import RUNS_DIR


def python_hook(kind: str, name: str, commands: str, code: str, extra: str = "") -> str:
    """A hook that runs a Python one-liner (no shell: the argv is given as it is)."""
    return (
        f'{kind} "{name}" {{\n  commands = [{commands}]\n'
        f'  execute  = [{json.dumps(sys.executable)}, "-c", {json.dumps(code)}]\n{extra}}}\n'
    )


def env_writer(out: Path) -> str:
    """Code that appends the hook's TFRUN_ variables to `out`, one JSON line a run."""
    return (
        "import json, os; "
        f"open({str(out)!r}, 'a').write(json.dumps({{k: v for k, v in os.environ.items() "
        "if k.startswith('TFRUN_')}) + chr(10))"
    )


def failing(message: str, code: int = 3) -> str:
    return f"import sys; print({message!r}); sys.exit({code})"


def logs(repo: FakeRepo) -> str:
    runs = sorted((repo.live / RUNS_DIR).iterdir())
    return "\n".join(log.read_text() for log in sorted(runs[-1].rglob("*.log")))


def plans(repo: FakeRepo) -> int:
    return [r["args"][0] for r in repo.records("start")].count("plan")


def test_a_failing_before_hook_fails_the_stack_without_running_terraform(tmp_path: Path) -> None:
    hook = python_hook("before_hook", "check", '"plan"', failing("formatting is off"))
    repo = FakeRepo(tmp_path, {f"{STACK_REL}/stack.hcl": hook})
    result = run_cli(["run-all", "plan"], repo.live, repo.env).assert_exit(1)
    assert plans(repo) == 1, "the other stack's plan runs; this one's does not"
    assert 'the before_hook "check" failed (exit 3), so terraform plan did not run' in (
        result.stdout + result.stderr
    )
    log = (repo.live / RUNS_DIR).glob(f"*/{STACK_REL}.log")
    text = next(log).read_text()
    assert "formatting is off" in text  # the hook's output is in the stack's log
    assert f'before_hook "check" in live/{STACK_REL}/stack.hcl' in text


def test_in_the_foreground_a_hooks_output_goes_to_the_terminal(tmp_path: Path) -> None:
    hook = python_hook("before_hook", "check", '"plan"', failing("formatting is off", 1))
    repo = FakeRepo(tmp_path, {f"{STACK_REL}/stack.hcl": hook})
    result = run_cli(["plan"], repo.live / STACK_REL, repo.env).assert_exit(1)
    assert "formatting is off" in result.stderr
    assert plans(repo) == 0


def test_hooks_run_in_order_around_the_command_and_are_told_where(tmp_path: Path) -> None:
    out = tmp_path / "hooks.jsonl"
    hooks = python_hook("before_hook", "first", '"plan", "apply"', env_writer(out)) + python_hook(
        "after_hook", "last", '"plan"', env_writer(out)
    )
    repo = FakeRepo(tmp_path, {"tfrun.hcl": root_hcl() + hooks})
    # A plan with changes, of a folder of stacks: tfrun adds -detailed-exitcode, and terraform
    # exits 2; the hook is told the plan succeeded, as it would be of one stack on a terminal.
    repo.fake(STACK_REL, {"changes": {"add": 1}})
    run_cli(["plan", "staging-eu-west-1"], repo.live, repo.env).assert_success()
    before, after = (json.loads(line) for line in out.read_text().splitlines())
    stack_dir = repo.live / STACK_REL
    assert before == {
        "TFRUN_STACK": STACK_REL,
        "TFRUN_STACK_NAME": "network",
        "TFRUN_STACK_DIR": str(stack_dir),
        "TFRUN_LIVE_ROOT": str(repo.live),
        "TFRUN_ENV": "staging",
        "TFRUN_REGION": "eu-west-1",
        "TFRUN_COMMAND": "plan",
        "TFRUN_HOOK": "first",
        "TFRUN_PLAN_FILE": after["TFRUN_PLAN_FILE"],
        **({"TFRUN_TERRAFORM": before["TFRUN_TERRAFORM"]} if "TFRUN_TERRAFORM" in before else {}),
    }
    assert after["TFRUN_HOOK"] == "last" and after["TFRUN_EXIT_CODE"] == "0"
    plan_file = Path(after["TFRUN_PLAN_FILE"])
    assert plan_file.is_file() and plan_file.suffix == ".tfplan"  # the plan terraform wrote
    # In the log: init first, then the hooks around the command.
    lines = [line for line in logs(repo).splitlines() if line.startswith("$ ")]
    kinds = [line.split()[2] if "(" not in line else line.rsplit("(", 1)[1] for line in lines]
    # (show: the saved plan's counts, read before the after-hooks are told it succeeded)
    assert kinds == ["init", 'before_hook "first")', "plan", "show", 'after_hook "last")']


def test_after_hooks_run_after_a_failure_only_when_asked(tmp_path: Path) -> None:
    out = tmp_path / "hooks.jsonl"
    hooks = python_hook(
        "after_hook", "always", '"plan"', env_writer(out), "  run_on_error = true\n"
    )
    hooks += python_hook("after_hook", "on_success", '"plan"', env_writer(out))
    repo = FakeRepo(tmp_path, {f"{STACK_REL}/stack.hcl": hooks})
    repo.fake(STACK_REL, {"plan": {"exit": 1}})
    run_cli(["plan"], repo.live / STACK_REL, repo.env).assert_exit(1)
    [ran] = [json.loads(line) for line in out.read_text().splitlines()]
    assert ran["TFRUN_HOOK"] == "always" and ran["TFRUN_EXIT_CODE"] == "1"


def test_a_failing_after_hook_fails_the_stack_and_says_terraform_succeeded(
    tmp_path: Path,
) -> None:
    hook = python_hook("after_hook", "audit", '"plan"', failing("audit says no", 4))
    repo = FakeRepo(tmp_path, {f"{PROD_REL}/stack.hcl": hook})
    result = run_cli(["run-all", "plan", "--json", "r.json"], repo.live, repo.env)
    result.assert_exit(1)
    report = {s["path"]: s for s in json.loads((repo.live / "r.json").read_text())["stacks"]}
    prod = report[PROD_REL]
    assert prod["status"] == "failed"
    assert prod["reason"].startswith('the after_hook "audit" failed (exit 4;')
    assert prod["reason"].endswith("after terraform plan succeeded")
    assert prod["changes"] is not None  # what the plan found is kept
    assert report[STACK_REL]["status"] == "succeeded"


def test_a_hook_whose_program_does_not_exist_is_an_error_naming_it(tmp_path: Path) -> None:
    hook = 'before_hook "lint" {\n  commands = ["plan"]\n  execute  = ["no-such-tflint"]\n}\n'
    repo = FakeRepo(tmp_path, {"staging-eu-west-1/tfrun.hcl": hook})
    result = run_cli(["plan"], repo.live / STACK_REL, repo.env).assert_exit(1)
    said = result.stdout + result.stderr
    assert (
        'the before_hook "lint" (before_hook "lint" in live/staging-eu-west-1/tfrun.hcl) '
        "runs 'no-such-tflint', which was not found on PATH"
    ) in " ".join(said.split())
    assert "Traceback" not in said
    assert plans(repo) == 0


def test_a_program_with_a_slash_is_found_from_the_stacks_folder(tmp_path: Path) -> None:
    out = tmp_path / "ran"
    script = f'#!/bin/sh\necho "$TFRUN_COMMAND $1" > {out}\n'
    hook = 'before_hook "local" {\n  commands = ["plan"]\n  execute  = ["./check.sh", "x"]\n}\n'
    repo = FakeRepo(tmp_path, {f"{STACK_REL}/stack.hcl": hook, f"{STACK_REL}/check.sh": script})
    (repo.live / STACK_REL / "check.sh").chmod(0o755)
    run_cli(["plan", STACK_REL], repo.live, repo.env).assert_success()
    assert out.read_text() == "plan x\n"
    # Not executable: named as such, the stack fails.
    (repo.live / STACK_REL / "check.sh").chmod(0o644)
    failed = run_cli(["plan", STACK_REL], repo.live, repo.env).assert_exit(1)
    assert "'./check.sh', which is no executable file in" in " ".join(
        (failed.stdout + failed.stderr).split()
    )
