"""A stack's reads, each evaluated where it is: in the stack with its variable files, or in
the module instance that holds it, whose variables are the call site's arguments.

The walk goes from a stack down its local module calls (at any depth, one walk per call and
per instance of a call's for_each or count), into the modules that hold something to resolve.
Values come from `values` (variables, locals, variable files), read only when an expression
asks for one. What cannot be evaluated is a read with a `problem` that says which expression
and why (see `evaluate`); it is never a guess.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tfrun.scan import evaluate as ev
from tfrun.scan import expr
from tfrun.scan.evaluate import Bindings, Unresolved
from tfrun.scan.expr import show
from tfrun.scan.reads import PARAMETER, ModuleCall, ParameterWrite, RemoteStateRead
from tfrun.scan.scope import ModuleScope, Values

# A chain of modules deeper than this is not followed (Terraform itself would be in trouble).
MAX_DEPTH = 16
# An SSM parameter write whose name is evaluated only once the reads are known.
PendingWrite = tuple[Path, dict[str, Any], ModuleScope, tuple[ModuleCall, ...]]


@dataclass
class Found:
    """What the walk from one stack found."""

    reads: list[RemoteStateRead] = field(default_factory=list)
    parameter_reads: list[RemoteStateRead] = field(default_factory=list)
    pending_writes: list[PendingWrite] = field(default_factory=list)


DEFAULT_WORKSPACE_PREFIX = "env:"


@dataclass(frozen=True)
class Dir:
    """What a folder's own files say (the `links` facts), values as written."""

    reads: tuple[tuple[Path, dict[str, Any]], ...] = ()
    # (file, module call, the module's folder; None when its source is not a local folder)
    calls: tuple[tuple[Path, dict[str, Any], Path | None], ...] = ()
    parameters: tuple[tuple[Path, dict[str, Any]], ...] = ()

    @property
    def modules(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(m for _, _, m in self.calls if m is not None))


class Resolver:
    def __init__(
        self,
        root: Path,
        dirs: Mapping[Path, Dir],
        values: Values,
        *,
        parameters: bool,
    ) -> None:
        self.root = root
        self.dirs = dirs
        self.values = values
        self.parameters = parameters
        # Writes matter only to reads: with no parameter read anywhere, none is evaluated.
        self.any_parameter_read = parameters and any(
            not p["writes"] for d in dirs.values() for _, p in d.parameters
        )
        self._interesting: dict[Path, bool] = {}
        self._read_heads: tuple[list[RemoteStateRead], _Heads] | None = None

    def show_path(self, path: Path) -> str:
        text, prefix = str(path), str(self.root) + os.sep
        if text.startswith(prefix):
            return text[len(prefix) :].replace(os.sep, "/")
        return Path(os.path.relpath(path, self.root)).as_posix()

    def stack(self, directory: Path) -> Found:
        """The reads, parameter reads and (not yet evaluated) parameter writes of a stack and
        the modules it calls."""
        out = Found()
        scope = ModuleScope(directory, self.values, self.show_path)
        self._walk(directory, scope, (), {directory}, out)
        return out

    def writes(
        self, pending: list[PendingWrite], reads: list[RemoteStateRead]
    ) -> list[ParameterWrite]:
        """The parameters written, evaluated only where some read of them could match: in
        most repositories few of the names written are ever read by another stack."""
        if not reads:
            return []
        if self._read_heads is None or self._read_heads[0] is not reads:
            self._read_heads = (reads, _Heads(reads))
        could_be_read = self._read_heads[1]
        out: list[ParameterWrite] = []
        for file, raw, scope, via in pending:
            if not could_be_read(_literal_head(raw["param"])):
                continue
            for label, bindings in _instances(raw, scope):
                try:
                    name = _text(raw["param"], scope, bindings)
                except Unresolved:
                    continue  # a name no read can be matched to
                what = f"{PARAMETER}.{raw['name']}{label}"
                out.append(ParameterWrite(name, file, raw["line"], what, via))
        return out

    def own_reads(self, directory: Path) -> list[RemoteStateRead]:
        """The reads in the folder's own files, each with its whole config evaluated."""
        scope = ModuleScope(directory, self.values, self.show_path)
        found: list[RemoteStateRead] = []
        for file, raw in self.dirs[directory].reads:
            found.extend(self._reads(file, raw, scope, (), whole_config=True))
        return found

    def _has_work(self, directory: Path, chain: frozenset[Path] = frozenset()) -> bool:
        """Whether the folder, or a module it calls, holds something to resolve."""
        if directory in self._interesting:
            return self._interesting[directory]
        d = self.dirs.get(directory, Dir())
        found = bool(d.reads) or any(
            self.any_parameter_read if p["writes"] else self.parameters for _, p in d.parameters
        )
        inner = chain | {directory}
        found = found or any(m not in inner and self._has_work(m, inner) for m in d.modules)
        if not chain or found:
            self._interesting[directory] = found  # a "no" inside a loop may not be final
        return found

    def _walk(
        self,
        directory: Path,
        scope: ModuleScope,
        via: tuple[ModuleCall, ...],
        chain: set[Path],
        out: Found,
    ) -> None:
        d = self.dirs.get(directory, Dir())
        for file, raw in d.reads:
            out.reads.extend(self._reads(file, raw, scope, via))
        for file, raw in d.parameters:
            if "param" not in raw:
                continue
            if not raw["writes"] and self.parameters:
                out.parameter_reads.extend(self._parameter_reads(file, raw, scope, via))
            elif raw["writes"] and self.any_parameter_read:
                out.pending_writes.append((file, raw, scope, via))
        if len(chain) > MAX_DEPTH:
            return
        for file, call, module in d.calls:
            if module is None or module in chain or not self._has_work(module):
                continue
            arguments = call.get("args") or {}
            for label, bindings in _instances(call, scope):
                name = f"{call['name']}{label}"
                inner = ModuleScope(
                    module,
                    self.values,
                    self.show_path,
                    call=(f"module.{name}", arguments, scope, bindings),
                )
                step = ModuleCall(name, file, call["line"])
                self._walk(module, inner, (*via, step), chain | {module}, out)

    # ------------------------------------------------------------------ remote state

    def _reads(
        self,
        file: Path,
        raw: dict[str, Any],
        scope: ModuleScope,
        via: tuple[ModuleCall, ...],
        *,
        whole_config: bool = False,
    ) -> list[RemoteStateRead]:
        where = {"file": file, "line": raw["line"], "name": raw["name"], "via": via}
        return [
            _read({**where, "instance": label}, raw, scope, bindings, whole_config)
            for label, bindings in _instances(raw, scope)
        ]

    # ------------------------------------------------------------------ SSM parameters

    def _parameter_reads(
        self,
        file: Path,
        raw: dict[str, Any],
        scope: ModuleScope,
        via: tuple[ModuleCall, ...],
    ) -> list[RemoteStateRead]:
        found = []
        for label, bindings in _instances(raw, scope):
            try:
                name: str | None = _text(raw["param"], scope, bindings)
                problem = None
                parts = None
            except Unresolved as exc:
                name = None
                problem = (
                    f"its name is computed ({show(raw['param'])}), so tfrun cannot tell which "
                    f"stack writes it: {exc}"
                )
                parts = ev.pattern(raw["param"], scope, bindings)
            read = RemoteStateRead(file, raw["line"], raw["name"], None, None, name, problem)
            found.append(replace(read, kind=PARAMETER, instance=label, via=via, key_parts=parts))
        return found


class _Heads:
    """Whether a name that starts with a given text could be one a parameter read reads."""

    def __init__(self, reads: list[RemoteStateRead]) -> None:
        self.names = [r.key for r in reads if r.key is not None]
        self.starts = [(r.key_parts or (None,))[0] for r in reads if r.key is None]
        self.memo: dict[str, bool] = {}

    def __call__(self, head: str) -> bool:
        if head not in self.memo:
            self.memo[head] = any(n.startswith(head) for n in self.names) or any(
                start is None or start.startswith(head) or head.startswith(start)
                for start in self.starts
            )
        return self.memo[head]


def _literal_head(value: Any) -> str:
    """The text a string value certainly starts with."""
    node = expr.parse_value(value) if isinstance(value, str) else None
    if isinstance(node, expr.Literal) and isinstance(node.value, str):
        return node.value
    if isinstance(node, expr.Template) and isinstance(node.parts[0], str):
        return node.parts[0]
    return ""


def _instances(raw: Mapping[str, Any], scope: ModuleScope) -> list[tuple[str, Bindings]]:
    return ev.instances(
        raw.get("for_each"),
        raw.get("count"),
        scope,
        has_for_each="for_each" in raw,
        has_count="count" in raw,
    )


def _text(value: Any, scope: ev.Scope, bindings: Bindings) -> str:
    found = ev.evaluate(value, scope, bindings)
    if found is None or isinstance(found, list | dict | tuple):
        raise Unresolved(f"it is {'null' if found is None else 'not a string'}")
    return ev.to_text(found)


def _read(
    where: dict[str, Any],
    raw: dict[str, Any],
    scope: ModuleScope,
    bindings: Bindings,
    whole_config: bool,
) -> RemoteStateRead:
    """One instance of a remote-state block: what it reads, or why that is not known."""
    try:
        backend = _text(raw.get("backend"), scope, bindings)
    except Unresolved as exc:
        why = f"its backend is not a plain string ({show(raw.get('backend'))}): {exc}"
        return RemoteStateRead(**where, backend=None, bucket=None, key=None, problem=why)
    base = {**where, "backend": backend, "bucket": None, "key": None}
    if backend != "s3":
        return RemoteStateRead(**base, problem=f'it reads the "{backend}" backend, not s3')
    config: Any = raw.get("config")
    evaluated = not isinstance(config, dict)
    if evaluated:
        try:
            config = ev.evaluate(config, scope, bindings)
        except Unresolved as exc:
            config = exc
        if not isinstance(config, dict):
            why = f": {config}" if isinstance(config, Unresolved) else ""
            return RemoteStateRead(
                **base,
                problem=f"its config is not a plain map {{ bucket = ..., key = ... }} "
                f"({show(raw.get('config'))}){why}",
            )

    def value(name: str, default: Any = None) -> Any:
        if name not in config:
            return default
        item = config[name]
        if evaluated:
            if item is None or isinstance(item, list | dict | tuple):
                raise Unresolved(f"it is {'null' if item is None else 'not a string'}")
            return ev.to_text(item)
        return _text(item, scope, bindings)

    def parts(name: str) -> ev.Pattern | None:
        if evaluated or name not in config:
            return None
        return ev.pattern(config[name], scope, bindings)

    problem = None
    key = bucket = None
    if "key" not in config:
        problem = "its config has no key"
    else:
        try:
            key = value("key")
        except Unresolved as exc:
            problem = (
                f"its key is computed ({show(config['key'])}), so tfrun cannot tell whose it "
                f"is: {exc}"
            )
    try:
        bucket = value("bucket")
    except Unresolved as exc:
        problem = problem or (
            f"its bucket is computed ({show(config['bucket'])}), so tfrun cannot place it: {exc}"
        )
    if problem is None and bucket is None:
        problem = "its config has no bucket"
    workspace_unknown = False
    if problem is None:
        assert key is not None
        workspace_unknown = True
        try:
            key = _workspace_key(raw, key, value, scope, bindings)
            workspace_unknown = False
        except Unresolved as exc:
            problem = (
                f"its workspace is not known, so tfrun cannot tell whose state it reads: {exc}"
            )
    # In a scan, the config only when it is literal: an override file (tfrun_override.tf)
    # is written from the evaluated one, asked for stack by stack (`own_reads`).
    whole = _whole(raw.get("config"), scope if whole_config else ev.NO_SCOPE, bindings)
    base["bucket"] = bucket
    if problem is not None:
        return RemoteStateRead(
            **base,
            problem=problem,
            bucket_parts=parts("bucket") if bucket is None else (bucket,),
            # A known key under an unknown workspace is no known object key.
            key_parts=parts("key") if key is None else None if workspace_unknown else (key,),
            config=whole,
        )
    base["key"] = key
    return RemoteStateRead(**base, config=whole)


def _workspace_key(
    raw: dict[str, Any],
    key: str,
    value: Callable[[str, Any], Any],
    scope: ModuleScope,
    bindings: Bindings,
) -> str:
    """The object key the S3 backend reads: `key` in the default workspace, else
    `<workspace_key_prefix>/<workspace>/<key>`."""
    workspace = ev.WORKSPACE
    if "workspace" in raw:
        try:
            workspace = _text(raw["workspace"], scope, bindings)
        except Unresolved as exc:
            raise Unresolved(f"workspace = {show(raw['workspace'])}: {exc}") from None
    if workspace == ev.WORKSPACE:
        return key
    prefix = value("workspace_key_prefix", DEFAULT_WORKSPACE_PREFIX)
    return f"{prefix}/{workspace}/{key}"


def _whole(config: Any, scope: ev.Scope, bindings: Bindings) -> dict[str, Any] | None:
    """The whole config when every value in it evaluates (an override file copies it)."""
    try:
        found = ev.evaluate(config, scope, bindings)
    except Unresolved:
        return None
    return found if isinstance(found, dict) else None
