"""The one reader of .tf files: what each stack's Terraform code says that tfrun needs.

It runs over every file of the repository on every `graph`, `affected` or `run-all`, so it
is built to be fast without skipping anything that matters:

1. A byte prefilter: a file that cannot hold what an extraction looks for is never lexed
   (`links`: a file without `terraform_remote_state` or a `module` token).
2. In a file that passes, a small lexer that knows HCL's strings, templates, comments and
   heredocs finds the top-level blocks (`lexer`). A block in the canonical shape (one plain
   item per line) is read by line patterns (`fast`); any other goes to python-hcl2, which
   decides (`parse`), in worker processes when there are many.
3. A content-keyed cache under `<live root>/.tfrun/cache/` (`cache`): facts are stored by the
   sha256 of the file's bytes, and a stat record (size, mtime, ctime, inode) per path saves
   even reading the file when nothing changed.

Three extractions share that machinery (`reader`), each with its own cache file:

* `links` (scan.json): hand-written remote-state reads, SSM parameters written and read by
  name, and local module calls with their inputs, values as written; `scanner` follows the
  module calls from folder to folder;
* `values` (values.json): variables, locals and variable files, read only for the folders
  where an expression `links` found refers to them;
* `settings` (settings.json): provider uses and `terraform` blocks, for `tfrun check` only.

`resolve` then evaluates each read where it is, in the stack or in the module instance that
holds it (`evaluate` over `expr`: the small, documented subset of HCL expressions that decide
a bucket, a key or a parameter's name).
"""

from __future__ import annotations

from tfrun.scan.blocks import Facts
from tfrun.scan.cache import CACHE_DIR, RACY_NS
from tfrun.scan.links import CACHE_FILE, CACHE_VERSION, LINKS
from tfrun.scan.reader import ScanStats
from tfrun.scan.reader import extract as _extract
from tfrun.scan.reads import ModuleCall, ParameterWrite, RemoteStateRead, StackFacts
from tfrun.scan.scanner import Scanner, own_reads, own_remote_state_reads, scan, ssm_edges
from tfrun.scan.settings import BackendBlock, FileSettings, TerraformBlock, file_settings

__all__ = [
    "CACHE_DIR",
    "CACHE_FILE",
    "CACHE_VERSION",
    "RACY_NS",  # to be read (tests wait it out); to change it, patch tfrun.scan.cache
    "BackendBlock",
    "Facts",
    "FileSettings",
    "ModuleCall",
    "ParameterWrite",
    "RemoteStateRead",
    "ScanStats",
    "Scanner",
    "StackFacts",
    "TerraformBlock",
    "extract",
    "file_settings",
    "own_reads",
    "own_remote_state_reads",
    "scan",
    "ssm_edges",
]


def extract(name: str, data: bytes) -> Facts:
    """The remote-state reads, SSM parameters and module calls in one file's bytes, values as
    written (see `links`)."""
    return _extract(LINKS, name, data)
