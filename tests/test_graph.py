"""The dependency graph: edges from state keys and config, order, cycles, selection, formats,
and the `tfrun graph` command."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from helpers import LiveRepo, root_hcl

from tfrun import cli, graph, graph_formats, scan
from tfrun.commands import run as run_command
from tfrun.commands.graph import graph as graph_command
from tfrun.commands.run_args import RunArgs
from tfrun.discovery import Repository, Stack
from tfrun.errors import ConfigError, ExitCode, UsageError
from tfrun.workspace import Workspace

P = "prod-eu-west-1"
S = "staging-eu-west-1"


def reads(*targets: tuple[str, str]) -> str:
    """Hand-written remote-state blocks reading (bucket, key) pairs."""
    return "".join(
        f'data "terraform_remote_state" "r{i}" {{\n  backend = "s3"\n  config = {{\n'
        f'    bucket = "{bucket}"\n    key    = "{key}"\n  }}\n}}\n'
        for i, (bucket, key) in enumerate(targets)
    )


def ours(env: str, region: str, stack: str) -> tuple[str, str]:
    return ("acme-tfstate", f"{env}/{region}/{stack}.tfstate")


def build(make_repo: Callable[..., LiveRepo], files: dict[str, str]) -> graph.Graph:
    live = make_repo({"live/tfrun.hcl": root_hcl(), **{f"live/{k}": v for k, v in files.items()}})
    repository = Repository(live.live)
    stacks = repository.stacks()
    return graph.build(stacks, scan.scan(repository.root, stacks))


def rels(stacks: list[Stack]) -> list[str]:
    return [s.rel for s in stacks]


EMPTY = 'resource "null_resource" "x" {}\n'

# network <- platform <- app; data reads network too; iam stands alone in shared-services.
REPO = {
    f"{P}/network/main.tf": EMPTY,
    f"{P}/platform/main.tf": reads(ours("prod", "eu-west-1", "network")),
    f"{P}/platform/eks/main.tf": EMPTY,
    f"{P}/app/main.tf": reads(ours("prod", "eu-west-1", "platform")),
    f"{P}/data/main.tf": reads(ours("prod", "eu-west-1", "network")),
    f"{S}/network/main.tf": EMPTY,
    f"{S}/app/main.tf": reads(ours("staging", "eu-west-1", "network")),
    "shared-services/iam/main.tf": EMPTY,
}


@pytest.fixture
def whole(make_repo: Callable[..., LiveRepo]) -> graph.Graph:
    return build(make_repo, REPO)


# ---------------------------------------------------------------------------- edges


def test_a_key_in_our_bucket_is_an_edge_to_the_stack_that_owns_it(whole: graph.Graph) -> None:
    assert whole.dependencies[f"{P}/platform"] == (f"{P}/network",)
    assert whole.dependencies[f"{P}/app"] == (f"{P}/platform",)
    assert whole.dependents[f"{P}/network"] == (f"{P}/data", f"{P}/platform")
    (why,) = whole.reasons[(f"{P}/platform", f"{P}/network")]
    assert why == f"data.terraform_remote_state.r0 at {P}/platform/main.tf:1"


def test_keys_map_to_stacks_anywhere_in_the_repository(
    make_repo: Callable[..., LiveRepo],
) -> None:
    whole = build(
        make_repo,
        {
            f"{P}/app/main.tf": reads(ours("shared-services", "global", "iam")),
            "shared-services/iam/main.tf": EMPTY,
        },
    )
    assert whole.dependencies[f"{P}/app"] == ("shared-services/iam",)


def test_another_bucket_is_an_external_read_not_an_edge(
    make_repo: Callable[..., LiveRepo],
) -> None:
    whole = build(
        make_repo,
        {
            f"{P}/network/main.tf": EMPTY,
            f"{P}/app/main.tf": reads(("legacy-state", "prod/eu-west-1/network.tfstate")),
        },
    )
    assert whole.dependencies[f"{P}/app"] == ()
    (finding,) = whole.external
    assert finding.stack == f"{P}/app"
    assert '"legacy-state"' in finding.message
    assert whole.unresolved == ()


def test_a_key_no_stack_has_is_unresolved_with_file_and_line(
    make_repo: Callable[..., LiveRepo],
) -> None:
    whole = build(
        make_repo,
        {
            f"{P}/app/main.tf": EMPTY + reads(ours("prod", "eu-west-1", "netwrok")),
        },
    )
    (finding,) = whole.unresolved
    assert finding.where(whole.root) == f"{P}/app/main.tf:2"
    assert f"{P}/app/main.tf:2" in finding.message
    assert '"prod/eu-west-1/netwrok.tfstate"' in finding.message


def test_a_computed_key_is_unresolved_and_another_backend_external(
    make_repo: Callable[..., LiveRepo],
) -> None:
    computed = reads(("acme-tfstate", "x")).replace('"x"', '"${var.env}/network.tfstate"')
    local = 'data "terraform_remote_state" "old" {\n  backend = "local"\n  config = {}\n}\n'
    whole = build(make_repo, {f"{P}/app/main.tf": computed + local})
    assert [f.read.name for f in whole.unresolved] == ["r0"]
    assert "computed" in whole.unresolved[0].message
    assert [f.read.name for f in whole.external] == ["old"]


def test_a_key_from_variables_and_locals_is_an_edge(make_repo: Callable[..., LiveRepo]) -> None:
    computed = reads(("acme-tfstate", "x")).replace(
        '"x"', '"${var.env}/${local.region}/network.tfstate"'
    )
    whole = build(
        make_repo,
        {
            f"{S}/network/main.tf": EMPTY,
            f"{S}/app/main.tf": computed
            + 'variable "env" {}\nlocals {\n  region = "eu-west-1"\n}\n',
            f"{S}/app/terraform.tfvars": 'env = "staging"\n',
        },
    )
    assert whole.dependencies[f"{S}/app"] == (f"{S}/network",)
    assert whole.unresolved == ()


def test_a_read_inside_a_local_module_is_the_calling_stacks_edge(
    make_repo: Callable[..., LiveRepo],
) -> None:
    lookup = 'variable "key" {}\n\n' + reads(("acme-tfstate", "x")).replace('"x"', "var.key")
    call = 'module "network" {\n  source = "../../../modules/lookup"\n  key    = "%s"\n}\n'
    live = make_repo(
        {
            "live/tfrun.hcl": root_hcl(),
            f"live/{S}/network/main.tf": EMPTY,
            f"live/{S}/platform/main.tf": call % "staging/eu-west-1/network.tfstate",
            f"live/{P}/network/main.tf": EMPTY,
            f"live/{P}/platform/main.tf": call % "prod/eu-west-1/network.tfstate",
            "modules/lookup/main.tf": lookup,
        }
    )
    stacks = Repository(live.live).stacks()
    whole = graph.build(stacks, scan.scan(live.live, stacks))
    # One module, two callers: each call site's argument decides its own edge.
    assert whole.dependencies[f"{S}/platform"] == (f"{S}/network",)
    assert whole.dependencies[f"{P}/platform"] == (f"{P}/network",)
    assert whole.reasons[(f"{P}/platform", f"{P}/network")] == [
        f"module.network at {P}/platform/main.tf:1 → "
        "data.terraform_remote_state.r0 at ../modules/lookup/main.tf:3"
    ]


STRICT_REPO = {
    f"{S}/network/main.tf": EMPTY,
    f"{S}/app/main.tf": reads(("acme-tfstate", "x")).replace(
        '"x"', "data.aws_ssm_parameter.k.value"
    ),
    f"{S}/iam/main.tf": EMPTY,
}


def _select(live: LiveRepo, path: str) -> run_command.Selection:
    args = RunArgs(command="plan", path=live.path(path), run_all=True)
    return run_command.select_stacks(Workspace.load(live.path(path)), args)


def test_strict_refuses_a_run_over_an_unresolved_read_and_names_it(
    make_repo: Callable[..., LiveRepo],
) -> None:
    files = {f"live/{k}": v for k, v in STRICT_REPO.items()}
    live = make_repo({"live/tfrun.hcl": root_hcl(), **files})
    # Not strict: a warning per unresolved read, and the run goes on.
    (warning,) = _select(live, S).warnings
    assert warning.startswith(f"{S}/app: data.terraform_remote_state.r0 at {S}/app/main.tf:1: ")

    (live.live / "tfrun.hcl").write_text(root_hcl(extra="graph {\n  strict = true\n}"))
    with pytest.raises(UsageError) as refused:
        _select(live, S)
    message = str(refused.value)
    assert refused.value.exit_code == ExitCode.BAD_CONFIG
    assert "graph.strict is set in" in message and "Nothing ran." in message
    assert (
        f"{S}/app: data.terraform_remote_state.r0 at {S}/app/main.tf:1: its key is computed"
        in message
    )
    assert f"add to {S}/app/stack.hcl: dependencies = " in message
    # A selection without the read runs; and once declared, the read no longer stops one.
    assert [s.rel for s in _select(live, f"{S}/iam").stacks] == [f"{S}/iam"]
    live.path(f"{S}/app/stack.hcl").write_text('dependencies = ["../network"]\n')
    selection = _select(live, S)
    assert selection.warnings == () and selection.waits[f"{S}/app"] == (f"{S}/network",)


def test_strict_refusal_through_the_cli_is_exit_4(
    make_repo: Callable[..., LiveRepo], capsys: pytest.CaptureFixture[str]
) -> None:
    files = {f"live/{k}": v for k, v in STRICT_REPO.items()}
    live = make_repo({"live/tfrun.hcl": root_hcl(extra="graph {\n  strict = true\n}"), **files})
    assert cli.main(["run-all", "plan", str(live.live)]) == 4
    assert "graph.strict is set" in capsys.readouterr().err


def test_the_graph_settings_belong_in_the_root_file(make_repo: Callable[..., LiveRepo]) -> None:
    live = make_repo(
        {
            "live/tfrun.hcl": root_hcl(),
            f"live/{S}/tfrun.hcl": "graph {\n  strict = true\n}\n",
            f"live/{S}/network/main.tf": EMPTY,
        }
    )
    with pytest.raises(ConfigError, match=r"'graph' belongs in the root tfrun\.hcl"):
        Repository(live.live).stacks()
    (live.live / f"{S}/tfrun.hcl").unlink()
    (live.live / "tfrun.hcl").write_text(root_hcl(extra='graph {\n  strict = "maybe"\n}'))
    with pytest.raises(ConfigError, match=r"tfrun.hcl: 'graph.strict'"):
        Repository(live.live).stacks()


def test_config_dependencies_and_remote_state_are_edges(
    make_repo: Callable[..., LiveRepo],
) -> None:
    whole = build(
        make_repo,
        {
            f"{P}/network/main.tf": EMPTY,
            f"{P}/dns/main.tf": EMPTY,
            f"{P}/platform/eks/stack.hcl": 'dependencies = ["../../network"]\n'
            'remote_state = { dns = "../../dns" }\n',
        },
    )
    assert whole.dependencies[f"{P}/platform/eks"] == (f"{P}/dns", f"{P}/network")
    assert whole.reasons[(f"{P}/platform/eks", f"{P}/dns")] == [
        f"remote_state.dns in {P}/platform/eks/stack.hcl"
    ]


@pytest.mark.parametrize(
    ("setting", "shown"),
    [
        ('dependencies = ["../nowhere"]', "dependencies lists '../nowhere'"),
        ('remote_state = { net = "../modules" }', "remote_state.net = '../modules'"),
    ],
)
def test_a_config_path_that_is_not_a_stack_is_an_error(
    make_repo: Callable[..., LiveRepo], setting: str, shown: str
) -> None:
    files = {f"{P}/modules/README.md": "", f"{P}/app/stack.hcl": setting + "\n"}
    live = make_repo({"live/tfrun.hcl": root_hcl(), **{f"live/{k}": v for k, v in files.items()}})
    stacks = Repository(live.live).stacks()
    with pytest.raises(ConfigError) as caught:
        graph.build(stacks, scan.scan(live.live, stacks))
    message = str(caught.value)
    assert message.startswith(str(live.path(f"{P}/app/stack.hcl").resolve()) + ":")
    assert shown in message and "not a stack" in message
    assert caught.value.exit_code == ExitCode.BAD_CONFIG


# ---------------------------------------------------------------------------- order


def test_order_puts_dependencies_first_and_ties_by_path(whole: graph.Graph) -> None:
    assert rels(graph.order(whole)) == [
        f"{P}/network",
        f"{P}/data",
        f"{P}/platform",
        f"{P}/app",
        f"{P}/platform/eks",
        "shared-services/iam",
        f"{S}/network",
        f"{S}/app",
    ]


def test_order_of_a_selection_keeps_order_through_stacks_left_out(
    make_repo: Callable[..., LiveRepo],
) -> None:
    # c -> b -> a by keys; a run over a and c (not b) must still do a first.
    whole = build(
        make_repo,
        {
            f"{P}/c/main.tf": reads(ours("prod", "eu-west-1", "b")),
            f"{P}/b/main.tf": reads(ours("prod", "eu-west-1", "a")),
            f"{P}/a/main.tf": EMPTY,
        },
    )
    assert rels(graph.order(whole, [f"{P}/c", f"{P}/a"])) == [f"{P}/a", f"{P}/c"]
    assert graph.waits_for(whole, [f"{P}/c", f"{P}/a"]) == {f"{P}/a": (), f"{P}/c": (f"{P}/a",)}


def test_a_cycle_is_an_error_that_prints_it(make_repo: Callable[..., LiveRepo]) -> None:
    files = {
        f"{P}/a/main.tf": reads(ours("prod", "eu-west-1", "b")),
        f"{P}/b/main.tf": reads(ours("prod", "eu-west-1", "c")),
        f"{P}/c/stack.hcl": 'dependencies = ["../a"]\n',
        f"{P}/d/main.tf": reads(ours("prod", "eu-west-1", "a")),  # behind the cycle, not on it
        f"{S}/x/main.tf": EMPTY,
    }
    whole = build(make_repo, files)
    with pytest.raises(ConfigError) as caught:
        graph.order(whole)
    message = str(caught.value)
    assert f"{P}/a → {P}/b → {P}/c → {P}/a" in message
    assert f"dependencies in {P}/c/stack.hcl" in message
    assert caught.value.exit_code == ExitCode.BAD_CONFIG
    # Behind the cycle: the same error, naming the cycle.
    with pytest.raises(ConfigError, match=f"{P}/a → {P}/b → {P}/c → {P}/a"):
        graph.order(whole, [f"{P}/d"])
    # Work on an unrelated part of the repository is not held up by the cycle.
    assert rels(graph.order(whole, [f"{S}/x"])) == [f"{S}/x"]


# ---------------------------------------------------------------------------- cycles, on plain
# mappings of node → the nodes it depends on


def test_topological_puts_what_a_node_depends_on_first_and_ties_by_name() -> None:
    edges = {"c": ["a"], "b": ["a"], "a": [], "d": ["c", "b"], "x": ["outside"]}
    assert graph.topological(edges, ["a", "b", "c", "d"]) == ["a", "b", "c", "d"]
    # Edges to nodes outside the scope order nothing.
    assert graph.topological(edges, ["x", "d", "c"]) == ["c", "d", "x"]


def test_topological_names_a_shortest_cycle_from_its_smallest_node() -> None:
    # z waits on the cycle b → c → d → b (with a longer way round through e) but is not in it.
    edges = {"z": ["b"], "b": ["c"], "c": ["d", "e"], "d": ["b"], "e": ["d"]}
    with pytest.raises(graph.CycleError) as caught:
        graph.topological(edges)
    assert caught.value.cycle == ["b", "c", "d", "b"]
    assert graph.topological(edges, ["z", "e"]) == ["e", "z"]


def test_cyclic_components_are_knots_and_self_loops_only() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["f"], "f": ["e"], "g": ["g"]}
    assert graph.cyclic_components(edges) == [["a", "b", "c"], ["e", "f"], ["g"]]
    assert graph.cyclic_components(edges, ["a", "b", "d", "e"]) == []
    assert graph.shortest_cycle(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert graph.shortest_cycle(edges, ["g"]) == ["g", "g"]


def test_a_long_chain_does_not_reach_the_recursion_limit() -> None:
    names = [f"s{i:05}" for i in range(5000)]
    edges = {name: names[i + 1 : i + 2] for i, name in enumerate(names)}
    assert graph.topological(edges) == names[::-1]
    assert graph.cyclic_components(edges) == []
    edges[names[-1]] = [names[0]]
    assert graph.cyclic_components(edges) == [names]


# ---------------------------------------------------------------------------- config files


def test_config_file_is_the_stacks_own_file_else_the_nearest_tfrun_hcl(
    make_repo: Callable[..., LiveRepo],
) -> None:
    files = {
        f"{P}/tfrun.hcl": 'tags = { Team = "web" }\n',
        f"{P}/app/main.tf": EMPTY,
        f"{P}/app/stack.hcl": 'owner = "web"\n',
        f"{P}/network/main.tf": EMPTY,
        f"{S}/network/main.tf": EMPTY,
    }
    live = make_repo({"live/tfrun.hcl": root_hcl(), **{f"live/{k}": v for k, v in files.items()}})
    stacks = {s.rel: s for s in Repository(live.live).stacks()}
    root = live.live.resolve()
    assert graph.config_file(stacks[f"{P}/app"]) == root / P / "app" / "stack.hcl"
    assert graph.config_file(stacks[f"{P}/network"]) == root / P / "tfrun.hcl"
    assert graph.config_file(stacks[f"{S}/network"]) == root / "tfrun.hcl"


# ---------------------------------------------------------------------------- selection


def test_select_by_path(whole: graph.Graph) -> None:
    root = whole.root
    assert len(graph.select(whole)) == len(whole.stacks)
    assert len(graph.select(whole, [root])) == len(whole.stacks)
    assert rels(graph.select(whole, [root / P / "platform"])) == [
        f"{P}/platform",
        f"{P}/platform/eks",
    ]
    assert rels(graph.select(whole, [root / S, root / "shared-services"])) == [
        "shared-services/iam",
        f"{S}/app",
        f"{S}/network",
    ]
    assert graph.select(whole, [root.parent]) == []


def test_select_by_env_region_and_globs(whole: graph.Graph) -> None:
    assert rels(graph.select(whole, env=["staging"])) == [f"{S}/app", f"{S}/network"]
    assert rels(graph.select(whole, region=["global"])) == ["shared-services/iam"]
    platform = graph.select(whole, region=["eu-west-1"], include=["platform*"])
    assert rels(platform) == [f"{P}/platform", f"{P}/platform/eks"]
    assert rels(graph.select(whole, env=["prod"], exclude=["data", "platform"])) == [
        f"{P}/app",
        f"{P}/network",
    ]
    assert rels(graph.select(whole, include=[f"{S}/*"])) == [f"{S}/app", f"{S}/network"]


def test_select_with_dependencies(whole: graph.Graph) -> None:
    app = graph.select(whole, env=["prod"], include=["app"], with_dependencies=True)
    assert rels(app) == [f"{P}/app", f"{P}/network", f"{P}/platform"]
    # What a run over them waits for: each its direct dependency.
    assert graph.waits_for(whole, app) == {
        f"{P}/app": (f"{P}/platform",),
        f"{P}/network": (),
        f"{P}/platform": (f"{P}/network",),
    }


# ---------------------------------------------------------------------------- formats


def test_json_is_the_documented_shape_in_order(whole: graph.Graph) -> None:
    document = json.loads(graph_formats.to_json(whole))
    first = next(s for s in document["stacks"] if s["path"] == f"{P}/platform")
    assert first == {
        "path": f"{P}/platform",
        "env": "prod",
        "region": "eu-west-1",
        "stack": "platform",
        "key": "prod/eu-west-1/platform.tfstate",
        "dependencies": [f"{P}/network"],
    }
    seen: set[str] = set()
    for stack in document["stacks"]:
        assert set(stack["dependencies"]) <= seen
        seen.add(stack["path"])
    assert document["external_reads"] == [] and document["unresolved"] == []


def test_dot_and_mermaid_have_every_stack_and_edge(whole: graph.Graph) -> None:
    edges = {(a, b) for a, deps in whole.dependencies.items() for b in deps}
    dot = graph_formats.to_dot(whole)
    assert dot.startswith("digraph tfrun {") and dot.rstrip().endswith("}")
    assert set(re.findall(r'^  "([^"]+)" -> "([^"]+)";$', dot, re.M)) == edges
    assert set(re.findall(r'^  "([^"]+)";$', dot, re.M)) == set(whole.stacks)

    mermaid = graph_formats.to_mermaid(whole)
    assert mermaid.startswith("flowchart LR\n")
    names = dict(re.findall(r'^  (s\d+)\["([^"]+)"\]$', mermaid, re.M))
    assert set(names.values()) == set(whole.stacks)
    arrows = re.findall(r"^  (s\d+) --> (s\d+)$", mermaid, re.M)
    assert {(names[a], names[b]) for a, b in arrows} == edges


def test_text_lists_each_stack_with_why_it_waits(whole: graph.Graph) -> None:
    text = graph_formats.to_text(whole)
    lines = text.splitlines()
    assert lines[0] == f"{P}/network"
    assert (
        f"  after {P}/network  (data.terraform_remote_state.r0 at {P}/platform/main.tf:1)" in lines
    )


# ---------------------------------------------------------------------------- the command


def test_graph_command_prints_json_and_warns_on_unresolved_reads(
    make_repo: Callable[..., LiveRepo], capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        **REPO,
        f"{P}/data/main.tf": reads(ours("prod", "eu-west-1", "gone")),
    }
    live = make_repo({"live/tfrun.hcl": root_hcl(), **{f"live/{k}": v for k, v in files.items()}})
    assert graph_command(live.path(P), "json") == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert [s["path"] for s in document["stacks"]] == [
        f"{P}/data",
        f"{P}/network",
        f"{P}/platform",
        f"{P}/app",
        f"{P}/platform/eks",
    ]
    assert document["unresolved"][0]["file"] == f"{P}/data/main.tf"
    assert document["unresolved"][0]["line"] == 1
    assert "warning:" in captured.err and f"{P}/data/main.tf:1" in captured.err

    assert graph_command(live.path(f"{S}/app"), "dot") == 0
    dot = capsys.readouterr().out
    assert f'"{S}/app" -> "{S}/network";' in dot


def test_edits_are_seen_through_the_caches(make_repo: Callable[..., LiveRepo]) -> None:
    files = {
        f"{P}/network/main.tf": EMPTY,
        f"{P}/dns/main.tf": EMPTY,
        f"{P}/app/main.tf": reads(ours("prod", "eu-west-1", "network")),
        f"{P}/app/stack.hcl": 'dependencies = ["../network"]\n',
    }
    live = make_repo({"live/tfrun.hcl": root_hcl(), **{f"live/{k}": v for k, v in files.items()}})

    def dependencies() -> tuple[str, ...]:
        stacks = Repository(live.live).stacks()
        return graph.build(stacks, scan.scan(live.live, stacks)).dependencies[f"{P}/app"]

    assert dependencies() == (f"{P}/network",)
    live.path(f"{P}/app/stack.hcl").write_text('dependencies = ["../dns"]\n', encoding="utf-8")
    live.path(f"{P}/app/main.tf").write_text(EMPTY, encoding="utf-8")
    assert dependencies() == (f"{P}/dns",)
