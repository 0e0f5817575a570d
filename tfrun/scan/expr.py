"""A small parser for the HCL expressions that decide a read's bucket and key, in the form
python-hcl2 gives them: every string value is a template (`"${var.env}/network.tfstate"`),
and an expression written bare is a template that holds it alone (`var.env` arrives as
`"${var.env}"`, `format("%s", var.env)` as `"${format(\\"%s\\", var.env)}"`).

What it reads, and nothing more:

* templates: text, `${ expression }`, the escapes `$${` and `%%{`; inside an expression, quoted
  strings with HCL's backslash escapes and templates of their own;
* literals: numbers, `true`, `false`, `null`;
* references and traversals: `var.env`, `local.keys["staging"]`, `each.key`, `var.list[0]`,
  `local.map.key`;
* function calls, tuples `[a, b]`, objects `{ k = v }`, conditionals `a ? b : c`,
  `==` `!=` `<` `>` `<=` `>=` `&&` `||` `!`, a leading `-`, parentheses.

Anything else (template directives `%{ if }`, for expressions, splats, arithmetic, `...`
expansion, heredocs inside an expression) parses to an `Opaque` node that names what it is:
the evaluator reports it as not evaluated, it never guesses. Parsing never raises.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeAlias


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Template:
    parts: tuple[str | Node, ...]  # literal text and interpolated expressions, in order


@dataclass(frozen=True)
class Name:
    """The first word of a reference: var, local, each, count, terraform, data, module..."""

    name: str


@dataclass(frozen=True)
class GetAttr:
    target: Node
    name: str


@dataclass(frozen=True)
class Index:
    target: Node
    key: Node


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class TupleExpr:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class ObjectExpr:
    items: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Conditional:
    condition: Node
    yes: Node
    no: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    op: str  # "!" or "-"
    operand: Node


@dataclass(frozen=True)
class Opaque:
    """Something this parser does not read; `what` says what, for the message."""

    what: str


Node: TypeAlias = (
    Literal
    | Template
    | Name
    | GetAttr
    | Index
    | Call
    | TupleExpr
    | ObjectExpr
    | Conditional
    | Binary
    | Unary
    | Opaque
)


class _Stop(Exception):
    """Inside the parser: what it met is not in the subset (the message says what)."""


_SPACE = re.compile(r"(?:\s|#[^\n]*|//[^\n]*|/\*.*?\*/)*", re.S)
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][\w-]*")
_FOR = re.compile(r"for\s")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_KEYWORDS = {"true": True, "false": False, "null": None}
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")


@lru_cache(maxsize=4096)
def parse_value(text: str) -> Node:
    """A string value as python-hcl2 gives it. A template that is one interpolation and
    nothing else is that expression, whatever its type (HCL's own rule: `"${var.list}"` is the
    list, not its text)."""
    if "${" not in text and "%{" not in text:
        return Literal(text)  # most values, the quick way (`$${` was not in it either)
    parser = _Parser(text)
    try:
        template = parser.template(quoted=False)
    except _Stop as stop:
        return Opaque(str(stop))
    return _unwrap(template)


def _unwrap(template: Template) -> Node:
    if len(template.parts) == 1 and not isinstance(template.parts[0], str):
        return template.parts[0]
    if all(isinstance(part, str) for part in template.parts):
        return Literal("".join(str(part) for part in template.parts))
    return template


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -------------------------------------------------------------- templates

    def template(self, *, quoted: bool) -> Template:
        """Text up to the end (python-hcl2's top-level strings, escapes already resolved) or
        up to the closing quote (a string inside an expression, escapes as written)."""
        text, size = self.text, len(self.text)
        parts: list[str | Node] = []
        chunk: list[str] = []
        while True:
            if self.pos >= size:
                if quoted:
                    raise _Stop("a string with no closing quote")
                break
            ch = text[self.pos]
            if quoted and ch == '"':
                self.pos += 1
                break
            if quoted and ch == "\\":
                chunk.append(self._escape())
                continue
            if text.startswith(("$${", "%%{"), self.pos):
                chunk.append(ch + "{")
                self.pos += 3
                continue
            if text.startswith("%{", self.pos):
                raise _Stop("a template directive (%{ ... })")
            if text.startswith("${", self.pos):
                if chunk:
                    parts.append("".join(chunk))
                    chunk = []
                self.pos += 2
                if text.startswith("~", self.pos):
                    raise _Stop("a template strip marker (${~ ... })")
                parts.append(self.expression())
                self._space()
                if not text.startswith("}", self.pos):
                    raise _Stop(f"unexpected text in an interpolation: {self._rest()!r}")
                self.pos += 1
                continue
            chunk.append(ch)
            self.pos += 1
        if chunk:
            parts.append("".join(chunk))
        return Template(tuple(parts))

    def _escape(self) -> str:
        text = self.text
        code = text[self.pos + 1 : self.pos + 2]
        if code in _ESCAPES:
            self.pos += 2
            return _ESCAPES[code]
        width = {"u": 4, "U": 8}.get(code)
        digits = text[self.pos + 2 : self.pos + 2 + width] if width else ""
        if width and len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
            self.pos += 2 + width
            return chr(int(digits, 16))
        raise _Stop(f"the escape \\{code} in a string")

    # -------------------------------------------------------------- expressions

    def _space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        if match:
            self.pos = match.end()

    def _rest(self) -> str:
        return self.text[self.pos : self.pos + 20]

    def _peek(self, *tokens: str) -> str | None:
        self._space()
        for token in tokens:
            if self.text.startswith(token, self.pos):
                return token
        return None

    def _take(self, token: str) -> bool:
        if self._peek(token) is None:
            return False
        self.pos += len(token)
        return True

    def _expect(self, token: str) -> None:
        if not self._take(token):
            raise _Stop(f"expected {token!r} at {self._rest()!r}")

    def expression(self) -> Node:
        condition = self._or()
        if self._peek("?") is None:
            return condition
        self.pos += 1
        yes = self.expression()
        self._expect(":")
        return Conditional(condition, yes, self.expression())

    def _or(self) -> Node:
        node = self._and()
        while self._take("||"):
            node = Binary("||", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._comparison()
        while self._take("&&"):
            node = Binary("&&", node, self._comparison())
        return node

    def _comparison(self) -> Node:
        node = self._unary()
        while True:
            op = self._peek(*_COMPARISONS)
            if op is None:
                break
            self.pos += len(op)
            node = Binary(op, node, self._unary())
        if self._peek("+", "*", "/", "%") is not None or self._peek("-") is not None:
            raise _Stop("arithmetic")
        return node

    def _unary(self) -> Node:
        op = self._peek("!", "-")
        if op == "!":
            self.pos += 1
            return Unary("!", self._unary())
        if op == "-":
            self.pos += 1
            return Unary("-", self._unary())
        return self._postfix(self._primary())

    def _postfix(self, node: Node) -> Node:
        while True:
            if self._peek("...") is not None:
                raise _Stop("an expansion (...)")
            if self._take("."):
                if self._peek("*") is not None:
                    raise _Stop("a splat (.*)")
                word = _IDENT.match(self.text, self.pos) or _NUMBER.match(self.text, self.pos)
                if word is None:
                    raise _Stop(f"expected a name after '.' at {self._rest()!r}")
                self.pos = word.end()
                if word.group().isdigit():  # `list.0`: the old index form
                    node = Index(node, Literal(int(word.group())))
                else:
                    node = GetAttr(node, word.group())
            elif self._peek("[") is not None:
                self.pos += 1
                if self._peek("*") is not None:
                    raise _Stop("a splat ([*])")
                key = self.expression()
                self._expect("]")
                node = Index(node, key)
            else:
                return node

    def _primary(self) -> Node:
        self._space()
        text, pos = self.text, self.pos
        if text.startswith("<<", pos):
            raise _Stop("a heredoc inside an expression")
        if text.startswith('"', pos):
            self.pos += 1
            return _unwrap(self.template(quoted=True))
        if text.startswith("(", pos):
            self.pos += 1
            inner = self.expression()
            self._expect(")")
            return inner
        if text.startswith("[", pos):
            return self._tuple()
        if text.startswith("{", pos):
            return self._object()
        number = _NUMBER.match(text, pos)
        if number is not None:
            self.pos = number.end()
            digits = number.group()
            return Literal(int(digits) if digits.isdigit() else float(digits))
        word = _IDENT.match(text, pos)
        if word is None:
            raise _Stop(f"unexpected text {self._rest()!r}")
        self.pos = word.end()
        name = word.group()
        if name in _KEYWORDS:
            return Literal(_KEYWORDS[name])
        if self.text.startswith("::", self.pos):
            raise _Stop("a provider-defined function")
        if self._peek("(") is not None:
            self.pos += 1
            return Call(name, self._items(")"))
        return Name(name)

    def _items(self, close: str) -> tuple[Node, ...]:
        items: list[Node] = []
        while not self._take(close):
            items.append(self.expression())
            if not self._take(","):
                self._expect(close)
                break
        return tuple(items)

    def _no_for(self) -> None:
        self._space()
        if _FOR.match(self.text, self.pos):
            raise _Stop("a for expression")

    def _tuple(self) -> Node:
        self.pos += 1
        self._no_for()
        return TupleExpr(self._items("]"))

    def _object(self) -> Node:
        self.pos += 1
        self._no_for()
        items: list[tuple[Node, Node]] = []
        while not self._take("}"):
            key = self.expression()
            if isinstance(key, Name):
                key = Literal(key.name)  # `{ key = v }`: a bare word is the key itself
            if not (self._take("=") or self._take(":")):
                raise _Stop(f"expected '=' in an object at {self._rest()!r}")
            items.append((key, self.expression()))
            self._take(",")
        return ObjectExpr(tuple(items))


def show(value: Any) -> str:
    """A value as a person wrote it, near enough for a message: an expression bare
    (`var.key`), a template quoted (`"${var.env}/network.tfstate"`)."""
    if isinstance(value, str):
        node = parse_value(value)
        if not isinstance(node, Literal | Template | Opaque) and value.startswith("${"):
            return value[2:-1]
        return '"' + value + '"'
    return json.dumps(value)
