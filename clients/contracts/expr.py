"""A tiny arithmetic language for derived columns, e.g. `children / population` or `(a + b) * 100`.

Parsed by hand, never by eval: numbers, column names, + - * /, unary minus and parentheses, nothing else
(no attribute access, no calls, no indexing), so a contract stays data. Evaluation is vectorised over a
table's rows; a division by zero or a missing operand gives a missing value, never an error or infinity.

    expression := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := ("-" | "+") factor | NUMBER | NAME | "(" expression ")"
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Union

import numpy as np

MAX_LENGTH = 1000
_TOKEN = re.compile(r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[^\W\d]\w*)|(?P<op>[-+*/()]))")


class ExprError(ValueError):
    """A syntax error at `position` (0-based character offset) of the expression."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Col:
    name: str
    position: int


@dataclass(frozen=True)
class Unary:
    op: str
    operand: "Node"


@dataclass(frozen=True)
class Binary:
    op: str
    left: "Node"
    right: "Node"


Node = Union[Num, Col, Unary, Binary]


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, position) of each token, then ("end", "", len)."""
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            at = pos + len(text[pos:]) - len(text[pos:].lstrip())
            char = text[at]
            hint = {".": " (attribute access is not allowed)", "[": " (indexing is not allowed)",
                    "%": " (only + - * / are allowed)", "^": " (only + - * / are allowed)"}.get(char, "")
            raise ExprError(f"unexpected character {char!r}{hint}", at)
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    out.append(("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expression(self) -> Node:
        node = self.term()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = self.take()[1]
            node = Binary(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.peek()[1] in ("*", "/") and self.peek()[0] == "op":
            op = self.take()[1]
            node = Binary(op, node, self.factor())
        return node

    def factor(self) -> Node:
        kind, text, pos = self.take()
        if kind == "op" and text in ("-", "+"):
            return Unary(text, self.factor())
        if kind == "number":
            return Num(float(text))
        if kind == "name":
            if self.peek()[1] == "(":
                raise ExprError(f"'{text}(' looks like a function call; only + - * / of columns and numbers "
                                "are allowed", pos)
            return Col(text, pos)
        if kind == "op" and text == "(":
            node = self.expression()
            kind2, text2, pos2 = self.take()
            if text2 != ")":
                raise ExprError(f"expected ')' to close the '(' at position {pos + 1}, "
                                + ("found the end" if kind2 == "end" else f"found {text2!r}"), pos2)
            return node
        if kind == "end":
            raise ExprError("the expression ends where a column name, a number or '(' is expected", pos)
        raise ExprError(f"unexpected {text!r} where a column name, a number or '(' is expected", pos)


def parse(text: str) -> Node:
    """The syntax tree of `text`, or an ExprError naming the position of the first mistake."""
    if not isinstance(text, str) or not text.strip():
        raise ExprError("the expression is empty", 0)
    if len(text) > MAX_LENGTH:
        raise ExprError(f"the expression is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    parser = _Parser(text)
    node = parser.expression()
    kind, token, pos = parser.peek()
    if kind != "end":
        raise ExprError(f"unexpected {token!r} after a complete expression (an operator missing?)", pos)
    return node


def columns(node: Node) -> list[Col]:
    """Every column the expression reads, in order of appearance (with its position)."""
    if isinstance(node, Col):
        return [node]
    if isinstance(node, Unary):
        return columns(node.operand)
    if isinstance(node, Binary):
        return columns(node.left) + columns(node.right)
    return []


_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply,
    "/": lambda a, b: np.divide(a, np.where(b == 0, np.nan, b)),
}


def evaluate(node: Node, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The expression over `n` rows; missing operands and division by zero give NaN (never inf)."""
    if isinstance(node, Num):
        return np.full(n, node.value)
    if isinstance(node, Col):
        return np.asarray(values[node.name], dtype="float64")
    if isinstance(node, Unary):
        inner = evaluate(node.operand, values, n)
        return -inner if node.op == "-" else inner
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = _OPS[node.op](evaluate(node.left, values, n), evaluate(node.right, values, n))
    return np.where(np.isfinite(out), out, np.nan)
