"""Generated backend.tf, provider.tf, versions.tf, remote_state.tf and tfrun_override.tf."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree
from hypothesis import given, settings
from hypothesis import strategies as st
from test_config import ROOT

from tfrun import generate
from tfrun.discovery import Repository, Stack
from tfrun.errors import ConfigError
from tfrun.generate import GeneratedFile, OverriddenRead
from tfrun.hcl import Block, parse_text, quote, render

PINNED_ROOT = ROOT + '\nterraform_version = ">= 1.6"\nproviders { aws = "~> 5.0" }\n'


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    live = write_tree(
        tmp_path / "live",
        {
            "tfrun.hcl": PINNED_ROOT,
            "prod-eu-west-1/network/main.tf": "",
            "prod-eu-west-1/app/main.tf": "",
            "prod-eu-west-1/app/stack.hcl": (
                'remote_state = { network = "../network" }\ntags = { Team = "app" }'
            ),
            "shared-services/iam/main.tf": "",
        },
    )
    return Repository(live)


def files_of(repo: Repository, rel: str, endpoint: str | None = None) -> dict[str, Any]:
    stack = repo.stack(repo.root / rel)
    rendered = generate.render(repo, stack, endpoint=endpoint)
    return {f.path.name: parse_text(f.content, f.path) for f in rendered}


def test_backend_and_provider_fields(repo: Repository) -> None:
    files = files_of(repo, "prod-eu-west-1/network")
    assert set(files) == {"backend.tf", "provider.tf", "versions.tf"}
    backend = files["backend.tf"]["terraform"][0]["backend"][0]["s3"]
    assert backend == {
        "bucket": "acme-tfstate",
        "key": "prod/eu-west-1/network.tfstate",
        "region": "eu-west-1",
        "dynamodb_table": "acme-locks",
        "encrypt": True,
    }
    provider = files["provider.tf"]["provider"][0]["aws"]
    assert provider["region"] == "eu-west-1"
    assert provider["profile"] == "prod"
    assert provider["allowed_account_ids"] == ["222222222222"]
    assert provider["default_tags"][0]["tags"] == {
        "ManagedBy": "terraform",
        "Environment": "prod",
        "Repo": "infra",
        "Stack": "network",
        "Owner": "platform",
        "CostCenter": "1",
    }
    versions = files["versions.tf"]["terraform"][0]
    assert versions["required_version"] == ">= 1.6"
    assert versions["required_providers"][0]["aws"] == {
        "source": "hashicorp/aws",
        "version": "~> 5.0",
    }


def test_each_stack_gets_its_own_key_profile_and_tags(repo: Repository) -> None:
    iam = files_of(repo, "shared-services/iam")
    assert iam["backend.tf"]["terraform"][0]["backend"][0]["s3"]["key"] == (
        "shared-services/global/iam.tfstate"
    )
    provider = iam["provider.tf"]["provider"][0]["aws"]
    assert (provider["region"], provider["profile"]) == ("us-east-1", "shared")
    assert provider["default_tags"][0]["tags"]["Environment"] == "shared-services"
    app = files_of(repo, "prod-eu-west-1/app")
    assert app["provider.tf"]["provider"][0]["aws"]["default_tags"][0]["tags"]["Team"] == "app"


def test_remote_state_from_stack_config(repo: Repository) -> None:
    app = files_of(repo, "prod-eu-west-1/app")
    data = app["remote_state.tf"]["data"][0]["terraform_remote_state"]["network"]
    assert data["backend"] == "s3"
    assert data["config"] == {
        "bucket": "acme-tfstate",
        "key": "prod/eu-west-1/network.tfstate",
        "region": "eu-west-1",
    }


def test_endpoint_override_everywhere(repo: Repository) -> None:
    url = "http://127.0.0.1:5000"
    stack = repo.stack(repo.root / "prod-eu-west-1/app")
    reads = [OverriddenRead("legacy", {"bucket": "acme-tfstate", "key": "a/b.tfstate"})]
    rendered = generate.render(repo, stack, endpoint=url, hand_written_reads=reads)
    files = {f.path.name: parse_text(f.content, f.path) for f in rendered}
    backend = files["backend.tf"]["terraform"][0]["backend"][0]["s3"]
    assert backend["endpoints"] == {"s3": url, "dynamodb": url, "iam": url, "sts": url}
    assert backend["use_path_style"] is True
    provider = files["provider.tf"]["provider"][0]["aws"]
    assert provider["endpoints"][0]["s3"] == url and provider["endpoints"][0]["ec2"] == url
    assert "allowed_account_ids" not in provider
    remote = files["remote_state.tf"]["data"][0]["terraform_remote_state"]["network"]["config"]
    assert remote["endpoints"]["s3"] == url
    override = files["tfrun_override.tf"]["data"][0]["terraform_remote_state"]["legacy"]
    assert override["config"]["key"] == "a/b.tfstate"
    assert override["config"]["endpoints"]["s3"] == url
    assert set(override) == {"config"}


def test_signature_atomic_write_and_no_rewrite(repo: Repository) -> None:
    stack = repo.stack(repo.root / "prod-eu-west-1/network")
    rendered = generate.render(repo, stack, endpoint=None)
    assert {p.name for p in generate.write(stack, rendered)} == {
        "backend.tf",
        "provider.tf",
        "versions.tf",
    }
    assert all(f.path.read_text().startswith(generate.SIGNATURE) for f in rendered)
    # Readable like any file the user creates, not private as a temporary file is.
    assert all(f.path.stat().st_mode & 0o777 == 0o644 for f in rendered)
    before = {f.path: f.path.stat().st_mtime_ns for f in rendered}
    assert generate.write(stack, rendered) == []
    assert {f.path: f.path.stat().st_mtime_ns for f in rendered} == before
    assert not list(stack.path.glob(".*.tmp"))
    assert generate.diff(stack, rendered) == ""


def test_refuses_to_overwrite_a_persons_file(repo: Repository) -> None:
    stack = repo.stack(repo.root / "prod-eu-west-1/network")
    person = 'terraform {\n  backend "local" {}\n}\n'
    (stack.path / "backend.tf").write_text(person)
    rendered = generate.render(repo, stack, endpoint=None)
    with pytest.raises(ConfigError) as caught:
        generate.write(stack, rendered)
    assert str(stack.path / "backend.tf") in str(caught.value)
    assert "written by a person" in str(caught.value)
    # Nothing half-written: the person's file is intact and no other file appeared.
    assert (stack.path / "backend.tf").read_text() == person
    assert not (stack.path / "provider.tf").exists()


def test_stale_generated_file_is_removed(repo: Repository) -> None:
    stack = repo.stack(repo.root / "prod-eu-west-1/app")
    generate.write(stack, generate.render(repo, stack, endpoint=None))
    (stack.path / "stack.hcl").write_text("")
    fresh = Repository(repo.root).stack(stack.path)
    rendered = generate.render(repo, fresh, endpoint=None)
    assert "remote_state.tf" in generate.diff(fresh, rendered)
    assert stack.path / "remote_state.tf" in generate.write(fresh, rendered)
    assert not (stack.path / "remote_state.tf").exists()


def test_remote_state_to_a_missing_folder(repo: Repository) -> None:
    (repo.root / "prod-eu-west-1/app/stack.hcl").write_text('remote_state = { x = "../nope" }')
    stack = Repository(repo.root).stack(repo.root / "prod-eu-west-1/app")
    with pytest.raises(ConfigError, match=r"remote_state 'x' points at \.\./nope"):
        generate.render(repo, stack, endpoint=None)


def test_gitignore_entry(repo: Repository) -> None:
    (repo.root / ".gitignore").write_text("*.log")
    assert generate.ensure_gitignore(repo.root)
    text = (repo.root / ".gitignore").read_text()
    assert text.startswith("*.log\n\n") and "backend.tf\n" in text and "provider.tf\n" in text
    assert not generate.ensure_gitignore(repo.root)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("terraform") is None, reason="needs terraform")
def test_generated_files_are_terraform_fmt_clean(repo: Repository, tmp_path: Path) -> None:
    stack = repo.stack(repo.root / "prod-eu-west-1/app")
    reads = [OverriddenRead("x", {"bucket": "b", "key": "k"})]
    generate.write(
        stack, generate.render(repo, stack, endpoint="http://h:1", hand_written_reads=reads)
    )
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "."], cwd=stack.path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- escaping: no value can inject HCL -------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(tag_key=any_text, tag_value=any_text, profile=any_text, key=any_text)
def test_any_value_round_trips(tag_key: str, tag_value: str, profile: str, key: str) -> None:
    block = (
        Block("provider", ("aws",))
        .attr("profile", profile)
        .block(Block("default_tags").attr("tags", {tag_key: tag_value, "Fixed": "x"}))
    )
    backend = Block("terraform").block(Block("backend", ("s3",)).attr("key", key))
    text = render([block, backend], generate.HEADER)
    parsed = parse_text(text, Path("generated.tf"))
    provider = parsed["provider"][0]["aws"]
    assert provider["profile"] == profile
    assert provider["default_tags"][0]["tags"] == {tag_key: tag_value, "Fixed": "x"}
    assert parsed["terraform"][0]["backend"][0]["s3"]["key"] == key
    # Nothing but the two blocks: no injected attribute or block.
    assert set(parsed) == {"provider", "terraform"}
    assert set(provider) == {"profile", "default_tags"}


@pytest.mark.parametrize(
    "evil",
    [
        '"\n  allowed_account_ids = ["1"]\n  x = "',
        '${file("/etc/passwd")}',
        "%{ for x in y }${x}%{ endfor }",
        "\\",
        '\\"',
        "$${literal}",
        "line\r\nbreak\t",
    ],
)
def test_known_injections_are_literal(evil: str) -> None:
    text = quote(evil)
    assert "\n" not in text and parse_text(f"v = {text}", Path("x"))["v"] == evil


def test_quote_of_template_markers() -> None:
    assert quote("${x} %{y}") == r'"$\u007bx} %\u007by}"'


def test_generated_file_type() -> None:
    assert GeneratedFile(Path("a"), "b").content == "b"


def _unused_stack(stack: Stack) -> None:  # keeps the import honest for type checkers
    del stack
