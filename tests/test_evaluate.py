"""The evaluator (tfrun/scan/expr.py, evaluate.py, functions.py) and what it gives the graph:
a fixture repository of the patterns public Terraform repositories use for their remote-state
reads, each with a negative case, and the exact edges and unresolved reads it yields."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from helpers import LiveRepo, root_hcl

from tfrun import graph, graph_formats, scan
from tfrun.discovery import Repository
from tfrun.scan import evaluate as ev
from tfrun.scan import expr

# ---------------------------------------------------------------------------- expressions


class Values:
    """A scope with fixed variables and locals."""

    def __init__(self, variables: dict[str, Any], locals_: dict[str, Any] | None = None) -> None:
        self.variables = variables
        self.locals = locals_ or {}

    def variable(self, name: str) -> Any:
        if name not in self.variables:
            raise ev.Unresolved(f"var.{name} has no value")
        return self.variables[name]

    def local(self, name: str) -> Any:
        if name not in self.locals:
            raise ev.Unresolved(f"local.{name} is not defined")
        return ev.evaluate(self.locals[name], self)


SCOPE = Values(
    {
        "env": "staging",
        "keys": {"staging": "staging/network.tfstate", "prod": "prod/network.tfstate"},
        "stacks": ["network", "platform"],
        "n": 2,
        "on": True,
    },
    {"region": "us-east-1", "prefix": "${var.env}/${local.region}", "ws": "${terraform.workspace}"},
)

# (value as python-hcl2 gives it, its value)
VALUES: list[tuple[Any, Any]] = [
    ("plain/network.tfstate", "plain/network.tfstate"),
    ("${var.env}/${local.region}/network.tfstate", "staging/us-east-1/network.tfstate"),
    ("${local.prefix}/network.tfstate", "staging/us-east-1/network.tfstate"),
    ('${format("%s/network.tfstate", var.env)}', "staging/network.tfstate"),
    ('${format("%s/%d/%v/100%%", var.env, var.n, var.on)}', "staging/2/true/100%"),
    (
        '${join("/", [var.env, local.region, "network.tfstate"])}',
        "staging/us-east-1/network.tfstate",
    ),
    ('${join("-", var.stacks, ["x"])}', "network-platform-x"),
    ('${lower("STAGING")}/${upper(var.env)}', "staging/STAGING"),
    ('${replace(var.env, "stag", "prod")}', "proding"),
    ("${lookup(var.keys, var.env)}", "staging/network.tfstate"),
    ('${lookup(var.keys, "qa", "qa/network.tfstate")}', "qa/network.tfstate"),
    ('${var.keys["prod"]}', "prod/network.tfstate"),
    ("${var.keys.prod}", "prod/network.tfstate"),
    ("${var.stacks[1]}", "platform"),
    ("${var.stacks.0}", "network"),
    ('${{ staging = "a", prod = "b" }[var.env]}', "a"),
    ('${["a", "b"][1]}', "b"),
    ('${var.env == "prod" ? "p.tfstate" : "s.tfstate"}', "s.tfstate"),
    ('${var.env != "prod" && var.n >= 2 || !var.on}', True),
    ("${var.n > 3 ? 1 : -1}", -1),
    ("env:/${terraform.workspace}/network.tfstate", "env:/default/network.tfstate"),
    ("${local.ws}", "default"),
    ('${element(var.stacks, 3)}-${coalesce("", var.env)}', "platform-staging"),
    ('${trimsuffix(trimprefix("/a/b.tfstate", "/"), ".tfstate")}', "a/b"),
    ('${toset(["b", "a", "b"])}', ev.HclSet(("a", "b"))),
    ('${concat(tolist(["a"]), ["b"])}', ["a", "b"]),
    ('${tomap({ a = 1 })["a"]}', 1),
    ("${tostring(3)}", "3"),
    ("a/$${literal}/%%{also}", "a/${literal}/%{also}"),
    ('${"in \\"quotes\\" \\u0041"}', 'in "quotes" A'),
    ('${"nested ${var.env}"}', "nested staging"),
    ("${var.stacks}", ["network", "platform"]),  # one interpolation alone: the value itself
    (["${var.env}", {"k": "${local.region}"}], ["staging", {"k": "us-east-1"}]),
    ({"${var.env}": 1}, {"staging": 1}),
    (3, 3),
    (None, None),
]


@pytest.mark.parametrize(("value", "expected"), VALUES)
def test_evaluates_the_supported_subset(value: Any, expected: Any) -> None:
    assert ev.evaluate(value, SCOPE) == expected


# (value, what the reason says)
UNRESOLVED: list[tuple[str, str]] = [
    ("${var.missing}/network.tfstate", "var.missing has no value"),
    ("${local.nothing}", "local.nothing is not defined"),
    ("${timestamp()}/network.tfstate", "tfrun does not evaluate the function timestamp()"),
    (
        "${data.aws_ssm_parameter.env.value}",
        "data.aws_ssm_parameter.env.value is read by terraform",
    ),
    ("${module.network.key}", "module.network.key is a module's output"),
    ("${aws_s3_bucket.state.id}", "aws_s3_bucket.state.id is a resource's attribute"),
    ("${path.module}/x", "path.module is a path of terraform's run"),
    ("${each.key}", "each.key is not set here"),
    ("${count.index}", "count.index is not set here"),
    ("${[for s in var.stacks : upper(s)]}", "tfrun does not evaluate a for expression"),
    ("${var.stacks[*]}", "tfrun does not evaluate a splat"),
    ("${var.n + 1}", "tfrun does not evaluate arithmetic"),
    ("%{ if var.on }a%{ endif }", "tfrun does not evaluate a template directive"),
    ('${lookup(var.keys, "qa")}', 'the map has no key "qa" and no default'),
    ('${var.keys["qa"]}', 'the map has no key "qa"'),
    ("${var.stacks[5]}", "index 5 is out of range"),
    ('${replace(var.env, "/s.*/", "x")}', "replace() with a regular expression"),
    ('${format("%05d", var.n)}', "the format verb %05d"),
    ('${format("%s-%s", var.env)}', "more verbs than values"),
    ("${lower(var.stacks)}", "not a string"),
    ("${var.keys}/x", "a map cannot be written into a string"),
    ("${var.n ? 1 : 0}", "a condition is a number, not a bool"),
    ("${provider::aws::arn_parse(var.env)}", "a provider-defined function"),
]


@pytest.mark.parametrize(("value", "reason"), UNRESOLVED)
def test_anything_else_is_unresolved_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ev.Unresolved) as raised:
        ev.evaluate(value, SCOPE)
    assert reason in raised.value.reason


def test_for_each_and_count_give_one_instance_each() -> None:
    def labels(for_each: Any = None, count: Any = None) -> list[tuple[str, Any]]:
        found = ev.instances(
            for_each, count, SCOPE, has_for_each=for_each is not None, has_count=count is not None
        )
        return [(label, b.each if b.each else b.count if b.count is not None else b.unknown)
                for label, b in found]  # fmt: skip

    assert labels('${toset(["network", "platform"])}') == [
        ('["network"]', ("network", "network")),
        ('["platform"]', ("platform", "platform")),
    ]
    assert labels("${{ a = 1, b = 2 }}") == [('["a"]', ("a", 1)), ('["b"]', ("b", 2))]
    assert labels(count="${var.n}") == [("[0]", 0), ("[1]", 1)]
    assert labels(count='${var.env == "prod" ? 1 : 0}') == []
    ((label, why),) = labels("${var.stacks}")
    assert label == "" and "Terraform takes a map or a set" in why
    ((label, why),) = labels("${data.x.y.ids}")
    assert "its for_each (data.x.y.ids) is not known" in why


def test_patterns_keep_what_is_known() -> None:
    value = "${var.env}/${data.x.y.region}/network.tfstate"
    parts = ev.pattern(value, SCOPE)
    assert parts == ("staging/", None, "/network.tfstate")
    assert ev.matches(parts, "staging/eu-west-1/network.tfstate")
    assert not ev.matches(parts, "prod/eu-west-1/network.tfstate")
    assert ev.pattern("${data.x.y.key}", SCOPE) == (None,)
    assert ev.matches(None, "anything")


def test_the_parser_never_raises_and_names_what_it_does_not_read() -> None:
    for text in ["${", "${var.x", '${"unterminated}', "${var.x[}", "${~ var.x}", "${a ? b}"]:
        assert isinstance(expr.parse_value(text), expr.Opaque), text
    assert expr.show("${var.key}") == "var.key"
    assert expr.show("${var.env}/network.tfstate") == '"${var.env}/network.tfstate"'


# ---------------------------------------------------------------------------- the repository
# Each pattern, written as public repositories write it, and a negative case for each.

S = "staging-us-east-1"
P = "prod-eu-west-1"
EMPTY = 'resource "terraform_data" "x" {}\n'


def read(
    name: str,
    key: str,
    *,
    bucket: str = '"acme-tfstate"',
    before: str = "",
    after: str = "",
) -> str:
    return (
        f'data "terraform_remote_state" "{name}" {{\n{before}  backend = "s3"\n  config = {{\n'
        f'    bucket = {bucket}\n    key    = {key}\n    region = "us-east-1"\n{after}  }}\n}}\n'
    )


def module(name: str, source: str, **args: str) -> str:
    lines = "".join(f"  {k} = {v}\n" for k, v in args.items())
    return f'module "{name}" {{\n  source = "{source}"\n{lines}}}\n'


LOOKUP = "../../../modules/lookup"
REPOSITORY: dict[str, str] = {
    "live/tfrun.hcl": root_hcl(),
    # Producers.
    f"live/{S}/network/main.tf": EMPTY
    + 'resource "aws_ssm_parameter" "vpc_id" {\n  name  = "/${var.env}/network/vpc_id"\n'
    '  type  = "String"\n  value = "vpc-1"\n}\n\nvariable "env" {\n  type = string\n}\n',
    f"live/{S}/network/terraform.tfvars": 'env = "staging"\n',
    f"live/{S}/platform/main.tf": EMPTY,
    f"live/{S}/legacy/main.tf": EMPTY,
    f"live/{S}/legacy/stack.hcl": 'key = "env:/default/legacy.tfstate"\n',
    f"live/{P}/network/main.tf": EMPTY,
    # A variable from terraform.tfvars and a literal local.
    f"live/{S}/tfvars/main.tf": read("network", '"${var.env}/${local.region}/network.tfstate"')
    + 'variable "env" {}\n\nlocals {\n  region = "us-east-1"\n}\n',
    f"live/{S}/tfvars/terraform.tfvars": 'env = "staging"\n',
    # ... a *.auto.tfvars over terraform.tfvars, and format().
    f"live/{S}/formatted/main.tf": read(
        "network", 'format("%s/us-east-1/network.tfstate", var.env)'
    )
    + 'variable "env" {\n  default = "prod"\n}\n',
    f"live/{S}/formatted/terraform.tfvars": 'env = "qa"\n',
    f"live/{S}/formatted/env.auto.tfvars": 'env = "staging"\n',
    # ... a JSON variable file, and a conditional on it.
    f"live/{S}/conditional/main.tf": read(
        "network", 'var.env == "prod" ? "prod/eu-west-1/network.tfstate" : local.staging'
    )
    + 'variable "env" {}\n\nlocals {\n  staging = "${var.env}/us-east-1/network.tfstate"\n}\n',
    f"live/{S}/conditional/terraform.tfvars.json": '{"env": "staging"}\n',
    # lookup() over a literal map, with the variable's default.
    f"live/{S}/lookedup/main.tf": read("platform", "lookup(var.keys, var.env)")
    + 'variable "env" {\n  default = "staging"\n}\n\nvariable "keys" {\n  type = map(string)\n'
    '  default = {\n    staging = "staging/us-east-1/platform.tfstate"\n'
    '    prod    = "prod/eu-west-1/platform.tfstate"\n  }\n}\n',
    # The bucket from a variable.
    f"live/{S}/bucketvar/main.tf": read(
        "network", '"staging/us-east-1/network.tfstate"', bucket="var.tf_state_bucket"
    )
    + 'variable "tf_state_bucket" {\n  default = "acme-tfstate"\n}\n',
    # for_each over a literal set, and count over a literal number.
    f"live/{S}/fanout/main.tf": read(
        "upstream",
        '"staging/us-east-1/${each.key}.tfstate"',
        before='  for_each = toset(["network", "platform"])\n',
    ),
    f"live/{S}/counted/main.tf": read(
        "upstream",
        '"staging/us-east-1/${element(local.stacks, count.index)}.tfstate"',
        before="  count = length(local.stacks) > 0 ? 2 : 0\n",
    )
    + 'locals {\n  stacks = ["network", "platform"]\n}\n',
    # Workspaces: a key under the workspace prefix, and a workspace read from a local.
    f"live/{S}/workspaces/main.tf": read("legacy", '"env:/${terraform.workspace}/legacy.tfstate"')
    + read(
        "network",
        '"staging/us-east-1/network.tfstate"',
        before="  workspace = local.workspace_name\n",
    )
    + "locals {\n  workspace_name = terraform.workspace\n}\n",
    # A local module that wraps the read, called with a literal key; and through two modules.
    f"live/{S}/wrapped/main.tf": module(
        "network", LOOKUP, key='"staging/us-east-1/network.tfstate"'
    ),
    f"live/{S}/deep/main.tf": module(
        "platform", "../../../modules/wrapper", env='"staging"', stack='"platform"'
    ),
    "modules/lookup/main.tf": 'variable "key" {}\n\n'
    'variable "bucket" {\n  default = "acme-tfstate"\n}\n\n'
    + read("this", "var.key", bucket="var.bucket"),
    "modules/wrapper/main.tf": 'variable "env" {}\nvariable "stack" {}\n\n'
    + module("lookup", "../lookup", key='"${var.env}/us-east-1/${var.stack}.tfstate"'),
    # SSM Parameter Store as the contract.
    f"live/{S}/ssm/main.tf": 'data "aws_ssm_parameter" "vpc_id" {\n'
    '  name = "/staging/network/vpc_id"\n}\n',
    # Negative cases: a variable with no value, an unknown function, a key from a data source;
    # a module called without the input; an SSM name from a data source.
    f"live/{S}/novalue/main.tf": read("network", '"${var.env}/us-east-1/network.tfstate"')
    + 'variable "env" {\n  type = string\n}\n',
    f"live/{S}/unknownfn/main.tf": read(
        "network", 'trimspace(" staging/us-east-1/network.tfstate")'
    ),
    f"live/{S}/fromdata/main.tf": read("network", "data.aws_ssm_parameter.key.value")
    + 'data "aws_ssm_parameter" "key" {\n  name = "/keys/network"\n}\n',
    f"live/{S}/modnovalue/main.tf": module("network", LOOKUP),
    f"live/{S}/ssmdata/main.tf": 'data "aws_ssm_parameter" "vpc_id" {\n'
    '  name = "/staging/network/${data.aws_caller_identity.me.account_id}"\n}\n',
}

EDGES = {
    "tfvars": ["network"],
    "formatted": ["network"],
    "conditional": ["network"],
    "lookedup": ["platform"],
    "bucketvar": ["network"],
    "fanout": ["network", "platform"],
    "counted": ["network", "platform"],
    "workspaces": ["legacy", "network"],
    "wrapped": ["network"],
    "deep": ["platform"],
    "ssm": ["network"],
}

# (stack, read, what its message says)
UNRESOLVED_READS = [
    ("fromdata", "data.terraform_remote_state.network", "data.aws_ssm_parameter.key.value is read"),
    ("modnovalue", "data.terraform_remote_state.this", "module.network does not set it"),
    (
        "novalue",
        "data.terraform_remote_state.network",
        "var.env has no value: it has no default, and no terraform.tfvars or *.auto.tfvars",
    ),
    ("ssmdata", "data.aws_ssm_parameter.vpc_id", "data.aws_caller_identity.me.account_id is read"),
    ("unknownfn", "data.terraform_remote_state.network", "the function trimspace()"),
]


def build(make_repo: Callable[..., LiveRepo], files: dict[str, str]) -> graph.Graph:
    live = make_repo(files)
    repository = Repository(live.live)
    stacks = repository.stacks()
    return graph.build(stacks, scan.scan(repository.root, stacks))


def test_the_real_world_patterns_give_exactly_these_edges(
    make_repo: Callable[..., LiveRepo],
) -> None:
    whole = build(make_repo, REPOSITORY)
    edges = {
        rel.removeprefix(f"{S}/"): [d.removeprefix(f"{S}/") for d in deps]
        for rel, deps in whole.dependencies.items()
        if deps
    }
    assert edges == EDGES
    found = sorted(
        (f.stack.removeprefix(f"{S}/"), f.read.label, f.message) for f in whole.unresolved
    )
    assert [(s, r) for s, r, _ in found] == [(s, r) for s, r, _ in UNRESOLVED_READS]
    for (_, _, message), (_, _, reason) in zip(found, UNRESOLVED_READS, strict=True):
        assert reason in message
    assert all(f.computed for f in whole.unresolved)
    assert whole.external == () and whole.declared == ()


def test_each_reason_names_where_the_edge_comes_from(make_repo: Callable[..., LiveRepo]) -> None:
    whole = build(make_repo, REPOSITORY)

    def why(reader: str, owner: str) -> list[str]:
        return whole.reasons[(f"{S}/{reader}", f"{S}/{owner}")]

    assert why("fanout", "platform") == [
        f'data.terraform_remote_state.upstream["platform"] at {S}/fanout/main.tf:1'
    ]
    assert why("counted", "network") == [
        f"data.terraform_remote_state.upstream[0] at {S}/counted/main.tf:1"
    ]
    assert why("wrapped", "network") == [
        f"module.network at {S}/wrapped/main.tf:1 → "
        "data.terraform_remote_state.this at ../modules/lookup/main.tf:7"
    ]
    assert why("deep", "platform") == [
        f"module.platform at {S}/deep/main.tf:1 → module.lookup at ../modules/wrapper/main.tf:4"
        " → data.terraform_remote_state.this at ../modules/lookup/main.tf:7"
    ]
    assert why("ssm", "network") == [
        f"data.aws_ssm_parameter.vpc_id at {S}/ssm/main.tf:1 (the SSM parameter "
        f'"/staging/network/vpc_id" that aws_ssm_parameter.vpc_id at {S}/network/main.tf:2 '
        "writes)"
    ]


def test_an_unresolved_read_in_a_module_names_both_places(
    make_repo: Callable[..., LiveRepo],
) -> None:
    whole = build(make_repo, REPOSITORY)
    (finding,) = [f for f in whole.unresolved if f.stack == f"{S}/modnovalue"]
    assert finding.message.startswith(
        f"module.network at {S}/modnovalue/main.tf:1 → data.terraform_remote_state.this at "
        "../modules/lookup/main.tf:7: its key is computed (var.key), so tfrun cannot tell whose "
        "it is: var.key has no value: module.network does not set it, and it has no default."
    )


def test_unresolved_reads_suggest_the_stacks_their_known_text_matches(
    make_repo: Callable[..., LiveRepo],
) -> None:
    whole = build(make_repo, REPOSITORY)
    by_stack = {f.stack.removeprefix(f"{S}/"): f for f in whole.unresolved}
    # "${var.env}/us-east-1/network.tfstate": only staging's network has such a key.
    assert by_stack["novalue"].candidates == (f"{S}/network",)
    assert (
        f'add to {S}/novalue/stack.hcl: dependencies = ["../network"] (the one stack'
        in by_stack["novalue"].message
    )
    # Nothing known of the key: no stack is suggested.
    assert by_stack["fromdata"].candidates == ()
    assert 'dependencies = ["<the path of the stack it reads' in by_stack["fromdata"].message
    # A name only network writes.
    assert by_stack["ssmdata"].candidates == (f"{S}/network",)


def test_declaring_what_an_unresolved_read_reads_settles_it(
    make_repo: Callable[..., LiveRepo],
) -> None:
    files = {
        **REPOSITORY,
        # A stack whose key the read's known text does not match settles nothing...
        f"live/{S}/novalue/stack.hcl": 'dependencies = ["../legacy"]\n',
        # ... but when nothing is known of the key, any stack it declares may be the one.
        f"live/{S}/fromdata/stack.hcl": 'dependencies = ["../platform"]\n',
    }
    whole = build(make_repo, files)
    assert [f.stack for f in whole.declared] == [f"{S}/fromdata"]
    assert f"{S}/novalue" in {f.stack for f in whole.unresolved}
    # Declared, the read is still listed in the JSON, marked so.
    listed = json.loads(graph_formats.to_json(whole))["unresolved"]
    declared = {u["stack"].removeprefix(f"{S}/"): u["declared"] for u in listed}
    assert declared["fromdata"] is True and declared["novalue"] is False

    files[f"live/{S}/novalue/stack.hcl"] = 'dependencies = ["../network"]\n'
    whole = build(make_repo, files)
    assert [f.stack for f in whole.declared] == [f"{S}/fromdata", f"{S}/novalue"]
    assert whole.dependencies[f"{S}/novalue"] == (f"{S}/network",)


def test_ssm_edges_can_be_turned_off(make_repo: Callable[..., LiveRepo]) -> None:
    files = {**REPOSITORY, "live/tfrun.hcl": root_hcl(extra="graph {\n  ssm_edges = false\n}")}
    whole = build(make_repo, files)
    assert whole.dependencies[f"{S}/ssm"] == ()
    assert f"{S}/ssmdata" not in {f.stack for f in whole.unresolved}


def test_ssm_parameters_match_within_an_account_and_region(
    make_repo: Callable[..., LiveRepo],
) -> None:
    reader = 'data "aws_ssm_parameter" "vpc_id" {\n  name = "/staging/network/vpc_id"\n}\n'
    files = {
        **REPOSITORY,
        f"live/{P}/reader/main.tf": reader,  # prod's account: another parameter of that name
        "live/staging-eu-west-1/reader/main.tf": reader,  # staging's account, another region
    }
    whole = build(make_repo, files)
    assert whole.dependencies[f"{P}/reader"] == ()
    assert whole.dependencies["staging-eu-west-1/reader"] == ()


def test_the_facts_are_cached_and_the_values_read_only_where_needed(
    make_repo: Callable[..., LiveRepo], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan.cache, "RACY_NS", 0)  # type: ignore[attr-defined]
    live = make_repo(REPOSITORY)
    repository = Repository(live.live)
    stacks = repository.stacks()

    def run() -> tuple[scan.Scanner, dict[str, scan.StackFacts]]:
        scanner = scan.Scanner(repository.root)
        facts = scanner.scan_dirs([s.path for s in stacks])
        return scanner, {s.rel: facts[s.path] for s in stacks}

    cold, first = run()
    assert cold.values_stats is not None and cold.values_stats.read > 0
    warm, again = run()
    assert again == first
    assert (warm.stats.read, warm.stats.lexed) == (0, 0)
    assert warm.values_stats is not None and warm.values_stats.read == 0
    # A literal repository never reads a variable.
    only_literal = {
        "live/tfrun.hcl": root_hcl(),
        f"live/{S}/network/main.tf": EMPTY + 'variable "env" {}\n',
        f"live/{S}/app/main.tf": read("n", '"staging/us-east-1/network.tfstate"'),
    }
    live.top.rename(live.top.with_name("before"))
    literal = make_repo(only_literal)
    scanner = scan.Scanner(literal.live)
    scanner.scan_dirs([s.path for s in Repository(literal.live).stacks()])
    assert scanner.values_stats is None


def test_a_variable_file_that_is_not_valid_hcl_leaves_the_read_unresolved(
    make_repo: Callable[..., LiveRepo],
) -> None:
    files = {
        "live/tfrun.hcl": root_hcl(),
        f"live/{S}/network/main.tf": EMPTY,
        f"live/{S}/app/main.tf": read("n", '"${var.env}/us-east-1/network.tfstate"')
        + 'variable "env" {}\n',
        f"live/{S}/app/terraform.tfvars": "env = [\n",
    }
    whole = build(make_repo, files)
    (finding,) = whole.unresolved
    assert "terraform.tfvars:" in finding.message and "not valid HCL" in finding.message


def test_the_json_listing_keeps_unresolved_reads(make_repo: Callable[..., LiveRepo]) -> None:
    whole = build(make_repo, REPOSITORY)
    document = json.loads(graph_formats.to_json(whole))
    listed = sorted(
        (u["stack"].removeprefix(f"{S}/"), u["name"], u["key"]) for u in document["unresolved"]
    )
    assert listed == [
        ("fromdata", "network", None),
        ("modnovalue", "this", None),
        ("novalue", "network", None),
        ("ssmdata", "vpc_id", None),
        ("unknownfn", "network", None),
    ]
