"""The constraint language of sweep files: safe expressions over axis values.

A constraint is either an expression (``"components.sram.capacity <= 64 MiB and
components.mxu.rows == components.mxu.cols"``) parsed with :mod:`ast` and evaluated from a
whitelist of node types — never ``eval`` — or a rule ``{key, op, value}``. Quantities with
units compare in base units.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from hwsim.errors import ConfigError, did_you_mean, shown
from hwsim.units import BASE_UNIT, parse_quantity

_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs, "log2": math.log2}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
    "!=": operator.ne, "in": lambda a, b: a in b, "not in": lambda a, b: a not in b}
_AST_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
                ast.In: "in", ast.NotIn: "not in"}
_AST_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.Div: operator.truediv, ast.Mod: operator.mod}
#: Longest constraint text and deepest expression tree: a constraint is a line, not a program.
MAX_TEXT = 1000
MAX_DEPTH = 40
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_QUANTITY_TEXT = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*([A-Za-zµ]+(?:/[A-Za-z]+)?)")


def quantity_dimension(text: str) -> tuple[float, str] | None:
    """``"8 MiB" -> (8388608.0, "bytes")``; a bare number is a ``count``; None if neither."""
    try:
        return float(text), "count"
    except ValueError:
        pass
    for dimension in BASE_UNIT:
        try:
            return parse_quantity(text, dimension), dimension
        except ConfigError:
            continue
    return None


def numeric(value: Any) -> Any:
    """An axis value as constraints and tables see it: quantity text becomes a base-unit float."""
    if isinstance(value, str):
        parsed = quantity_dimension(value)
        if parsed is not None:
            return parsed[0]
    return value


class Expression:
    """A compiled constraint; :meth:`holds` evaluates it on one point's (numeric) axis values."""

    def __init__(self, text: str, fn: Callable[[dict[str, Any]], Any], where: str) -> None:
        self.text, self._fn, self._where = text, fn, where

    def holds(self, values: dict[str, Any]) -> bool:
        """True when the point satisfies the constraint; ConfigError on a type mismatch."""
        try:
            result = self._fn(values)
        except (TypeError, ZeroDivisionError, ValueError, OverflowError) as err:
            raise ConfigError(f"{self._where}: cannot evaluate {self.text!r} ({err})") from None
        if not isinstance(result, bool | np.bool_):
            raise ConfigError(f"{self._where}: {self.text!r} is not a condition (gives {shown(result)})")
        return bool(result)


def compile_expression(text: str, keys: list[str], where: str) -> Expression:
    """Compile constraint ``text`` over axis ``keys``; ConfigError names ``where`` on a bad input."""
    def quantity(match: re.Match) -> str:
        parsed = quantity_dimension(f"{match.group(1)} {match.group(2)}")
        return match.group(0) if parsed is None else repr(parsed[0])

    if len(text) > MAX_TEXT:
        raise ConfigError(f"{where}: a constraint of {len(text):,} characters; at most {MAX_TEXT:,}")
    try:
        tree = ast.parse(_QUANTITY_TEXT.sub(quantity, text).strip(), mode="eval")
    except SyntaxError as err:
        raise ConfigError(f"{where}: cannot parse {shown(text)} ({err.msg})") from None
    except (RecursionError, MemoryError, ValueError):
        raise ConfigError(f"{where}: cannot parse {shown(text)} (nested too deep)") from None
    depth = _depth(tree.body)
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where}: {shown(text)} nests {depth} levels deep; at most {MAX_DEPTH}")
    return Expression(text, _compile(tree.body, keys, f"{where}: {text!r}"), where)


def _depth(node: ast.AST) -> int:
    """Depth of an expression tree, counted without recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))
    return deepest


def _arithmetic(fn: Callable[[Any, Any], Any], symbol: str) -> Callable[[Any, Any], Any]:
    """``fn`` on numbers only: text and lists have no arithmetic here (``'a' * 10**9`` would
    allocate a gigabyte, ``'%s' % x`` format text)."""
    def apply(a: Any, b: Any) -> Any:
        for operand in (a, b):
            if isinstance(operand, bool | np.bool_) or not isinstance(operand, int | float | np.integer | np.floating):
                raise TypeError(f"{symbol} needs numbers, got {shown(operand)}")
        return fn(a, b)
    return apply


def compile_rule(rule: dict[str, Any], keys: list[str], where: str) -> Expression:
    """Compile ``{key: axis, op: "<=", value: 16 MiB}`` (op: <, <=, >, >=, ==, !=, in, not in)."""
    for name in rule:
        if name not in ("key", "op", "value"):
            raise ConfigError(f"{where}.{name}: unknown key{did_you_mean(str(name), ('key', 'op', 'value'))}")
    if set(rule) != {"key", "op", "value"}:
        raise ConfigError(f"{where}: a rule needs key, op and value")
    op = rule["op"]
    if not isinstance(op, str) or op not in _COMPARE:
        raise ConfigError(f"{where}.op: {shown(op)} is not one of {', '.join(_COMPARE)}"
                          f"{did_you_mean(str(op), tuple(_COMPARE))}")
    if not isinstance(rule["key"], str):
        raise ConfigError(f"{where}.key: expected an axis key, got {shown(rule['key'])}")
    key = _resolve_key(rule["key"], keys, f"{where}.key")
    raw = rule["value"]
    if isinstance(raw, dict) or (isinstance(raw, list) and any(isinstance(v, dict | list) for v in raw)):
        raise ConfigError(f"{where}.value: expected a value or a list of values, got {shown(raw)}")
    value = [numeric(v) for v in raw] if isinstance(raw, list) else numeric(raw)
    compare = _COMPARE[op]
    return Expression(f"{key} {op} {shown(raw)}", lambda v: compare(v[key], value), where)


def _resolve_key(name: str, keys: list[str], where: str) -> str:
    if name in keys:
        return name
    matches = [k for k in keys if k.endswith("." + name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"{where}: {name!r} is ambiguous ({', '.join(matches)})")
    names = sorted({*keys, *(k.split(".", i)[-1] for k in keys for i in range(1, k.count(".") + 1))})
    raise ConfigError(f"{where}: {name!r} is not an axis{did_you_mean(name, names)}")


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _compile(node: ast.AST, keys: list[str], where: str) -> Callable[[dict[str, Any]], Any]:
    """A closure ``values -> result`` for an allowed node; ConfigError for anything else."""
    sub = [_compile(child, keys, where) for child in _children(node, where)]
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool):
        value = node.value
        return lambda v: value
    name = _dotted(node)
    if name is not None:
        if name in ("true", "false"):
            return lambda v: name == "true"
        key = _resolve_key(name, keys, where)
        return lambda v: v[key]
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return lambda v: all(bool(f(v)) for f in sub)
        return lambda v: any(bool(f(v)) for f in sub)
    if isinstance(node, ast.UnaryOp):
        negate = _arithmetic(lambda _, b: -b, "-")
        return (lambda v: not sub[0](v)) if isinstance(node.op, ast.Not) else (lambda v: negate(0, sub[0](v)))
    if isinstance(node, ast.BinOp):
        fn = _arithmetic(_AST_ARITH[type(node.op)], _SYMBOLS[type(node.op)])
        return lambda v: fn(sub[0](v), sub[1](v))
    if isinstance(node, ast.Compare):
        ops = [_COMPARE[_AST_COMPARE[type(op)]] for op in node.ops]
        return lambda v: all(op(a, b) for op, a, b in zip(ops, (f(v) for f in sub[:-1]),
                                                           (f(v) for f in sub[1:]), strict=True))
    if isinstance(node, ast.List | ast.Tuple):
        return lambda v: [f(v) for f in sub]
    fn = _FUNCTIONS[node.func.id]  # _children allowed only these calls
    return lambda v: fn(*(f(v) for f in sub))


def _children(node: ast.AST, where: str) -> list[ast.AST]:
    """The operands of an allowed node (in evaluation order); ConfigError names a bad one."""
    if isinstance(node, ast.Constant | ast.Name) or (isinstance(node, ast.Attribute) and _dotted(node)):
        return []
    if isinstance(node, ast.BoolOp):
        return list(node.values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        return [node.operand]
    if isinstance(node, ast.BinOp) and type(node.op) in _AST_ARITH:
        return [node.left, node.right]
    if isinstance(node, ast.Compare) and all(type(op) in _AST_COMPARE for op in node.ops):
        return [node.left, *node.comparators]
    if isinstance(node, ast.List | ast.Tuple):
        return list(node.elts)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and not node.keywords):
        return list(node.args)
    shown = ast.unparse(node) if hasattr(ast, "unparse") else type(node).__name__
    raise ConfigError(f"{where}: {shown!r} is not allowed (use axis keys, numbers, quantities, "
                      "comparisons, and/or/not, + - * / %, min/max/abs/log2)")
