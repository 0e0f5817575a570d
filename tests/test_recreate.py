"""Renames without `moved` blocks: detection in `terraform show -json` output, the refusal to
apply such a saved plan on a protected stack without --allow-recreate, the note in a run's
summary, and once with real terraform that the suggested moved block is the fix.

Every CLI test passes the CI variables it means explicitly (CI runs the suite with CI=true).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_terraform import Recorder, toolchain
from helpers import LiveRepo, StateBackend, is_isolated_variable, root_hcl, run_cli

from tfrun import recreate
from tfrun.discovery import Repository, Stack
from tfrun.errors import ExitCode
from tfrun.recreate import RecreateRefusal, Rename, detect, guard, note, suggestion
from tfrun.report import Status
from tfrun.run import engine
from tfrun.tfargs import classify

AWS = "registry.terraform.io/hashicorp/aws"


def change(
    address: str,
    actions: list[str],
    *,
    type_: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    provider: str = AWS,
    mode: str = "managed",
) -> dict[str, Any]:
    name = address.rsplit(".", 2)
    return {
        "address": address,
        "mode": mode,
        "type": type_ or name[-2],
        "provider_name": provider,
        "change": {"actions": actions, "before": before, "after": after, "after_unknown": {}},
    }


def plan(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": "1.2", "resource_changes": list(changes)}


# ---------------------------------------------------------------------------- detection


def test_a_delete_and_a_create_of_one_type_are_a_rename() -> None:
    found = detect(
        plan(
            change("aws_vpc.main", ["delete"], before={"cidr_block": "10.0.0.0/16"}),
            change("module.vpc.aws_vpc.this", ["create"], after={"cidr_block": "10.0.0.0/16"}),
            change("aws_subnet.a", ["update"]),
        )
    )
    assert found == [Rename("aws_vpc", "aws_vpc.main", "module.vpc.aws_vpc.this")]
    assert found[0].moved_block() == (
        "moved {\n  from = aws_vpc.main\n  to   = module.vpc.aws_vpc.this\n}"
    )


@pytest.mark.parametrize(
    "changes",
    [
        # A replacement of one address, in either order: terraform says so itself.
        [change("aws_vpc.a", ["delete", "create"]), change("aws_vpc.b", ["create"])],
        [change("aws_vpc.a", ["create", "delete"]), change("aws_vpc.b", ["create"])],
        # Different types, or the same type from two providers.
        [change("aws_vpc.a", ["delete"]), change("aws_subnet.b", ["create"])],
        [
            change("aws_vpc.a", ["delete"]),
            change("aws_vpc.b", ["create"], provider="registry.example/acme/aws"),
        ],
        # Only deletes, only creates, or data sources.
        [change("aws_vpc.a", ["delete"]), change("aws_vpc.b", ["delete"])],
        [change("aws_vpc.a", ["create"]), change("aws_vpc.b", ["update"])],
        [
            change("data.aws_vpc.a", ["delete"], type_="aws_vpc", mode="data"),
            change("data.aws_vpc.b", ["create"], type_="aws_vpc", mode="data"),
        ],
    ],
    ids=[
        "replace",
        "create-before-destroy",
        "types",
        "providers",
        "deletes",
        "creates",
        "data",
    ],
)
def test_what_is_not_a_rename(changes: list[dict[str, Any]]) -> None:
    assert detect(plan(*changes)) == []


@pytest.mark.parametrize(
    "shown", [None, {}, [], "plan", {"resource_changes": "x"}, {"resource_changes": [1, {}]}]
)
def test_an_unreadable_plan_has_no_renames(shown: Any) -> None:
    assert detect(shown) == []


def test_several_renames_pair_by_their_settings_before_their_names() -> None:
    found = detect(
        plan(
            change("aws_s3_bucket.logs", ["delete"], before={"bucket": "acme-logs"}),
            change("aws_s3_bucket.data", ["delete"], before={"bucket": "acme-data"}),
            # By name, logs → logs_v2 and data → data_v2; by settings, the other way round.
            change("aws_s3_bucket.logs_v2", ["create"], after={"bucket": "acme-data"}),
            change("aws_s3_bucket.data_v2", ["create"], after={"bucket": "acme-logs"}),
            change("aws_s3_bucket.extra", ["create"], after={"bucket": "acme-extra"}),
        )
    )
    assert found == [
        Rename("aws_s3_bucket", "aws_s3_bucket.data", "aws_s3_bucket.logs_v2"),
        Rename("aws_s3_bucket", "aws_s3_bucket.logs", "aws_s3_bucket.data_v2"),
    ]


def test_unknown_values_after_a_create_do_not_count() -> None:
    deleted = change("aws_vpc.a", ["delete"], before={"cidr_block": "10.0.0.0/16", "id": "v-1"})
    created = change("aws_vpc.b", ["create"], after={"cidr_block": "10.0.0.0/16", "id": None})
    created["change"]["after_unknown"] = {"id": True}
    assert detect(plan(deleted, created)) == [Rename("aws_vpc", "aws_vpc.a", "aws_vpc.b")]


def test_the_note_and_the_suggestion() -> None:
    one = [Rename("aws_vpc", "aws_vpc.main", "aws_vpc.this")]
    assert note(one) == (
        "recreates 1 resource that looks renamed (aws_vpc.main → aws_vpc.this); if it is a "
        "rename, add a moved block: moved { from = aws_vpc.main  to = aws_vpc.this }"
    )
    many = [Rename("t", f"t.a{i}", f"t.b{i}") for i in range(5)]
    assert note(many).startswith("recreates 5 resources that look renamed (t.a0 → t.b0, ")
    assert "and 2 more" in note(many)
    assert suggestion(many).count("moved {") == 5


# ---------------------------------------------------------------------------- the guard

RENAME_PLAN = plan(
    change("terraform_data.old", ["delete"], type_="terraform_data", before={"input": "v1"}),
    change("terraform_data.new", ["create"], type_="terraform_data", after={"input": "v1"}),
)
PROD = "prod-eu-west-1/app"
STAGING = "staging-eu-west-1/app"
STACK_TF = 'resource "terraform_data" "new" {\n  input = "v1"\n}\n'


@pytest.fixture
def repo(make_repo: Callable[..., LiveRepo]) -> LiveRepo:
    return make_repo(
        {
            "live/tfrun.hcl": root_hcl(),
            f"live/{PROD}/main.tf": STACK_TF,
            f"live/{PROD}/rename.tfplan": "saved plan",
            f"live/{STAGING}/main.tf": STACK_TF,
            f"live/{STAGING}/rename.tfplan": "saved plan",
        }
    )


@pytest.fixture
def stacks(repo: LiveRepo) -> dict[str, Stack]:
    return {s.rel: s for s in Repository(repo.live).stacks()}


class Shown:
    """A `show_plan` that answers with one plan and records what it was asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, Path]] = []

    def __call__(self, stack: Stack, path: Path) -> Any:
        self.asked.append((stack.rel, path))
        return self.answer


def test_applying_a_saved_rename_plan_on_a_protected_stack_is_refused(
    stacks: dict[str, Stack],
) -> None:
    shown = Shown(RENAME_PLAN)
    with pytest.raises(RecreateRefusal) as refused:
        guard(
            [stacks[PROD]],
            classify("apply", ["rename.tfplan"], {}),
            allow_recreate=False,
            show_plan=shown,
        )
    assert refused.value.exit_code is ExitCode.REFUSED
    assert refused.value.stacks == (PROD,)
    message = str(refused.value)
    assert f"Rule '{recreate.RULE}'" in message
    assert "terraform_data.old → terraform_data.new" in message
    assert "moved {\n  from = terraform_data.old\n  to   = terraform_data.new\n}" in message
    assert "--allow-recreate" in message
    assert shown.asked == [(PROD, stacks[PROD].path / "rename.tfplan")]


@pytest.mark.parametrize(
    ("rel", "command", "args", "allow"),
    [
        (PROD, "apply", ["rename.tfplan"], True),  # --allow-recreate
        (STAGING, "apply", ["rename.tfplan"], False),  # not protected
        (PROD, "apply", [], False),  # no saved plan: terraform plans it itself
        (PROD, "plan", ["-out=rename.tfplan"], False),
        (PROD, "", ["-chdir=../x", "apply", "rename.tfplan"], False),  # safety refuses -chdir
    ],
    ids=["allowed", "unprotected", "plain-apply", "plan", "chdir"],
)
def test_when_the_plan_is_not_even_read(
    stacks: dict[str, Stack], rel: str, command: str, args: list[str], allow: bool
) -> None:
    shown = Shown(RENAME_PLAN)
    unread = guard(
        [stacks[rel]], classify(command, args, {}), allow_recreate=allow, show_plan=shown
    )
    assert unread == [] and shown.asked == []


def test_a_plan_without_renames_passes_and_an_unreadable_one_is_reported(
    stacks: dict[str, Stack],
) -> None:
    selection = [stacks[PROD], stacks[STAGING]]
    quiet = Shown(plan(change("terraform_data.x", ["delete"], type_="terraform_data")))
    assert (
        guard(selection, classify("apply", ["p"], {}), allow_recreate=False, show_plan=quiet) == []
    )
    unreadable = Shown(None)
    unread = guard(
        selection, classify("apply", ["p"], {}), allow_recreate=False, show_plan=unreadable
    )
    assert unread == [stacks[PROD]]


# ---------------------------------------------------------------------------- the CLI

# A terraform that records its calls. `show -json` answers with $FAKE_TF_PLAN, but only once
# tfrun has initialised the stack, as real terraform needs its providers for that.
FAKE_TERRAFORM = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_TF_CALLS"], "a", encoding="utf-8") as calls:
    calls.write(json.dumps(args) + "\\n")
if args[:2] == ["show", "-json"]:
    if not os.path.exists(os.path.join(".terraform", "tfrun-init.json")):
        sys.exit("Error: Required plugins are not installed")
    with open(os.environ["FAKE_TF_PLAN"], encoding="utf-8") as shown:
        sys.stdout.write(shown.read())
elif args[:1] == ["plan"]:
    for arg in args:
        if arg.startswith("-out="):
            with open(arg[len("-out="):], "w", encoding="utf-8") as out:
                out.write("saved plan")
    sys.exit(2 if "-detailed-exitcode" in args else 0)
"""

GITLAB_MANUAL = {"CI": "true", "GITLAB_CI": "true", "CI_JOB_MANUAL": "true"}


class Fake:
    def __init__(self, base: Path) -> None:
        base.mkdir()
        self.binary = base / "terraform"
        self.binary.write_text(FAKE_TERRAFORM.format(python=sys.executable), encoding="utf-8")
        self.binary.chmod(self.binary.stat().st_mode | stat.S_IXUSR)
        self.calls = base / "calls.jsonl"
        self.plan = base / "plan.json"
        self.plan.write_text(json.dumps(RENAME_PLAN), encoding="utf-8")

    def environ(self, ci: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not is_isolated_variable(k)}
        return {**env, **ci, "FAKE_TF_CALLS": str(self.calls), "FAKE_TF_PLAN": str(self.plan)}

    def recorded(self) -> list[list[str]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text(encoding="utf-8").splitlines()]

    def initialise(self, stack_dir: Path) -> None:
        (stack_dir / ".terraform").mkdir()
        (stack_dir / ".terraform" / "tfrun-init.json").write_text("{}", encoding="utf-8")


@pytest.fixture
def fake(tmp_path: Path) -> Fake:
    return Fake(tmp_path / "fake")


def applies(fake: Fake) -> list[list[str]]:
    return [call for call in fake.recorded() if call[:1] == ["apply"]]


@pytest.mark.parametrize(
    "ci", [{}, GITLAB_MANUAL, {"CI": "true"}], ids=["laptop", "gitlab-manual", "ci"]
)
def test_the_cli_refuses_a_rename_plan_on_a_protected_stack(
    repo: LiveRepo, fake: Fake, ci: dict[str, str]
) -> None:
    fake.initialise(repo.live / PROD)
    args = ["apply", "rename.tfplan", "--yes", "--terraform-bin", str(fake.binary)]

    result = run_cli(args, repo.live / PROD, fake.environ(ci))

    result.assert_exit(3)
    assert recreate.RULE in result.stderr
    assert "from = terraform_data.old" in result.stderr
    assert "to   = terraform_data.new" in result.stderr
    assert applies(fake) == []


def test_allow_recreate_applies_it_where_destroying_is_allowed(repo: LiveRepo, fake: Fake) -> None:
    fake.initialise(repo.live / PROD)
    args = ["apply", "rename.tfplan", "--yes", "--allow-recreate"]

    result = run_cli(
        [*args, "--terraform-bin", str(fake.binary)], repo.live / PROD, fake.environ(GITLAB_MANUAL)
    )

    result.assert_success()
    assert applies(fake) == [["apply", "-auto-approve", "rename.tfplan"]]


def test_allow_recreate_does_not_lift_the_laptop_rule(repo: LiveRepo, fake: Fake) -> None:
    fake.initialise(repo.live / PROD)
    args = ["apply", "rename.tfplan", "--yes", "--allow-recreate"]

    result = run_cli(
        [*args, "--terraform-bin", str(fake.binary)], repo.live / PROD, fake.environ({})
    )

    result.assert_exit(3)
    assert "protected-destroy-in-ci-only" in result.stderr
    assert applies(fake) == []


def test_a_plan_unreadable_before_init_is_checked_after_it(repo: LiveRepo, fake: Fake) -> None:
    # A fresh CI job: the saved plan came as an artifact, the stack is not initialised.
    args = ["apply", "rename.tfplan", "--yes", "--terraform-bin", str(fake.binary)]

    result = run_cli(args, repo.live / PROD, fake.environ(GITLAB_MANUAL))

    result.assert_exit(3)
    assert recreate.RULE in result.stderr
    commands = [call[0] for call in fake.recorded()]
    assert commands == ["show", "init", "show"]


def test_an_unprotected_stack_applies_without_reading_the_plan(repo: LiveRepo, fake: Fake) -> None:
    args = ["apply", "rename.tfplan", "--yes", "--terraform-bin", str(fake.binary)]

    run_cli(args, repo.live / STAGING, fake.environ({})).assert_success()

    assert [call[0] for call in fake.recorded()] == ["init", "apply"]


# ---------------------------------------------------------------------------- the summary


def test_a_run_notes_a_rename_in_the_plan_summary(
    repo: LiveRepo, fake: Fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake.environ({}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TF_PLUGIN_CACHE_DIR", str(tmp_path / "plugins"))
    live = Repository(repo.live)
    stacks = live.stacks()

    report = engine.run(
        stacks,
        {},
        "plan",
        [],
        engine.RunOptions(
            terraform=toolchain(fake.binary, tmp_path / "plugins"),
            repo=live,
            sink=Recorder(),
            run_dir=tmp_path / "run",
        ),
    )

    for rel in (PROD, STAGING):
        result = report.results[rel]
        assert result.status is Status.SUCCEEDED, result
        assert result.has_changes
        assert "moved { from = terraform_data.old  to = terraform_data.new }" in result.reason
        assert result.to_json(rel)["reason"] == result.reason


# ---------------------------------------------------------------------------- real terraform


@pytest.mark.slow
def test_the_suggested_moved_block_is_the_fix(
    make_repo: Callable[..., LiveRepo], state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    live = make_repo(
        {
            "live/tfrun.hcl": state_backend.root_hcl(),
            f"live/{PROD}/main.tf": 'resource "terraform_data" "old" {\n  input = "v1"\n}\n',
        }
    ).live
    stack = live / PROD
    laptop = {k: v for k, v in tf_env.items() if k not in ("CI", "GITLAB_CI", "GITHUB_ACTIONS")}
    ci = {**laptop, "CI": "true"}
    run_cli(["apply", "--yes", "-no-color"], stack, ci).assert_success()
    state_key = "prod/eu-west-1/app.tfstate"
    (resource,) = state_backend.read_json(state_key)["resources"]
    first_id = resource["instances"][0]["attributes"]["id"]

    # Renamed in the code: the plan deletes old and creates new.
    (stack / "main.tf").write_text(STACK_TF, encoding="utf-8")
    run_cli(["plan", "-out=rename.tfplan", "-no-color"], stack, laptop).assert_success()
    versions = state_backend.versions(state_key)
    refused = run_cli(["apply", "rename.tfplan", "--yes"], stack, ci)
    refused.assert_exit(3)
    assert recreate.RULE in refused.stderr
    assert state_backend.versions(state_key) == versions  # the refusal wrote nothing

    # The block the refusal suggests, added as it is: the plan moves instead, and applies.
    start = refused.stderr.index("moved {")
    block = refused.stderr[start : refused.stderr.index("}", start) + 1]
    (stack / "moved.tf").write_text(block + "\n", encoding="utf-8")
    run_cli(["plan", "-out=moved.tfplan", "-no-color"], stack, laptop).assert_success()
    run_cli(["apply", "moved.tfplan", "--yes", "-no-color"], stack, ci).assert_success()

    (resource,) = state_backend.read_json(state_key)["resources"]
    assert resource["name"] == "new"
    assert resource["instances"][0]["attributes"]["id"] == first_id  # the same object, moved
