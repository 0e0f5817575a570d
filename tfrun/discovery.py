"""Find the live root and the stacks under a path, and what each stack is (the layout in
README.md: `<env>-<region>/<stack>` below the folder of the top-most tfrun.hcl).

No subprocesses and no terraform here: only the file system and the config files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from tfrun import fingerprint
from tfrun.config import (
    ROOT_FILE,
    STACK_FILE,
    Config,
    ParseCache,
    key_path_problem,
)
from tfrun.errors import ConfigError

REGION = re.compile(r"(?P<env>.+?)-(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d)")
GLOBAL_REGION = "global"
# Files tfrun writes; they do not make a directory a stack.
GENERATED_NAMES = frozenset(
    {
        "backend.tf",
        "provider.tf",
        "versions.tf",
        "remote_state.tf",
        "tfrun_override.tf",
        "tfrun_provisional_override.tf",  # planned.OVERRIDE_FILE, for one plan's time
    }
)
_SKIP_DIRS = frozenset({"modules", "node_modules"})
# Stacks sit one or two levels below the environment folder (`network`, `platform/eks`).
MIN_STACK_DEPTH = 2
MAX_STACK_DEPTH = 3


@dataclass(frozen=True)
class Stack:
    root: Path
    path: Path
    rel: str  # relative to the live root, with forward slashes
    env: str
    region: str  # as in the state key: "global" for folders without a region
    provider_region: str
    name: str
    key: str
    config: Config

    @property
    def account_id(self) -> str | None:
        environment = self.config.environments.get(self.env)
        return environment.account_id if environment else None

    @property
    def profile(self) -> str | None:
        if self.config.profile:
            return self.config.profile
        environment = self.config.environments.get(self.env)
        return environment.profile if environment else None

    @property
    def protected(self) -> bool:
        return self.config.is_protected(self.env)

    @property
    def repo(self) -> str:
        return self.config.repo or _git_toplevel_name(self.root)


def real_path(path: Path) -> Path:
    """The real folder a path names, symbolic links followed; a loop of links is an error."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: Python 3.11's "Symlink loop"
        raise ConfigError(
            f"{path}: this cannot be followed ({exc}); a symbolic link leads round in a loop."
        ) from None


def find_root(start: Path) -> Path:
    """The directory of the top-most `tfrun.hcl` at or above `start` (or in `start/live`, the
    repository's top, as CI jobs run)."""
    start = real_path(start)
    if start.is_file():
        start = start.parent
    root = fingerprint.find_root(str(start))
    if root is None:
        raise ConfigError(
            f"{start}: no {ROOT_FILE} here or in any folder above, so this is not inside a "
            f"tfrun live repository. Run tfrun inside one, or create a {ROOT_FILE} at its root."
        )
    return Path(root)


def split_env_region(component: str) -> tuple[str, str | None]:
    match = REGION.fullmatch(component)
    if match:
        return match["env"], match["region"]
    return component, None


def is_stack_dir(path: Path) -> bool:
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return STACK_FILE in names or any(
        name.endswith(".tf") and name not in GENERATED_NAMES for name in names
    )


def _walk(directory: Path, depth: int, root: Path, warn: Callable[[str], None]) -> Iterator[Path]:
    """Stack folders below `directory`, which is `depth` levels below the live root.

    A stack is its real folder: a symbolic link to a folder inside the live root is another
    name for a stack found where it really is (never a second stack with another key), and
    one that leads outside the live root, nowhere or round in a loop is never a stack.
    """
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
            continue
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir()
            is_link = entry.is_symlink()
        except OSError as exc:  # a loop of links
            warn(f"{path}: skipped, it cannot be followed ({exc.strerror}).")
            continue
        if is_link:
            _check_link(path, is_dir, root, warn)
            continue
        if not is_dir:
            continue
        if depth + 1 >= MIN_STACK_DEPTH and is_stack_dir(path):
            yield path
        if depth + 1 < MAX_STACK_DEPTH:
            yield from _walk(path, depth + 1, root, warn)


def _check_link(path: Path, is_dir: bool, root: Path, warn: Callable[[str], None]) -> None:
    """Warn about a link that looks like it was meant to be a stack and cannot be one."""
    target = Path(os.path.realpath(path))
    if not is_dir:
        if not target.exists():
            warn(f"{path}: skipped, a symbolic link to {target}, which does not exist.")
        return
    if target != root and root not in target.parents:
        warn(
            f"{path}: skipped, a symbolic link to {target}, outside the live root {root}; "
            "tfrun never runs terraform or writes files there."
        )


class Repository:
    """One live root: loads each config file once, however many stacks share it."""

    def __init__(self, root: Path) -> None:
        self.root = real_path(root)
        self._files: dict[Path, dict[str, Any]] = {}
        # Most stacks share their whole chain of config files (no stack.hcl of their own):
        # those share one merged Config, and each folder's tfrun.hcl is looked for once.
        self._configs: dict[tuple[Path, ...], Config] = {}
        self._chains: dict[Path, tuple[Path, ...]] = {}
        self._parsed = ParseCache(self.root / ".tfrun" / "cache" / "config.json")
        # What discovery passed over and a person should hear about (links that are not stacks).
        self.warnings: list[str] = []

    @classmethod
    def containing(cls, path: Path) -> Repository:
        return cls(find_root(path))

    @cached_property
    def root_config_file(self) -> Path:
        return self.root / ROOT_FILE

    @property
    def root_endpoint(self) -> str | None:
        """`endpoint` from the root config: a setting of the whole repository."""
        endpoint = self.root_settings.get("endpoint")
        return endpoint if isinstance(endpoint, str) else None

    @property
    def root_settings(self) -> dict[str, Any]:
        """What the root tfrun.hcl says, validated (not merged with any other file)."""
        return self._load(self.root_config_file, is_stack=False)

    def profiles(self) -> dict[str, str]:
        """Every AWS profile the root config names, with the state's region: what a sandbox
        must define."""
        settings = self.root_settings
        state, auth = settings.get("state") or {}, settings.get("auth") or {}
        named = [env.get("profile") for env in (settings.get("environments") or {}).values()]
        named += [state.get("profile"), auth.get("laptop_profile")]
        return {name: str(state.get("region")) for name in named if isinstance(name, str)}

    def _load(self, path: Path, *, is_stack: bool) -> dict[str, Any]:
        if path not in self._files:
            self._files[path] = self._parsed.load(
                path, is_root=path == self.root_config_file, is_stack=is_stack
            )
        return self._files[path]

    def config_files(self, stack_dir: Path) -> list[Path]:
        files = list(self._root_files(stack_dir))
        if os.path.isfile(os.path.join(stack_dir, STACK_FILE)):
            files.append(stack_dir / STACK_FILE)
        return files

    def _root_files(self, directory: Path) -> tuple[Path, ...]:
        """The tfrun.hcl files from the live root down to `directory`."""
        if directory not in self._chains:
            above: tuple[Path, ...] = ()
            if directory != self.root and directory != directory.parent:
                above = self._root_files(directory.parent)
            here = os.path.isfile(os.path.join(directory, ROOT_FILE))
            self._chains[directory] = (*above, directory / ROOT_FILE) if here else above
        return self._chains[directory]

    def stack_paths(self, under: Path) -> list[Path]:
        """Stack folders at or below `under`, sorted by path."""
        under = real_path(under)
        self._check_inside(under)
        depth = len(under.relative_to(self.root).parts)
        own = [under] if MIN_STACK_DEPTH <= depth <= MAX_STACK_DEPTH and is_stack_dir(under) else []
        return own + list(_walk(under, depth, self.root, self._warn))

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def stacks(self, under: Path | None = None) -> list[Stack]:
        # stack_paths gives resolved folders inside the root: no need to check them again.
        stacks = [self._stack(path) for path in self.stack_paths(under or self.root)]
        self._parsed.save()
        return stacks

    def _check_inside(self, path: Path) -> None:
        if path != self.root and self.root not in path.parents:
            raise ConfigError(f"{path}: this is outside the live root {self.root}.")

    def stack(self, path: Path) -> Stack:
        path = real_path(path)
        self._check_inside(path)
        return self._stack(path)

    def _stack(self, path: Path) -> Stack:
        rel_parts = path.relative_to(self.root).parts
        if len(rel_parts) < 2:
            raise ConfigError(
                f"{path}: a stack lives in a folder below an environment folder "
                f"(<env>-<region>/<stack>), and this is not one."
            )
        # What discovery would never call a stack is not one when named either: tfrun would
        # write a backend into a module's folder, or plan a folder no run-all ever reaches.
        skipped = [p for p in rel_parts if p in _SKIP_DIRS or p.startswith(".")]
        if skipped or len(rel_parts) > MAX_STACK_DEPTH:
            why = (
                f"a folder named {skipped[0]} is never a stack nor holds one"
                if skipped
                else f"a stack is at most {MAX_STACK_DEPTH - 1} levels below its environment "
                "folder (<env>-<region>/<stack> or <env>-<region>/<group>/<stack>)"
            )
            raise ConfigError(
                f"{path}: not a stack: {why}. Nothing ran. tfrun graph lists the stacks."
            )
        files = tuple(self.config_files(path))
        config = self._configs.get(files)
        if config is None:
            loaded = [
                (f, self._load(f, is_stack=f.name == STACK_FILE or f.parent == path)) for f in files
            ]
            config = self._configs[files] = self._parsed.build(loaded, self.root_config_file)
        folder_env, path_region = split_env_region(rel_parts[0])
        env = config.env or folder_env
        if env != folder_env and config.is_protected(folder_env):
            raise ConfigError(
                f'{path}: its config ({", ".join(str(f) for f in files)}) sets env = "{env}", '
                f"but the stack is in {rel_parts[0]}, a folder of the protected environment "
                f"'{folder_env}'. Protection follows the folder: a stack there is protected "
                "whatever its config says, so its environment cannot be changed. Move the "
                "stack to the other environment's folder instead."
            )
        region = config.region or path_region or GLOBAL_REGION
        if env not in config.environments:
            known = ", ".join(sorted(config.environments)) or "none"
            raise ConfigError(
                f"{path}: the environment '{env}' (from "
                f"{'its config' if config.env else 'the folder ' + rel_parts[0]}) is not in "
                f"'environments' in {self.root_config_file} (known: {known}). Add it there."
            )
        environment = config.environments[env]
        provider_region = (
            config.region
            or path_region
            or environment.region
            or config.default_region
            or config.state.region
        )
        assert provider_region is not None  # state.region is required
        name = "/".join(rel_parts[1:])
        key = config.key_template.format(
            env=env,
            region=region,
            stack=name,
            account_id=environment.account_id or "",
            repo=config.repo or _git_toplevel_name(self.root),
        )
        problem = key_path_problem(key)
        if problem:
            raise ConfigError(
                f"{path}: its state key {key!r} {problem} (from the template "
                f"{config.key_template!r} in {', '.join(str(f) for f in files)})."
            )
        return Stack(
            root=self.root,
            path=path,
            rel="/".join(rel_parts),
            env=env,
            region=region,
            provider_region=provider_region,
            name=name,
            key=key,
            config=config,
        )


_TOPLEVEL_CACHE: dict[Path, str] = {}


def _git_toplevel_name(path: Path) -> str:
    """The repository's name: the git top-level folder, else the live root's parent."""
    if path not in _TOPLEVEL_CACHE:
        name = path.parent.name
        for candidate in (path, *path.parents):
            if (candidate / ".git").exists():
                name = candidate.name
                break
        _TOPLEVEL_CACHE[path] = name
    return _TOPLEVEL_CACHE[path]
