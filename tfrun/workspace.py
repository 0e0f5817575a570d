"""The live repository as every command sees it: its root, its stacks, what their .tf files
say and the dependency graph over them, each built once, when first asked for.

Commands load a `Workspace` and take what they need from it; none of them spells out
"repository → stacks → scan → graph" itself. The graph always spans the whole repository,
even when a command looks at part of it: a state key can name any stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from tfrun import scan, terraform
from tfrun.discovery import Repository, Stack, real_path
from tfrun.errors import ConfigError
from tfrun.generate import GeneratedFile

if TYPE_CHECKING:
    from tfrun import graph as graphs


class Workspace:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    @classmethod
    def load(cls, path: Path) -> Workspace:
        """The workspace whose live root holds `path` (or is below it: a repository's top)."""
        return cls(Repository.containing(path))

    @property
    def root(self) -> Path:
        return self.repo.root

    @cached_property
    def stacks(self) -> list[Stack]:
        """Every stack of the repository, sorted by path."""
        return self.repo.stacks()

    @cached_property
    def facts(self) -> Mapping[str, scan.StackFacts]:
        return scan.scan(self.root, self.stacks)

    @cached_property
    def graph(self) -> graphs.Graph:
        from tfrun import graph as graphs

        return graphs.build(self.stacks, self.facts)

    @cached_property
    def endpoint(self) -> str | None:
        """The local AWS endpoint generated files point at, if any."""
        return terraform.local_endpoint(self.repo)

    def start(self, path: Path | None) -> Path:
        """Where a command given `path` (default: the current folder) starts looking for
        stacks: that real folder, or the live root when it is above it (a repository's top);
        anywhere else is an error, never the whole repository."""
        start = real_path(path or Path.cwd())
        if start == self.root or self.root in start.parents:
            return start
        if start in self.root.parents:
            return self.root
        raise ConfigError(f"{path or start}: this is outside the live root {self.root}.")

    def under(self, path: Path | None) -> list[Stack]:
        """The stacks at or below `path` (see `start`); an error when there are none."""
        start = self.start(path)
        found = [s for s in self.stacks if s.path == start or start in s.path.parents]
        if not found:
            raise ConfigError(f"{start}: no stacks here or below.")
        return found

    def render(self, stack: Stack) -> list[GeneratedFile]:
        """The files tfrun generates in `stack`, for the endpoint in use."""
        return terraform.render(self.repo, stack, self.endpoint)
