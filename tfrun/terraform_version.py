"""The terraform binary's version against what the repository asks for, once per run and
before anything runs: the config's `terraform_version` constraint and tfenv's
`.terraform-version` file (an exact version, found from the stack's folder up to the top of the
repository). A mismatch is one message naming the file, the constraint and the binary's
version, instead of terraform's own error in every stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tfrun import process
from tfrun.discovery import Stack
from tfrun.errors import ConfigError, ToolMissingError
from tfrun.files import write_atomically
from tfrun.fingerprint import signature

VERSION_FILE = ".terraform-version"
CACHE_FILE = Path(".tfrun") / "cache" / "terraform-version.json"
_NUMBERS = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[0-9A-Za-z.-]+)?")
_TFENV_KEYWORDS = ("latest", "min-required")
_OPERATOR = re.compile(r"\s*(~>|>=|<=|!=|=|>|<)?\s*(\S+)\s*")

Version = tuple[int, int, int]


def parse(text: str) -> tuple[Version, int] | None:
    """A version and how many of its parts were written (`1.6` is (1, 6, 0) with 2)."""
    match = _NUMBERS.fullmatch(text.strip())
    if match is None:
        return None
    parts = [part for part in match.groups()[:3] if part is not None]
    numbers = [int(part) for part in parts] + [0] * (3 - len(parts))
    return (numbers[0], numbers[1], numbers[2]), len(parts)


def meets(version: Version, constraint: str) -> bool:
    """Whether `version` meets a terraform version constraint (`>= 1.6, < 2.0`, `~> 1.10`);
    a ValueError for one that cannot be read."""
    for clause in constraint.split(","):
        match = _OPERATOR.fullmatch(clause)
        parsed = parse(match[2]) if match else None
        if match is None or parsed is None:
            raise ValueError(f"'{clause.strip()}' is not a version constraint")
        operator, (wanted, written) = match[1] or "=", parsed
        if operator == "~>":
            # Only the last part written may grow: ~> 1.6 is < 2.0, ~> 1.6.0 is < 1.7.0.
            major, minor, _ = wanted
            ceiling = {1: None, 2: (major + 1, 0, 0), 3: (major, minor + 1, 0)}[written]
            ok = wanted <= version and (ceiling is None or version < ceiling)
        else:
            ok = {
                "=": version == wanted,
                "!=": version != wanted,
                ">": version > wanted,
                ">=": version >= wanted,
                "<": version < wanted,
                "<=": version <= wanted,
            }[operator]
        if not ok:
            return False
    return True


def binary_version(binary: str, cwd: Path, env: Mapping[str, str], cache: Path) -> str | None:
    """`terraform version -json`'s version, asked once per binary (kept in `cache` by the
    binary's signature); None when it gives none (terraform then judges for itself)."""
    stamp = signature(binary)
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    entry = known.get(binary) if isinstance(known, dict) else None
    if stamp is not None and isinstance(entry, dict) and entry.get("signature") == stamp:
        version = entry.get("version")
        return version if isinstance(version, str) else None
    try:
        # No update check: `version` would otherwise ask checkpoint.hashicorp.com.
        outcome = process.run([binary, "version", "-json"], cwd, {**env, "CHECKPOINT_DISABLE": "1"})
    except ToolMissingError:
        return None
    try:
        version = json.loads(outcome.stdout).get("terraform_version")
    except (ValueError, AttributeError):
        version = None
    if outcome.returncode != 0 or not isinstance(version, str):
        return None
    if stamp is not None:
        known = known if isinstance(known, dict) else {}
        known[binary] = {"signature": stamp, "version": version}
        write_atomically(cache, json.dumps(known, indent=1) + "\n")
    return version


def _top(root: Path) -> Path:
    """Where a `.terraform-version` search ends: the repository's top, else the live root."""
    for folder in (root, *root.parents):
        if (folder / ".git").exists():
            return folder
    return root


def version_file(stack: Stack) -> Path | None:
    """The nearest `.terraform-version` from the stack's folder up to the repository's top."""
    top = _top(stack.root)
    folder = stack.path
    while True:
        candidate = folder / VERSION_FILE
        if candidate.is_file():
            return candidate
        if folder == top or folder.parent == folder:
            return None
        folder = folder.parent


def _constraint_file(stack: Stack) -> Path:
    """The nearest config file that sets terraform_version (the nearer file wins)."""
    setting = re.compile(r"^\s*terraform_version\s*=", re.MULTILINE)
    for source in reversed(stack.config.sources):
        try:
            if setting.search(source.read_text(encoding="utf-8")):
                return source
        except OSError:
            continue
    return stack.config.sources[-1] if stack.config.sources else stack.root / "tfrun.hcl"


def _requirements(stacks: Sequence[Stack]) -> Iterator[tuple[Path, str, str]]:
    """(file, what it asks, as a constraint), each distinct one once."""
    seen: set[tuple[Path, str]] = set()
    for stack in stacks:
        wanted = (stack.config.terraform_version or "").strip()
        if wanted:
            where = _constraint_file(stack)
            if (where, wanted) not in seen:
                seen.add((where, wanted))
                yield where, f'terraform_version = "{wanted}"', wanted
        pinned = version_file(stack)
        if pinned is not None:
            text = pinned.read_text(encoding="utf-8").strip().splitlines()
            exact = text[0].strip() if text else ""
            # tfenv's keywords (latest, latest:REGEX, min-required) name no one version;
            # anything else that is no version is a mistake tfenv would refuse too.
            if parse(exact) is None and not exact.startswith(_TFENV_KEYWORDS):
                raise ConfigError(
                    f"{pinned}: {exact!r} is no terraform version. The file holds one exact "
                    "version (1.11.4) or one of tfenv's keywords (latest, latest:REGEX, "
                    "min-required)."
                )
            if parse(exact) is not None and (pinned, exact) not in seen:
                seen.add((pinned, exact))
                yield pinned, exact, "= " + exact.removeprefix("v")


def check(stacks: Sequence[Stack], binary: str, root: Path, env: Mapping[str, str]) -> None:
    """A ConfigError (exit 4) when the binary does not meet what the stacks ask for."""
    requirements = list(_requirements(stacks))
    if not requirements:
        return
    version = binary_version(binary, root, env, root / CACHE_FILE)
    parsed = parse(version) if version is not None else None
    if version is None or parsed is None:
        return  # no version to judge by: terraform checks required_version itself
    for where, asked, constraint in requirements:
        try:
            ok = meets(parsed[0], constraint)
        except ValueError as exc:
            raise ConfigError(f"{where}: {asked}: {exc}.") from None
        if not ok:
            user = [stack.rel for stack in stacks if where in _files_of(stack)]
            raise ConfigError(
                f"{where}: {asked}, and {binary} is terraform {version}, which does not meet "
                f"it ({_count(user)}). Nothing was run. Install a terraform that does (or "
                f"name it with --terraform-bin or TFRUN_TERRAFORM), or change {where.name}."
            )


def _files_of(stack: Stack) -> set[Path]:
    found = {_constraint_file(stack)} if (stack.config.terraform_version or "").strip() else set()
    pinned = version_file(stack)
    return found | ({pinned} if pinned is not None else set())


def _count(stacks: list[str]) -> str:
    if len(stacks) == 1:
        return f"stack {stacks[0]}"
    return f"{len(stacks)} stacks: {', '.join(stacks[:3])}{', ...' if len(stacks) > 3 else ''}"
