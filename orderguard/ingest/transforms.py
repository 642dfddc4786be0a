"""A small, safe expression language for export-file mappings (``orderguard.ingest.files``).

Exports from other systems need more than renaming: amounts in yuan or dollars become fen,
times are seconds after a reference moment, keys are made of two columns, codes map to
words, one column fills several fields, personal data must be hashed before it is stored.
A mapping says so with an expression per target::

    round(value * 720)                                   # USD to fen at 7.2
    add_seconds('2017-11-30T00:00:00+00:00', value)      # a time from an offset in seconds
    concat(card1, '|', card2)                            # a combined key from two columns
    lookup('product', value, 'other')                    # a code through a lookup table
    pii('card', col('Card Number'))                      # hashed with the deployment's PII key

Why not Python's ``eval``: a mapping file comes from whoever exports the data. Expressions
are parsed with :mod:`ast` and only an allow-list of node types is accepted: literals,
names, ``+ - * / // %``, unary minus and calls of the functions below with positional
arguments. Everything is checked when the mapping loads (syntax, functions, arity,
lookup tables, literal reference times), so a bad mapping fails before the first row,
naming its place (``mapping.columns.TransactionAmt[0].expr``).

Names: ``value`` is the current column's cell (only in a column's own rule); any other
name is the cell of the column with that title (Chinese titles are names too); titles
with spaces or symbols are read with ``col('title')``.

Missing values: an empty cell is *missing*, and missing propagates through every operator
and function (the target is then not set), except ``coalesce``, which returns its first
argument that is not missing. A row whose cell cannot be read as a number where one is
needed, a division by zero or a lookup miss without default in a required place is a
row error naming the column; the other rows are kept.

Functions: ``num(x)`` text to a number (``"1,234.5"``), ``int(x)``, ``round(x)`` /
``round(x, n)``, ``str(x)``, ``lower(x)``, ``upper(x)``, ``strip(x)``, ``concat(a, ...)``,
``split(x, sep, i)``, ``lookup(table, x)`` / ``lookup(table, x, default)``, ``epoch(x)``
(unix seconds to ISO-8601 UTC), ``epoch_ms(x)``, ``add_seconds(reference, x)``,
``coalesce(a, ...)``, ``pii(kind, x)``.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from orderguard.errors import ConfigError, InvalidInputError
from orderguard.ingest.normalize import PiiHasher

#: Longest expression accepted.
MAX_CHARS: Final = 500
#: Most AST nodes of one expression.
MAX_NODES: Final = 200
#: The current column's cell.
VALUE: Final = "value"


class _MissingType:
    """A missing value: an empty cell, or what a function made of one."""

    _instance: _MissingType | None = None

    def __new__(cls) -> _MissingType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _MissingType()
Cell = str | int | float | bool | None
Value = str | int | float | bool | _MissingType


@dataclass(frozen=True, slots=True)
class Scope:
    """What an expression reads: the row, the current cell, the lookup tables and the PII hasher."""

    row: Mapping[str, Cell]
    value: Cell = None
    lookups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    hasher: PiiHasher | None = None


class RowError(Exception):
    """One row's value could not be transformed (the caller names the column)."""

    def __init__(self, constraint: str, value: object) -> None:
        super().__init__(constraint)
        self.constraint = constraint
        self.value = value


def _present(v: Cell) -> Value:
    return MISSING if v is None or v == "" else v


def _number(v: Value) -> int | float:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float):
        return v
    assert isinstance(v, str)
    text = v.replace(",", "").strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise RowError("must be a number", v) from None
    if not math.isfinite(number):
        raise RowError("must be a finite number", v)
    return number


def _text(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse_reference(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("needs an offset, e.g. +08:00")
    return moment


def _epoch(v: Value, scale: float) -> str:
    seconds = _number(v) / scale
    try:
        return _iso(datetime.fromtimestamp(seconds, tz=UTC))
    except (OverflowError, OSError, ValueError):
        raise RowError("must be an epoch time within the calendar", v) from None


def _add_seconds(ref: Value, v: Value) -> str:
    try:
        base = _parse_reference(_text(ref))
    except ValueError:
        raise RowError("must be an ISO-8601 time with an offset", ref) from None
    try:
        return _iso(base + timedelta(seconds=_number(v)))
    except OverflowError:
        raise RowError("must be an offset within the calendar", v) from None


def _round(v: Value, digits: Value = 0) -> int | float:
    n = int(_number(digits))
    if not -20 <= n <= 20:
        raise RowError("must round to between -20 and 20 digits", digits)
    rounded = round(_number(v), n)
    return int(rounded) if n <= 0 else rounded


def _int(v: Value) -> int:
    number = _number(v)
    return int(number) if math.isfinite(number) else int(_number(str(number)))


def _split(v: Value, sep: Value, i: Value) -> Value:
    separator = _text(sep)
    if not separator:
        raise RowError("must split on a non-empty separator", separator)
    parts = _text(v).split(separator)
    index = int(_number(i))
    return parts[index] if -len(parts) <= index < len(parts) else MISSING


@dataclass(frozen=True, slots=True)
class _Function:
    least: int
    most: int
    apply: Callable[..., Value]
    #: a function that sees missing arguments itself (``coalesce``)
    total: bool = False


_FUNCTIONS: Mapping[str, _Function] = {
    "num": _Function(1, 1, _number),
    "int": _Function(1, 1, _int),
    "round": _Function(1, 2, _round),
    "str": _Function(1, 1, _text),
    "lower": _Function(1, 1, lambda v: _text(v).lower()),
    "upper": _Function(1, 1, lambda v: _text(v).upper()),
    "strip": _Function(1, 1, lambda v: _text(v).strip()),
    "concat": _Function(1, 16, lambda *vs: "".join(_text(v) for v in vs)),
    "split": _Function(3, 3, _split),
    "epoch": _Function(1, 1, lambda v: _epoch(v, 1.0)),
    "epoch_ms": _Function(1, 1, lambda v: _epoch(v, 1000.0)),
    "add_seconds": _Function(2, 2, _add_seconds),
    "coalesce": _Function(1, 16, lambda *vs: next((v for v in vs if v is not MISSING), MISSING), total=True),
    # lookup and pii read the scope; they are evaluated in ``_call``
    "lookup": _Function(2, 3, lambda *vs: MISSING, total=True),
    "pii": _Function(2, 2, lambda *vs: MISSING),
    "col": _Function(1, 1, lambda *vs: MISSING),
}

_BINARY: Mapping[type[ast.operator], Callable[[int | float, int | float], int | float]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
}


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed, checked expression (:func:`parse`); :meth:`evaluate` it per row."""

    text: str
    tree: ast.expr
    columns: tuple[str, ...]

    def evaluate(self, scope: Scope) -> Value:
        """The expression's value for one row; :data:`MISSING` when a missing input made it so.

        Raises :class:`RowError` for a value that cannot be transformed.
        """
        return _eval(self.tree, scope)


def parse(text: str, *, where: str, lookups: Mapping[str, object] = {}, allow_value: bool = True) -> Expression:
    """Parse and check one expression; every refusal is a ``ConfigError`` whose field is ``where``.

    >>> parse("round(value * 100)", where="e").evaluate(Scope({}, "12.345"))
    1234
    >>> parse("value.__class__", where="mapping.columns.x.expr")
    Traceback (most recent call last):
    ...
    orderguard.errors.ConfigError: `mapping.columns.x.expr` must use only literals, column names, + - * / // % and \
the mapping functions; got 'value.__class__' (attribute access is not allowed)
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError.must(where, "a non-empty expression", text)
    if len(text) > MAX_CHARS:
        raise ConfigError.must(where, f"an expression of at most {MAX_CHARS} characters", f"{len(text)} characters")
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and the like: refused below, not warned about
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise ConfigError.must(where, f"a valid expression ({e.msg})", text) from e
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ConfigError.must(where, f"an expression of at most {MAX_NODES} parts", text)
    columns: list[str] = []
    for node in nodes:
        _check(node, text, where=where, lookups=lookups, allow_value=allow_value, columns=columns)
    return Expression(text, tree, tuple(dict.fromkeys(columns)))


_ALLOWED = (ast.Constant, ast.Name, ast.BinOp, ast.UnaryOp, ast.Call, ast.Load, ast.USub, ast.UAdd,
            *_BINARY)
_WHAT = "only literals, column names, + - * / // % and the mapping functions"


def _check(node: ast.AST, text: str, *, where: str, lookups: Mapping[str, object], allow_value: bool,
           columns: list[str]) -> None:
    def refuse(why: str) -> ConfigError:
        return ConfigError(f"`{where}` must use {_WHAT}; got {text!r} ({why})", field=where)

    if not isinstance(node, _ALLOWED):
        kind = {ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Compare: "comparisons",
                ast.Lambda: "lambdas", ast.BoolOp: "and/or"}.get(type(node), type(node).__name__)
        raise refuse(f"{kind} is not allowed")
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                           or not isinstance(node.value, str | int | float)):
        raise refuse(f"literal {node.value!r} is not allowed")
    if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.USub | ast.UAdd):
        raise refuse("only unary minus is allowed")
    if isinstance(node, ast.Name):
        if node.id == VALUE and not allow_value:
            raise refuse("`value` is only defined in a column's own rule")
        if node.id != VALUE and node.id not in _FUNCTIONS:
            columns.append(node.id)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise refuse(f"unknown function {name!r}; known: {', '.join(sorted(_FUNCTIONS))}")
        if node.keywords:
            raise refuse("keyword arguments are not allowed")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise refuse("*arguments are not allowed")
        function = _FUNCTIONS[node.func.id]
        if not function.least <= len(node.args) <= function.most:
            count = str(function.least) if function.least == function.most else f"{function.least} to {function.most}"
            raise refuse(f"{node.func.id}() takes {count} arguments, got {len(node.args)}")
        name = node.func.id
        first = node.args[0] if node.args else None
        if name in ("lookup", "col", "pii") and not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            raise refuse(f"{name}() takes a quoted name first")
        if name == "lookup" and isinstance(first, ast.Constant) and first.value not in lookups:
            raise refuse(f"lookup table {first.value!r} is not in `lookups`")
        if name == "col" and isinstance(first, ast.Constant):
            columns.append(str(first.value))
        if name == "add_seconds" and isinstance(first, ast.Constant):
            try:
                _parse_reference(str(first.value))
            except ValueError as e:
                raise refuse(f"add_seconds() needs an ISO-8601 reference time with an offset ({e})") from e
    # the function names themselves are ast.Name nodes in ``func``: never columns
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in columns:
        columns.remove(node.func.id)


def _eval(node: ast.expr, scope: Scope) -> Value:
    if isinstance(node, ast.Constant):
        constant = node.value
        assert isinstance(constant, str | int | float)  # checked by parse
        return constant
    if isinstance(node, ast.Name):
        if node.id == VALUE:
            return _present(scope.value)
        if node.id not in scope.row:
            raise RowError("must name a column of the file", node.id)
        return _present(scope.row[node.id])
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, scope)
        if operand is MISSING:
            return MISSING
        number = _number(operand)
        return -number if isinstance(node.op, ast.USub) else number
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, scope), _eval(node.right, scope)
        if left is MISSING or right is MISSING:
            return MISSING
        a, b = _number(left), _number(right)
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and b == 0:
            raise RowError("must not divide by zero", right)
        result = _BINARY[type(node.op)](a, b)
        if isinstance(result, float) and not math.isfinite(result):
            raise RowError("must give a finite number", f"{a} {type(node.op).__name__} {b}")
        return result
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return _call(node.func.id, node.args, scope)


def _call(name: str, args: Sequence[ast.expr], scope: Scope) -> Value:
    if name == "col":
        title = str(_eval(args[0], scope))
        if title not in scope.row:
            raise RowError("must name a column of the file", title)
        return _present(scope.row[title])
    values = [_eval(a, scope) for a in args]
    if name == "lookup":
        table = scope.lookups.get(_text(values[0]), {})
        key = values[1]
        if key is MISSING:
            return values[2] if len(values) > 2 else MISSING
        found = table.get(_text(key))
        if found is None:
            return values[2] if len(values) > 2 else MISSING
        return found if isinstance(found, str | int | float | bool) else str(found)
    function = _FUNCTIONS[name]
    if not function.total and any(v is MISSING for v in values):
        return MISSING
    if name == "pii":
        if scope.hasher is None:
            raise RowError("needs the deployment's PII key (pii() is evaluated at ingest only)", _text(values[0]))
        return scope.hasher.hash(_text(values[0]), _text(values[1]))
    return function.apply(*values)


def as_cell(value: Value) -> Cell:
    """An evaluated value as a payload value (``None`` for missing)."""
    return None if value is MISSING else value  # type: ignore[return-value]


def row_error(column: str, error: RowError) -> InvalidInputError:
    """A row error naming the column (or target) whose value failed."""
    return InvalidInputError.must(column, error.constraint, error.value)
