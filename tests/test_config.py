"""Config files: merging from the root down, and every validation error naming its file."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_tree

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
