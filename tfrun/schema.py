"""The JSON Schema of the config files, from the pydantic models in `tfrun.config`.

Two schemas, one per file name: `tfrun.hcl` (the live root's, and any folder's between it and
the stacks) may not set the keys that describe one stack; `stack.hcl` may not set the keys
that describe the whole repository. The shapes are those the loader reads an HCL file into:
a block (`state { ... }`) is an object, a labelled block (`before_hook "fmt" { ... }`) an
object by its label. What only a validator checks (a state key's fields, a duration's units,
an extra argument's flags) is in the descriptions, not the schema; `tfrun check` checks it.
"""

from __future__ import annotations

import json
from typing import Any

from tfrun import tfargs
from tfrun.config import _ROOT_ONLY, _STACK_ONLY, ROOT_FILE, STACK_FILE, FileConfig

KINDS = (ROOT_FILE, STACK_FILE)
# Where the schemas are kept in the repository, for editors (tests keep them in sync).
SCHEMA_FILES = {ROOT_FILE: "tfrun.hcl.schema.json", STACK_FILE: "stack.hcl.schema.json"}
_ABOUT = {
    ROOT_FILE: (
        "tfrun.hcl: the live root's config, or a folder's between the root and its stacks. "
        f"{', '.join(_ROOT_ONLY)} belong in the live root's file only."
    ),
    STACK_FILE: "stack.hcl: one stack's config, in the stack's folder.",
}


def config_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the file named `kind` (tfrun.hcl or stack.hcl)."""
    schema = FileConfig.model_json_schema()
    left_out = _STACK_ONLY if kind == ROOT_FILE else _ROOT_ONLY
    for key in left_out:
        del schema["properties"][key]
    definitions = schema.get("$defs", {})
    _add_checks(definitions)
    # Definitions only the left-out keys used (RetryConfig in stack.hcl) go too.
    used = json.dumps(schema["properties"]) + json.dumps(definitions)
    schema["$defs"] = {name: d for name, d in definitions.items() if f'"#/$defs/{name}"' in used}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"tfrun/{SCHEMA_FILES[kind]}",
        **{key: value for key, value in schema.items() if key != "description"},
        "title": kind,
        "description": _ABOUT[kind],
    }


def _add_checks(definitions: dict[str, Any]) -> None:
    """What a validator checks and a schema can say too: the commands a hook or extra
    arguments may name, an account id's 12 digits."""
    commands = {
        "ExtraArguments": tfargs.CONFIGURABLE_COMMANDS,
        "BeforeHook": tfargs.HOOK_COMMANDS,
        "AfterHook": tfargs.HOOK_COMMANDS,
    }
    for name, known in commands.items():
        definitions[name]["properties"]["commands"]["items"]["enum"] = sorted(known)
    account_id = definitions["Environment"]["properties"]["account_id"]["anyOf"][0]
    account_id["pattern"] = r"^\d{12}$"


def schema_text(kind: str) -> str:
    return json.dumps(config_schema(kind), indent=2) + "\n"
