"""`tfrun schema`: the JSON Schema of tfrun.hcl and stack.hcl, shipped in schema/ and kept in
sync, and the examples' configs valid against it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from helpers import REPO_ROOT, run_cli

from tfrun.config import ROOT_FILE, STACK_FILE, load_file
from tfrun.schema import SCHEMA_FILES

LIVE = REPO_ROOT / "examples" / "live"


@pytest.mark.parametrize("kind", [ROOT_FILE, STACK_FILE])
def test_shipped_schema_is_what_the_command_prints(kind: str) -> None:
    printed = run_cli(["schema", kind], REPO_ROOT).assert_success().stdout
    shipped = (REPO_ROOT / "schema" / SCHEMA_FILES[kind]).read_text()
    assert printed == shipped, f"run: tfrun schema {kind} > schema/{SCHEMA_FILES[kind]}"


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO_ROOT / "schema" / SCHEMA_FILES[kind]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_examples_validate_against_the_schema() -> None:
    files = sorted(LIVE.rglob("*.hcl"))
    assert {path.name for path in files} == {ROOT_FILE, STACK_FILE}
    for path in files:
        is_stack = path.name == STACK_FILE
        data = load_file(path, is_root=path.parent == LIVE, is_stack=is_stack)
        errors = list(_validator(path.name).iter_errors(data))
        assert errors == [], f"{path}: {[error.message for error in errors]}"


@pytest.mark.parametrize(
    ("kind", "data", "problem"),
    [
        (ROOT_FILE, {"stat": {"bucket": "b"}}, "'stat' was unexpected"),
        (ROOT_FILE, {"dependencies": ["../network"]}, "'dependencies' was unexpected"),
        (STACK_FILE, {"state": {"bucket": "b"}}, "'state' was unexpected"),
        (ROOT_FILE, {"environments": {"prod": {"account_id": "12"}}}, "does not match"),
        (ROOT_FILE, {"keep_runs": 0}, "less than the minimum"),
        (
            STACK_FILE,
            {"before_hook": {"x": {"commands": ["deploy"], "execute": ["true"]}}},
            "is not one of",
        ),
        (STACK_FILE, {"after_hook": {"x": {"commands": ["plan"]}}}, "'execute' is a required"),
    ],
)
def test_the_schema_refuses_what_tfrun_refuses(kind: str, data: object, problem: str) -> None:
    # Under an anyOf (a value or null), the reasons are in each error's context.
    messages: list[str] = []
    errors = list(_validator(kind).iter_errors(data))
    while errors:
        error = errors.pop()
        messages.append(error.message)
        errors += error.context or []
    assert any(problem in message for message in messages), messages


def test_unknown_file_kind_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(["schema", "main.tf"], tmp_path).assert_exit(4)
    assert "invalid choice: 'main.tf'" in result.stderr
