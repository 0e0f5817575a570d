"""TFRUN_PROVIDER_MIRROR (tfrun/provider_mirror.py): terraform installs the mirror's providers
from it, through a CLI config tfrun writes; the slow test runs real terraform init."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_cli, write_tree

from tfrun import provider_mirror
from tfrun.errors import ConfigError

AWS = "registry.terraform.io/hashicorp/aws"


def test_the_cli_config_names_the_providers_found(tmp_path: Path) -> None:
    mirror = write_tree(
        tmp_path / "mirror",
        {
            f"{AWS}/5.100.0/linux_amd64/terraform-provider-aws_v5.100.0_x5": "",
            "example.com/acme/thing/terraform-provider-thing_1.0.0_linux_amd64.zip": "",
        },
    )
    (mirror / "registry.terraform.io/hashicorp/empty").mkdir(parents=True)
    assert provider_mirror.providers(mirror) == ["example.com/acme/thing", AWS]
    root = tmp_path / "live"
    env = {"TFRUN_PROVIDER_MIRROR": str(mirror)}
    provider_mirror.apply(root, env)
    config = Path(env["TF_CLI_CONFIG_FILE"])
    assert config == root / ".tfrun/terraform-mirror.tfrc"
    text = config.read_text(encoding="utf-8")
    assert f'path    = "{mirror}"' in text
    assert f'include = ["example.com/acme/thing", "{AWS}"]' in text
    assert f'exclude = ["example.com/acme/thing", "{AWS}"]' in text


def test_unset_or_a_persons_cli_config_writes_nothing(tmp_path: Path) -> None:
    own = tmp_path / ".terraformrc"
    own.write_text('plugin_cache_dir = "/tmp"\n', encoding="utf-8")
    mine = {"TFRUN_PROVIDER_MIRROR": str(tmp_path), "TF_CLI_CONFIG_FILE": str(own)}
    provider_mirror.apply(tmp_path, mine)
    assert mine["TF_CLI_CONFIG_FILE"] == str(own)
    assert provider_mirror.cli_config(tmp_path, {}) is None
    assert not (tmp_path / ".tfrun").exists()


def test_a_cli_config_variable_that_names_no_file_does_not_hide_the_mirror(
    tmp_path: Path,
) -> None:
    """Found in a trial: a shell profile's TF_CLI_CONFIG_FILE=~/.terraformrc, a file that did
    not exist, made tfrun ignore the mirror and terraform try the registry."""
    mirror = write_tree(tmp_path / "mirror", {f"{AWS}/5.100.0/linux_amd64/provider": ""})
    env = {"TFRUN_PROVIDER_MIRROR": str(mirror), "TF_CLI_CONFIG_FILE": str(tmp_path / "none")}
    provider_mirror.apply(tmp_path / "live", env)
    assert env["TF_CLI_CONFIG_FILE"] == str(tmp_path / "live/.tfrun/terraform-mirror.tfrc")


@pytest.mark.parametrize("made", [False, True], ids=["no folder", "empty folder"])
def test_a_mirror_without_providers_is_an_error(tmp_path: Path, made: bool) -> None:
    mirror = tmp_path / "mirror"
    if made:
        mirror.mkdir()
    with pytest.raises(ConfigError, match=r"TFRUN_PROVIDER_MIRROR=.*mirror layout") as caught:
        provider_mirror.cli_config(tmp_path, {"TFRUN_PROVIDER_MIRROR": str(mirror)})
    assert caught.value.exit_code == 4


@pytest.mark.slow
def test_terraform_init_installs_aws_from_the_mirror(
    examples_copy: Path, tf_env: dict[str, str], provider_mirror: Path, tmp_path: Path
) -> None:
    """The README's sandbox section on a machine without registry access: no CLI config of
    the person's, only TFRUN_PROVIDER_MIRROR."""
    env = {k: v for k, v in tf_env.items() if k != "TF_CLI_CONFIG_FILE"}
    env["TFRUN_PROVIDER_MIRROR"] = str(provider_mirror)
    env["TF_PLUGIN_CACHE_DIR"] = str(tmp_path / "empty-cache")  # nothing to take from a cache
    iam = examples_copy / "shared-services/iam"
    run_cli(["init", "-no-color"], iam, env).assert_success()
    installed = list((iam / ".terraform/providers" / AWS).glob("*/*/terraform-provider-aws*"))
    assert installed, "terraform installed no aws provider"
    lock = (iam / ".terraform.lock.hcl").read_text(encoding="utf-8")
    assert f'provider "{AWS}"' in lock
    config = examples_copy / ".tfrun/terraform-mirror.tfrc"
    assert str(provider_mirror) in config.read_text(encoding="utf-8")
    plan = run_cli(["plan", "-no-color"], iam, env)
    plan.assert_success()
