"""The planned outputs a provisional plan reads (tfrun/planned.py), from `show -json` of the
upstream's saved plan: pure functions, with terraform's own JSON shapes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from tfrun import planned

UP = "dev-eu-west-1/network"


def plan(outputs: dict[str, Any], changes: dict[str, Any], resources: bool = False) -> Any:
    prior = {"values": {"root_module": {"resources": [{"address": "a.b"}]}}} if resources else {}
    return {"planned_values": {"outputs": outputs}, "output_changes": changes, "prior_state": prior}


def change(after: Any, unknown: Any = False, actions: tuple[str, ...] = ("create",)) -> Any:
    return {"actions": list(actions), "after": after, "after_unknown": unknown}


def test_known_outputs_keep_their_value_and_type_and_unknown_ones_get_placeholders() -> None:
    shown = plan(
        {
            "cidr": {"sensitive": False, "type": "string", "value": "10.0.0.0/16"},
            "azs": {"sensitive": False, "type": ["list", "string"], "value": ["a", "b"]},
            "vpc_id": {"sensitive": False},
            "subnets": {"sensitive": False},
            "tags": {"sensitive": False},
        },
        {
            "cidr": change("10.0.0.0/16"),
            "azs": change(["a", "b"]),
            "vpc_id": change(None, True),
            "subnets": change([None, "subnet-2"], [True, False]),
            "tags": change({"Name": "x"}, {"Id": True}),
        },
    )
    state = planned.planned_state(shown, UP)
    assert state.planned == ("azs", "cidr")
    assert state.placeholders == ("subnets", "tags", "vpc_id")
    outputs = state.outputs
    assert outputs["azs"] == {"value": ["a", "b"], "type": ["list", "string"]}
    stand_in = planned.placeholder(UP, "vpc_id")
    assert outputs["vpc_id"] == {"value": stand_in, "type": "string"}
    assert outputs["subnets"]["value"] == [planned.placeholder(UP, "subnets"), "subnet-2"]
    assert outputs["subnets"]["type"] == ["tuple", ["string", "string"]]
    assert outputs["tags"]["value"] == {"Id": planned.placeholder(UP, "tags"), "Name": "x"}
    assert state.describe("network") == (
        "network (planned azs, cidr; placeholder subnets, tags, vpc_id)"
    )


def test_mocks_stand_in_only_for_what_the_plan_does_not_know() -> None:
    shown = plan(
        {
            "count": {"sensitive": False},
            "name": {"sensitive": False, "type": "string", "value": "n"},
        },
        {"count": change(None, True), "name": change("n")},
    )
    state = planned.planned_state(shown, UP, {"count": 3, "name": "mocked", "extra": {"a": 1}})
    assert state.outputs["count"] == {"value": 3, "type": "number"}
    assert state.outputs["name"]["value"] == "n"  # the plan knows it: the mock is not used
    assert state.outputs["extra"] == {"value": {"a": 1}, "type": ["object", {"a": "number"}]}
    assert (state.planned, state.placeholders, state.mocked) == (("name",), (), ("count", "extra"))


def test_removed_and_null_outputs_are_left_out_and_sensitive_ones_are_placeholders() -> None:
    shown = plan(
        {"secret": {"sensitive": True, "type": "string", "value": "hunter2"}},
        {
            "gone": change(None, False, ("delete",)),
            "empty": change(None, False),
            "secret": {**change("hunter2"), "after_sensitive": True},
        },
    )
    view = planned.outputs_view(shown)
    assert "hunter2" not in json.dumps(view)  # the report never holds a sensitive value
    outputs = planned.planned_state(view, UP).outputs
    assert outputs == {"secret": {"value": planned.placeholder(UP, "secret"), "type": "string"}}


def test_the_view_of_a_plan_says_whether_the_stack_is_new() -> None:
    assert planned.outputs_view(plan({}, {}))["new"] is True
    assert planned.outputs_view(plan({}, {}, resources=True))["new"] is False


def test_the_state_file_is_terraforms_format_4_with_no_resources() -> None:
    shown = plan({"a": {"sensitive": False, "type": "number", "value": 1}}, {"a": change(1)})
    document = json.loads(planned.planned_state(shown, UP).state_json())
    assert document["version"] == 4 and document["resources"] == []
    assert document["outputs"] == {"a": {"value": 1, "type": "number"}}


def test_a_stack_with_resources_in_state_is_not_new() -> None:
    assert planned.is_new(plan({}, {}))
    assert not planned.is_new(plan({}, {}, resources=True))
    # The data sources the plan read are in its prior state; a new stack is still new.
    read = {"address": "data.terraform_remote_state.up", "mode": "data"}
    only_reads = {"prior_state": {"values": {"root_module": {"resources": [read]}}}}
    assert planned.is_new(only_reads)
    nested = {"child_modules": [{"resources": [{"address": "module.m.aws_vpc.a"}]}]}
    assert not planned.is_new({"prior_state": {"values": {"root_module": nested}}})


def test_the_override_points_each_read_at_its_state_and_is_recognised_in_a_plan_file(
    tmp_path: Path,
) -> None:
    state = tmp_path / "run" / "network.tfstate"
    written = planned.write_override(tmp_path, {"network": state})
    text = written.read_text()
    assert text.startswith("# Generated by tfrun")
    assert 'data "terraform_remote_state" "network"' in text and 'backend = "local"' in text
    assert str(state) in text
    with zipfile.ZipFile(tmp_path / "p.tfplan", "w") as archive:
        archive.writestr(f"tfconfig/m-/{planned.OVERRIDE_FILE}", text)
    with zipfile.ZipFile(tmp_path / "q.tfplan", "w") as archive:
        archive.writestr("tfconfig/m-/main.tf", "")
    assert planned.is_provisional_plan(tmp_path / "p.tfplan")
    assert not planned.is_provisional_plan(tmp_path / "q.tfplan")
    assert not planned.is_provisional_plan(tmp_path / "missing.tfplan")
    planned.remove_override(tmp_path)
    assert not written.exists()


def test_a_value_the_upstream_planned_from_a_placeholder_is_a_placeholder() -> None:
    """platform planned deploy_role_arn from iam's placeholder: its readers get no more."""
    stood_in = planned.placeholder("shared-services/iam", "arns")
    shown = plan(
        {"arn": {"sensitive": False, "type": "string", "value": stood_in}},
        {"arn": change(stood_in)},
    )
    state = planned.planned_state(shown, UP)
    assert (state.planned, state.placeholders) == ((), ("arn",))
