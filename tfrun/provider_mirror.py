"""TFRUN_PROVIDER_MIRROR: a folder of providers (terraform's filesystem-mirror layout) that
terraform installs from instead of their registry, for machines without registry access.

Terraform reads a mirror only from a CLI config file, so tfrun writes one in the live root's
`.tfrun/` folder and points TF_CLI_CONFIG_FILE at it. The providers found in the mirror come
from it and from nowhere else; any other provider still comes from its registry. A
TF_CLI_CONFIG_FILE the person set wins: it is their whole terraform configuration, and tfrun
does not replace it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tfrun.errors import ConfigError
from tfrun.files import write_atomically

VARIABLE = "TFRUN_PROVIDER_MIRROR"
CLI_CONFIG_VARIABLE = "TF_CLI_CONFIG_FILE"
CLI_CONFIG_FILE = Path(".tfrun") / "terraform-mirror.tfrc"


def providers(mirror: Path) -> list[str]:
    """The providers a mirror holds, as `HOST/NAMESPACE/TYPE` (terraform's layout: version
    folders below, unpacked, or the providers' zip files, packed)."""
    found = []
    for folder in sorted(mirror.glob("*/*/*")):
        if folder.is_dir() and any(folder.iterdir()):
            found.append(folder.relative_to(mirror).as_posix())
    return found


def _hcl_list(names: list[str]) -> str:
    return "[" + ", ".join(f'"{name}"' for name in names) + "]"


def cli_config_text(mirror: Path, names: list[str]) -> str:
    path = str(mirror).replace("\\", "\\\\").replace('"', '\\"')
    return (
        "# Written by tfrun from TFRUN_PROVIDER_MIRROR; rewritten when it changes.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{path}"\n'
        f"    include = {_hcl_list(names)}\n"
        "  }\n"
        "  direct {\n"
        f"    exclude = {_hcl_list(names)}\n"
        "  }\n"
        "}\n"
    )


def cli_config(root: Path, environ: Mapping[str, str]) -> Path | None:
    """The CLI config file terraform is to read for the mirror TFRUN_PROVIDER_MIRROR names,
    written under `root` when its content changed; None when the variable is unset or the
    person set TF_CLI_CONFIG_FILE to a file. (One that names no file, as a shell profile may
    leave it, holds nothing for terraform to read: the mirror is used.)"""
    named = environ.get(VARIABLE, "").strip()
    own = environ.get(CLI_CONFIG_VARIABLE, "").strip()
    if not named or (own and Path(own).expanduser().is_file()):
        return None
    mirror = Path(named).expanduser().absolute()
    names = providers(mirror) if mirror.is_dir() else []
    if not names:
        raise ConfigError(
            f"{VARIABLE}={named}: "
            + (
                "there is no such folder"
                if not mirror.is_dir()
                else "this folder holds no provider"
            )
            + " in terraform's mirror layout (HOST/NAMESPACE/TYPE/VERSION/OS_ARCH/, for "
            "example registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/). Point it at "
            "the mirror's top folder, or unset it to install providers from their registry."
        )
    path = root / CLI_CONFIG_FILE
    text = cli_config_text(mirror, names)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_atomically(path, text)
    return path


def apply(root: Path, env: dict[str, str]) -> None:
    """Point terraform's environment `env` at the mirror's CLI config, when there is one."""
    path = cli_config(root, env)
    if path is not None:
        env[CLI_CONFIG_VARIABLE] = str(path)
