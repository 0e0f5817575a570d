"""`tfrun check [PATH] [--format text|json]`: lint the live repository, offline and fast.

Reads the config and .tf files (the scan's cache makes a second run cheap) and renders what
tfrun would generate, then hands it all to the pure rules in `tfrun.lint`. Exit 0 when there
is nothing to report, 1 with every finding listed, 4 when the configuration cannot be read at
all (the one error is shown, as for any command). Answered from the repository's picture
(tfrun/picture.py) while nothing it reads changed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from tfrun import fingerprint, lint, picture, scan, terraform_version
from tfrun.discovery import GENERATED_NAMES, Stack
from tfrun.errors import ConfigError, ExitCode
from tfrun.terraform import BINARY_VARIABLE
from tfrun.workspace import Workspace

FORMATS = ("text", "json")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read this file ({exc}).") from None


def _on_disk(stack: Stack) -> dict[str, str]:
    found = {}
    for name in sorted(GENERATED_NAMES):
        path = stack.path / name
        if path.is_file():
            found[name] = _read(path)
    return found


def findings(
    path: Path, answer: picture.Answer | None = None
) -> tuple[list[lint.Finding], list[Stack], Workspace]:
    """The findings about the stacks at or below `path`, those stacks and their workspace;
    what a person should hear on the way is said to `answer`."""
    answer = answer or picture.Answer()
    workspace = Workspace.load(path)
    chosen = workspace.under(path)
    for warning in workspace.repo.warnings:
        answer.say("info", f"warning: {warning}")
    facts = workspace.facts
    module_dirs = sorted({m for s in chosen for m in facts[s.rel].modules})
    # What the .tf files of the stacks (bar those tfrun generated) and of their modules say.
    settings = scan.file_settings(workspace.root, [*(s.path for s in chosen), *module_dirs])
    inputs = lint.Inputs(
        root=workspace.root,
        graph=workspace.graph,
        facts=facts,
        sources={s.rel: settings[s.path] for s in chosen},
        modules={m: settings[m] for m in module_dirs},
        generated={s.rel: workspace.render(s) for s in chosen},
        on_disk={s.rel: _on_disk(s) for s in chosen},
        terraform_version=_terraform_version(workspace.root, chosen, answer),
    )
    return lint.check(inputs, {s.rel for s in chosen}), chosen, workspace


def _terraform_version(root: Path, chosen: Sequence[Stack], answer: picture.Answer) -> str | None:
    """The version of the terraform the stacks run with, asked once and only when a rule
    needs it; None (and a note that the rule was skipped) when it cannot be had."""
    if not any(lint.needs_terraform_version(stack) for stack in chosen):
        return None
    binary = os.environ.get(BINARY_VARIABLE) or "terraform"
    found = shutil.which(binary)
    if found is None:
        why = f"'{binary}' is not on PATH"
    else:
        version = terraform_version.binary_version(
            found, root, os.environ, root / terraform_version.CACHE_FILE
        )
        if version is not None:
            return version
        why = f"'{binary} version -json' gave no version"
    answer.say("info", f"note: {why}, so the rule dynamodb-only-lock was skipped.")
    return None


def check(path: Path, output: str = "text") -> int:
    start = os.path.realpath(path)
    root = fingerprint.find_root(picture.folder_of(start))
    sandbox = picture.sandbox_state(root) if root is not None else None
    # The rule on DynamoDB-only locks asks the binary its version.
    binary = shutil.which(os.environ.get(BINARY_VARIABLE) or "terraform")
    version = fingerprint.signature(binary) if binary else None
    key = picture.key_of("check", os.environ, output, start, sandbox, version)
    return picture.answered(start, key, lambda: _checked(path, output)).show()


def _checked(path: Path, output: str) -> tuple[picture.Answer, set[str]]:
    answer = picture.Answer()
    found, chosen, workspace = findings(path, answer)
    answer.code = _report(found, chosen, output, answer)
    return answer, picture.module_dirs(workspace.facts)


def _report(
    found: list[lint.Finding], chosen: list[Stack], output: str, answer: picture.Answer
) -> int:
    if output == "json":
        document = {
            "ok": not found,
            "stacks": len(chosen),
            "findings": [f.to_json() for f in found],
            "rules": lint.RULES,
        }
        answer.say("out", json.dumps(document, indent=2))
    else:
        for finding in found:
            answer.say("out", str(finding))
    if not found:
        if output == "text":
            answer.say("info", f"no findings in {len(chosen)} stacks.")
        return int(ExitCode.OK)
    if output == "text":
        stacks = len({f.stack for f in found})
        rules = sorted({f.rule for f in found})
        answer.say(
            "error",
            f"{len(found)} finding{'s' if len(found) > 1 else ''} in {stacks} of "
            f"{len(chosen)} stacks ({', '.join(rules)}).",
        )
    return int(ExitCode.STACK_FAILED)
