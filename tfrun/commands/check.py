"""`tfrun check [PATH] [--format text|json]`: lint the live repository, offline and fast.

Reads the config and .tf files (the scan's cache makes a second run cheap) and renders what
tfrun would generate, then hands it all to the pure rules in `tfrun.lint`. Exit 0 when there
is nothing to report, 1 with every finding listed, 4 when the configuration cannot be read at
all (the one error is shown, as for any command).
"""

from __future__ import annotations

import json
from pathlib import Path

from tfrun import graph, lint, scan, terraform, ui
from tfrun.discovery import GENERATED_NAMES, Repository, Stack
from tfrun.errors import ConfigError, ExitCode
from tfrun.generate import SIGNATURE
from tfrun.lint import SourceFile

FORMATS = ("text", "json")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read this file ({exc}).") from None


def _tf_files(folder: Path) -> list[SourceFile]:
    return [SourceFile(p, _read(p)) for p in sorted(folder.glob("*.tf")) if p.is_file()]


def _own_files(stack: Stack) -> list[SourceFile]:
    """The stack's .tf files, except those tfrun generated (a person's file of a generated
    name is the stack's own, and the rules look at it)."""
    return [
        f
        for f in _tf_files(stack.path)
        if not (f.path.name in GENERATED_NAMES and f.text.startswith(SIGNATURE))
    ]


def _on_disk(stack: Stack) -> dict[str, str]:
    found = {}
    for name in sorted(GENERATED_NAMES):
        path = stack.path / name
        if path.is_file():
            found[name] = _read(path)
    return found


def findings(path: Path) -> tuple[list[lint.Finding], list[Stack]]:
    """The findings about the stacks at or below `path`, and those stacks."""
    repo = Repository.containing(path)
    start = path.resolve()
    if repo.root not in (start, *start.parents):
        start = repo.root  # from the repository's top, as CI jobs run it
    everything = repo.stacks()
    chosen = [s for s in everything if s.path == start or start in s.path.parents]
    if not chosen:
        raise ConfigError(f"{start}: no stacks here or below.")
    facts = scan.scan(repo.root, everything)
    # The graph spans the whole repository: a state key or a cycle can involve any stack.
    whole = graph.build(everything, facts)
    module_dirs = sorted({m for s in chosen for m in facts[s.rel].modules})
    inputs = lint.Inputs(
        root=repo.root,
        graph=whole,
        facts=facts,
        sources={s.rel: _own_files(s) for s in chosen},
        modules={m: _tf_files(m) for m in module_dirs},
        generated={s.rel: terraform.render(repo, s) for s in chosen},
        on_disk={s.rel: _on_disk(s) for s in chosen},
    )
    return lint.check(inputs, {s.rel for s in chosen}), chosen


def check(path: Path, output: str = "text") -> int:
    found, chosen = findings(path)
    if output == "json":
        document = {
            "ok": not found,
            "stacks": len(chosen),
            "findings": [f.to_json() for f in found],
            "rules": lint.RULES,
        }
        ui.out(json.dumps(document, indent=2))
    else:
        for finding in found:
            ui.out(str(finding))
    if not found:
        if output == "text":
            ui.info(f"no findings in {len(chosen)} stacks.")
        return int(ExitCode.OK)
    if output == "text":
        stacks = len({f.stack for f in found})
        rules = sorted({f.rule for f in found})
        ui.error(
            f"{len(found)} finding{'s' if len(found) > 1 else ''} in {stacks} of "
            f"{len(chosen)} stacks ({', '.join(rules)})."
        )
    return int(ExitCode.STACK_FAILED)
