"""The evaluator: the value of the expressions that decide a read's bucket and key, from what
the repository's files say, with no terraform process (docs/graph.md lists the subset).

Pure functions over values as python-hcl2 gives them (strings are templates; `expr` parses
them). What they can reach: variables and locals through a `Scope`, `each.key`/`each.value`
and `count.index` through `Bindings`, `terraform.workspace` (always "default": tfrun stacks
use no other workspace), and the functions in `FUNCTIONS`. Everything else (a data source, a
resource, a module output, a variable with no value, a function not in the table, an
expression `expr` does not read) raises `Unresolved` with the reason: a value is known, or it
is not, and it is never guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from tfrun.scan import expr
from tfrun.scan.expr import Node
from tfrun.scan.functions import FUNCTIONS
from tfrun.scan.hclvalues import HclSet as HclSet
from tfrun.scan.hclvalues import Unresolved as Unresolved
from tfrun.scan.hclvalues import as_bool, as_index, as_number, kind
from tfrun.scan.hclvalues import to_text as to_text

WORKSPACE = "default"


class Scope(Protocol):
    """Where `var.NAME` and `local.NAME` come from (one module instance)."""

    def variable(self, name: str) -> Any: ...

    def local(self, name: str) -> Any: ...


class NoScope:
    """For values that may refer to nothing: variable defaults, tfvars."""

    def variable(self, name: str) -> Any:
        raise Unresolved(f"var.{name} cannot be used here")

    def local(self, name: str) -> Any:
        raise Unresolved(f"local.{name} cannot be used here")


NO_SCOPE = NoScope()


@dataclass(frozen=True)
class Bindings:
    """`each` and `count` in one instance of a block with for_each or count."""

    each: tuple[Any, Any] | None = None  # (each.key, each.value)
    count: int | None = None
    unknown: str | None = None  # why they are not known (a for_each tfrun cannot evaluate)


NO_BINDINGS = Bindings()


def evaluate(value: Any, scope: Scope, bindings: Bindings = NO_BINDINGS) -> Any:
    """A value as python-hcl2 gives it (a template string, a list, a map, a number...)."""
    if isinstance(value, str):
        if "{" not in value:
            return value
        return evaluate_node(expr.parse_value(value), scope, bindings)
    if isinstance(value, list):
        return [evaluate(item, scope, bindings) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = evaluate(key, scope, bindings) if "{" in key else key
            out[to_text(name)] = evaluate(item, scope, bindings)
        return out
    return value


def evaluate_node(node: Node, scope: Scope, bindings: Bindings = NO_BINDINGS) -> Any:
    if isinstance(node, expr.Literal):
        return node.value
    if isinstance(node, expr.Template):
        return "".join(
            part if isinstance(part, str) else to_text(evaluate_node(part, scope, bindings))
            for part in node.parts
        )
    if isinstance(node, expr.GetAttr | expr.Index):
        return _traversal(node, scope, bindings)
    if isinstance(node, expr.Call):
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise Unresolved(f"tfrun does not evaluate the function {node.name}()")
        return function([evaluate_node(arg, scope, bindings) for arg in node.args])
    if isinstance(node, expr.Conditional):
        condition = evaluate_node(node.condition, scope, bindings)
        branch = node.yes if as_bool(condition, "a condition") else node.no
        return evaluate_node(branch, scope, bindings)
    if isinstance(node, expr.Binary):
        return _binary(node, scope, bindings)
    if isinstance(node, expr.Unary):
        operand = evaluate_node(node.operand, scope, bindings)
        if node.op == "!":
            return not as_bool(operand, "the operand of !")
        return -as_number(operand, "the operand of -")
    if isinstance(node, expr.TupleExpr):
        return [evaluate_node(item, scope, bindings) for item in node.items]
    if isinstance(node, expr.ObjectExpr):
        return {
            to_text(evaluate_node(key, scope, bindings)): evaluate_node(value, scope, bindings)
            for key, value in node.items
        }
    if isinstance(node, expr.Name):
        raise Unresolved(f"{node.name} alone is not a value")
    raise Unresolved(f"tfrun does not evaluate {node.what}")


# ---------------------------------------------------------------------------- references

# Roots whose values exist only once terraform runs.
_AT_RUN_TIME = {
    "data": "is read by terraform when it runs",
    "module": "is a module's output, known only when terraform runs",
    "self": "is known only when terraform runs",
    "path": "is a path of terraform's run, which tfrun does not evaluate",
}


def reference_text(node: Node) -> str:
    """A traversal as written: `data.aws_caller_identity.current.account_id`."""
    if isinstance(node, expr.Name):
        return node.name
    if isinstance(node, expr.GetAttr):
        return f"{reference_text(node.target)}.{node.name}"
    if isinstance(node, expr.Index):
        key = node.key
        shown = json.dumps(key.value) if isinstance(key, expr.Literal) else "[…]"
        return f"{reference_text(node.target)}[{shown}]"
    return "(…)"


def _root(node: Node) -> tuple[str | None, list[expr.GetAttr | expr.Index]]:
    """The first word of a traversal and its steps, outermost last."""
    steps: list[expr.GetAttr | expr.Index] = []
    while isinstance(node, expr.GetAttr | expr.Index):
        steps.append(node)
        node = node.target
    steps.reverse()
    return (node.name if isinstance(node, expr.Name) else None), steps


def _traversal(node: expr.GetAttr | expr.Index, scope: Scope, bindings: Bindings) -> Any:
    root, steps = _root(node)
    first = steps[0]
    if root is None:
        value = evaluate_node(first.target, scope, bindings)
        rest = steps
    elif not isinstance(first, expr.GetAttr):
        raise Unresolved(f"{reference_text(node)} is not a value")
    else:
        value = _reference(root, first.name, node, scope, bindings)
        rest = steps[1:]
    for step in rest:
        if isinstance(step, expr.GetAttr):
            value = _get(value, step.name, node)
        else:
            assert isinstance(step, expr.Index)
            value = _get(value, evaluate_node(step.key, scope, bindings), node)
    return value


def _reference(root: str, name: str, whole: Node, scope: Scope, bindings: Bindings) -> Any:
    if root == "var":
        return scope.variable(name)
    if root == "local":
        return scope.local(name)
    if root == "terraform" and name == "workspace":
        return WORKSPACE
    if root in ("each", "count"):
        if bindings.unknown is not None:
            raise Unresolved(bindings.unknown)
        if root == "each" and bindings.each is not None and name in ("key", "value"):
            return bindings.each[0] if name == "key" else bindings.each[1]
        if root == "count" and bindings.count is not None and name == "index":
            return bindings.count
        raise Unresolved(
            f"{root}.{name} is not set here (the block has no matching "
            f"{'for_each' if root == 'each' else 'count'})"
        )
    text = reference_text(whole)
    if root in _AT_RUN_TIME:
        raise Unresolved(f"{text} {_AT_RUN_TIME[root]}")
    raise Unresolved(f"{text} is a resource's attribute, known only when terraform runs")


def _get(value: Any, key: Any, whole: Node) -> Any:
    if isinstance(value, dict):
        name = to_text(key)
        if name not in value:
            raise Unresolved(f"{reference_text(whole)}: the map has no key {json.dumps(name)}")
        return value[name]
    if isinstance(value, list) and not isinstance(value, HclSet):
        at = as_index(key)
        if not 0 <= at < len(value):
            raise Unresolved(f"{reference_text(whole)}: index {at} is out of range")
        return value[at]
    raise Unresolved(f"{reference_text(whole)}: {kind(value)} cannot be indexed")


# ---------------------------------------------------------------------------- operators


def _binary(node: expr.Binary, scope: Scope, bindings: Bindings) -> Any:
    left = evaluate_node(node.left, scope, bindings)
    right = evaluate_node(node.right, scope, bindings)
    op = node.op
    if op in ("&&", "||"):
        p, q = as_bool(left, f"the left of {op}"), as_bool(right, f"the right of {op}")
        return (p and q) if op == "&&" else (p or q)
    if op in ("==", "!="):
        same = _normal(left) == _normal(right)
        return same if op == "==" else not same
    a, b = as_number(left, f"the left of {op}"), as_number(right, f"the right of {op}")
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def _normal(value: Any) -> Any:
    """For ==: HCL compares type and value; a bool is no number here as in HCL."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return (type(value).__name__, value)


# ---------------------------------------------------------------------------- functions

# ---------------------------------------------------------------- instances and patterns


def instances(
    for_each: Any, count: Any, scope: Scope, *, has_for_each: bool, has_count: bool
) -> list[tuple[str, Bindings]]:
    """(instance label, bindings) per instance of a block: `["network"]` per element of its
    for_each, `[0]` per index of its count, one unlabelled instance without either. When they
    cannot be evaluated: one instance whose `each`/`count` say why."""
    if not has_for_each and not has_count:
        return [("", NO_BINDINGS)]
    if has_for_each and has_count:
        return [("", Bindings(unknown="the block has both count and for_each"))]
    what, raw = ("for_each", for_each) if has_for_each else ("count", count)
    try:
        value = evaluate(raw, scope)
        if has_count:
            number = as_number(value, "count")
            if number != int(number) or number < 0:
                raise Unresolved(f"count is {number}, not a whole number of instances")
            return [(f"[{i}]", Bindings(count=i)) for i in range(int(number))]
        if isinstance(value, dict):
            return [(f"[{json.dumps(k)}]", Bindings(each=(k, value[k]))) for k in sorted(value)]
        if isinstance(value, HclSet):
            return [(f"[{json.dumps(k)}]", Bindings(each=(k, k))) for k in value]
        raise Unresolved(
            f"for_each is {kind(value)}; Terraform takes a map or a set (toset([...]))"
        )
    except Unresolved as exc:
        return [("", Bindings(unknown=f"its {what} ({expr.show(raw)}) is not known: {exc}"))]


Pattern = tuple[str | None, ...]  # known text, and None for each part tfrun cannot evaluate


def pattern(value: Any, scope: Scope, bindings: Bindings = NO_BINDINGS) -> Pattern:
    """What is known of a string value: its literal text and the parts that evaluate."""
    if not isinstance(value, str):
        return (None,)
    node = expr.parse_value(value)
    pieces = node.parts if isinstance(node, expr.Template) else (node,)
    parts: list[str | None] = []
    for piece in pieces:
        text: str | None
        if isinstance(piece, str):
            text = piece
        else:
            try:
                text = to_text(evaluate_node(piece, scope, bindings))
            except Unresolved:
                text = None
        last = parts[-1] if parts else None
        if text is not None and last is not None:
            parts[-1] = last + text
        else:
            parts.append(text)
    return tuple(parts)


def matches(parts: Pattern | None, text: str) -> bool:
    """Whether `text` could be the value whose known parts are `parts` (None: nothing known)."""
    if parts is None:
        return True
    regex = "".join(".*" if part is None else re.escape(part) for part in parts)
    return re.fullmatch(regex, text, re.S) is not None
