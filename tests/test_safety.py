"""Safety rules (docs/safety.md): every destructive form, every place tfrun runs, protected or not.

Every call passes an explicit environ, so the real shell or CI never decides a result; an
autouse fixture also plants CI and TF_CLI_ARGS in os.environ to prove nothing reads it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from helpers import write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfrun import safety
from tfrun.discovery import Repository, Stack
from tfrun.errors import ExitCode, RefusedError
from tfrun.safety import (
    CIContext,
    CIProvider,
    Confirmation,
    PlanInspector,
    PlanSummary,
    Refusal,
    destroy_rule,
    detect_ci,
    summarise_plan,
)
from tfrun.tfargs import Effect, classify


def check(
    stacks: Sequence[Stack],
    command: str,
    args: Sequence[str],
    environ: Mapping[str, str],
    *,
    interactive: bool,
    inspect_plan: PlanInspector | None = None,
) -> list[Confirmation]:
    """The rules as a run applies them: its command line classified once, then checked."""
    operation = classify(command, args, environ)
    return safety.check(stacks, operation, environ, can_ask=interactive, inspect_plan=inspect_plan)


ROOT = """
state {
  bucket = "acme-tfstate"
  region = "eu-west-1"
}
environments {
  prod       = { account_id = "222222222222" }
  production = { account_id = "444444444444" }
  staging    = { account_id = "333333333333" }
  qa         = { account_id = "555555555555", protected = true, laptop_apply = false }
}
"""

PROD = "prod-eu-west-1/network"
PROD_DATA = "prod-eu-west-1/data"
PRODUCTION = "production-us-east-1/api"
STAGING = "staging-eu-west-1/network"
QA = "qa-eu-west-1/app"

FAST = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stack]:
    live = write_tree(
        tmp_path_factory.mktemp("safety") / "live",
        {
            "tfrun.hcl": ROOT,
            **{f"{rel}/main.tf": "" for rel in (PROD, PROD_DATA, PRODUCTION, STAGING, QA)},
        },
    )
    return {stack.rel: stack for stack in Repository(live).stacks()}


def test_the_fixture_protects_what_the_config_says(stacks: dict[str, Stack]) -> None:
    assert {rel for rel, s in stacks.items() if s.protected} == {PROD, PROD_DATA, PRODUCTION, QA}


# --- Where tfrun runs ---------------------------------------------------------------------

NO_CI: dict[str, str] = {}
CI_FALSE = {"CI": "false"}
CI_GENERIC = {"CI": "true"}
BUILDKITE = {"CI": "true", "BUILDKITE": "true", "BUILDKITE_SOURCE": "webhook"}
GITLAB_PUSH = {"CI": "true", "GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "push"}
GITLAB_MANUAL = {**GITLAB_PUSH, "CI_JOB_MANUAL": "true"}
GITLAB_MR_MANUAL = {**GITLAB_MANUAL, "CI_PIPELINE_SOURCE": "merge_request_event"}
GITHUB_PUSH = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push"}
GITHUB_PR = {**GITHUB_PUSH, "GITHUB_EVENT_NAME": "pull_request"}
GITHUB_PR_TARGET = {**GITHUB_PUSH, "GITHUB_EVENT_NAME": "pull_request_target"}
GITHUB_DISPATCH = {**GITHUB_PUSH, "GITHUB_EVENT_NAME": "workflow_dispatch"}

# name, environ, the rule that refuses a protected destroy there (None: allowed)
PLACES: list[tuple[str, dict[str, str], str | None]] = [
    ("laptop", NO_CI, "protected-destroy-in-ci-only"),
    ("CI=false", CI_FALSE, "protected-destroy-in-ci-only"),
    ("generic CI", CI_GENERIC, None),
    ("buildkite", BUILDKITE, None),
    ("gitlab push job", GITLAB_PUSH, "protected-destroy-gitlab-manual-job"),
    ("gitlab manual job", GITLAB_MANUAL, None),
    ("gitlab MR manual job", GITLAB_MR_MANUAL, "protected-destroy-gitlab-not-from-merge-request"),
    ("github push", GITHUB_PUSH, "protected-destroy-github-workflow-dispatch"),
    ("github pull_request", GITHUB_PR, "protected-destroy-github-workflow-dispatch"),
    ("github pull_request_target", GITHUB_PR_TARGET, "protected-destroy-github-workflow-dispatch"),
    ("github workflow_dispatch", GITHUB_DISPATCH, None),
]


@pytest.fixture(autouse=True)
def _real_environment_is_ignored(
    _isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After conftest cleared the real variables: plant ones that would change every answer."""
    for name, value in {
        **GITLAB_MANUAL,
        "TF_CLI_ARGS": "-destroy",
        "GITHUB_ACTIONS": "true",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"CI": ""}, None),
        ({"CI": "0"}, None),
        ({"CI": "false"}, None),
        ({"CI": "False"}, None),
        ({"CI": "no"}, None),
        ({"GITLAB_CI": "false"}, None),
        ({"CI": "true"}, CIContext(CIProvider.GENERIC)),
        ({"CI": "1"}, CIContext(CIProvider.GENERIC)),
        ({"CI": "woodpecker"}, CIContext(CIProvider.GENERIC)),
        ({"CONTINUOUS_INTEGRATION": "true"}, CIContext(CIProvider.GENERIC)),
        ({"CODEBUILD_BUILD_ID": "x:1"}, CIContext(CIProvider.GENERIC)),
        ({"BUILDKITE": "true"}, CIContext(CIProvider.BUILDKITE)),
        ({"CIRCLECI": "true"}, CIContext(CIProvider.CIRCLECI)),
        ({"JENKINS_URL": "https://jenkins.example/"}, CIContext(CIProvider.JENKINS)),
        ({"TF_BUILD": "True"}, CIContext(CIProvider.AZURE)),
        ({"TEAMCITY_VERSION": "2024.1"}, CIContext(CIProvider.TEAMCITY)),
        # A provider's own variable wins over CI=false.
        ({"CI": "false", "GITLAB_CI": "true"}, CIContext(CIProvider.GITLAB, manual=False)),
        (GITLAB_PUSH, CIContext(CIProvider.GITLAB, manual=False, event="push")),
        (GITLAB_MANUAL, CIContext(CIProvider.GITLAB, manual=True, event="push")),
        ({"GITLAB_CI": "true", "CI_JOB_MANUAL": "false"}, CIContext(CIProvider.GITLAB, False)),
        (GITHUB_PR, CIContext(CIProvider.GITHUB, manual=False, event="pull_request")),
        (GITHUB_DISPATCH, CIContext(CIProvider.GITHUB, manual=True, event="workflow_dispatch")),
        ({"GITHUB_ACTIONS": "true"}, CIContext(CIProvider.GITHUB, manual=False)),
    ],
)
def test_detect_ci(environ: dict[str, str], expected: CIContext | None) -> None:
    assert detect_ci(environ) == expected


@pytest.mark.parametrize(("place", "environ", "rule"), PLACES, ids=[p[0] for p in PLACES])
def test_destroy_rule_per_place(place: str, environ: dict[str, str], rule: str | None) -> None:
    found = destroy_rule(detect_ci(environ))
    assert (found.name if found else None) == rule


# --- Classification ------------------------------------------------------------------------

# command, args, extra environment: every form that must count as destroying.
DESTRUCTIVE: list[tuple[str, list[str], dict[str, str]]] = [
    ("destroy", [], {}),
    ("destroy", ["-auto-approve"], {}),
    ("destroy", ["-target=aws_instance.web"], {}),
    ("destroy", ["-target", "module.db", "-auto-approve"], {}),
    ("destroy", ["-destroy=false"], {}),  # still the destroy command
    ("apply", ["-destroy"], {}),
    ("apply", ["--destroy"], {}),
    ("apply", ["-destroy=true"], {}),
    ("apply", ["-destroy=TRUE"], {}),
    ("apply", ["--destroy=1"], {}),
    ("apply", ["-destroy=t"], {}),
    ("apply", ["-destroy=maybe"], {}),  # terraform rejects it; tfrun does not guess
    ("apply", ["-auto-approve", "-destroy"], {}),
    ("apply", ["-input=false", "-target=aws_s3_bucket.b", "-destroy", "-auto-approve"], {}),
    ("apply", ["-destroy", "-destroy=false"], {}),  # any one switched on counts
    ("apply", ["-var", "env=prod", "-destroy"], {}),
    ("apply", ["-replace=aws_instance.web"], {}),
    ("apply", ["-auto-approve", "-replace", "aws_instance.web"], {}),
    ("apply", ["-lock-timeout=5m", "planfile", "-destroy"], {}),  # after a positional
    ("apply", ["--", "-destroy"], {}),
    ("state", ["rm", "aws_instance.web"], {}),
    ("state rm", ["aws_instance.web"], {}),
    ("state", ["rm", "aws_instance.web", "-dry-run"], {}),  # not a flag after the address
    ("state", ["rm", "-dry-run=false", "aws_instance.web"], {}),
    ("state", ["rm", "-dry-run", "-dry-run=false", "aws_instance.web"], {}),
    ("state", ["mv", "-state-out=other.tfstate", "aws_instance.a", "aws_instance.a"], {}),
    ("state", ["mv", "-state", "other.tfstate", "aws_instance.a", "aws_instance.b"], {}),
    ("state", ["push", "prod.tfstate"], {}),
    ("state", ["push", "-force", "prod.tfstate"], {}),
    ("workspace", ["delete", "old"], {}),
    ("workspace", ["delete", "-force", "old"], {}),
    ("env", ["delete", "old"], {}),
    ("force-unlock", ["6f1c2c8e"], {}),
    ("force-unlock", ["-force", "6f1c2c8e"], {}),
    ("taint", ["aws_instance.web"], {}),
    ("init", ["-migrate-state"], {}),
    ("init", ["-reconfigure", "-force-copy"], {}),
    ("refresh", ["-destroy"], {}),
    ("import", ["-replace=x", "aws_instance.a", "i-1"], {}),
    # The command given after `--` (tfrun passes an empty command and everything as args).
    ("", ["destroy"], {}),
    ("", ["state", "rm", "aws_instance.web"], {}),
    ("", ["-no-color", "apply", "-destroy"], {}),
    # Flags smuggled through the environment.
    ("apply", [], {"TF_CLI_ARGS": "-destroy"}),
    ("apply", ["-auto-approve"], {"TF_CLI_ARGS_apply": "-destroy"}),
    ("apply", [], {"TF_CLI_ARGS_apply": "'-destroy=true'"}),
    ("apply", ["-destroy=false"], {"TF_CLI_ARGS_apply": "-destroy"}),
    ("apply", [], {"TF_CLI_ARGS": "-input=false -replace=aws_instance.web"}),
    ("state", [], {"TF_CLI_ARGS": "rm aws_instance.web"}),
    ("state", [], {"TF_CLI_ARGS_state": "rm aws_instance.web"}),
    ("workspace", [], {"TF_CLI_ARGS_workspace": "delete old"}),
    ("", [], {"TF_CLI_ARGS": "destroy -auto-approve"}),
    ("state", ["rm", "-dry-run", "a"], {"TF_CLI_ARGS_state_rm": "-dry-run=false"}),
    ("apply", [], {"TF_CLI_ARGS": "'unbalanced"}),
    ("plan", [], {"TF_CLI_ARGS_plan": 'x "y'}),
    # Commands tfrun does not know count as the worst case.
    ("frobnicate", [], {}),
    ("run-all", ["destroy"], {}),
]

GUARDED: list[tuple[str, list[str], dict[str, str]]] = [
    ("apply", [], {}),
    ("apply", ["-auto-approve"], {}),
    ("apply", ["-destroy=false"], {}),
    ("apply", ["--destroy=False", "-input=false"], {}),
    ("apply", ["-refresh-only", "-auto-approve"], {}),
    ("apply", ["-target", "aws_instance.web", "-var", "a=-destroy"], {}),
    ("apply", [], {"TF_CLI_ARGS_apply": "-destroy=false -lock-timeout=5m"}),
    ("apply", [], {"TF_CLI_ARGS_plan": "-destroy"}),  # another command's variable
    ("refresh", [], {}),
    ("import", ["aws_instance.web", "i-123"], {}),
    ("untaint", ["aws_instance.web"], {}),
    ("state", ["mv", "aws_instance.a", "aws_instance.b"], {}),
    ("state", ["replace-provider", "hashicorp/aws", "acme/aws"], {}),
    ("test", [], {}),
    ("workspace", ["new", "blue"], {}),
    ("workspace", ["select", "-or-create", "blue"], {}),
]

READ_ONLY: list[tuple[str, list[str], dict[str, str]]] = [
    ("plan", [], {}),
    ("plan", ["-destroy", "-out=tfplan"], {}),
    ("plan", ["-replace=aws_instance.web"], {}),
    ("plan", [], {"TF_CLI_ARGS_plan": "-destroy"}),
    ("plan", [], {"TF_CLI_ARGS_apply": "-destroy"}),
    ("show", ["-json", "tfplan"], {}),
    ("output", ["-json"], {}),
    ("validate", [], {}),
    ("init", ["-upgrade"], {}),
    ("init", ["-migrate-state=false"], {}),
    ("state", ["list"], {}),
    ("state", ["pull"], {}),
    ("state", ["show", "aws_instance.web"], {}),
    ("state", ["rm", "-dry-run", "aws_instance.web"], {}),
    ("state", ["mv", "-dry-run", "aws_instance.a", "aws_instance.b"], {}),
    ("state", ["-lock=false", "rm", "a"], {}),  # not contiguous: terraform shows state's help
    ("workspace", ["list"], {}),
    ("workspace", ["select", "blue"], {}),
    ("providers", ["lock", "-platform=linux_amd64"], {}),
    ("fmt", ["-check"], {}),
    ("version", [], {}),
    ("", [], {}),
    ("", ["--", "destroy"], {}),  # terraform reads no command at all and prints its help
]


def _ids(cases: Sequence[tuple[str, list[str], dict[str, str]]]) -> list[str]:
    return [
        " ".join([c, *a, *(f"{k}={v}" for k, v in e.items())]) or "(empty)" for c, a, e in cases
    ]


@pytest.mark.parametrize(("command", "args", "env"), DESTRUCTIVE, ids=_ids(DESTRUCTIVE))
def test_destructive_forms_classify_as_destroy(
    command: str, args: list[str], env: dict[str, str]
) -> None:
    assert classify(command, args, env).effect is Effect.DESTROY


@pytest.mark.parametrize(("command", "args", "env"), GUARDED, ids=_ids(GUARDED))
def test_guarded_forms_classify_as_apply(
    command: str, args: list[str], env: dict[str, str]
) -> None:
    assert classify(command, args, env).effect is Effect.APPLY


@pytest.mark.parametrize(("command", "args", "env"), READ_ONLY, ids=_ids(READ_ONLY))
def test_read_only_forms(command: str, args: list[str], env: dict[str, str]) -> None:
    assert not classify(command, args, env).writes


@pytest.mark.parametrize(
    ("command", "args", "env", "kind", "description"),
    [
        ("apply", ["-destroy"], {}, Effect.DESTROY, "apply -destroy"),
        ("apply", [], {"TF_CLI_ARGS_apply": "-destroy"}, Effect.DESTROY,
         "apply -destroy (from TF_CLI_ARGS_apply)"),
        ("state", [], {"TF_CLI_ARGS": "rm a"}, Effect.DESTROY, "state rm"),
        ("plan", ["-destroy"], {}, Effect.PLAN_DESTROY, "plan -destroy"),
        ("apply", ["tfplan"], {}, Effect.APPLY_SAVED_PLAN, "apply of a saved plan"),
        ("state", ["mv", "a", "b"], {}, Effect.APPLY, "state mv within the stack's state"),
        ("apply", [], {"TF_CLI_ARGS": "'x"}, Effect.DESTROY,
         "apply of a saved plan with a TF_CLI_ARGS that tfrun cannot parse"),
    ],
)  # fmt: skip
def test_descriptions_say_what_and_where_from(
    command: str, args: list[str], env: dict[str, str], kind: Effect, description: str
) -> None:
    operation = classify(command, args, env)
    assert (operation.effect, operation.description) == (kind, description)


@pytest.mark.parametrize(
    ("args", "plan_file"),
    [
        (["tfplan"], "tfplan"),
        (["-auto-approve", "tfplan"], "tfplan"),
        (["-lock-timeout", "5m", "tfplan"], "tfplan"),
        (["-input=false", "--", "tfplan"], "tfplan"),
        (["/abs/plan"], "/abs/plan"),
    ],
)
def test_saved_plan_is_the_positional(args: list[str], plan_file: str) -> None:
    operation = classify("apply", args, {})
    assert (operation.effect, operation.plan_file) == (Effect.APPLY_SAVED_PLAN, plan_file)


def test_env_args_go_where_terraform_puts_them() -> None:
    operation = classify(
        "state", ["rm", "x"], {"TF_CLI_ARGS": "-lock=false", "TF_CLI_ARGS_state_rm": "-backup=b"}
    )
    # Right after the command; the command's own variable ends up first.
    assert operation.argv == ("state", "rm", "-backup=b", "-lock=false", "x")
    assert classify("", ["-chdir=d"], {"TF_CLI_ARGS": "destroy"}).argv == ("destroy", "-chdir=d")


def test_chdir_before_the_command_is_seen() -> None:
    assert classify("", ["-chdir=../other", "apply"], {}).chdir == "../other"
    assert classify("apply", ["-chdir=../other"], {}).chdir is None  # terraform rejects it


# Flags that never destroy, as units Go's flag package reads together.
SAFE_UNITS = [
    ["-auto-approve"],
    ["-input=false"],
    ["-lock=false"],
    ["-lock-timeout=5m"],
    ["-parallelism", "3"],
    ["-target=aws_instance.a"],
    ["-var", "name=-destroy"],
    ["-var-file=prod.tfvars"],
    ["-refresh=false"],
    ["-no-color"],
    ["-compact-warnings"],
    ["-destroy=false"],
    ["--destroy=0"],
    ["-destroy=F"],
]
DESTROY_UNITS = [
    ["-destroy"],
    ["--destroy"],
    ["-destroy=true"],
    ["-destroy=1"],
    ["--destroy=True"],
    ["-replace=aws_instance.a"],
    ["-replace", "aws_instance.a"],
]


@FAST
@given(
    safe=st.lists(st.sampled_from(SAFE_UNITS), max_size=6),
    bad=st.sampled_from(DESTROY_UNITS),
    data=st.data(),
)
def test_any_flag_order_with_a_destroying_flag_destroys(
    safe: list[list[str]], bad: list[str], data: st.DataObject
) -> None:
    units = data.draw(st.permutations([*safe, bad]))
    # Each unit goes on the command line or into one of the variables terraform merges in.
    homes = data.draw(st.lists(st.sampled_from(["args", "TF_CLI_ARGS", "TF_CLI_ARGS_apply"]),
                               min_size=len(units), max_size=len(units)))  # fmt: skip
    args: list[str] = []
    env: dict[str, list[str]] = {}
    for unit, home in zip(units, homes, strict=True):
        (args if home == "args" else env.setdefault(home, [])).extend(unit)
    environ = {name: " ".join(words) for name, words in env.items()}
    assert classify("apply", args, environ).effect is Effect.DESTROY


@FAST
@given(units=st.lists(st.sampled_from(SAFE_UNITS), max_size=8).flatmap(st.permutations))
def test_any_order_of_safe_flags_is_an_apply(units: list[list[str]]) -> None:
    args = list(itertools.chain.from_iterable(units))
    assert classify("apply", args, {}).effect is Effect.APPLY


@FAST
@given(
    extra=st.lists(st.text(max_size=12), max_size=6),
    form=st.sampled_from([("apply", ["-destroy"]), ("destroy", []), ("apply", ["-replace=a"])]),
    data=st.data(),
)
def test_nothing_appended_undoes_a_destroy(
    extra: list[str], form: tuple[str, list[str]], data: st.DataObject
) -> None:
    command, args = form
    shuffled = data.draw(st.permutations([*args, *extra]))
    assert classify(command, shuffled, {}).effect is Effect.DESTROY


# --- The matrix: destructive form, place, protected or not --------------------------------


def _assert_names(exc: RefusedError, rels: Sequence[str], envs: Sequence[str], rule: str) -> None:
    message = str(exc)
    assert exc.exit_code is ExitCode.REFUSED
    for rel in rels:
        assert rel in message
    for env in envs:
        assert f"environment '{env}'" in message
    assert f"Rule '{rule}'" in message
    assert "\n" not in message


@pytest.mark.parametrize(("place", "environ", "rule"), PLACES, ids=[p[0] for p in PLACES])
@pytest.mark.parametrize(("command", "args", "env"), DESTRUCTIVE, ids=_ids(DESTRUCTIVE))
@pytest.mark.parametrize("interactive", [True, False], ids=["tty", "no-tty"])
def test_destroy_matrix(
    stacks: dict[str, Stack],
    place: str,
    environ: dict[str, str],
    rule: str | None,
    command: str,
    args: list[str],
    env: dict[str, str],
    interactive: bool,
) -> None:
    full = {**environ, **env}
    # Unprotected: terraform may run, whatever the place.
    assert check([stacks[STAGING]], command, args, full, interactive=interactive) == []
    if rule is None:
        assert check([stacks[PROD]], command, args, full, interactive=interactive) == []
        return
    with pytest.raises(Refusal) as refused:
        check([stacks[PROD]], command, args, full, interactive=interactive)
    _assert_names(refused.value, [PROD], ["prod"], rule)
    assert refused.value.stacks == (PROD,)


@pytest.mark.parametrize(("place", "environ", "rule"), PLACES, ids=[p[0] for p in PLACES])
@pytest.mark.parametrize(("command", "args", "env"), GUARDED, ids=_ids(GUARDED))
def test_guarded_apply_matrix(
    stacks: dict[str, Stack],
    place: str,
    environ: dict[str, str],
    rule: str | None,
    command: str,
    args: list[str],
    env: dict[str, str],
) -> None:
    full = {**environ, **env}
    in_ci = detect_ci(full) is not None
    for interactive in (True, False):
        assert check([stacks[STAGING]], command, args, full, interactive=interactive) == []
    if in_ci:
        for rel in (PROD, QA):  # laptop_apply = false does not concern CI
            assert check([stacks[rel]], command, args, full, interactive=False) == []
        return
    [confirmation] = check([stacks[PROD]], command, args, full, interactive=True)
    assert (confirmation.env, confirmation.stacks) == ("prod", (PROD,))
    assert PROD in confirmation.prompt and "'prod'" in confirmation.prompt
    with pytest.raises(Refusal) as no_tty:
        check([stacks[PROD]], command, args, full, interactive=False)
    _assert_names(no_tty.value, [PROD], ["prod"], "protected-apply-needs-terminal")
    for interactive in (True, False):
        with pytest.raises(Refusal) as off:
            check([stacks[QA]], command, args, full, interactive=interactive)
        _assert_names(off.value, [QA], ["qa"], "protected-laptop-apply-off")


@pytest.mark.parametrize(("place", "environ", "rule"), PLACES, ids=[p[0] for p in PLACES])
@pytest.mark.parametrize(("command", "args", "env"), READ_ONLY, ids=_ids(READ_ONLY))
def test_read_only_runs_everywhere(
    stacks: dict[str, Stack],
    place: str,
    environ: dict[str, str],
    rule: str | None,
    command: str,
    args: list[str],
    env: dict[str, str],
) -> None:
    selection = list(stacks.values())
    assert check(selection, command, args, {**environ, **env}, interactive=False) == []


# --- Many stacks -------------------------------------------------------------------------------


def test_one_protected_stack_refuses_the_whole_run(stacks: dict[str, Stack]) -> None:
    selection = [stacks[STAGING], stacks[PROD], stacks[PROD_DATA], stacks[PRODUCTION]]
    with pytest.raises(Refusal) as refused:
        check(selection, "destroy", [], {}, interactive=True)
    _assert_names(
        refused.value, [PROD, PROD_DATA, PRODUCTION], ["prod", "production"],
        "protected-destroy-in-ci-only",
    )  # fmt: skip
    assert STAGING not in refused.value.stacks
    assert "whole run of 4 stacks is refused" in str(refused.value)
    assert "--yes does not change that" in str(refused.value)


def test_confirmations_are_one_per_environment(stacks: dict[str, Stack]) -> None:
    selection = [stacks[STAGING], stacks[PROD], stacks[PRODUCTION], stacks[PROD_DATA]]
    confirmations = check(selection, "apply", [], {}, interactive=True)
    assert [(c.env, c.stacks) for c in confirmations] == [
        ("prod", (PROD, PROD_DATA)),
        ("production", (PRODUCTION,)),
    ]


def test_laptop_apply_off_refuses_the_run_even_with_a_terminal(stacks: dict[str, Stack]) -> None:
    with pytest.raises(Refusal) as refused:
        check([stacks[PROD], stacks[QA]], "apply", [], {}, interactive=True)
    _assert_names(refused.value, [QA], ["qa"], "protected-laptop-apply-off")


@pytest.mark.parametrize(
    ("answer", "accepted"),
    [("prod", True), (" prod\n", True), ("PROD", False), ("yes", False), ("", False),
     ("production", False)],
)  # fmt: skip
def test_confirmation_wants_the_exact_name(answer: str, accepted: bool) -> None:
    assert Confirmation("prod", (PROD,), "...").accepts(answer) is accepted


# --- -chdir -----------------------------------------------------------------------------------


@pytest.mark.parametrize("environ", [NO_CI, CI_GENERIC, GITLAB_MANUAL], ids=["laptop", "ci", "gl"])
def test_chdir_is_refused_for_anything_that_writes(
    stacks: dict[str, Stack], environ: dict[str, str]
) -> None:
    with pytest.raises(Refusal) as refused:
        check(
            [stacks[STAGING]], "", ["-chdir=../../prod-eu-west-1/network", "destroy"], environ,
            interactive=True,
        )  # fmt: skip
    _assert_names(refused.value, [STAGING], ["staging"], "no-chdir")
    assert check([stacks[PROD]], "", ["-chdir=x", "plan"], environ, interactive=False) == []


# --- Saved plans ---------------------------------------------------------------------------------


class Inspector:
    def __init__(self, summary: PlanSummary | None) -> None:
        self.summary = summary
        self.calls: list[tuple[str, Path]] = []

    def __call__(self, stack: Stack, path: Path) -> PlanSummary | None:
        self.calls.append((stack.rel, path))
        return self.summary


DESTROYING_PLAN = PlanSummary(("aws_instance.web", "aws_db_instance.main"))


@pytest.mark.parametrize(("place", "environ", "rule"), PLACES, ids=[p[0] for p in PLACES])
def test_applying_a_saved_destroy_plan(
    stacks: dict[str, Stack], place: str, environ: dict[str, str], rule: str | None
) -> None:
    inspect = Inspector(DESTROYING_PLAN)
    args = ["-auto-approve", "tfplan"]
    if rule is None:
        assert check([stacks[PROD]], "apply", args, environ, interactive=True,
                     inspect_plan=inspect) == []  # fmt: skip
        assert inspect.calls == []  # no terraform process where the answer cannot change
        return
    with pytest.raises(Refusal) as refused:
        check([stacks[PROD]], "apply", args, environ, interactive=True, inspect_plan=inspect)
    _assert_names(refused.value, [PROD], ["prod"], rule)
    message = str(refused.value)
    assert "applying a saved plan that destroys resources" in message
    assert "aws_instance.web" in message
    assert inspect.calls == [(PROD, stacks[PROD].path / "tfplan")]
    # Unprotected stacks are not inspected at all.
    assert check([stacks[STAGING]], "apply", args, environ, interactive=False,
                 inspect_plan=inspect) == []  # fmt: skip
    assert len(inspect.calls) == 1


def test_a_saved_plan_that_removes_nothing_is_a_guarded_apply(stacks: dict[str, Stack]) -> None:
    inspect = Inspector(PlanSummary(()))
    [confirmation] = check(
        [stacks[PROD]], "apply", ["/plans/p.tfplan"], {}, interactive=True, inspect_plan=inspect
    )
    assert confirmation.env == "prod"
    assert inspect.calls == [(PROD, Path("/plans/p.tfplan"))]
    with pytest.raises(Refusal):
        check([stacks[PROD]], "apply", ["p"], {}, interactive=False, inspect_plan=inspect)


@pytest.mark.parametrize("inspect", [None, Inspector(None)], ids=["no inspector", "unreadable"])
def test_a_plan_tfrun_cannot_read_counts_as_destroying(
    stacks: dict[str, Stack], inspect: Inspector | None
) -> None:
    with pytest.raises(Refusal) as refused:
        check([stacks[PROD]], "apply", ["tfplan"], {}, interactive=True, inspect_plan=inspect)
    assert "its plan could not be read" in str(refused.value)


def test_saved_plans_are_read_per_stack_and_all_named(stacks: dict[str, Stack]) -> None:
    def inspect(stack: Stack, path: Path) -> PlanSummary:
        return DESTROYING_PLAN if stack.rel == PROD_DATA else PlanSummary(())

    with pytest.raises(Refusal) as refused:
        check([stacks[PROD], stacks[PROD_DATA]], "apply", ["tfplan"], GITLAB_PUSH,
              interactive=False, inspect_plan=inspect)  # fmt: skip
    assert refused.value.stacks == (PROD_DATA,)


def _show(*changes: tuple[str, list[str]]) -> dict[str, object]:
    return {
        "format_version": "1.2",
        "resource_changes": [
            {"address": address, "change": {"actions": actions}} for address, actions in changes
        ],
    }


@pytest.mark.parametrize(
    ("show_json", "expected"),
    [
        (_show(("a.x", ["create"]), ("a.y", ["update"]), ("a.z", ["no-op"])), PlanSummary(())),
        (_show(("a.x", ["read"])), PlanSummary(())),
        (_show(("a.x", ["delete"])), PlanSummary(("a.x",))),
        (_show(("a.x", ["delete", "create"]), ("a.y", ["create", "delete"])),
         PlanSummary(("a.x", "a.y"))),
        (_show(("a.x", ["forget"])), PlanSummary(("a.x",))),
        ({"format_version": "1.2"}, PlanSummary(())),
        ({"resource_changes": []}, None),
        ({"format_version": "1.2", "resource_changes": {"a": 1}}, None),
        ({"format_version": "1.2", "resource_changes": [{"change": {}}]}, None),
        ({"format_version": "1.2", "resource_changes": ["x"]}, None),
        ([], None),
        ("not json", None),
    ],
)  # fmt: skip
def test_summarise_plan(show_json: object, expected: PlanSummary | None) -> None:
    assert summarise_plan(show_json) == expected


# --- Properties across places --------------------------------------------------------------

CI_VALUES = st.sampled_from(["", "0", "false", "true", "1", "yes"])
ENVIRONS = st.fixed_dictionaries(
    {},
    optional={
        "CI": CI_VALUES,
        "GITLAB_CI": CI_VALUES,
        "CI_JOB_MANUAL": st.sampled_from(["true", "false", ""]),
        "CI_PIPELINE_SOURCE": st.sampled_from(["push", "web", "merge_request_event"]),
        "GITHUB_ACTIONS": CI_VALUES,
        "GITHUB_EVENT_NAME": st.sampled_from(["push", "pull_request", "workflow_dispatch"]),
        "BUILDKITE": CI_VALUES,
    },
)


@FAST
@given(environ=ENVIRONS, form=st.sampled_from(DESTRUCTIVE), interactive=st.booleans())
def test_a_protected_destroy_never_asks_it_runs_or_is_refused(
    stacks: dict[str, Stack],
    environ: Mapping[str, str],
    form: tuple[str, list[str], dict[str, str]],
    interactive: bool,
) -> None:
    command, args, env = form
    full = {**environ, **env}
    rule = destroy_rule(detect_ci(full))
    try:
        confirmations = check([stacks[PROD]], command, args, full, interactive=interactive)
    except Refusal as refused:
        assert rule is not None and refused.rule == rule
    else:
        assert rule is None and confirmations == []
