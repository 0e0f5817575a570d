"""Reading .tf files: remote-state reads (with their literal config), local modules, the
prefilter, the lexer's fast path against python-hcl2, the cache, and the worker processes.
(The settings `tfrun check` reads are in test_scan_settings.py.)"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from typing import Any

import hcl2
import pytest
from helpers import LiveRepo, root_hcl

from tfrun import scan, terraform
from tfrun.discovery import Repository
from tfrun.errors import ConfigError
from tfrun.generate import OverriddenRead
from tfrun.scan import cache, links, parse, reader, values
from tfrun.scan.blocks import Pass

NETWORK = "prod-eu-west-1/network"
APP = "prod-eu-west-1/app"

READ = """\
data "terraform_remote_state" "network" {
  backend = "s3"
  config = {
    bucket = "acme-tfstate"
    key    = "prod/eu-west-1/network.tfstate"
    region = "eu-west-1"
  }
}
"""


def repo(make_repo: Callable[..., LiveRepo], files: dict[str, str]) -> LiveRepo:
    return make_repo(
        {
            "live/tfrun.hcl": root_hcl(),
            f"live/{NETWORK}/main.tf": 'resource "null_resource" "n" {}\n',
            **{f"live/{k}": v for k, v in files.items()},
        }
    )


def scan_repo(live: LiveRepo, **options: Any) -> dict[str, scan.StackFacts]:
    repository = Repository(live.live)
    return scan.scan(repository.root, repository.stacks(), **options)


# ---------------------------------------------------------------------------- remote state


def test_reads_a_canonical_remote_state_block(make_repo: Callable[..., LiveRepo]) -> None:
    live = repo(make_repo, {f"{APP}/main.tf": "locals {}\n\n" + READ})
    (read,) = scan_repo(live)[APP].reads
    assert (read.name, read.backend, read.bucket, read.key, read.problem) == (
        "network",
        "s3",
        "acme-tfstate",
        "prod/eu-west-1/network.tfstate",
        None,
    )
    assert read.file == live.path(f"{APP}/main.tf")
    assert read.line == 3
    assert read.where.endswith("main.tf:3")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('backend = "local"\n  config = { path = "x.tfstate" }', 'reads the "local" backend'),
        ("backend = var.backend\n  config = {}", "backend is not a plain string"),
        ('backend = "s3"\n  config = { bucket = "b", key = "${var.env}/x" }', "key is computed"),
        ('backend = "s3"\n  config = {\n    bucket = "b"\n    key = local.key\n  }', "computed"),
        ('backend = "s3"\n  config = { bucket = var.bucket, key = "k" }', "bucket is computed"),
        ('backend = "s3"\n  config = { bucket = "b" }', "has no key"),
        ('backend = "s3"\n  config = local.config', "config is not a plain map"),
        (
            'backend = "s3"\n  workspace = var.ws\n  config = { bucket = "b", key = "k" }',
            "workspace",
        ),
    ],
)
def test_unresolvable_reads_say_why_and_where(
    make_repo: Callable[..., LiveRepo], body: str, problem: str
) -> None:
    text = f'locals {{}}\n\ndata "terraform_remote_state" "odd" {{\n  {body}\n}}\n'
    live = repo(make_repo, {f"{APP}/main.tf": text})
    (read,) = scan_repo(live)[APP].reads
    assert read.problem is not None and problem in read.problem
    assert read.line == 3


@pytest.mark.parametrize(
    ("workspace", "config", "key"),
    [
        ('"blue"', "", "env:/blue/k"),
        ('"blue"', 'workspace_key_prefix = "ws"', "ws/blue/k"),
        ('"default"', "", "k"),
        ("terraform.workspace", "", "k"),
    ],
)
def test_a_workspace_reads_the_key_under_its_prefix(
    make_repo: Callable[..., LiveRepo], workspace: str, config: str, key: str
) -> None:
    text = (
        f'data "terraform_remote_state" "w" {{\n  backend = "s3"\n  workspace = {workspace}\n'
        f'  config = {{ bucket = "b", key = "k", {config} }}\n}}\n'
    )
    live = repo(make_repo, {f"{APP}/main.tf": text})
    (read,) = scan_repo(live)[APP].reads
    assert (read.key, read.problem) == (key, None)


def test_a_whole_config_from_a_local_and_values_in_json_syntax(
    make_repo: Callable[..., LiveRepo],
) -> None:
    read = 'data "terraform_remote_state" "r" {\n  backend = "s3"\n  config = local.state\n}\n'
    values_json = {
        "variable": {"env": {"default": "prod"}},
        "locals": {"state": {"bucket": "b", "key": "${var.env}/${local.region}/n.tfstate"}},
    }
    live = repo(
        make_repo,
        {
            f"{APP}/main.tf": read,
            f"{APP}/values.tf.json": json.dumps(values_json),
            f"{APP}/region.tf": 'locals {\n  region = "eu-west-1"\n}\n',
        },
    )
    (found,) = scan_repo(live)[APP].reads
    assert (found.bucket, found.key, found.problem) == ("b", "prod/eu-west-1/n.tfstate", None)


def test_template_escapes_are_literal(make_repo: Callable[..., LiveRepo]) -> None:
    text = READ.replace('"prod/eu-west-1/network.tfstate"', '"a/$${b}.tfstate"')
    live = repo(make_repo, {f"{APP}/main.tf": text})
    (read,) = scan_repo(live)[APP].reads
    assert (read.key, read.problem) == ("a/${b}.tfstate", None)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            '{\n    bucket = "b"\n    key    = "k"\n    encrypt = true\n    retries = 3\n  }',
            {"bucket": "b", "key": "k", "encrypt": True, "retries": 3},
        ),
        (
            '{\n    bucket = "b"\n    key = "k"\n    assume_role = {\n      role_arn = "r"\n'
            '    }\n    tags = ["a", 1]\n  }',
            {"bucket": "b", "key": "k", "assume_role": {"role_arn": "r"}, "tags": ["a", 1]},
        ),
        ('{ bucket = "b", key = "a/$${x}" }', {"bucket": "b", "key": "a/${x}"}),
        ('{\n    bucket = "b"\n    key    = "k"\n    region = var.region\n  }', None),
        ('{\n    bucket = "b"\n    key = "k"\n    role = { arn = local.arn }\n  }', None),
        ('{ bucket = "b", key = "${var.env}/k" }', None),
        ('{ bucket = "b", key = "k", (var.name) = "x" }', None),
        ("local.config", None),
    ],
    ids=["plain", "nested", "escaped", "reference", "nested-reference", "template", "key", "map"],
)
def test_the_whole_config_is_carried_only_when_literal(
    make_repo: Callable[..., LiveRepo], config: str, expected: dict[str, Any] | None
) -> None:
    text = f'data "terraform_remote_state" "r" {{\n  backend = "s3"\n  config = {config}\n}}\n'
    live = repo(make_repo, {f"{APP}/main.tf": text})
    (read,) = scan_repo(live)[APP].reads
    assert read.config == expected


def test_plain_values_and_references_in_a_config_need_no_parser(
    make_repo: Callable[..., LiveRepo],
) -> None:
    extra = "    encrypt = true\n    retries = 3\n    profile = null\n"
    literal = READ.replace('    region = "eu-west-1"\n', extra)
    computed = READ.replace('    region = "eu-west-1"\n', "    region = var.region\n")
    live = repo(make_repo, {f"{APP}/main.tf": literal, f"{APP}/other.tf": computed})
    scanner = scan.Scanner(live.live, use_cache=False)
    first, second = scanner.scan_dirs([live.path(APP)])[live.path(APP)].reads
    assert scanner.stats.parsed == 0
    assert first.config is not None and first.config["retries"] == 3
    assert second.config is None


def test_own_remote_state_reads_are_the_stacks_s3_reads_with_a_literal_config(
    make_repo: Callable[..., LiveRepo],
) -> None:
    def read(name: str, backend: str = "s3", key: str = '"k.tfstate"') -> str:
        config = f'{{ bucket = "b", key = {key} }}' if backend == "s3" else '{ path = "p" }'
        return f'data "terraform_remote_state" "{name}" {{\n  backend = "{backend}"\n' + (
            f"  config = {config}\n}}\n"
        )

    live = repo(
        make_repo,
        {
            f"{APP}/main.tf": read("first")
            + read("local", backend="local")
            + read("computed", key="var.key")
            + 'module "m" {\n  source = "../../../modules/m"\n}\n',
            f"{APP}/other.tf": read("second"),
            "../modules/m/main.tf": read("in_module"),
        },
    )
    stack = Repository(live.live).stack(live.path(APP))
    reads = scan.own_remote_state_reads(live.live, stack.path)
    assert [(r.name, r.config) for r in reads] == [
        ("first", {"bucket": "b", "key": "k.tfstate"}),
        ("second", {"bucket": "b", "key": "k.tfstate"}),
    ]
    assert terraform.hand_written_reads(stack) == [
        OverriddenRead("first", {"bucket": "b", "key": "k.tfstate"}),
        OverriddenRead("second", {"bucket": "b", "key": "k.tfstate"}),
    ]
    # Asked again after an edit, the same process sees the file as it is now.
    live.path(f"{APP}/other.tf").write_text(read("renamed"), encoding="utf-8")
    assert [r.name for r in scan.own_remote_state_reads(live.live, stack.path)] == [
        "first",
        "renamed",
    ]


def test_terraform_json_syntax(make_repo: Callable[..., LiveRepo]) -> None:
    document = {
        "data": {
            "terraform_remote_state": {
                "network": {"backend": "s3", "config": {"bucket": "b", "key": "k.tfstate"}}
            }
        },
        "module": {"vpc": {"source": "../../../modules/vpc"}},
    }
    live = repo(
        make_repo,
        {
            f"{APP}/main.tf": "locals {}\n",
            f"{APP}/main.tf.json": json.dumps(document, indent=2),
            "../modules/vpc/main.tf": "",
        },
    )
    facts = scan_repo(live)[APP]
    (read,) = facts.reads
    assert (read.name, read.key, read.line) == ("network", "k.tfstate", 4)
    assert facts.modules == {live.top / "modules/vpc"}


def test_own_reads_carry_their_evaluated_config_for_the_override_file(
    make_repo: Callable[..., LiveRepo],
) -> None:
    def read(name: str, key: str, before: str = "") -> str:
        return (
            f'data "terraform_remote_state" "{name}" {{\n{before}  backend = "s3"\n'
            f'  config = {{\n    bucket = "b"\n    key    = {key}\n  }}\n}}\n'
        )

    each = '  for_each = toset(["a", "b"])\n'
    live = repo(
        make_repo,
        {
            f"{APP}/main.tf": read("tfvars", '"${var.env}/network.tfstate"')
            + 'variable "env" {}\n',
            f"{APP}/terraform.tfvars": 'env = "prod"\n',
            # One override serves every instance only when they all read the same.
            f"{APP}/each.tf": read("same", '"k.tfstate"', each)
            + read("per", '"${each.key}.tfstate"', each),
        },
    )
    reads = scan.own_remote_state_reads(live.live, live.path(APP))
    assert [(r.name, r.config) for r in reads] == [
        ("same", {"bucket": "b", "key": "k.tfstate"}),
        ("tfvars", {"bucket": "b", "key": "prod/network.tfstate"}),
    ]


# Variables, locals and variable files as the line patterns read them, and as python-hcl2 does.
VALUE_SHAPES = [
    ("variables.tf", 'variable "env" {\n  type    = string\n  default = "staging"\n}\n'),
    (
        "variables.tf",
        'variable "n" {\n  default = 3\n  validation {\n    condition = true\n'
        '    error_message = "x"\n  }\n}\nvariable "none" {}\n',
    ),
    ("variables.tf", 'variable "keys" {\n  default = {\n    staging = "s"\n  }\n}\n'),
    (
        "main.tf",
        'locals {\n  region = "us-east-1"\n  key    = "${var.env}/${local.region}"\n'
        '  common = merge(var.tags, { a = 1 })\n  keys = {\n    a = "b"\n  }\n}\n',
    ),
    ("main.tf", "locals {\n  policy = <<-EOT\n    x = ${var.y}\n  EOT\n  n = 2\n}\n"),
    ("terraform.tfvars", 'env = "staging"\n# comment\ncount = 2\nenabled = true\n'),
    ("terraform.tfvars", 'env = "staging"\nkeys = {\n  a = "b"\n}\n'),
    ("x.auto.tfvars", 'list = ["a", "b"]\n'),
]


@pytest.mark.parametrize(("name", "text"), VALUE_SHAPES)
def test_values_fast_path_agrees_with_python_hcl2(name: str, text: str) -> None:
    fast = reader.extract(values.VALUES, name, text.encode())
    if name.endswith(".tfvars"):
        wrapped = parse.parse_snippet((f"tfvars {{\n{text}\n}}", 0))
    else:
        wrapped = parse.parse_snippet((text, 1))
    assert not isinstance(wrapped, str)
    by_parser = values.finish(Pass({"signed": False}, blocks=wrapped))
    # What the patterns leave unread is parsed when someone needs it.
    assert values.amend(fast, text) == by_parser


def test_a_variable_file_is_read_only_when_terraform_loads_it() -> None:
    assert reader.extract(values.VALUES, "prod.tfvars", b'env = "prod"\n') == {"signed": False}
    facts = reader.extract(values.VALUES, "a.auto.tfvars.json", b'{"k": "${x}", "n": [1]}')
    assert facts["tfvars"] == {"k": "$${x}", "n": [1]}  # JSON values are literal text


def test_a_local_left_unread_is_parsed_once_and_kept(
    make_repo: Callable[..., LiveRepo], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "RACY_NS", 0)
    text = READ.replace('"prod/eu-west-1/network.tfstate"', "lookup(local.keys, var.env)") + (
        'variable "env" {\n  default = "prod"\n}\n\nlocals {\n  keys = {\n'
        '    prod = "prod/eu-west-1/network.tfstate"\n  }\n  tags = merge({}, {})\n}\n'
    )
    live = repo(make_repo, {f"{APP}/main.tf": text})
    parsed: list[object] = []

    def counting(snippet: Any) -> Any:
        parsed.append(snippet)
        return parse.parse_snippet(snippet)

    monkeypatch.setattr(values, "parse_snippet", counting)
    for _ in range(2):
        (read,) = scan_repo(live)[APP].reads
        assert (read.key, read.problem) == ("prod/eu-west-1/network.tfstate", None)
    assert len(parsed) == 1  # the second scan found it in the cache


# ---------------------------------------------------------------------------- prefilter, lexer


def test_a_file_without_the_words_is_not_parsed(make_repo: Callable[..., LiveRepo]) -> None:
    # Not HCL at all: it is never given to a parser, so it cannot fail.
    live = repo(make_repo, {f"{APP}/broken.tf": 'resource "x" "y" { this is {{ not HCL\n'})
    assert scan_repo(live)[APP].reads == ()


def test_the_words_in_comments_strings_and_heredocs_are_not_blocks(
    make_repo: Callable[..., LiveRepo],
) -> None:
    text = """\
        # data "terraform_remote_state" "commented" { backend = "s3" }
        // module "also_commented" { source = "../nowhere" }
        /*
        data "terraform_remote_state" "in_a_block_comment" {
          backend = "s3"
        }
        */
        locals {
          text   = "module \\"x\\" { source = \\"../x\\" } ${jsonencode({ a = "}" })}"
          policy = <<-EOT
            data "terraform_remote_state" "in_a_heredoc" {
              backend = "s3"
            }
          EOT
        }
        """
    live = repo(make_repo, {f"{APP}/main.tf": textwrap.dedent(text) + "\n" + READ})
    facts = scan_repo(live)[APP]
    assert [r.name for r in facts.reads] == ["network"]
    assert facts.reads[0].line == 17
    assert facts.modules == frozenset()


def test_a_broken_file_with_the_words_is_an_error_with_its_line(
    make_repo: Callable[..., LiveRepo],
) -> None:
    text = READ + '\nmodule "vpc" {\n  source = \n}\n'
    live = repo(make_repo, {f"{APP}/main.tf": text})
    with pytest.raises(ConfigError, match=r"main\.tf:11:\d+: this is not valid HCL"):
        scan_repo(live)


# The same blocks read by the line patterns (when they can) and by python-hcl2 alone.
SHAPES = [
    READ,
    READ.replace("  config = {", "  # the producer\n  config = {  # comment"),
    READ.replace('"acme-tfstate"', '"acme-tfstate", # trailing comma'),
    'data "terraform_remote_state" "one_line" {\n  backend = "s3"\n'
    '  config = { bucket = "b", key = "k/one.tfstate" }\n}\n',
    'data "terraform_remote_state" "quoted_keys" {\n  backend = "s3"\n'
    '  config = {\n    "bucket" = "b"\n    "key" = "k/q.tfstate"\n  }\n}\n',
    'data "terraform_remote_state" "escapes" {\n  backend = "s3"\n'
    '  config = {\n    bucket = "b"\n    key = "k/\\u0041.tfstate"\n  }\n}\n',
    'data "terraform_remote_state" "nested" {\n  backend = "s3"\n  config = {\n'
    '    bucket = "b"\n    assume_role = {\n      key = "not the state key"\n    }\n'
    '    key = "k/n.tfstate"\n  }\n  defaults = {\n    key = "nope"\n  }\n}\n',
    'data "terraform_remote_state" "counted" {\n  count   = var.enabled ? 1 : 0\n'
    '  backend = "s3"\n  config = {\n    bucket = "b"\n    key    = "k/c.tfstate"\n  }\n}\n',
    'module "vpc" {\n  source = "../../modules/vpc"\n  tags   = { Name = "x" }\n'
    '  policy = <<EOF\nsource = "../elsewhere"\nEOF\n}\n',
    'module "reg" {\n  source  = "terraform-aws-modules/vpc/aws"\n  version = "~> 5.0"\n}\n',
    'module "one_line" { source = "./one" }\n',
    'module "vars" {\n  for_each = toset(["a", "b"])\n  source   = "../m/${each.key}"\n}\n',
    'data "aws_caller_identity" "module" {}\n',
    'resource "aws_s3_bucket" "b" {\n  bucket = module.labels.id\n}\n',
    READ.replace('    region = "eu-west-1"\n', "    region = var.region\n"),
    READ.replace(
        '    region = "eu-west-1"\n',
        "    encrypt = true\n    retries = -3\n    profile = null\n    ratio = 1.5\n",
    ),
    READ.replace(
        '    region = "eu-west-1"\n', '    assume_role = {\n      role_arn = "arn"\n    }\n'
    ),
    READ.replace('    region = "eu-west-1"\n', '    region = "${local.region}"\n'),
    READ.replace(
        '"prod/eu-west-1/network.tfstate"', '"${var.env}/${local.region}/network.tfstate"'
    ),
    READ.replace('"prod/eu-west-1/network.tfstate"', '"${var.env}/${ local.region }/n.tfstate"'),
    READ.replace('"prod/eu-west-1/network.tfstate"', 'format("%s/network.tfstate", var.env)'),
    READ.replace('"acme-tfstate"', "var.tf_state_bucket"),
    READ.replace("  backend", '  for_each = toset(["a", "b"])\n  backend').replace(
        '"prod/eu-west-1/network.tfstate"', '"prod/${each.key}.tfstate"'
    ),
    READ.replace("  backend", "  workspace = terraform.workspace\n  backend"),
    'module "lookup" {\n  source = "../../modules/lookup"\n  key    = "staging/network.tfstate"\n'
    "  name   = local.name\n  count  = 2\n  on     = true\n}\n",
    'module "args" {\n  source = "../m"\n  tags   = { Name = "x" }\n  list = [\n    "a",\n  ]\n}\n',
    'module "reg_args" {\n  source = "terraform-aws-modules/vpc/aws"\n  tags   = merge(local.t)\n'
    '  azs = [\n    "a",\n  ]\n}\n',
    'module "in_for_each" {\n  for_each = var.stacks\n  source   = "./lookup"\n'
    "  key      = each.value\n}\n",
    'resource "aws_ssm_parameter" "vpc" {\n  name  = "/${var.env}/network/vpc_id"\n'
    '  type  = "String"\n  value = aws_vpc.this.id\n  tags = {\n    a = "b"\n  }\n'
    "  lifecycle {\n    ignore_changes = [value]\n  }\n}\n",
    'data "aws_ssm_parameter" "vpc" {\n  name = "/staging/network/vpc_id"\n}\n',
    'data "aws_ssm_parameter" "many" {\n  for_each = toset(["a"])\n  name = "/x/${each.key}"\n}\n',
    'data "aws_ssm_parameter" "odd" {\n  name = join("/", ["", var.env, "x"])\n}\n',
    'data "aws_ssm_parameters_by_path" "not_ours" {\n  path = "/x"\n}\n',
]


@pytest.mark.parametrize("text", SHAPES)
def test_fast_path_agrees_with_python_hcl2(text: str) -> None:
    facts = scan.extract("main.tf", text.encode())
    assert "error" not in facts
    got_reads = [(r["name"], r["backend"]) for r in facts.get("reads", [])]
    got_modules = [(m["name"], m["source"]) for m in facts.get("modules", [])]
    reads, modules = _oracle(text)
    assert (got_reads, got_modules) == (reads, modules)
    # Every value as written, which the line patterns read only when they read it exactly.
    parsed = parse.parse_snippet((text, 1))
    assert not isinstance(parsed, str)
    assert facts == links.finish(Pass({"signed": False}, blocks=parsed))


def _oracle(text: str) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    """What python-hcl2 on the whole file says, read the plain way."""
    options = hcl2.SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    )
    document = hcl2.loads(text, serialization_options=options)
    reads = [
        (name, body.get("backend"))
        for data in document.get("data", [])
        for name, body in data.get("terraform_remote_state", {}).items()
    ]
    modules = [
        (name, body["source"])
        for module in document.get("module", [])
        for name, body in module.items()
        if "${" not in body["source"]
    ]
    return reads, modules


# ---------------------------------------------------------------------------- modules


def test_nested_module_chains_are_followed(make_repo: Callable[..., LiveRepo]) -> None:
    def calls(*names: str) -> str:
        return "".join(f'module "{n}" {{\n  source = "../{n}"\n}}\n' for n in names)

    live = repo(
        make_repo,
        {
            f"{APP}/main.tf": 'module "svc" {\n  source = "../../../modules/service"\n}\n'
            'module "reg" {\n  source = "registry.example/x/y/aws"\n}\n',
            "../modules/service/main.tf": calls("iam", "labels"),
            "../modules/iam/main.tf": calls("labels") + READ,
            # A loop between modules is Terraform's problem; the scan must still end.
            "../modules/labels/main.tf": calls("service"),
            "../modules/unused/main.tf": "",
        },
    )
    facts = scan_repo(live)
    modules = live.top / "modules"
    assert facts[APP].modules == {modules / "service", modules / "iam", modules / "labels"}
    # The read inside a module is a read by the stack that uses it.
    (read,) = facts[APP].reads
    assert read.file == modules / "iam/main.tf"
    assert facts[NETWORK].modules == frozenset()


def test_generated_files_are_skipped_and_lookalikes_are_not(
    make_repo: Callable[..., LiveRepo],
) -> None:
    signed = "# Generated by tfrun: do not edit.\n" + READ.replace("network", "generated")
    live = repo(
        make_repo,
        {
            f"{APP}/main.tf": "locals {}\n",
            f"{APP}/remote_state.tf": signed,
            f"{NETWORK}/remote_state.tf": READ.replace('"network"', '"by_hand"', 1),
        },
    )
    facts = scan_repo(live)
    assert facts[APP].reads == ()
    assert [r.name for r in facts[NETWORK].reads] == ["by_hand"]


def test_a_lookalike_signature_is_a_persons_file(make_repo: Callable[..., LiveRepo]) -> None:
    """Only tfrun's exact signature line marks a generated file: a person's remote_state.tf
    (or backend.tf) whose first line merely starts with the same text is read like any other."""
    lookalike = "# Generated by tfrunner v2\n"
    backend = 'terraform {\n  backend "s3" {}\n}\n'
    live = repo(
        make_repo,
        {
            f"{APP}/main.tf": "locals {}\n",
            f"{APP}/remote_state.tf": lookalike + READ.replace('"network"', '"by_hand"', 1),
            f"{APP}/backend.tf": lookalike + backend,
        },
    )
    assert [r.name for r in scan_repo(live)[APP].reads] == ["by_hand"]
    app = live.path(APP)
    settings = scan.file_settings(live.live, [app], use_cache=False)[app]
    assert [f.path.name for f in settings] == ["backend.tf", "remote_state.tf"]
    assert settings[0].terraform[0].backends == (scan.BackendBlock("backend", "s3", 3),)


# ---------------------------------------------------------------------------- cache, workers


def test_cache_hits_misses_and_invalidation(
    make_repo: Callable[..., LiveRepo], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files this new are re-hashed (see the racy test below); here they count as settled.
    monkeypatch.setattr(cache, "RACY_NS", 0)
    live = repo(make_repo, {f"{APP}/main.tf": READ, f"{APP}/variables.tf": "variable x {}\n"})
    repository = Repository(live.live)
    stacks = repository.stacks()

    def run() -> tuple[scan.ScanStats, dict[str, scan.StackFacts]]:
        scanner = scan.Scanner(repository.root)
        facts = scanner.scan_dirs([s.path for s in stacks])
        return scanner.stats, {s.rel: facts[s.path] for s in stacks}

    cold, first = run()
    assert (cold.files, cold.read, cold.lexed) == (3, 3, 1)  # one file has the words
    assert (live.live / ".tfrun/cache/scan.json").is_file()

    warm, again = run()
    assert (warm.read, warm.lexed) == (0, 0)  # known by stat: not even opened
    assert again == first

    main = live.path(f"{APP}/main.tf")
    main.write_text(READ.replace("network.tfstate", "network-v2.tfstate"), encoding="utf-8")
    changed, facts = run()
    assert (changed.read, changed.lexed) == (1, 1)
    assert facts[APP].reads[0].key == "prod/eu-west-1/network-v2.tfstate"

    main.write_text(READ, encoding="utf-8")  # back to content the cache has seen
    known, facts = run()
    assert (known.read, known.lexed) == (1, 0)
    assert facts == first


def test_a_file_changed_just_before_a_scan_is_checked_again(
    make_repo: Callable[..., LiveRepo],
) -> None:
    # It could change again within the same timestamp tick, keeping size and mtime: so the
    # next scan hashes it rather than trust its stat, and finds the content it knows.
    live = repo(make_repo, {f"{APP}/main.tf": READ})
    repository = Repository(live.live)
    dirs = [s.path for s in repository.stacks()]
    scan.Scanner(repository.root).scan_dirs(dirs)
    again = scan.Scanner(repository.root)
    again.scan_dirs(dirs)
    assert (again.stats.read, again.stats.lexed) == (2, 0)  # network's main.tf: no words


def test_a_broken_cache_is_a_cold_run(make_repo: Callable[..., LiveRepo]) -> None:
    live = repo(make_repo, {f"{APP}/main.tf": READ})
    first = scan_repo(live)
    (live.live / ".tfrun/cache/scan.json").write_text("{not json", encoding="utf-8")
    assert scan_repo(live) == first
    assert scan_repo(live, use_cache=False) == first


def test_worker_processes_agree_with_one_process(
    make_repo: Callable[..., LiveRepo], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One-line configs are not the canonical shape, so every block goes to python-hcl2.
    files = {
        f"prod-eu-west-1/s{i}/main.tf": "".join(
            f'data "terraform_remote_state" "r{j}" {{\n  backend = "s3"\n'
            f'  config = {{ bucket = "b", key = "k/{i}-{j}.tfstate" }}\n}}\n'
            for j in range(3)
        )
        for i in range(8)
    }
    live = repo(make_repo, files)
    monkeypatch.setattr(parse, "PARALLEL_MIN_BLOCKS", 4)
    repository = Repository(live.live)
    stacks = repository.stacks()
    serial = scan.Scanner(repository.root, use_cache=False, jobs=1)
    parallel = scan.Scanner(repository.root, use_cache=False, jobs=2)
    dirs = [s.path for s in stacks]
    assert parallel.scan_dirs(dirs) == serial.scan_dirs(dirs)
    assert parallel.stats.parsed == 24
