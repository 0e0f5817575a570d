"""`var.*` and `local.*` of one module instance, from what its folder's files say (`values`):
a stack's variable files and defaults, or a module call's arguments evaluated where the call is.
Each value is evaluated once, when first asked for."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfrun.scan import evaluate as ev
from tfrun.scan.evaluate import Bindings, Unresolved
from tfrun.scan.expr import show


@dataclass
class DirValues:
    """What a folder's files say its variables and locals are (the `values` facts)."""

    variables: dict[str, tuple[Path, dict[str, Any]]] = field(default_factory=dict)
    locals: dict[str, tuple[Path, dict[str, Any]]] = field(default_factory=dict)
    tfvars: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)  # in load order
    errors: list[str] = field(default_factory=list)
    whole: bool = False  # every item read, "unread" ones (see `values`) included


# A folder's values; `whole`: with the items the line patterns left unread parsed too.
Values = Callable[[Path, bool], DirValues]


_BUSY = object()  # a local being evaluated: met again, it refers to itself


class ModuleScope:
    """`var.*` and `local.*` of one module instance: a stack (its variable files, then the
    defaults) or a module call (its arguments, evaluated where the call is, then defaults)."""

    def __init__(
        self,
        directory: Path,
        values: Values,
        show_path: Callable[[Path], str],
        *,
        call: tuple[str, Mapping[str, Any], ModuleScope, Bindings] | None = None,
    ) -> None:
        self.directory = directory
        self._values = values
        self._show = show_path
        self._call = call  # (label, arguments, the caller's scope, the call's each/count)
        self._variables: dict[str, Any] = {}
        self._locals: dict[str, Any] = {}

    def _facts(self, whole: bool = False) -> DirValues:
        found = self._values(self.directory, whole)
        if found.errors:
            raise Unresolved(f"tfrun cannot read {found.errors[0]}")
        return found

    def variable(self, name: str) -> Any:
        if name not in self._variables:
            try:
                self._variables[name] = self._variable(name)
            except Unresolved as exc:
                self._variables[name] = exc
        found = self._variables[name]
        if isinstance(found, Unresolved):
            raise found
        return found

    def _variable(self, name: str) -> Any:
        facts = self._facts()
        if name not in facts.variables:
            raise Unresolved(f"var.{name} is not declared in {self._show(self.directory)}")
        entry = facts.variables[name][1]
        if entry.get("unread"):
            entry = self._facts(whole=True).variables[name][1]
        if self._call is None:
            setting = next(((p, v) for p, v in reversed(facts.tfvars) if name in v), None)
            if setting is not None:
                path, values = setting
                return _literal(values[name], lambda: f"var.{name} in {self._show(path)}")
            if "default" in entry:
                return _literal(entry["default"], lambda: f"the default of var.{name}")
            raise Unresolved(
                f"var.{name} has no value: it has no default, and no terraform.tfvars or "
                f"*.auto.tfvars in {self._show(self.directory)} sets it"
            )
        label, arguments, caller, bindings = self._call
        if name in arguments:
            try:
                return ev.evaluate(arguments[name], caller, bindings)
            except Unresolved as exc:
                raise Unresolved(
                    f"var.{name} is {label}'s input {name} = {show(arguments[name])}, and {exc}"
                ) from None
        if "default" in entry:
            return _literal(entry["default"], lambda: f"the default of var.{name}")
        raise Unresolved(f"var.{name} has no value: {label} does not set it, and it has no default")

    def local(self, name: str) -> Any:
        found = self._locals.get(name)
        if found is _BUSY:
            raise Unresolved(f"local.{name} refers to itself")
        if found is None and name not in self._locals:
            self._locals[name] = _BUSY
            try:
                found = self._local(name)
            except Unresolved as exc:
                found = exc
            self._locals[name] = found
        if isinstance(found, Unresolved):
            raise found
        return found

    def _local(self, name: str) -> Any:
        facts = self._facts()
        if name not in facts.locals:
            raise Unresolved(f"local.{name} is not defined in {self._show(self.directory)}")
        entry = facts.locals[name][1]
        if entry.get("unread"):
            entry = self._facts(whole=True).locals[name][1]
        if "value" not in entry:
            raise Unresolved(f"local.{name} could not be read in {self._show(self.directory)}")
        value = entry["value"]
        try:
            return ev.evaluate(value, self)
        except Unresolved as exc:
            raise Unresolved(f"local.{name} = {show(value)}, and {exc}") from None


def _literal(value: Any, what: Callable[[], str]) -> Any:
    try:
        return ev.evaluate(value, ev.NO_SCOPE)
    except Unresolved as exc:
        raise Unresolved(f"{what()} is not a literal value ({exc})") from None
