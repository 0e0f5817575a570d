"""Config files: merging from the root down, and every validation error naming its file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_tree

from tfrun.config import load_file
from tfrun.discovery import Repository, find_root
from tfrun.errors import ConfigError

ROOT = """
repo = "infra"
state {
  bucket         = "acme-tfstate"
  region         = "eu-west-1"
  dynamodb_table = "acme-locks"
}
environments {
  prod            = { account_id = "222222222222", profile = "prod" }
  staging         = { account_id = "333333333333", profile = "staging", protected = false }
  shared-services = { account_id = "111111111111", profile = "shared", region = "us-east-1" }
}
tags = { Owner = "platform", CostCenter = "1" }
"""


def repo_with(tmp_path: Path, extra: dict[str, str], root: str = ROOT) -> Repository:
    live = write_tree(tmp_path / "live", {"tfrun.hcl": root, **extra})
    return Repository(live)


def test_nearer_file_wins_and_maps_merge_key_by_key(tmp_path: Path) -> None:
    repo = repo_with(
        tmp_path,
        {
            "prod-eu-west-1/tfrun.hcl": 'tags = { CostCenter = "2", Tier = "prod" }\nowner = "ops"',
            "prod-eu-west-1/data/main.tf": "",
            "prod-eu-west-1/data/stack.hcl": 'owner = "data-team"\ntags = { Tier = "gold" }',
        },
    )
    stack = repo.stack(tmp_path / "live/prod-eu-west-1/data")
    assert stack.config.tags == {"Owner": "platform", "CostCenter": "2", "Tier": "gold"}
    assert stack.config.owner == "data-team"
    assert [p.name for p in stack.config.sources] == ["tfrun.hcl", "tfrun.hcl", "stack.hcl"]


def test_stack_overrides_env_region_profile_and_key(tmp_path: Path) -> None:
    repo = repo_with(
        tmp_path,
        {
            "prod-eu-west-1/dns/stack.hcl": (
                'region = "us-east-1"\nprofile = "dns-admin"\nkey = "special/{stack}.tfstate"'
            ),
        },
    )
    stack = repo.stack(tmp_path / "live/prod-eu-west-1/dns")
    assert (stack.env, stack.region, stack.provider_region) == ("prod", "us-east-1", "us-east-1")
    assert stack.profile == "dns-admin"
    assert stack.key == "special/dns.tfstate"


def test_protected_defaults_to_prod_and_can_be_turned_off(tmp_path: Path) -> None:
    repo = repo_with(
        tmp_path,
        {"prod-eu-west-1/a/main.tf": "", "staging-eu-west-1/a/main.tf": ""},
    )
    prod, staging = repo.stacks()
    assert prod.protected and not staging.protected


def _error(tmp_path: Path, extra: dict[str, str], root: str = ROOT) -> str:
    repo = repo_with(tmp_path, {"prod-eu-west-1/a/main.tf": "", **extra}, root)
    with pytest.raises(ConfigError) as caught:
        repo.stack(tmp_path / "live/prod-eu-west-1/a")
    return str(caught.value)


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    message = _error(tmp_path, {"prod-eu-west-1/a/stack.hcl": 'ownr = "x"'})
    assert "prod-eu-west-1/a/stack.hcl" in message and "unknown key 'ownr'" in message


def test_unknown_nested_key_names_the_path(tmp_path: Path) -> None:
    message = _error(tmp_path, {}, ROOT.replace('dynamodb_table = "acme-locks"', "tabel = 1"))
    assert "tfrun.hcl" in message and "unknown key 'state.tabel'" in message


def test_wrong_type_names_file_and_key(tmp_path: Path) -> None:
    message = _error(tmp_path, {"prod-eu-west-1/a/stack.hcl": 'dependencies = "../b"'})
    assert "stack.hcl" in message and "'dependencies'" in message and "list" in message


def test_bad_account_id(tmp_path: Path) -> None:
    message = _error(tmp_path, {}, ROOT.replace('"222222222222"', '"2222"'))
    assert "environments.prod.account_id" in message and "12 digits" in message


def test_environment_missing_from_environments(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {"dev-eu-west-1/a/main.tf": ""})
    with pytest.raises(ConfigError) as caught:
        repo.stack(tmp_path / "live/dev-eu-west-1/a")
    message = str(caught.value)
    assert "'dev'" in message and "environments" in message and "tfrun.hcl" in message


def test_missing_bucket_names_root_file(tmp_path: Path) -> None:
    message = _error(tmp_path, {}, ROOT.replace('bucket         = "acme-tfstate"', ""))
    assert "tfrun.hcl" in message and "bucket" in message


def test_malformed_hcl_names_file_and_line(tmp_path: Path) -> None:
    message = _error(tmp_path, {"prod-eu-west-1/a/stack.hcl": 'owner = "x"\ntags = {\n'})
    assert "prod-eu-west-1/a/stack.hcl:3:" in message and "not valid HCL" in message
    assert "stopped at the end of the file" in message


def test_unknown_key_template_field(tmp_path: Path) -> None:
    message = _error(tmp_path, {"prod-eu-west-1/a/stack.hcl": 'key = "{environment}/x"'})
    assert "environment" in message and "{env}" in message


def test_root_only_key_in_stack_file(tmp_path: Path) -> None:
    message = _error(tmp_path, {"prod-eu-west-1/a/stack.hcl": 'state { bucket = "x" }'})
    assert "stack.hcl" in message and "'state' belongs in the root tfrun.hcl" in message


def test_duplicate_block(tmp_path: Path) -> None:
    message = _error(tmp_path, {}, ROOT + '\nstate {\n  bucket = "other"\n}\n')
    assert "tfrun.hcl" in message and "'state' appears 2 times" in message


def test_find_root_is_topmost(tmp_path: Path) -> None:
    write_tree(tmp_path, {"live/tfrun.hcl": ROOT, "live/prod-eu-west-1/tfrun.hcl": ""})
    assert find_root(tmp_path / "live/prod-eu-west-1") == (tmp_path / "live").resolve()


def test_no_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no tfrun\.hcl here or in any folder above"):
        find_root(tmp_path)


# ---------------------------------------------------------------------------- plain text


def test_hcl_escapes_for_literal_template_marks_are_resolved(tmp_path: Path) -> None:
    repo = repo_with(
        tmp_path,
        {
            "prod-eu-west-1/a/main.tf": "",
            "prod-eu-west-1/a/stack.hcl": (
                'owner = "team $${x}"\n'
                'tags = { Note = "cost $${per} hour", Loop = "%%{ for }", "K$${y}" = "$$${z}" }\n'
                'dependencies = ["../b$${c}"]\n'
            ),
        },
    )
    config = repo.stack(tmp_path / "live/prod-eu-west-1/a").config
    # What Terraform reads in those strings: each escape once, `$$${` is a `$` and an escape.
    assert config.tags["Note"] == "cost ${per} hour"
    assert config.tags["Loop"] == "%{ for }"
    assert config.tags["K${y}"] == "$${z}"
    assert config.owner == "team ${x}"
    assert config.dependencies == ["../b${c}"]


@pytest.mark.parametrize(
    ("stack_hcl", "where", "opener"),
    [
        ('tags = { Note = "cost ${per} hour" }', "'tags.Note'", "${"),
        ('tags = { Note = "%{ if true }a%{ endif }" }', "'tags.Note'", "%{"),
        ("owner = var.team", "'owner'", "${"),  # python-hcl2 gives an expression as "${...}"
        ('owner = upper("x")', "'owner'", "${"),
        ('tags = { "${k}" = "v" }', "a key in 'tags'", "${"),
        ('dependencies = ["../ok", "../${x}"]', "'dependencies.1'", "${"),
    ],
    ids=["interpolation", "directive", "reference", "call", "map-key", "list-item"],
)
def test_an_unescaped_template_is_an_error_naming_file_and_key(
    tmp_path: Path, stack_hcl: str, where: str, opener: str
) -> None:
    message = _error(tmp_path, {"prod-eu-west-1/a/stack.hcl": stack_hcl + "\n"})
    assert message.startswith(f"{tmp_path / 'live/prod-eu-west-1/a/stack.hcl'}: {where} is ")
    assert f'the "{opener}" in it starts' in message and "cannot evaluate" in message
    assert f'write "{opener[0]}{opener}"' in message


def test_an_unescaped_template_in_the_root_file(tmp_path: Path) -> None:
    message = _error(tmp_path, {}, ROOT.replace('Owner = "platform"', 'Owner = "${local.o}"'))
    assert message.startswith(f"{tmp_path / 'live/tfrun.hcl'}: 'tags.Owner' is ")


# ---------------------------------------------------------------------------- remote_state


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ('"a b\\"c"', 'a b"c'),
        ('"1net"', "1net"),
        ('"-net"', "-net"),
        ('"net.work"', "net.work"),
        ('"ne/t"', "ne/t"),
        ('""', ""),
        ('"n\u00e9"', "n\u00e9"),
    ],
)
def test_a_remote_state_name_that_is_no_terraform_name(
    tmp_path: Path, written: str, name: str
) -> None:
    stack_hcl = f'remote_state = {{ {written} = "../b" }}\n'
    message = _error(tmp_path, {"prod-eu-west-1/a/stack.hcl": stack_hcl})
    assert message.startswith(f"{tmp_path / 'live/prod-eu-west-1/a/stack.hcl'}: 'remote_state': ")
    assert f"the name {json.dumps(name)} cannot name a data source" in message
    assert "letters, digits, underscores and dashes" in message


@pytest.mark.parametrize("name", ["network", "_net", "net-work_2", "N"])
def test_remote_state_names_that_are_terraform_names(tmp_path: Path, name: str) -> None:
    repo = repo_with(
        tmp_path,
        {
            "prod-eu-west-1/a/main.tf": "",
            "prod-eu-west-1/a/stack.hcl": f'remote_state = {{ "{name}" = "../b" }}\n',
        },
    )
    assert repo.stack(tmp_path / "live/prod-eu-west-1/a").config.remote_state == {name: "../b"}


def test_mock_outputs_are_read_per_read_and_output(tmp_path: Path) -> None:
    stack_hcl = 'mock_outputs = { network = { vpc_id = "vpc-0", azs = ["a", "b"], n = 3 } }\n'
    repo = repo_with(
        tmp_path, {"prod-eu-west-1/a/main.tf": "", "prod-eu-west-1/a/stack.hcl": stack_hcl}
    )
    config = repo.stack(tmp_path / "live/prod-eu-west-1/a").config
    assert config.mock_outputs == {"network": {"vpc_id": "vpc-0", "azs": ["a", "b"], "n": 3}}


def test_mock_outputs_are_a_stacks_own_and_keyed_by_a_terraform_name(tmp_path: Path) -> None:
    message = _error(tmp_path, {"prod-eu-west-1/a/stack.hcl": 'mock_outputs = { "a.b" = {} }\n'})
    assert "'mock_outputs'" in message and 'the name "a.b" cannot name a data source' in message
    shared = _error(tmp_path, {"prod-eu-west-1/env.hcl": "mock_outputs = { a = { b = 1 } }\n"})
    assert "mock_outputs" in shared


# ---------------------------------------------------------------------------- state keys

ALLOWED_FIELDS = "{account_id}, {env}, {region}, {repo}, {stack}"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("{env!r}/x", "uses {env!r}: a field takes no conversion or format"),
        ("{stack:>30}", "uses {stack:>30}: a field takes no conversion or format"),
        ("{env!s:x}/y", "uses {env!s:x}: a field takes no conversion or format"),
        ("{}/x", "uses {}, which names no field"),
        ("{0}/x", "uses {0}, which names no field"),
        ("{environment}/x", "uses {environment}, which names no field"),
        ("{env.upper}/x", "uses {env.upper}, which names no field"),
        ("{env[0]}/x", "uses {env[0]}, which names no field"),
        ("{env}/{{x}}", "has a brace that is not part of a {field}"),
        ("{env", "is malformed"),
        ("{env}}", "is malformed"),
        ("/{env}/{stack}.tfstate", "starts with '/'"),
        ("{env}//{stack}.tfstate", "has an empty, '.' or '..' path segment"),
        ("{env}/../{stack}.tfstate", "has an empty, '.' or '..' path segment"),
        ("{env}/./{stack}.tfstate", "has an empty, '.' or '..' path segment"),
        ("{env}/{stack}/", "has an empty, '.' or '..' path segment"),
        ("", "has an empty, '.' or '..' path segment"),
    ],
)
def test_a_bad_key_template_in_the_root_names_the_file_and_the_fields(
    tmp_path: Path, key: str, problem: str
) -> None:
    root = ROOT.replace('dynamodb_table = "acme-locks"', f"key = {json.dumps(key)}")
    message = _error(tmp_path, {}, root)
    assert message.startswith(f"{tmp_path / 'live/tfrun.hcl'}: 'state.key': the state key ")
    assert problem in message and ALLOWED_FIELDS in message


@pytest.mark.parametrize(
    "key", ["/legacy/a.tfstate", "legacy//a.tfstate", "../a.tfstate", "legacy/", "{}"]
)
def test_a_bad_stack_key_names_the_stack_file(tmp_path: Path, key: str) -> None:
    message = _error(tmp_path, {"prod-eu-west-1/a/stack.hcl": f"key = {json.dumps(key)}\n"})
    assert message.startswith(f"{tmp_path / 'live/prod-eu-west-1/a/stack.hcl'}: 'key': ")
    assert json.dumps(key) in message and ALLOWED_FIELDS in message


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("{env}/{region}/{stack}.tfstate", "prod/eu-west-1/a.tfstate"),
        (
            "{repo}/{account_id}/{env}-{region}/{stack}.tfstate",
            "infra/222222222222/prod-eu-west-1/a.tfstate",
        ),
        ("legacy/a..b/.hidden/a.tfstate", "legacy/a..b/.hidden/a.tfstate"),
    ],
)
def test_good_keys(tmp_path: Path, key: str, expected: str) -> None:
    repo = repo_with(
        tmp_path,
        {"prod-eu-west-1/a/main.tf": "", "prod-eu-west-1/a/stack.hcl": f"key = {json.dumps(key)}"},
    )
    assert repo.stack(tmp_path / "live/prod-eu-west-1/a").key == expected


# ---------------------------------------------------------------------------- the cache

FULL_ROOT = ROOT.replace(
    'dynamodb_table = "acme-locks"',
    'dynamodb_table = "acme-locks"\n  use_lockfile = true\n'
    '  role_arn = "arn:aws:iam::111111111111:role/State"\n  kms_key_id = "alias/tfstate"',
) + (
    'auth {\n  role_name = "TerraformAdmin"\n  laptop_profile = "sso"\n}\n'
    "retry { attempts = 3 }\ngraph { strict = true }\n"
    'timeout = "30m"\nkeep_runs = 5\nterraform_version = ">= 1.10"\n'
)
FULL_STACK = {
    "prod-eu-west-1/a/main.tf": "",
    "prod-eu-west-1/a/stack.hcl": (
        'remote_state = { b = "../b" }\nmock_outputs = { b = { ids = ["x"], n = 2 } }\n'
        'dependencies = ["../b"]\nowner = "team"\nconsumers = ["data"]\n'
    ),
    "prod-eu-west-1/b/main.tf": "",
}


def test_a_config_from_the_cache_is_the_config_validated(tmp_path: Path) -> None:
    cold = repo_with(tmp_path, FULL_STACK, FULL_ROOT).stacks()
    warm = Repository(tmp_path / "live").stacks()
    for before, after in zip(cold, warm, strict=True):
        assert after.config == before.config
        assert after.config.model_dump() == before.config.model_dump()
        assert after.config.sources == before.config.sources
        assert after.config.timeout_s == 1800 and after.config.is_protected("prod")


def test_a_warm_load_builds_no_validator_and_an_edit_is_validated(tmp_path: Path) -> None:
    """pydantic's validators are most of the config's cost; a warm run never needs them."""
    repo_with(tmp_path, FULL_STACK, FULL_ROOT).stacks()
    probe = (
        "import sys; from pathlib import Path; from tfrun import config, discovery; "
        "discovery.Repository(Path(sys.argv[1])).stacks(); "
        "print(config.Config.__pydantic_complete__, config.FileConfig.__pydantic_complete__)"
    )
    warm = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "live")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert warm.stdout.split() == ["False", "False"], warm
    # An edit is a new file content: parsed and validated again, errors included.
    (tmp_path / "live/prod-eu-west-1/a/stack.hcl").write_text('mock_outputs = { "a.b" = {} }\n')
    with pytest.raises(ConfigError, match="mock_outputs"):
        Repository(tmp_path / "live").stacks()


def test_an_unknown_key_names_its_line_and_the_closest_allowed_key(tmp_path: Path) -> None:
    path = tmp_path / "tfrun.hcl"
    path.write_text(
        'repo = "infra"\n'
        "\n"
        "state {\n"
        '  bucket         = "b"\n'
        '  region         = "eu-west-1"\n'
        '  dynamodb_tabel = "t"\n'
        "}\n"
        "environments {\n"
        '  prod = { account_id = "222222222222", profil = "prod" }\n'
        "}\n"
        'terraform_verison = ">= 1.6"\n'
        "keep_runs = 0\n"
        'zzz_nothing_like_it = "x"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_file(path, is_root=True, is_stack=False)
    message = str(caught.value)
    assert message.startswith(
        f"{path}: unknown key 'state.dynamodb_tabel' (did you mean 'dynamodb_table'?) (line 6); "
    )
    assert "unknown key 'environments.prod.profil' (did you mean 'profile'?) (line 9)" in message
    assert (
        "unknown key 'terraform_verison' (did you mean 'terraform_version'?) (line 11)" in message
    )
    assert "'keep_runs': Input should be greater than or equal to 1 (line 12)" in message
    assert "unknown key 'zzz_nothing_like_it' (line 13)" in message  # nothing close: no guess


def test_a_hook_key_is_found_below_its_label(tmp_path: Path) -> None:
    path = tmp_path / "stack.hcl"
    path.write_text(
        'before_hook "lint" {\n'
        '  commands = ["plan"]\n'
        '  execute  = ["tflint"]\n'
        "}\n"
        'before_hook "fmt" {\n'
        '  commands = ["plan"]\n'
        '  executes = ["terraform", "fmt"]\n'
        "}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_file(path, is_root=False, is_stack=True)
    # A missing key is shown at its block's line, the misspelt one at its own.
    assert str(caught.value) == (
        f"{path}: 'before_hook.fmt.execute': Field required (line 5); "
        "unknown key 'before_hook.fmt.executes' (did you mean 'execute'?) (line 7)."
    )
