"""Expressions over probe samples, for alert rules, guards and recovery criteria.

A small, safe subset of Python expression syntax, checked when the scenario is
loaded: numbers and strings, `probe` or `probe.field`, comparisons (chained too),
`and` / `or` / `not`, `+ - * /`, and the functions `abs`, `min`, `max`.
Nothing else parses: no calls to other functions, no attribute access beyond one
level, no subscripts.

A probe that has no value yet (it failed, or has not sampled) makes every
comparison it takes part in unknown: neither the comparison nor its negation
holds, so a rule neither fires nor counts as recovered on missing data. `and` is
false when any part is false, `or` true when any part is true, whatever the rest.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Samples = Mapping[str, Mapping[str, Any]]
"""probe name -> field -> latest value (None when unknown)."""

PRIMARY = "value"

_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_FUNCS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max}


class ExprError(ValueError):
    """An expression that cannot be used: says what is wrong, for a person."""


class _Missing:
    """A value that is not known: arithmetic keeps it missing, comparisons are false."""

    def __repr__(self) -> str:
        return "missing"


MISSING = _Missing()


@dataclass(frozen=True)
class Expr:
    source: str
    refs: frozenset[tuple[str, str]]
    """(probe, field) pairs the expression reads."""
    _fn: Callable[[Samples], Any]

    def evaluate(self, samples: Samples) -> Any:
        """The value, or MISSING when a probe it needs has no value."""
        return self._fn(samples)

    def holds(self, samples: Samples) -> bool:
        value = self.evaluate(samples)
        return value is not MISSING and bool(value)


def parse(source: str, fields: Mapping[str, frozenset[str]] | None = None) -> Expr:
    """Compile `source`. With `fields` (probe -> its field names), unknown probes and
    fields are refused here rather than at run time."""
    if not isinstance(source, str) or not source.strip():
        raise ExprError("an expression is required")
    if len(source) > 2000:
        raise ExprError("the expression is too long (2000 characters at most)")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (RecursionError, MemoryError):
        raise ExprError("the expression is nested too deeply") from None
    except (UnicodeError, ValueError) as exc:  # lone surrogates, NUL characters
        raise ExprError(f"not a valid expression: {exc}") from None
    except SyntaxError as exc:
        raise ExprError(f"not a valid expression: {exc.msg} (at column {exc.offset})") from None
    refs: set[tuple[str, str]] = set()
    try:
        fn = _compile(tree.body, refs, fields)
    except RecursionError:
        raise ExprError("the expression is nested too deeply") from None
    return Expr(source.strip(), frozenset(refs), fn)


def _ref(probe: str, field: str, refs: set, fields) -> Callable[[Samples], Any]:
    if fields is not None:
        if probe not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ExprError(f"unknown probe '{probe}' (probes: {known})")
        if field not in fields[probe]:
            raise ExprError(
                f"probe '{probe}' has no field '{field}' "
                f"(fields: {', '.join(sorted(fields[probe]))})"
            )
    refs.add((probe, field))

    def read(samples: Samples) -> Any:
        value = samples.get(probe, {}).get(field)
        return MISSING if value is None else value

    return read


def _compile(node: ast.AST, refs: set, fields) -> Callable[[Samples], Any]:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
        if isinstance(node.value, bool):
            value: Any = int(node.value)
        else:
            value = node.value
        return lambda _s: value
    if isinstance(node, ast.Name):
        if node.id in ("true", "false", "True", "False"):
            flag = int(node.id.lower() == "true")
            return lambda _s: flag
        return _ref(node.id, PRIMARY, refs, fields)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return _ref(node.value.id, node.attr, refs, fields)
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, refs, fields) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda s: _and([p(s) for p in parts])
        return lambda s: _or([p(s) for p in parts])
    if isinstance(node, ast.UnaryOp):
        inner = _compile(node.operand, refs, fields)
        if isinstance(node.op, ast.Not):
            return lambda s: _not(inner(s))
        if isinstance(node.op, ast.USub):
            return lambda s: _arith(operator.neg, inner(s))
        if isinstance(node.op, ast.UAdd):
            return inner
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        op = _ARITH[type(node.op)]
        left, right = _compile(node.left, refs, fields), _compile(node.right, refs, fields)
        return lambda s: _arith(op, left(s), right(s))
    if isinstance(node, ast.Compare):
        if not all(type(op) in _COMPARE for op in node.ops):
            raise ExprError("only < <= > >= == != compare values")
        ops = [_COMPARE[type(op)] for op in node.ops]
        operands = [_compile(n, refs, fields) for n in (node.left, *node.comparators)]
        return lambda s: _compare(ops, [o(s) for o in operands])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id not in _FUNCS or node.keywords or not node.args:
            raise ExprError(f"unknown function '{node.func.id}' (known: abs, min, max)")
        func = _FUNCS[node.func.id]
        args = [_compile(a, refs, fields) for a in node.args]
        return lambda s: _arith(func, *[a(s) for a in args])
    snippet = ast.unparse(node) if hasattr(ast, "unparse") else type(node).__name__
    raise ExprError(f"'{snippet}' is not allowed here (use probe.field, numbers, comparisons)")


def _truthy(value: Any) -> bool:
    return value is not MISSING and bool(value)


def _and(values: list[Any]) -> Any:
    """False if any part is false, else missing if any is missing, else true."""
    if any(v is not MISSING and not v for v in values):
        return False
    return MISSING if any(v is MISSING for v in values) else True


def _or(values: list[Any]) -> Any:
    """True if any part is true, else missing if any is missing, else false."""
    if any(v is not MISSING and v for v in values):
        return True
    return MISSING if any(v is MISSING for v in values) else False


def _not(value: Any) -> Any:
    return MISSING if value is MISSING else not value


def _arith(op: Callable[..., Any], *values: Any) -> Any:
    if any(v is MISSING for v in values):
        return MISSING
    try:
        return op(*values)
    except (TypeError, ZeroDivisionError, OverflowError):  # "3" + 1, x / 0: no value
        return MISSING


def _compare(ops: list[Callable[[Any, Any], bool]], values: list[Any]) -> Any:
    if any(v is MISSING for v in values):
        return MISSING  # neither true nor false: `not` of it does not hold either
    try:
        return all(op(a, b) for op, a, b in zip(ops, values, values[1:], strict=False))
    except TypeError:  # "3" > 2: a string against a number never holds
        return False
