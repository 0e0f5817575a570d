"""Generated backend.tf, provider.tf, versions.tf, remote_state.tf and tfrun_override.tf."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree
from hypothesis import given, settings
from hypothesis import strategies as st
from test_config import ROOT

from tfrun import ci, generate
from tfrun.discovery import GENERATED_NAMES, Repository, Stack
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


@pytest.mark.parametrize(
    "text",
    [
        "# Generated by tfrun",
        "# Generated by tfrun\n",
        "# Generated by tfrun\r\nprovider {}\n",
        "# Generated by tfrun: do not edit.\n",
        generate.HEADER,
    ],
)
def test_the_signature_line(text: str) -> None:
    assert generate.is_signed(text) and generate.is_signed(text.encode())


@pytest.mark.parametrize(
    "text",
    [
        "# Generated by tfrunner v2\n",
        "# Generated by tfrun2\n",
        "# Generated by tfrun-ng\n",
        "# Generated by tfrun ci gitlab: 4 stacks affected\n",
        "# generated by tfrun\n",
        " # Generated by tfrun\n",
        "# Generated by tfru\n",
        "provider {}\n# Generated by tfrun\n",
        "",
    ],
)
def test_a_line_that_only_starts_like_the_signature_is_not_it(text: str) -> None:
    assert not generate.is_signed(text) and not generate.is_signed(text.encode())


def test_a_persons_file_with_a_lookalike_signature_is_neither_overwritten_nor_removed(
    repo: Repository,
) -> None:
    stack = repo.stack(repo.root / "prod-eu-west-1/network")
    person = '# Generated by tfrunner v2\nprovider "aws" {\n  region = "eu-west-1"\n}\n'
    (stack.path / "provider.tf").write_text(person)
    # remote_state.tf is a name tfrun generates but not for this stack: a stale one would go.
    (stack.path / "remote_state.tf").write_text(person.replace("provider", "locals", 1))
    rendered = generate.render(repo, stack, endpoint=None)
    with pytest.raises(ConfigError, match="written by a person") as caught:
        generate.write(stack, rendered)
    assert str(stack.path / "provider.tf") in str(caught.value)
    assert (stack.path / "provider.tf").read_text() == person
    assert generate.stale_generated(stack, rendered) == []


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
    # Saved plans hold secrets: the CI jobs' plan file as much as any *.tfplan.
    assert {"*.tfplan", ci.PLAN_FILE} <= set(text.splitlines())
    assert not generate.ensure_gitignore(repo.root)


def test_names_a_newer_tfrun_ignores_join_the_block_an_earlier_one_wrote(tmp_path: Path) -> None:
    # The block tfrun wrote before it knew of the CI jobs' plan file, then a person's lines.
    earlier = [generate.GITIGNORE_MARK, *sorted(GENERATED_NAMES), ".tfrun/", ".terraform/"]
    earlier.append("*.tfplan")
    mine = "# mine\nsecrets/\n"
    (tmp_path / ".gitignore").write_text("*.log\n\n" + "\n".join(earlier) + "\n\n" + mine)
    assert generate.ensure_gitignore(tmp_path)
    text = (tmp_path / ".gitignore").read_text()
    assert text == "*.log\n\n" + "\n".join([*earlier, "tfplan"]) + "\n\n" + mine
    assert not generate.ensure_gitignore(tmp_path)


def test_an_earlier_block_at_the_end_without_a_newline(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text(f"{generate.GITIGNORE_MARK}\nbackend.tf")
    assert generate.ensure_gitignore(tmp_path)
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == [generate.GITIGNORE_MARK, "backend.tf"]
    assert lines[2:] == [name for name in generate.GITIGNORED if name != "backend.tf"]


def test_plan_files() -> None:
    assert generate.is_plan_file(ci.PLAN_FILE) and generate.is_plan_file("prod.tfplan")
    assert not generate.is_plan_file("tfplan.md") and not generate.is_plan_file("main.tf")


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


ESCAPED_CONFIG = {
    "Note": ('"cost $${per} hour"', "cost ${per} hour"),
    "Loop": ('"%%{ for x in y }"', "%{ for x in y }"),
    "Dollars": ('"$$$${x}"', "$$${x}"),
}


def _stack_with_tags(tmp_path: Path, tags: str) -> tuple[Repository, Stack]:
    live = write_tree(
        tmp_path / "live",
        {
            "tfrun.hcl": ROOT,
            "prod-eu-west-1/app/main.tf": "",
            "prod-eu-west-1/app/stack.hcl": f"tags = {{ {tags} }}\n",
        },
    )
    repo = Repository(live)
    return repo, repo.stack(live / "prod-eu-west-1/app")


def _provider_tf(repo: Repository, stack: Stack) -> GeneratedFile:
    (provider,) = [
        f for f in generate.render(repo, stack, endpoint=None) if f.path.name == "provider.tf"
    ]
    return provider


def _tags_read_back(file: GeneratedFile) -> dict[str, str]:
    tags: dict[str, str] = parse_text(file.content, file.path)["provider"][0]["aws"][
        "default_tags"
    ][0]["tags"]
    return tags


def test_template_escapes_in_config_are_escaped_once_in_the_generated_file(
    tmp_path: Path,
) -> None:
    tags = ", ".join(f"{name} = {written}" for name, (written, _) in ESCAPED_CONFIG.items())
    provider = _provider_tf(*_stack_with_tags(tmp_path, tags))
    read_back = _tags_read_back(provider)
    assert {name: read_back[name] for name in ESCAPED_CONFIG} == {
        name: meant for name, (_, meant) in ESCAPED_CONFIG.items()
    }
    # Escaped once, in the form terraform and python-hcl2 both read as a literal `${`.
    assert '"cost $\\u007bper} hour"' in provider.content


def _terraform_reads(terraform_bin: str, literal: str, cwd: Path) -> str:
    """The value terraform gives an HCL string literal: console prints it base64-encoded, so
    nothing in the value is escaped on the way out."""
    done = subprocess.run(
        [terraform_bin, "console"],
        input=f"base64encode({literal})\n",
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    printed = done.stdout.strip().splitlines()[-1]
    return base64.b64decode(json.loads(printed)).decode("utf-8")


@pytest.mark.slow
def test_terraform_reads_the_value_the_config_means(tmp_path: Path, terraform_bin: str) -> None:
    meant = {**{name: m for name, (_, m) in ESCAPED_CONFIG.items()}, "Hidden": "a\u202eb\u200bc"}
    tags = ", ".join(f"{name} = {written}" for name, (written, _) in ESCAPED_CONFIG.items())
    provider = _provider_tf(*_stack_with_tags(tmp_path, tags + ', Hidden = "a\u202eb\u200bc"'))
    literals = {}
    for line in provider.content.splitlines():
        name, _, value = line.strip().partition(" = ")
        if name.strip().strip('"') in meant:
            literals[name.strip().strip('"')] = value.strip()
    assert set(literals) == set(meant)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert {
        name: _terraform_reads(terraform_bin, text, empty) for name, text in literals.items()
    } == meant


BIDI_AND_ZERO_WIDTH = [
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    0x200E,
    0x200F,
    0x061C,
    *range(0x200B, 0x200E),
    0x2060,
    0xFEFF,
]


@pytest.mark.parametrize("code", BIDI_AND_ZERO_WIDTH, ids=lambda code: f"U+{code:04X}")
def test_bidi_and_zero_width_characters_are_escaped(code: int) -> None:
    value = f"admin{chr(code)}team"
    text = quote(value)
    assert chr(code) not in text and f"\\u{code:04x}" in text
    assert parse_text(f"v = {text}", Path("x"))["v"] == value


def test_invisible_characters_in_config_are_escaped_in_the_generated_file(tmp_path: Path) -> None:
    hidden = "".join(chr(code) for code in BIDI_AND_ZERO_WIDTH)
    # Written raw into stack.hcl, as a paste from a document would be.
    repo, stack = _stack_with_tags(tmp_path, f'Team = "ops{hidden}", "K{hidden}" = "v"')
    provider = _provider_tf(repo, stack)
    assert not any(ch in provider.content for ch in hidden)
    tags = _tags_read_back(provider)
    assert tags["Team"] == f"ops{hidden}" and tags[f"K{hidden}"] == "v"


def _visible(text: str) -> bool:
    return not any(
        unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") and ch != "\n" for ch in text
    )


mixed_text = st.text(
    st.one_of(
        st.sampled_from([chr(c) for c in BIDI_AND_ZERO_WIDTH] + ["\x85", "\u2028", "\U000e0041"]),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(value=mixed_text)
def test_every_rendered_file_shows_what_terraform_reads(value: str) -> None:
    block = Block("provider", ("aws",)).block(Block("default_tags").attr("tags", {value: value}))
    text = render([block], generate.HEADER)
    assert _visible(text)
    assert parse_text(text, Path("x"))["provider"][0]["aws"]["default_tags"][0]["tags"] == {
        value: value
    }


def test_quote_of_template_markers() -> None:
    assert quote("${x} %{y}") == r'"$\u007bx} %\u007by}"'


def test_generated_file_type() -> None:
    assert GeneratedFile(Path("a"), "b").content == "b"


def _unused_stack(stack: Stack) -> None:  # keeps the import honest for type checkers
    del stack


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # S3-native locking alone: no DynamoDB table at all.
        ("  use_lockfile = true\n", {"use_lockfile": True}),
        # The migration path: both locks while anyone still runs terraform < 1.10.
        (
            '  use_lockfile = true\n  dynamodb_table = "acme-locks"\n',
            {"dynamodb_table": "acme-locks", "use_lockfile": True},
        ),
        ('  dynamodb_table = "acme-locks"\n', {"dynamodb_table": "acme-locks"}),
        ("  use_lockfile = false\n", {}),
    ],
)
def test_use_lockfile_in_the_backend(
    tmp_path: Path, state: str, expected: dict[str, object]
) -> None:
    root = ROOT.replace('  dynamodb_table = "acme-locks"\n', state)
    live = write_tree(tmp_path / "live", {"tfrun.hcl": root, "prod-eu-west-1/network/main.tf": ""})
    files = files_of(Repository(live), "prod-eu-west-1/network")
    assert files["backend.tf"]["terraform"][0]["backend"][0]["s3"] == {
        "bucket": "acme-tfstate",
        "key": "prod/eu-west-1/network.tfstate",
        "region": "eu-west-1",
        **expected,
        "encrypt": True,
    }


def test_kms_key_id_goes_into_the_backend_but_not_against_a_local_endpoint(
    tmp_path: Path,
) -> None:
    key = "arn:aws:kms:eu-west-1:222222222222:alias/tfstate"
    live = write_tree(
        tmp_path / "live",
        {
            "tfrun.hcl": PINNED_ROOT.replace("state {", f'state {{\n  kms_key_id = "{key}"'),
            "prod-eu-west-1/network/main.tf": "",
        },
    )
    repo = Repository(live)

    def backend(endpoint: str | None) -> dict[str, Any]:
        files = files_of(repo, "prod-eu-west-1/network", endpoint)
        s3: dict[str, Any] = files["backend.tf"]["terraform"][0]["backend"][0]["s3"]
        return s3

    assert backend(None)["kms_key_id"] == key
    assert "kms_key_id" not in backend("http://127.0.0.1:5000")
