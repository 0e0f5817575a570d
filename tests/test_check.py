"""`tfrun check`: each rule with a repository that fails it and one that passes it, then the
command itself (exit codes, text and JSON, PATH).

The base repository passes every rule; each case changes a few files of it. Everything runs
in-process and offline: check never starts terraform.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from helpers import EXAMPLES, LiveRepo, root_hcl

from tfrun import cli
from tfrun.commands import generate as generate_command
from tfrun.commands.check import findings
from tfrun.lint import RULES, Finding

PINS = 'terraform_version = ">= 1.6"\nproviders { aws = "~> 5.0" }'
NETWORK = "prod-eu-west-1/network"
DATA = "prod-eu-west-1/data"


def remote_state(name: str, key: str, bucket: str = "acme-tfstate") -> str:
    return (
        f'data "terraform_remote_state" "{name}" {{\n'
        '  backend = "s3"\n'
        "  config = {\n"
        f'    bucket = "{bucket}"\n'
        f'    key    = "{key}"\n'
        '    region = "eu-west-1"\n'
        "  }\n"
        "}\n"
    )


BASE: dict[str, str] = {
    "live/tfrun.hcl": root_hcl(extra=PINS),
    f"live/{NETWORK}/main.tf": (
        'resource "aws_vpc" "this" {\n  cidr_block = "10.0.0.0/16"\n}\n\n'
        'resource "terraform_data" "marker" {\n  input = "v1"\n}\n'
    ),
    f"live/{NETWORK}/stack.hcl": 'owner     = "platform"\nconsumers = ["data-team"]\n',
    f"live/{DATA}/main.tf": (
        remote_state("network", "prod/eu-west-1/network.tfstate")
        + '\nresource "aws_ssm_parameter" "vpc" {\n'
        '  name  = "/prod/vpc"\n'
        '  type  = "String"\n'
        "  value = data.terraform_remote_state.network.outputs.vpc_id\n"
        "}\n"
    ),
    f"live/{DATA}/stack.hcl": 'owner = "data-team"\n',
}

TERRAFORM_BLOCK = 'terraform {\n  required_version = ">= 1.6"\n}\n'

# A change to BASE: paths to write (None: delete), relative to the repository's top.
Change = Mapping[str, str | None]


@pytest.fixture
def build(make_repo: Callable[..., LiveRepo]) -> Callable[[Change], LiveRepo]:
    def make(change: Change) -> LiveRepo:
        files = {**BASE, **change}
        return make_repo({path: text for path, text in files.items() if text is not None})

    return make


def found(repo: LiveRepo, rule: str | None = None, path: Path | None = None) -> list[Finding]:
    every, _, _ = findings(path or repo.live)
    return [f for f in every if rule is None or f.rule == rule]


def test_the_base_repository_passes_every_rule(build: Callable[[Change], LiveRepo]) -> None:
    assert found(build({})) == []


def test_the_examples_pass_every_rule(tmp_path: Path) -> None:
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy, ignore=shutil.ignore_patterns(".terraform", ".tfrun"))
    every, stacks, _ = findings(copy / "live")
    assert every == [] and len(stacks) == 7


# ---------------------------------------------------------------------------- each rule:
# (change that fails it, [(file, line, stack)] it must report), (change that passes it).

ROOT_WITHOUT_VERSION = root_hcl(extra='providers { aws = "~> 5.0" }')
ROOT_WITHOUT_PINS = root_hcl(extra='terraform_version = ">= 1.6"')
STAGING = "staging-eu-west-1/network"
STAGING_TF = 'resource "aws_vpc" "this" {\n  cidr_block = "10.1.0.0/16"\n}\n'

CASES: dict[str, tuple[Change, list[tuple[str, int, str]], Change]] = {
    "duplicate-state-key": (
        {
            f"live/{STAGING}/main.tf": STAGING_TF,
            f"live/{STAGING}/stack.hcl": 'key = "prod/eu-west-1/network.tfstate"\n',
        },
        [
            (f"{NETWORK}/stack.hcl", 0, NETWORK),
            (f"{STAGING}/stack.hcl", 0, STAGING),
        ],
        {
            f"live/{STAGING}/main.tf": STAGING_TF,
            f"live/{STAGING}/stack.hcl": 'key = "staging/eu-west-1/network-v2.tfstate"\n',
        },
    ),
    "missing-required-version": (
        {"live/tfrun.hcl": ROOT_WITHOUT_VERSION},
        [("tfrun.hcl", 0, DATA), ("tfrun.hcl", 0, NETWORK)],
        # Hand-written required_version in each stack counts as much as tfrun's config.
        {
            "live/tfrun.hcl": ROOT_WITHOUT_VERSION,
            f"live/{NETWORK}/terraform.tf": TERRAFORM_BLOCK,
            f"live/{DATA}/terraform.tf": TERRAFORM_BLOCK,
        },
    ),
    "unpinned-provider": (
        {f"live/{NETWORK}/random.tf": 'resource "random_id" "suffix" {\n  byte_length = 4\n}\n'},
        [(f"{NETWORK}/random.tf", 1, NETWORK)],
        {
            f"live/{NETWORK}/random.tf": 'resource "random_id" "suffix" {\n  byte_length = 4\n}\n',
            f"live/{NETWORK}/terraform.tf": (
                "terraform {\n  required_providers {\n"
                '    random = { source = "hashicorp/random", version = "~> 3.6" }\n'
                "  }\n}\n"
            ),
        },
    ),
    "unlisted-consumer": (
        {f"live/{NETWORK}/stack.hcl": 'owner     = "platform"\nconsumers = ["apps"]\n'},
        [(f"{DATA}/main.tf", 1, DATA)],
        # Consumers may name the reader's rel path (or a glob of it) instead of its owner.
        {f"live/{NETWORK}/stack.hcl": 'owner     = "platform"\nconsumers = ["prod-*/data"]\n'},
    ),
    "unknown-state-key": (
        {f"live/{DATA}/main.tf": remote_state("network", "prod/eu-west-1/netwrok.tfstate")},
        [(f"{DATA}/main.tf", 1, DATA)],
        # Another bucket's state is not this repository's business.
        {
            f"live/{DATA}/main.tf": remote_state(
                "network", "prod/eu-west-1/netwrok.tfstate", bucket="other-tfstate"
            )
        },
    ),
    "unresolved-read": (
        {f"live/{DATA}/main.tf": remote_state("network", "prod/eu-west-1/${var.stack}.tfstate")},
        [(f"{DATA}/main.tf", 1, DATA)],
        # The fix the finding suggests: the stack declares what the read reads.
        {
            f"live/{DATA}/main.tf": remote_state("network", "prod/eu-west-1/${var.stack}.tfstate"),
            f"live/{DATA}/stack.hcl": 'owner = "data-team"\ndependencies = ["../network"]\n',
        },
    ),
    "dependency-cycle": (
        {
            f"live/{NETWORK}/stack.hcl": (
                'owner     = "platform"\nconsumers = ["data-team"]\ndependencies = ["../data"]\n'
            )
        },
        [(f"{DATA}/main.tf", 1, DATA)],
        # Ordering the other way round is no cycle.
        {f"live/{DATA}/stack.hcl": 'owner = "data-team"\ndependencies = ["../network"]\n'},
    ),
    "hand-written-backend": (
        {f"live/{NETWORK}/terraform.tf": 'terraform {\n  backend "s3" {}\n}\n'},
        [(f"{NETWORK}/terraform.tf", 2, NETWORK)],
        # Commented out, or a nested block of a resource that happens to be called `cloud`.
        {
            f"live/{NETWORK}/terraform.tf": (
                'terraform {\n  /*\n  backend "s3" {}\n  */\n  required_version = ">= 1.6"\n}\n'
            ),
            f"live/{NETWORK}/cloud.tf": (
                'resource "aws_vpc" "other" {\n  cidr_block = "10.2.0.0/16"\n'
                "  cloud {\n    x = 1\n  }\n}\n"
            ),
        },
    ),
    # terraform's version comes from the fake terraform below, as tfenv's does: the live root's
    # .terraform-version (1.9.8 without one).
    "unknown-mock-read": (
        {f"live/{DATA}/stack.hcl": 'owner = "data-team"\nmock_outputs = { netwrk = { a = 1 } }\n'},
        [(f"{DATA}/stack.hcl", 0, DATA)],
        {f"live/{DATA}/stack.hcl": 'owner = "data-team"\nmock_outputs = { network = { a = 1 } }\n'},
    ),
    "dynamodb-only-lock": (
        {"live/.terraform-version": "1.11.4\n"},
        [("tfrun.hcl", 0, DATA), ("tfrun.hcl", 0, NETWORK)],
        # The migration path: S3 locks beside the table.
        {
            "live/.terraform-version": "1.11.4\n",
            "live/tfrun.hcl": root_hcl(extra=PINS).replace(
                "  encrypt = true\n", "  encrypt = true\n  use_lockfile = true\n"
            ),
        },
    ),
}


@pytest.mark.parametrize("rule", CASES, ids=list(CASES))
def test_each_rule_fails_and_passes(build: Callable[[Change], LiveRepo], rule: str) -> None:
    failing, expected, passing = CASES[rule]
    repo = build(failing)
    reported = found(repo, rule)
    assert [(f.file, f.line, f.stack) for f in reported] == expected, reported
    assert all(f.message for f in reported)

    shutil.rmtree(repo.top)
    assert found(build(passing)) == []


def test_every_rule_has_cases() -> None:
    assert set(RULES) == {*CASES, "stale-generated-file"}


# ---------------------------------------------------------------------------- rule details


def test_aws_is_always_used_because_tfrun_configures_it(
    build: Callable[[Change], LiveRepo],
) -> None:
    repo = build(
        {
            "live/tfrun.hcl": ROOT_WITHOUT_PINS,
            f"live/{NETWORK}/main.tf": 'resource "terraform_data" "only" {\n  input = 1\n}\n',
        }
    )
    reported = found(repo, "unpinned-provider")
    # network uses no aws resource, but the generated provider.tf configures aws in it.
    assert [(f.file, f.line, f.stack) for f in reported] == [
        (f"{DATA}/main.tf", 10, DATA),
        ("tfrun.hcl", 0, NETWORK),
    ]
    assert "generated provider.tf" in reported[1].message


def test_a_stack_without_its_own_config_is_blamed_on_the_nearest_tfrun_hcl(
    build: Callable[[Change], LiveRepo],
) -> None:
    # staging's tfrun.hcl claims env "prod", so its network takes prod network's state key.
    repo = build(
        {
            f"live/{STAGING}/main.tf": STAGING_TF,
            "live/staging-eu-west-1/tfrun.hcl": 'env = "prod"\n',
        }
    )
    reported = found(repo, "duplicate-state-key")
    assert [(f.file, f.stack) for f in reported] == [
        (f"{NETWORK}/stack.hcl", NETWORK),
        ("staging-eu-west-1/tfrun.hcl", STAGING),
    ]


def test_providers_used_through_local_modules_need_pins(
    build: Callable[[Change], LiveRepo],
) -> None:
    repo = build(
        {
            f"live/{NETWORK}/dns.tf": 'module "dns" {\n  source = "../../../modules/dns"\n}\n',
            "modules/dns/main.tf": (
                '/* resource "google_dns_zone" "commented" {} */\n'
                '# resource "azurerm_dns_zone" "commented" {}\n'
                'data "cloudflare_zone" "main" {\n  name = "example.com"\n}\n'
                'provider "tls" {\n}\n'
            ),
        }
    )
    reported = found(repo, "unpinned-provider")
    assert [(f.file, f.line, f.stack) for f in reported] == [
        ("../modules/dns/main.tf", 3, NETWORK),
        ("../modules/dns/main.tf", 6, NETWORK),
    ]
    assert "'cloudflare'" in reported[0].message and "'tls'" in reported[1].message


def test_a_pin_with_an_empty_constraint_is_no_pin(build: Callable[[Change], LiveRepo]) -> None:
    repo = build(
        {
            "live/tfrun.hcl": root_hcl(extra='terraform_version = " "\nproviders { aws = "" }'),
            f"live/{NETWORK}/terraform.tf": (
                'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n'
                "  }\n}\n"
            ),
        }
    )
    rules = {(f.rule, f.stack) for f in found(repo)}
    assert ("unpinned-provider", NETWORK) in rules
    assert ("missing-required-version", NETWORK) in rules


def test_config_remote_state_across_owners_needs_consumers_too(
    build: Callable[[Change], LiveRepo],
) -> None:
    repo = build(
        {
            f"live/{NETWORK}/stack.hcl": 'owner     = "platform"\nconsumers = []\n',
            f"live/{DATA}/main.tf": 'resource "aws_ssm_parameter" "x" {\n  name = "x"\n}\n',
            f"live/{DATA}/stack.hcl": (
                'owner = "data-team"\nremote_state = { network = "../network" }\n'
            ),
        }
    )
    (finding,) = found(repo, "unlisted-consumer")
    assert (finding.file, finding.line, finding.stack) == (f"{DATA}/stack.hcl", 0, DATA)
    assert "remote_state.network" in finding.message and "nobody" in finding.message


@pytest.mark.parametrize(
    "stack_hcl",
    [
        'owner = "platform"\n',  # the same owner
        "",  # no owner: the reader is named by nothing but its path, which is not listed
    ],
    ids=["same-owner", "no-owner"],
)
def test_a_reader_without_the_producers_owner(
    build: Callable[[Change], LiveRepo], stack_hcl: str
) -> None:
    repo = build(
        {
            f"live/{NETWORK}/stack.hcl": 'owner     = "platform"\nconsumers = ["data-team"]\n',
            f"live/{DATA}/stack.hcl": stack_hcl,
        }
    )
    reported = found(repo, "unlisted-consumer")
    assert len(reported) == (0 if stack_hcl else 1)


def test_a_producer_without_an_owner_may_be_read_by_anyone(
    build: Callable[[Change], LiveRepo],
) -> None:
    repo = build({f"live/{NETWORK}/stack.hcl": ""})
    assert found(repo, "unlisted-consumer") == []


def test_a_computed_key_is_reported_with_its_expression_and_fix(
    build: Callable[[Change], LiveRepo],
) -> None:
    key = "prod/eu-west-1/${var.stack}.tfstate"
    repo = build({f"live/{DATA}/main.tf": remote_state("network", key)})
    (finding,) = found(repo, "unresolved-read")
    assert found(repo, "unknown-state-key") == []
    assert str(finding).startswith(f"{DATA}/main.tf:1: {DATA}: [unresolved-read] ")
    assert f'its key is computed ("{key}")' in finding.message
    assert "var.stack is not declared in prod-eu-west-1/data" in finding.message
    assert f'add to {DATA}/stack.hcl: dependencies = ["../network"]' in finding.message


def test_a_key_from_a_variable_file_is_read_and_checked(
    build: Callable[[Change], LiveRepo],
) -> None:
    read = remote_state("network", "prod/eu-west-1/${var.stack}.tfstate")
    change = {
        f"live/{DATA}/main.tf": read + 'variable "stack" {\n  type = string\n}\n',
        f"live/{DATA}/terraform.tfvars": 'stack = "network"\n',
    }
    repo = build(change)
    assert found(repo) == []
    shutil.rmtree(repo.top)
    # The variable now names no stack: an unknown key, like a literal one.
    change[f"live/{DATA}/terraform.tfvars"] = 'stack = "netwrok"\n'
    (finding,) = found(build(change))
    assert finding.rule == "unknown-state-key"
    assert '"prod/eu-west-1/netwrok.tfstate"' in finding.message


def test_cloud_blocks_are_hand_written_backends(build: Callable[[Change], LiveRepo]) -> None:
    repo = build(
        {
            f"live/{NETWORK}/terraform.tf": (
                'terraform {\n  cloud {\n    organization = "acme"\n  }\n}\n'
            )
        }
    )
    (finding,) = found(repo, "hand-written-backend")
    assert finding.line == 2 and "cloud" in finding.message


# ---------------------------------------------------------------------------- generated files


def test_generated_files_fresh_or_missing_pass(build: Callable[[Change], LiveRepo]) -> None:
    repo = build({})
    assert found(repo, "stale-generated-file") == []  # none yet: written just in time
    generate_command.run(repo.live, check=False)
    assert (repo.live / NETWORK / "provider.tf").exists()
    assert found(repo, "stale-generated-file") == []


def test_stale_generated_files_fail(build: Callable[[Change], LiveRepo]) -> None:
    repo = build({})
    generate_command.run(repo.live, check=False)
    network = repo.live / NETWORK
    provider = network / "provider.tf"
    provider.write_text(provider.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    # A file tfrun wrote under an earlier config (remote_state.tf), and a person's backend.tf.
    signed = (network / "backend.tf").read_text(encoding="utf-8").splitlines()[0]
    (network / "remote_state.tf").write_text(signed + "\n", encoding="utf-8")
    (repo.live / DATA / "backend.tf").write_text('terraform {\n  backend "local" {}\n}\n')

    reported = found(repo)
    assert {(f.file, f.rule) for f in reported} == {
        (f"{NETWORK}/provider.tf", "stale-generated-file"),
        (f"{NETWORK}/remote_state.tf", "stale-generated-file"),
        (f"{DATA}/backend.tf", "stale-generated-file"),
        (f"{DATA}/backend.tf", "hand-written-backend"),
    }
    messages = {f.file: f.message for f in reported if f.rule == "stale-generated-file"}
    assert "tfrun generate" in messages[f"{NETWORK}/provider.tf"]
    assert "no longer writes" in messages[f"{NETWORK}/remote_state.tf"]
    assert "written by a person" in messages[f"{DATA}/backend.tf"]


# ---------------------------------------------------------------------------- the command


def test_the_command_exits_0_when_clean(
    build: Callable[[Change], LiveRepo], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = build({})
    assert cli.main(["check", str(repo.live)]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "no findings in 2 stacks" in out.err


def test_the_command_lists_every_finding_and_exits_1(
    build: Callable[[Change], LiveRepo], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = build({**CASES["unknown-state-key"][0], **CASES["hand-written-backend"][0]})
    assert cli.main(["check", str(repo.live)]) == 1
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{DATA}/main.tf:1: {DATA}: [unknown-state-key] ")
    assert lines[1].startswith(f"{NETWORK}/terraform.tf:2: {NETWORK}: [hand-written-backend] ")
    assert "2 findings in 2 of 2 stacks (hand-written-backend, unknown-state-key)" in out.err


def test_the_command_writes_json_for_ci(
    build: Callable[[Change], LiveRepo], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = build(CASES["unlisted-consumer"][0])
    assert cli.main(["check", str(repo.live), "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and document["stacks"] == 2
    assert set(document["rules"]) == set(RULES)
    (finding,) = document["findings"]
    assert finding == {
        "rule": "unlisted-consumer",
        "stack": DATA,
        "file": f"{DATA}/main.tf",
        "line": 1,
        "message": finding["message"],
    }

    shutil.rmtree(repo.top)
    repo = build({})
    assert cli.main(["check", "--format", "json", str(repo.live)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["findings"] == []


def test_path_limits_the_findings_to_its_stacks(
    build: Callable[[Change], LiveRepo], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = build(CASES["unknown-state-key"][0])  # a finding in data only
    assert cli.main(["check", str(repo.live / NETWORK)]) == 0
    assert cli.main(["check", str(repo.live / DATA)]) == 1
    # From the repository's top, as a CI job runs it: the whole live root.
    assert cli.main(["check", str(repo.top)]) == 1
    capsys.readouterr()


def test_a_config_that_cannot_be_read_is_exit_4(
    build: Callable[[Change], LiveRepo], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = build({f"live/{NETWORK}/terraform.tf": 'terraform {\n  backend "s3" {\n'})
    assert cli.main(["check", str(repo.live)]) == 4
    assert "terraform.tf" in capsys.readouterr().err


def test_every_cycle_is_reported_once(build: Callable[[Change], LiveRepo]) -> None:
    # Two separate cycles: a → b → c → a (with d hanging on to it) and e ⇄ f.
    tf = 'resource "aws_vpc" "x" {\n  cidr_block = "10.0.0.0/16"\n}\n'
    loops = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["f"], "f": ["e"]}
    change: dict[str, str | None] = {}
    for name, needs in loops.items():
        change[f"live/staging-eu-west-1/{name}/main.tf"] = tf
        listed = ", ".join(f'"../{n}"' for n in needs)
        change[f"live/staging-eu-west-1/{name}/stack.hcl"] = f"dependencies = [{listed}]\n"
    reported = found(build(change), "dependency-cycle")
    assert [(f.file, f.stack) for f in reported] == [
        ("staging-eu-west-1/a/stack.hcl", "staging-eu-west-1/a"),
        ("staging-eu-west-1/e/stack.hcl", "staging-eu-west-1/e"),
    ]
    assert (
        "staging-eu-west-1/a → staging-eu-west-1/b → staging-eu-west-1/c → staging-eu-west-1/a"
        in reported[0].message
    )
    assert "staging-eu-west-1/d" not in reported[0].message  # d waits on the cycle, not in it


def test_a_remote_state_name_that_is_no_terraform_name_is_the_one_error(
    build: Callable[[Change], LiveRepo], capsys: pytest.CaptureFixture[str]
) -> None:
    bad_name = 'remote_state = { "a b\\"c" = "../network" }\n'
    repo = build({f"live/{DATA}/stack.hcl": 'owner = "data-team"\n' + bad_name})
    assert cli.main(["check", str(repo.live)]) == 4
    out = capsys.readouterr()
    assert out.out == ""
    stack_hcl = repo.live / DATA / "stack.hcl"
    assert f'{stack_hcl}: \'remote_state\': the name "a b\\"c" cannot name a data source' in out.err


def test_a_lookalike_signature_is_reported_as_a_persons_file(
    build: Callable[[Change], LiveRepo],
) -> None:
    repo = build({f"live/{NETWORK}/provider.tf": "# Generated by tfrunner v2\nlocals {}\n"})
    (finding,) = found(repo, "stale-generated-file")
    assert finding.file == f"{NETWORK}/provider.tf"
    assert "written by a person" in finding.message


# ---------------------------------------------------------------------------- terraform's version
#
# check asks terraform its version (dynamodb-only-lock) once per run, only when a selected stack
# locks with DynamoDB alone. Every test here gets a fake terraform, so that the real one on PATH
# (its version, and the slow-marker guard) has no say: like tfenv's, it prints the version in
# the live root's .terraform-version, else 1.9.8, and notes each call in $FAKE_TF_CALLS.

FAKE_TERRAFORM = """#!/bin/sh
[ -n "$FAKE_TF_CALLS" ] && echo "$PWD $*" >> "$FAKE_TF_CALLS"
[ -n "$CHECKPOINT_DISABLE" ] || { echo "would ask checkpoint.hashicorp.com" >&2; exit 9; }
version=1.9.8
[ -f .terraform-version ] && version=$(cat .terraform-version)
printf '{"terraform_version": "%s", "platform": "linux_amd64"}\n' "$version"
"""


@pytest.fixture(autouse=True)
def fake_terraform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fake-bin" / "terraform"
    path.parent.mkdir()
    path.write_text(FAKE_TERRAFORM, encoding="utf-8")
    path.chmod(0o755)
    monkeypatch.setenv("TFRUN_TERRAFORM", str(path))
    monkeypatch.setenv("FAKE_TF_CALLS", str(tmp_path / "fake-calls"))
    return path


def fake_calls(tmp_path: Path) -> list[str]:
    calls = tmp_path / "fake-calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_terraform_is_asked_once_and_only_when_the_lock_rule_could_apply(
    build: Callable[[Change], LiveRepo], tmp_path: Path
) -> None:
    repo = build({"live/.terraform-version": "1.10.0\n"})
    assert {f.rule for f in found(repo)} == {"dynamodb-only-lock"}  # 1.10 is where it starts
    assert fake_calls(tmp_path) == [f"{repo.live} version -json"]

    shutil.rmtree(repo.top)
    (tmp_path / "fake-calls").unlink()
    # Without a lock table, or with use_lockfile, nothing is there to report: no terraform.
    with_lockfile = root_hcl(extra=PINS).replace(
        "  encrypt = true\n", "  encrypt = true\n  use_lockfile = true\n"
    )
    for root in (root_hcl(lock_table=None, extra=PINS), with_lockfile):
        repo = build({"live/.terraform-version": "1.11.4\n", "live/tfrun.hcl": root})
        assert found(repo) == []
        shutil.rmtree(repo.top)
    assert fake_calls(tmp_path) == []


def test_the_lock_finding_says_how_to_migrate(build: Callable[[Change], LiveRepo]) -> None:
    repo = build({"live/.terraform-version": "1.11.4\n"})
    (finding, _) = found(repo, "dynamodb-only-lock")
    assert "DynamoDB table 'acme-tfstate-locks'" in finding.message
    assert "terraform 1.11.4" in finding.message
    assert "use_lockfile = true" in finding.message and "docs/auth.md" in finding.message


@pytest.mark.parametrize(
    ("script", "why"),
    [
        (None, "is not on PATH"),
        ("#!/bin/sh\necho 'broken' >&2\nexit 3\n", "version -json' gave no version"),
        ("#!/bin/sh\necho 'Terraform v1.11.4'\n", "version -json' gave no version"),
    ],
)
def test_without_a_usable_terraform_the_lock_rule_is_skipped_and_says_so(
    build: Callable[[Change], LiveRepo],
    fake_terraform: Path,
    script: str | None,
    why: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if script is None:
        fake_terraform.unlink()
    else:
        fake_terraform.write_text(script, encoding="utf-8")
    repo = build({"live/.terraform-version": "1.11.4\n"})
    assert cli.main(["check", str(repo.live)]) == 0
    err = capsys.readouterr().err
    assert f"note: '{fake_terraform}" in err and why in err
    assert "so the rule dynamodb-only-lock was skipped" in err
    assert "no findings in 2 stacks" in err
