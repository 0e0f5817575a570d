"""`tfrun fmt`: the config files (`tfrun.hcl`, `stack.hcl`) in HCL's canonical layout.

The layout is `terraform fmt`'s (HCL's own formatter, the one `terragrunt hclfmt` uses):
`=` aligned in each run of attributes, two-space indentation, one space around operators.
It changes only spacing, so comments, heredocs and values are kept as written. Each file's
text goes to terraform on stdin: terraform formats only `.tf`-like names given as paths.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tfrun import process
from tfrun.config import ROOT_FILE, STACK_FILE
from tfrun.errors import ConfigError, UsageError
from tfrun.terraform import BINARY_VARIABLE

CONFIG_NAMES = frozenset({ROOT_FILE, STACK_FILE})
_ERROR = re.compile(r"^Error: (?P<summary>.+)$", re.MULTILINE)
_WHERE = re.compile(r"on <stdin> line (?P<line>\d+)")


@dataclass(frozen=True)
class Formatted:
    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self, shown_as: str) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{shown_as}",
                tofile=f"b/{shown_as}",
            )
        )


def config_files(path: Path) -> list[Path]:
    """Every tfrun.hcl and stack.hcl at or below `path` (a folder, or one such file), sorted;
    hidden folders (.git, .terraform, .tfrun) are left out."""
    if path.is_file():
        if path.name not in CONFIG_NAMES:
            raise UsageError(
                f"{path}: tfrun fmt formats {ROOT_FILE} and {STACK_FILE} files only "
                "(terraform fmt formats .tf files)."
            )
        return [path]
    if not path.is_dir():
        raise UsageError(f"{path}: there is no such folder or file.")
    found = []
    for folder, subfolders, names in os.walk(path):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        found += [Path(folder) / name for name in sorted(names) if name in CONFIG_NAMES]
    return found


def format_file(path: Path) -> Formatted:
    """`path`'s text and its canonical layout. A file that does not parse is a ConfigError
    naming the file and line."""
    try:
        before = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read this file ({exc}).") from None
    binary = os.environ.get(BINARY_VARIABLE) or "terraform"
    outcome = process.run([binary, "fmt", "-no-color", "-"], path.parent, stdin=before)
    if outcome.returncode != 0:
        raise _parse_error(path, outcome.stderr)
    return Formatted(path, before, outcome.stdout)


def _parse_error(path: Path, stderr: str) -> ConfigError:
    error = _ERROR.search(stderr)
    if error is None:
        return ConfigError(f"{path}: terraform fmt could not format this file: {stderr.strip()}")
    where = _WHERE.search(stderr, error.end())
    # The detail is the last paragraph terraform prints under the error.
    detail = stderr[error.end() :].strip().split("\n\n")[-1].strip()
    line = f":{where['line']}" if where else ""
    return ConfigError(
        f"{path}{line}: {error['summary'].rstrip('.')}: {' '.join(detail.split())} "
        "tfrun fmt changes no file while one does not parse."
    )
