"""`tfrun fmt [PATH] [--check]`: the config files in HCL's canonical layout, through the real
terraform's formatter; comments, heredocs and values kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import REPO_ROOT, run_cli

from tfrun.config import load_file

pytestmark = pytest.mark.slow  # every test runs the real terraform's formatter

MESSY = """\
# The root config.   Comments stay, spacing and all.
state {
  bucket = "acme-tfstate" # the bucket
      region="eu-west-1"
  use_lockfile   =   true
}
environments {
  prod = { account_id = "222222222222",    profile = "prod" }
  staging = {
    account_id = "333333333333"
    profile="staging"
  }
}
tags = {
  Owner = "platform"
  CostCentre   = "1234"   /* block comment */
}
before_hook "note" {
  commands = ["plan"]
  execute = ["sh", "-c", <<EOT
echo   "keep   this   spacing"
EOT
  ]
}
"""
TIDY = """\
# The root config.   Comments stay, spacing and all.
state {
  bucket       = "acme-tfstate" # the bucket
  region       = "eu-west-1"
  use_lockfile = true
}
environments {
  prod = { account_id = "222222222222", profile = "prod" }
  staging = {
    account_id = "333333333333"
    profile    = "staging"
  }
}
tags = {
  Owner      = "platform"
  CostCentre = "1234" /* block comment */
}
before_hook "note" {
  commands = ["plan"]
  execute = ["sh", "-c", <<EOT
echo   "keep   this   spacing"
EOT
  ]
}
"""


@pytest.fixture
def live(tmp_path: Path) -> Path:
    copy = tmp_path / "live"
    shutil.copytree(REPO_ROOT / "examples" / "live", copy)
    (copy / "tfrun.hcl").write_text(MESSY)
    (copy / "prod-eu-west-1" / "network" / "stack.hcl").write_text('owner="network-team"\n')
    return copy


def test_fmt_writes_the_canonical_layout_and_keeps_the_meaning(live: Path) -> None:
    before = load_file(live / "tfrun.hcl", is_root=True, is_stack=False)
    result = run_cli(["fmt"], live).assert_success()
    assert (live / "tfrun.hcl").read_text() == TIDY
    assert (live / "prod-eu-west-1/network/stack.hcl").read_text() == 'owner = "network-team"\n'
    assert "2 of 8 config files formatted" in result.stderr
    assert load_file(live / "tfrun.hcl", is_root=True, is_stack=False) == before
    # Formatted files are left alone: a second run changes nothing.
    again = run_cli(["fmt"], live).assert_success()
    assert "0 of 8 config files formatted" in again.stderr


def test_fmt_check_changes_nothing_and_lists_the_files(live: Path) -> None:
    result = run_cli(["fmt", "--check"], live).assert_exit(1)
    assert (live / "tfrun.hcl").read_text() == MESSY
    assert '\n-      region="eu-west-1"\n' in result.stdout
    assert '\n+  region       = "eu-west-1"\n' in result.stdout
    assert "+++ b/prod-eu-west-1/network/stack.hcl" in result.stdout
    assert "2 of 8 config files are not formatted: tfrun.hcl, prod-eu-west-1/network/stack.hcl" in (
        result.stderr
    )
    run_cli(["fmt"], live).assert_success()
    clean = run_cli(["fmt", "--check", "prod-eu-west-1"], live).assert_success()
    assert clean.stdout == "" and "3 config files are formatted" in clean.stderr


def test_a_file_that_does_not_parse_names_the_file_and_line_and_nothing_is_written(
    live: Path,
) -> None:
    broken = live / "staging-eu-west-1" / "data" / "stack.hcl"
    broken.write_text('owner = "data"\ntags = {\n  Team =\n}\n')
    result = run_cli(["fmt"], live).assert_exit(4)
    assert "staging-eu-west-1/data/stack.hcl:3: Invalid expression: Expected the start" in (
        result.stderr
    )
    assert broken.exists()
    assert (live / "tfrun.hcl").read_text() == MESSY


def test_fmt_of_one_file_and_of_what_is_no_config_file(live: Path) -> None:
    run_cli(["fmt", "prod-eu-west-1/network/stack.hcl"], live).assert_success()
    assert (live / "prod-eu-west-1/network/stack.hcl").read_text() == 'owner = "network-team"\n'
    assert (live / "tfrun.hcl").read_text() == MESSY
    (live / "main.tf").write_text("x=1\n")
    refused = run_cli(["fmt", "main.tf"], live).assert_exit(4)
    assert "formats tfrun.hcl and stack.hcl files only" in refused.stderr
    missing = run_cli(["fmt", "nowhere"], live).assert_exit(4)
    assert "nowhere: there is no such folder or file" in missing.stderr
