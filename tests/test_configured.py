"""What a stack's config adds to a terraform command (tfrun/configured.py): extra arguments,
var files found up the tree, hooks; their parsing, merging and errors, the command line built
with them per command, and the refusal rules seeing them as if typed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_terraform import PROD_REL, STACK_REL, FakeRepo
from helpers import root_hcl, run_cli, write_tree

from tfrun import configured, safety, tfargs
from tfrun.discovery import Repository, Stack
from tfrun.errors import ConfigError

LOCKING = """
extra_arguments "locking" {
  commands  = ["plan", "apply"]
  arguments = ["-lock-timeout=5m"]
}
"""


def stack_with(tmp_path: Path, files: dict[str, str], rel: str = STACK_REL) -> Stack:
    live = write_tree(
        tmp_path / "live",
        {"tfrun.hcl": root_hcl(), f"{rel}/main.tf": "", **files},
    )
    return Repository(live).stack(live / rel)


def config_error(tmp_path: Path, text: str, where: str = "tfrun.hcl") -> str:
    with pytest.raises(ConfigError) as caught:
        stack_with(tmp_path, {where: root_hcl() + text} if where == "tfrun.hcl" else {where: text})
    return str(caught.value)


# --- Parsing and merging ----------------------------------------------------------------------


def test_labelled_blocks_parse_and_nearer_entries_replace_farther_ones_whole(
    tmp_path: Path,
) -> None:
    stack = stack_with(
        tmp_path,
        {
            "tfrun.hcl": root_hcl()
            + LOCKING
            + """
extra_arguments "apply_parallelism" {
  commands  = ["apply"]
  arguments = ["-parallelism=20"]
}
after_hook "notify" {
  commands     = ["apply"]
  execute      = ["notify", "--done"]
  run_on_error = true
}
var_files = ["common.tfvars"]
""",
            # The environment's folder replaces `locking` whole and adds a hook of its own.
            "staging-eu-west-1/tfrun.hcl": """
extra_arguments "locking" {
  commands  = ["plan"]
  arguments = ["-lock-timeout=1m"]
}
before_hook "fmt" {
  commands = ["plan", "apply"]
  execute  = ["terraform", "fmt", "-check"]
}
""",
            # The stack replaces the notify hook, without run_on_error: it is not inherited.
            f"{STACK_REL}/stack.hcl": """
after_hook "notify" {
  commands = ["apply"]
  execute  = ["notify"]
}
var_files = ["{env}.tfvars", "{region}.tfvars"]
""",
        },
    )
    config = stack.config
    assert list(config.extra_arguments) == ["locking", "apply_parallelism"]
    assert config.extra_arguments["locking"].commands == ["plan"]
    assert configured.extra_arguments(stack, "apply") == [
        ("-parallelism=20", 'extra_arguments "apply_parallelism" in live/tfrun.hcl')
    ]
    assert [arg for arg, _ in configured.extra_arguments(stack, "plan")] == ["-lock-timeout=1m"]
    [notify] = configured.hooks(stack, "apply", "after")
    assert notify.argv == ("notify",) and notify.run_on_error is False
    assert notify.origin == f'after_hook "notify" in live/{STACK_REL}/stack.hcl'
    [fmt] = configured.hooks(stack, "plan", "before")
    assert fmt.argv == ("terraform", "fmt", "-check")
    assert configured.hooks(stack, "destroy", "before") == []
    # A list is replaced by a nearer file's, as every list in config is.
    assert config.var_files == ["{env}.tfvars", "{region}.tfvars"]


def test_the_attribute_form_of_a_named_entry_works_too(tmp_path: Path) -> None:
    stack = stack_with(
        tmp_path,
        {
            f"{STACK_REL}/stack.hcl": (
                'before_hook = { lint = { commands = ["plan"], execute = ["tflint"] } }\n'
            )
        },
    )
    assert [hook.name for hook in configured.hooks(stack, "plan", "before")] == ["lint"]


def test_an_inherited_hook_is_turned_off_by_naming_no_command(tmp_path: Path) -> None:
    stack = stack_with(
        tmp_path,
        {
            "tfrun.hcl": root_hcl()
            + 'before_hook "fmt" {\n commands = ["plan"]\n execute = ["terraform", "fmt"]\n}\n',
            f"{STACK_REL}/stack.hcl": (
                'before_hook "fmt" {\n commands = []\n execute = ["terraform", "fmt"]\n}\n'
            ),
        },
    )
    assert not configured.has_hooks(stack, "plan")


ERRORS = {
    "unknown key in a hook": (
        'before_hook "fmt" {\n commands = ["plan"]\n execute = ["x"]\n shell = true\n}\n',
        "unknown key 'before_hook.fmt.shell'",
    ),
    "execute is a string, not a list": (
        'before_hook "fmt" {\n commands = ["plan"]\n execute = "terraform fmt"\n}\n',
        "'before_hook.fmt.execute'",
    ),
    "execute holds a number": (
        'after_hook "fmt" {\n commands = ["plan"]\n execute = ["sleep", 5]\n}\n',
        "'after_hook.fmt.execute.1'",
    ),
    "execute is empty": (
        'before_hook "fmt" {\n commands = ["plan"]\n execute = []\n}\n',
        "'before_hook.fmt.execute'",
    ),
    "run_on_error on a before hook": (
        'before_hook "fmt" {\n commands = ["plan"]\n execute = ["x"]\n run_on_error = true\n}\n',
        "unknown key 'before_hook.fmt.run_on_error'",
    ),
    "a command tfrun does not know": (
        'before_hook "fmt" {\n commands = ["plna"]\n execute = ["x"]\n}\n',
        '"plna" is not a terraform command',
    ),
    "a hook named twice in one file": (
        'before_hook "a" {\n commands = []\n execute = ["x"]\n}\n'
        'before_hook "a" {\n commands = []\n execute = ["y"]\n}\n',
        "the block 'before_hook \"a\"' appears twice",
    ),
    "extra arguments of the wrong type": (
        'extra_arguments "x" {\n commands = ["plan"]\n arguments = "-lock=false"\n}\n',
        "'extra_arguments.x.arguments'",
    ),
    "extra arguments for a command with subcommands": (
        'extra_arguments "x" {\n commands = ["state"]\n arguments = ["-lock=false"]\n}\n',
        '"state" is not a terraform command this can name',
    ),
    "var_files with a folder": ('var_files = ["env/prod.tfvars"]\n', "is not a file name"),
    "var_files with an unknown field": ('var_files = ["{stack}.tfvars"]\n', "uses {stack}"),
    "var_files of the wrong type": ('var_files = "common.tfvars"\n', "'var_files'"),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_config_errors_name_the_file_and_the_key(tmp_path: Path, case: str) -> None:
    text, expected = ERRORS[case]
    message = config_error(tmp_path, text, where=f"{STACK_REL}/stack.hcl")
    assert message.startswith(str(tmp_path / "live" / STACK_REL / "stack.hcl")), message
    assert expected in message, message


FORBIDDEN = {
    "-chdir=..": ("plan", "-chdir would run terraform in another folder"),
    "-auto-approve": ("apply", "-auto-approve would approve for the person"),
    "-out=x.tfplan": ("plan", "-out is tfrun's"),
    "-detailed-exitcode": ("plan", "-detailed-exitcode is tfrun's"),
    "-input=true": ("apply", "-input is tfrun's"),
    "-json": ("output", "-json would change terraform's output"),
    "-state=other.tfstate": ("apply", "-state would move the state"),
    "-backend-config=bucket=x": ("init", "-backend-config is tfrun's"),
    "-migrate-state": ("init", "-migrate-state moves state"),
    "plan.tfplan": ("apply", "is not a flag"),
    "-lock-timeout": ("plan", "takes a value: write it with its value as one argument"),
}


@pytest.mark.parametrize("argument", FORBIDDEN, ids=list(FORBIDDEN))
def test_a_forbidden_extra_argument_is_an_error_naming_it(tmp_path: Path, argument: str) -> None:
    command, expected = FORBIDDEN[argument]
    text = f'extra_arguments "x" {{\n commands = ["{command}"]\n arguments = ["{argument}"]\n}}\n'
    message = config_error(tmp_path, text)
    assert message.startswith(str(tmp_path / "live" / "tfrun.hcl")), message
    assert f'the argument "{argument}" for {command}' in message, message
    assert expected in message, message


def test_arguments_a_person_may_want_are_allowed(tmp_path: Path) -> None:
    stack = stack_with(
        tmp_path,
        {
            f"{STACK_REL}/stack.hcl": """
extra_arguments "all" {
  commands  = ["init", "plan", "apply", "destroy"]
  arguments = ["-lock-timeout=5m", "-parallelism=20", "-compact-warnings", "-var=a=b"]
}
"""
        },
    )
    assert len(configured.extra_arguments(stack, "destroy")) == 4


# --- The command line per command -------------------------------------------------------------


def var_files_stack(tmp_path: Path) -> Stack:
    rel = "staging-eu-west-1/platform/eks"
    return stack_with(
        tmp_path,
        {
            "tfrun.hcl": root_hcl() + LOCKING + 'var_files = ["common.tfvars", "{env}.tfvars"]\n',
            "common.tfvars": "",
            "staging.tfvars": "",
            "staging-eu-west-1/common.tfvars": "",
            "staging-eu-west-1/prod.tfvars": "",  # another environment's: not this stack's
            f"{rel}/staging.tfvars": "",
            "staging-eu-west-1/platform/staging.tfvars/keep": "",  # a folder, not a file
        },
        rel,
    )


def test_var_files_are_found_root_first_and_in_the_order_of_their_names(tmp_path: Path) -> None:
    stack = var_files_stack(tmp_path)
    live = tmp_path / "live"
    assert configured.var_files(stack) == [
        live / "common.tfvars",
        live / "staging.tfvars",
        live / "staging-eu-west-1/common.tfvars",
        live / "staging-eu-west-1/platform/eks/staging.tfvars",
    ]
    assert len(configured.var_file_candidates(stack)) == 2 * 4  # two names, four folders


EXPECTED_VAR_FILES = [
    "-var-file=../../../common.tfvars",
    "-var-file=../../../staging.tfvars",
    "-var-file=../../common.tfvars",
    "-var-file=staging.tfvars",
]


@pytest.mark.parametrize(
    ("command", "tf_args", "expected"),
    [
        ("plan", [], ["-lock-timeout=5m", *EXPECTED_VAR_FILES]),
        ("apply", [], ["-lock-timeout=5m", *EXPECTED_VAR_FILES]),
        ("apply", ["-target=x.y"], ["-lock-timeout=5m", *EXPECTED_VAR_FILES]),
        # A saved plan holds the variables: terraform rejects -var-file with it.
        ("apply", ["saved.tfplan"], ["-lock-timeout=5m"]),
        ("destroy", [], EXPECTED_VAR_FILES),
        ("import", ["a.b", "id-1"], EXPECTED_VAR_FILES),
        ("refresh", [], EXPECTED_VAR_FILES),
        ("console", [], EXPECTED_VAR_FILES),
        ("validate", [], []),
        ("output", [], []),
        ("state", ["list"], []),
    ],
)
def test_what_the_config_adds_per_command(
    tmp_path: Path, command: str, tf_args: list[str], expected: list[str]
) -> None:
    stack = var_files_stack(tmp_path)
    assert configured.arguments(stack, command, tf_args) == expected


def test_a_saved_plan_apply_gets_no_configured_variables(tmp_path: Path) -> None:
    stack = stack_with(
        tmp_path,
        {
            f"{STACK_REL}/stack.hcl": """
extra_arguments "vars" {
  commands  = ["apply"]
  arguments = ["-var=size=2", "-var-file=extra.tfvars", "-parallelism=3"]
}
"""
        },
    )
    assert configured.arguments(stack, "apply", []) == [
        "-var=size=2",
        "-var-file=extra.tfvars",
        "-parallelism=3",
    ]
    assert configured.arguments(stack, "apply", ["-lock=true", "p.tfplan"]) == ["-parallelism=3"]


def test_configured_arguments_go_before_the_persons_so_typed_ones_win() -> None:
    line = tfargs.CommandLine(
        auto_approve=True,
        detailed_exitcode=False,
        terminal=False,
        configured=("-lock-timeout=5m", "-var-file=common.tfvars"),
    )
    argv = tfargs.command_argv("terraform", "apply", ["-lock-timeout=1m"], line)
    assert argv == [
        "terraform",
        "apply",
        "-input=false",
        "-auto-approve",
        "-no-color",
        "-lock-timeout=5m",
        "-var-file=common.tfvars",
        "-lock-timeout=1m",
    ]


# --- The refusal rules see configured arguments ----------------------------------------------


def test_a_configured_destroy_is_classified_with_where_it_was_set() -> None:
    origin = 'extra_arguments "x" in live/tfrun.hcl'
    operation = tfargs.classify("apply", [], {}, [("-destroy", origin)])
    assert operation.effect is tfargs.Effect.DESTROY
    assert operation.description == f"apply -destroy (from {origin})"
    assert "-destroy" in operation.argv


def test_safety_judges_each_stack_by_its_own_command_line(tmp_path: Path) -> None:
    live = write_tree(
        tmp_path / "live",
        {
            "tfrun.hcl": root_hcl(),
            f"{STACK_REL}/main.tf": "",
            f"{PROD_REL}/main.tf": "",
            "prod-eu-west-1/tfrun.hcl": (
                'extra_arguments "wipe" {\n commands = ["apply"]\n arguments = ["-destroy"]\n}\n'
            ),
        },
    )
    staging, prod = (Repository(live).stack(live / rel) for rel in (STACK_REL, PROD_REL))
    typed = tfargs.classify("apply", [], {})
    per_stack = {
        stack.rel: tfargs.classify("apply", [], {}, configured.extra_arguments(stack, "apply"))
        for stack in (staging, prod)
    }
    # Without the per-stack lines, the run would be a plain apply (a confirmation for prod).
    assert safety.check([staging, prod], typed, {}, can_ask=True)
    with pytest.raises(safety.Refusal) as refused:
        safety.check([staging, prod], typed, {}, can_ask=True, per_stack=per_stack)
    message = str(refused.value)
    assert refused.value.stacks == (PROD_REL,)
    assert 'apply -destroy (from extra_arguments "wipe" in live/prod-eu-west-1/tfrun.hcl)' in (
        message
    )
    assert "the whole run of 2 stacks is refused" in message
    assert "protected-destroy-in-ci-only" in message
    # Where a destroy may run, the same lines pass.
    manual = {"GITLAB_CI": "true", "CI_JOB_MANUAL": "true", "CI_PIPELINE_SOURCE": "web"}
    assert safety.check([staging, prod], typed, manual, can_ask=False, per_stack=per_stack) == []


def laptop(env: dict[str, str]) -> dict[str, str]:
    """`env` with no CI variable set (CI runs this suite with CI=true)."""
    return {
        **{name: "" for name in ("CI", "GITLAB_CI", "GITHUB_ACTIONS", "BUILDKITE")},
        **env,
    }


def test_a_run_of_many_stacks_refuses_a_configured_destroy_before_anything_starts(
    tmp_path: Path,
) -> None:
    wipe = 'extra_arguments "wipe" {\n commands = ["apply"]\n arguments = ["-destroy"]\n}\n'
    repo = FakeRepo(tmp_path, {"prod-eu-west-1/tfrun.hcl": wipe})
    result = run_cli(["run-all", "apply", "--yes"], repo.live, laptop(repo.env)).assert_exit(3)
    assert f"{PROD_REL}" in result.stderr
    assert 'apply -destroy (from extra_arguments "wipe"' in result.stderr
    assert "protected-destroy-in-ci-only" in result.stderr
    assert repo.records("start") == [], "terraform ran in a refused run"
    assert not (repo.live / STACK_REL / "backend.tf").exists()
    # The same command in the stack alone, typed the ordinary way, is refused the same way.
    alone = run_cli(["apply", "--yes"], repo.live / PROD_REL, laptop(repo.env)).assert_exit(3)
    assert "apply -destroy" in alone.stderr
    assert repo.records("start") == []


def test_the_configured_arguments_reach_terraform(tmp_path: Path) -> None:
    repo = FakeRepo(
        tmp_path,
        {
            "tfrun.hcl": root_hcl() + LOCKING + 'var_files = ["common.tfvars"]\n',
            "common.tfvars": 'size = "s"\n',
        },
    )
    run_cli(["run-all", "plan"], repo.live, repo.env).assert_success()
    plans = [r["args"] for r in repo.records("start") if r["args"][0] == "plan"]
    assert len(plans) == 2
    for args in plans:
        assert args[-2:] == ["-lock-timeout=5m", "-var-file=../../common.tfvars"]
    assert os.path.isabs(next(a for a in plans[0] if a.startswith("-out=")).removeprefix("-out="))
