"""A small, safe expression language for export-file mappings (``orderguard.ingest.files``).

Why: history exported from another system needs more than renaming columns. Amounts in
yuan or dollars become fen, times are seconds after a reference moment, keys are made of
two columns, codes map to words, one column fills several fields, and personal data must
be hashed before it is stored. A mapping says so with one expression per target::

    round(value * 720)                                  # USD to fen at 7.20
    add_seconds('2017-11-30T00:00:00+00:00', value)     # a time from an offset in seconds
    concat(card1, '|', card2)                           # a combined key from two columns
    lookup('product', value, 'other')                   # a code through a lookup table
    pii('phone', col('Phone No'))                       # hashed with the deployment's PII key

Safe: a mapping file comes from whoever exported the data, so it is never given to
``eval``. The text is parsed with :mod:`ast` and only an allow-list of nodes is accepted
(literals, names, ``+ - * / // %``, unary ``-`` and calls of the functions below with
positional arguments), then compiled into small frozen nodes that are all evaluation
ever runs. Length, nesting depth and size are capped.

Validated at load: syntax, functions, arity, lookup tables and literal reference times
are checked by :func:`parse` when the mapping loads, so a bad mapping fails before the
first row with a ``ConfigError`` naming its place (``mapping.columns.TransactionAmt[0].expr``).

Names: ``value`` is the current column's cell (only in a column's own rule); any other
name is the cell of the column with that title (Chinese titles are names too); a title
with spaces or symbols is read with ``col('Phone No')``. A column that the file's header
lacks is a row error naming it.

Missing propagates: an empty cell (``None`` or ``""``) is *missing*, and missing passes
through every operator and function (the target is then left unset), except ``coalesce``,
which skips missing arguments. Arithmetic reads numeric text (CSV cells are text); a
value that is not a number, a division by zero or a time off the calendar is a
:class:`RowError`, which the reader turns into a refused row naming its column while the
other rows are kept. Integers stay integers where the result is exact.

Functions (``x`` is any expression; the first argument of ``lookup``, ``pii`` and ``col``
is a quoted literal):

=============================== ===========================================================
``num(x)``                      number from text: ``num('1,234.5')`` → ``1234.5``
``int(x)``                      whole number, toward zero: ``int('7.9')`` → ``7``
``round(x)`` / ``round(x, n)``  half-up, like fen amounts: ``round(value * 100)`` → ``1250``;
                                ``round(2.345, 2)`` → ``2.35``; ``n`` from -15 to 15
``str(x)``                      text: ``str(12.0)`` → ``'12'``
``lower(x)`` / ``upper(x)``     case: ``lower('Gmail.COM')`` → ``'gmail.com'``
``strip(x)``                    without surrounding blanks: ``strip(' W ')`` → ``'W'``
``concat(a, b, ...)``           text join: ``concat(card1, '|', card2)`` → ``'4111|7'``
``split(x, sep, i)``            the ``i``-th part (from 0; negative from the end; missing
                                when there is none): ``split('a@qq.com', '@', 1)`` → ``'qq.com'``
``lookup('t', x)``              ``x`` through table ``t`` of the mapping's ``lookups``;
``lookup('t', x, default)``     missing (or ``default``) when ``x`` is not in the table:
                                ``lookup('product', 'W')`` → ``'web'``
``epoch(x)``                    unix seconds → ISO-8601 UTC: ``epoch(0)`` →
                                ``'1970-01-01T00:00:00+00:00'``
``epoch_ms(x)``                 unix milliseconds → ISO-8601 UTC
``add_seconds(ref, x)``         ISO-8601 time with an offset plus ``x`` seconds → ISO-8601 UTC:
                                ``add_seconds('2017-11-30T00:00:00+08:00', 60)`` →
                                ``'2017-11-29T16:01:00+00:00'``
``coalesce(a, b, ...)``         the first argument that is not missing: ``coalesce(phone, mobile)``
``pii('kind', x)``              keyed hash (:meth:`PiiHasher.hash`): ``pii('phone', value)``
``col('title')``                the cell of a column whose title is not a name
=============================== ===========================================================
"""

from __future__ import annotations

import ast
import enum
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Final, Literal, TypeAlias

from orderguard.errors import ConfigError, InvalidInputError, excerpt
from orderguard.ingest.normalize import PiiHasher

#: Longest expression accepted, in characters.
MAX_CHARS: Final = 500
#: Most nodes (literals, names, operators, calls) of one expression.
MAX_NODES: Final = 200
#: Deepest nesting of operators and calls.
MAX_DEPTH: Final = 32
#: Name of the current column's cell in a column's own rule.
VALUE: Final = "value"
#: Whole numbers must stay below this in magnitude (ids and amounts are far smaller; text of huge ones is slow).
MAX_WHOLE: Final = 10**40
#: Longest text read as a number.
MAX_NUMBER_CHARS: Final = 64
#: Widest ``n`` of ``round(x, n)``.
MAX_ROUND_DIGITS: Final = 15

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER: Final = re.compile(r"[+-]?(?:(\d+)(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class Missing(enum.Enum):
    """The type of :data:`MISSING`."""

    MISSING = "missing"

    def __repr__(self) -> str:
        return "MISSING"


#: A missing value: an empty cell, or what an operator or function made of one.
MISSING: Final = Missing.MISSING

Number: TypeAlias = int | float
#: What an expression yields: :data:`MISSING` or a cell value (text, number, bool, or a spreadsheet's date).
Value: TypeAlias = object


class RowError(Exception):
    """One row's value could not be transformed; the caller names the column (:func:`row_error`)."""

    def __init__(self, constraint: str, value: object) -> None:
        super().__init__(constraint)
        self.constraint = constraint
        self.value = value


@dataclass(frozen=True, slots=True)
class Scope:
    """What an expression reads: the row, the current cell, the lookup tables and the PII hasher."""

    row: Mapping[str, object]
    value: object = None
    lookups: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    hasher: PiiHasher | None = None


# --- values ---------------------------------------------------------------------------------------


def _present(cell: object) -> Value:
    return MISSING if cell is None or cell == "" else cell


def _whole(number: int, value: object) -> int:
    if abs(number) >= MAX_WHOLE:
        raise RowError("a number below 10^40", value)
    return number


def _finite(number: float, value: object) -> float:
    if not math.isfinite(number):
        raise RowError("a finite number", value)
    return number


def to_number(value: Value) -> Number:
    """A number from a number or numeric text (commas and surrounding blanks allowed).

    >>> to_number("1,234.5"), to_number(" 12 "), to_number(3.0)
    (1234.5, 12, 3.0)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return _whole(value, value)
    if isinstance(value, float):
        return _finite(value, value)
    if not isinstance(value, str) or len(value) > MAX_NUMBER_CHARS:
        raise RowError("a number", value)
    text = value.strip().replace(",", "")
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise RowError("a number", value)
    if match.group(1) is not None and match.group(2) is None and match.group(3) is None:
        return _whole(int(text), value)
    return _finite(float(text), value)


def text_of(value: Value) -> str:
    """The text of a value: whole floats without ``.0`` (spreadsheets store ids as floats), bools lower-case.

    >>> text_of(12.0), text_of(True), text_of(7)
    ('12', 'true', '7')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def lookup_key(key: object) -> str:
    """How a cell and a lookup table's key are compared: as text (YAML may read a key ``1`` as a number)."""
    return text_of(key)


def _to_int(value: Value) -> int:
    number = to_number(value)
    return number if isinstance(number, int) else _whole(int(number), value)


def _round(value: Value, digits: int) -> Number:
    number = to_number(value)
    if isinstance(number, int) and digits >= 0:
        return number
    if abs(number) >= MAX_WHOLE:
        raise RowError("a number below 10^40", value)
    exact = Decimal(number) if isinstance(number, int) else Decimal(repr(number))
    context = Context(prec=100, rounding=ROUND_HALF_UP)
    rounded = exact.quantize(Decimal(1).scaleb(-digits), context=context)
    return int(rounded) if digits <= 0 else float(rounded)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def parse_reference(text: str) -> datetime:
    """An ISO-8601 reference time that carries its offset (``ValueError`` otherwise).

    >>> parse_reference("2017-11-30T00:00:00+08:00").utcoffset()
    datetime.timedelta(seconds=28800)
    """
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("it has no offset; add one, e.g. +00:00 or +08:00")
    return moment


def _after(base: datetime, delta: Callable[[], timedelta], value: object) -> str:
    try:
        return _iso(base + delta())
    except (OverflowError, ValueError):
        raise RowError("a time within the calendar", value) from None


# --- functions ------------------------------------------------------------------------------------


Args: TypeAlias = Sequence[Value]


def _f_num(a: Args, s: Scope) -> Value:
    return to_number(a[0])


def _f_int(a: Args, s: Scope) -> Value:
    return _to_int(a[0])


def _f_round(a: Args, s: Scope) -> Value:
    digits = _to_int(a[1]) if len(a) > 1 else 0
    if not -MAX_ROUND_DIGITS <= digits <= MAX_ROUND_DIGITS or (len(a) > 1 and to_number(a[1]) != digits):
        raise RowError(f"a round() precision from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}", a[1])
    return _round(a[0], digits)


def _f_str(a: Args, s: Scope) -> Value:
    return text_of(a[0])


def _f_lower(a: Args, s: Scope) -> Value:
    return text_of(a[0]).lower()


def _f_upper(a: Args, s: Scope) -> Value:
    return text_of(a[0]).upper()


def _f_strip(a: Args, s: Scope) -> Value:
    return text_of(a[0]).strip()


def _f_concat(a: Args, s: Scope) -> Value:
    return "".join(text_of(v) for v in a)


def _f_split(a: Args, s: Scope) -> Value:
    separator = text_of(a[1])
    if not separator:
        raise RowError("a non-empty separator", a[1])
    parts = text_of(a[0]).split(separator)
    index = _to_int(a[2])
    return parts[index] if -len(parts) <= index < len(parts) else MISSING


def _f_lookup(a: Args, s: Scope) -> Value:
    if a[1] is MISSING:
        return MISSING
    found = s.lookups.get(text_of(a[0]), {}).get(lookup_key(a[1]))
    if found is None:
        return a[2] if len(a) > 2 else MISSING
    return found


def _f_epoch(a: Args, s: Scope) -> Value:
    seconds = to_number(a[0])
    return _after(_EPOCH, lambda: timedelta(seconds=seconds), a[0])


def _f_epoch_ms(a: Args, s: Scope) -> Value:
    millis = to_number(a[0])
    return _after(_EPOCH, lambda: timedelta(milliseconds=millis), a[0])


def _f_add_seconds(a: Args, s: Scope) -> Value:
    try:
        base = parse_reference(text_of(a[0]))
    except ValueError:
        raise RowError("an ISO-8601 reference time with an offset", a[0]) from None
    seconds = to_number(a[1])
    return _after(base, lambda: timedelta(seconds=seconds), a[1])


def _f_coalesce(a: Args, s: Scope) -> Value:
    return next((v for v in a if v is not MISSING), MISSING)


def _f_pii(a: Args, s: Scope) -> Value:
    if s.hasher is None:
        raise RowError("read with the deployment's PII key (pii() hashes at ingest)", a[0])
    return s.hasher.hash(text_of(a[0]), text_of(a[1]))


@dataclass(frozen=True, slots=True)
class _Function:
    """A mapping function: its arity, its body, and whether it sees missing arguments itself."""

    least: int
    most: int | None
    body: Callable[[Args, Scope], Value]
    sees_missing: bool = False
    quoted_first: bool = False


_FUNCTIONS: Final[Mapping[str, _Function]] = {
    "num": _Function(1, 1, _f_num),
    "int": _Function(1, 1, _f_int),
    "round": _Function(1, 2, _f_round),
    "str": _Function(1, 1, _f_str),
    "lower": _Function(1, 1, _f_lower),
    "upper": _Function(1, 1, _f_upper),
    "strip": _Function(1, 1, _f_strip),
    "concat": _Function(1, None, _f_concat),
    "split": _Function(3, 3, _f_split),
    "lookup": _Function(2, 3, _f_lookup, sees_missing=True, quoted_first=True),
    "epoch": _Function(1, 1, _f_epoch),
    "epoch_ms": _Function(1, 1, _f_epoch_ms),
    "add_seconds": _Function(2, 2, _f_add_seconds),
    "coalesce": _Function(1, None, _f_coalesce, sees_missing=True),
    "pii": _Function(2, 2, _f_pii, quoted_first=True),
}
_COL: Final = "col"
#: Every function name an expression may call.
FUNCTION_NAMES: Final = tuple(sorted((*_FUNCTIONS, _COL)))


# --- compiled nodes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Literal:
    value: str | int | float

    def evaluate(self, scope: Scope) -> Value:
        return self.value


@dataclass(frozen=True, slots=True)
class _Current:
    def evaluate(self, scope: Scope) -> Value:
        return _present(scope.value)


@dataclass(frozen=True, slots=True)
class _Column:
    title: str

    def evaluate(self, scope: Scope) -> Value:
        if self.title not in scope.row:
            raise RowError("an expression over the file's columns (its header has no such column)", self.title)
        return _present(scope.row[self.title])


@dataclass(frozen=True, slots=True)
class _Negate:
    operand: _Node

    def evaluate(self, scope: Scope) -> Value:
        value = self.operand.evaluate(scope)
        return MISSING if value is MISSING else -to_number(value)


Operator: TypeAlias = Literal["+", "-", "*", "/", "//", "%"]
_OPERATORS: Final[Mapping[type[ast.operator], Operator]] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
}


def arithmetic(op: Operator, a: Number, b: Number) -> Number:
    """``a op b`` as Python computes it, except that an exact division of integers stays an integer.

    >>> arithmetic("/", 10, 4), arithmetic("/", 10, 5), arithmetic("//", -7, 2)
    (2.5, 2, -4)
    """
    if op in ("/", "//", "%") and b == 0:
        raise RowError("a divisor other than zero", b)
    try:
        if op == "+":
            result: Number = a + b
        elif op == "-":
            result = a - b
        elif op == "*":
            result = a * b
        elif op == "//":
            result = a // b
        elif op == "%":
            result = a % b
        elif isinstance(a, int) and isinstance(b, int) and a % b == 0:
            result = a // b
        else:
            result = a / b
    except OverflowError:
        raise RowError("a computation within the range of numbers", f"{a} {op} {b}") from None
    if isinstance(result, int):
        return _whole(result, f"{a} {op} {b}")
    return _finite(result, f"{a} {op} {b}")


@dataclass(frozen=True, slots=True)
class _Arithmetic:
    op: Operator
    left: _Node
    right: _Node

    def evaluate(self, scope: Scope) -> Value:
        left, right = self.left.evaluate(scope), self.right.evaluate(scope)
        if left is MISSING or right is MISSING:
            return MISSING
        return arithmetic(self.op, to_number(left), to_number(right))


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    function: _Function
    args: tuple[_Node, ...]

    def evaluate(self, scope: Scope) -> Value:
        values = [arg.evaluate(scope) for arg in self.args]
        if not self.function.sees_missing and any(v is MISSING for v in values):
            return MISSING
        return self.function.body(values, scope)


_Node: TypeAlias = _Literal | _Current | _Column | _Negate | _Arithmetic | _Call


def _walk(node: _Node) -> Iterator[_Node]:
    yield node
    if isinstance(node, _Negate):
        yield from _walk(node.operand)
    elif isinstance(node, _Arithmetic):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, _Call):
        for arg in node.args:
            yield from _walk(arg)


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed and checked expression (:func:`parse`); :meth:`evaluate` it once per row.

    Attributes:
        text: the expression as written.
        columns: titles of the columns it reads (besides ``value``), in order of appearance.
        hashes: whether it calls ``pii()`` (and so needs the deployment's PII key).
    """

    text: str
    root: _Node
    columns: tuple[str, ...]
    hashes: bool

    def evaluate(self, scope: Scope) -> Value:
        """The expression's value for one row; :data:`MISSING` when a missing input made it so.

        Raises:
            RowError: a value of this row cannot be transformed.
        """
        return self.root.evaluate(scope)


# --- parsing --------------------------------------------------------------------------------------


_ALLOWED: Final = ("literals, column names, col('title'), + - * / // %, unary -, and the functions "
                   + ", ".join(f"{name}()" for name in FUNCTION_NAMES))
_REFUSED: Final[Mapping[type[ast.AST], str]] = {
    ast.Attribute: "attribute access is", ast.Subscript: "subscripts are", ast.Compare: "comparisons are",
    ast.BoolOp: "and/or are", ast.IfExp: "conditional expressions are", ast.Lambda: "lambdas are",
    ast.ListComp: "comprehensions are", ast.SetComp: "comprehensions are", ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "comprehensions are", ast.List: "lists are", ast.Tuple: "tuples are", ast.Dict: "dicts are",
    ast.Set: "sets are", ast.JoinedStr: "f-strings are", ast.NamedExpr: "assignments are",
    ast.Starred: "*arguments are",
}


def _refusal(where: str, text: object, why: str) -> ConfigError:
    """A refused expression: its place, what is wrong, the text, and what is allowed."""
    return ConfigError(f"`{where}` must be a mapping expression ({why}); got {excerpt(text)}. Allowed: {_ALLOWED}",
                       field=where)


def _arguments(count: int) -> str:
    return f"{count} argument" + ("" if count == 1 else "s")


@dataclass(frozen=True, slots=True)
class _Compiler:
    """Turns a parsed ``ast`` into nodes, refusing everything outside the allow-list; refusals name ``where``."""

    text: str
    where: str
    lookups: Mapping[str, object]
    allow_value: bool

    def refuse(self, why: str) -> ConfigError:
        return _refusal(self.where, self.text, why)

    def compile(self, node: ast.expr, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise self.refuse(f"it nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if isinstance(node, ast.Name):
            if node.id != VALUE:
                return _Column(node.id)
            if not self.allow_value:
                raise self.refuse("`value` is only defined in a column's own rule (use the column's name)")
            return _Current()
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub):
                raise self.refuse(f"the unary operator {_unary_symbol(node.op)!r} is not allowed (only -)")
            return _Negate(self.compile(node.operand, depth + 1))
        if isinstance(node, ast.BinOp):
            op = _OPERATORS.get(type(node.op))
            if op is None:
                raise self.refuse(f"the operator {_binary_symbol(node.op)!r} is not allowed")
            return _Arithmetic(op, self.compile(node.left, depth + 1), self.compile(node.right, depth + 1))
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.refuse(f"{_REFUSED.get(type(node), type(node).__name__ + ' is')} not allowed")

    def literal(self, node: ast.Constant) -> _Literal:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.refuse(f"the literal {value!r} is not allowed (only numbers and quoted text)")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.refuse(f"the literal {value!r} is not a finite number")
        if isinstance(value, int) and abs(value) >= MAX_WHOLE:
            raise self.refuse("a whole number literal must be below 10^40")
        return _Literal(value)

    def call(self, node: ast.Call, depth: int) -> _Node:
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        if name not in FUNCTION_NAMES:
            raise self.refuse(f"unknown function {name!r}")
        if node.keywords:
            raise self.refuse(f"keyword arguments are not allowed ({name}() takes positional arguments)")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.refuse("*arguments are not allowed")
        function = _FUNCTIONS.get(name)
        if function is None:  # col('title'): a column, not a call
            self.check_arity(name, 1, 1, node.args)
            return _Column(self.quoted(name, node.args[0]))
        self.check_arity(name, function.least, function.most, node.args)
        if function.quoted_first:
            self.quoted(name, node.args[0])
        args = tuple(self.compile(arg, depth + 1) for arg in node.args)
        self.check_literals(name, args)
        return _Call(name, function, args)

    def check_arity(self, name: str, least: int, most: int | None, args: Sequence[ast.expr]) -> None:
        if len(args) < least or (most is not None and len(args) > most):
            count = (_arguments(least) if least == most else f"{least} to {_arguments(most)}" if most is not None
                     else f"at least {_arguments(least)}")
            raise self.refuse(f"{name}() takes {count}, not {len(args)}")

    def quoted(self, name: str, arg: ast.expr) -> str:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value):
            raise self.refuse(f"{name}() takes a quoted name first, e.g. {name}('…', …)")
        return arg.value

    def check_literals(self, name: str, args: tuple[_Node, ...]) -> None:
        """Arguments that are literals are checked now rather than on every row."""
        first = args[0]
        if name == "lookup" and isinstance(first, _Literal) and first.value not in self.lookups:
            known = ", ".join(repr(t) for t in sorted(self.lookups)) or "none"
            raise self.refuse(f"lookup table {first.value!r} is not in the mapping's `lookups` (known: {known})")
        if name == "add_seconds" and isinstance(first, _Literal):
            try:
                parse_reference(str(first.value))
            except ValueError as e:
                raise self.refuse(f"add_seconds() needs an ISO-8601 reference time with an offset ({e})") from e
        if name == "split" and isinstance(args[1], _Literal) and args[1].value == "":
            raise self.refuse("split() needs a non-empty separator")


def _unary_symbol(op: ast.unaryop) -> str:
    return {ast.UAdd: "+", ast.Not: "not", ast.Invert: "~"}.get(type(op), type(op).__name__)


def _binary_symbol(op: ast.operator) -> str:
    symbols: dict[type[ast.operator], str] = {ast.Pow: "**", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|",
                                              ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}
    return symbols.get(type(op), type(op).__name__)


def _size(tree: ast.AST) -> int:
    return sum(1 for node in ast.walk(tree) if isinstance(node, ast.expr))


def parse(text: str, *, where: str, lookups: Mapping[str, object] | None = None,
          allow_value: bool = True) -> Expression:
    """Parse and check one expression; every refusal is a ``ConfigError`` whose field is ``where``.

    ``lookups`` are the mapping's tables (``lookup()`` may only name those); ``allow_value``
    is false for computed fields, which have no current column.

    >>> parse("round(value * 100)", where="e").evaluate(Scope({}, "12.345"))
    1235
    >>> parse("value.__class__", where="mapping.columns.x.expr")
    Traceback (most recent call last):
    ...
    orderguard.errors.ConfigError: `mapping.columns.x.expr` must be a mapping expression (attribute access is not \
allowed); got 'value.__class__'. Allowed: literals, column names, col('title'), + - * / // %, unary -, and the \
functions add_seconds(), coalesce(), col(), concat(), epoch(), epoch_ms(), int(), lookup(), lower(), num(), pii(), \
round(), split(), str(), strip(), upper()
    """
    if not isinstance(text, str) or not text.strip():
        raise _refusal(where, text, "it is empty")
    if len(text) > MAX_CHARS:
        raise _refusal(where, text, f"at most {MAX_CHARS} characters, not {len(text)}")
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and the like: the refusal says it
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        reason = e.msg if isinstance(e, SyntaxError) else type(e).__name__
        raise _refusal(where, text, f"it does not parse: {reason}") from None
    if _size(tree) > MAX_NODES:
        raise _refusal(where, text, f"at most {MAX_NODES} parts")
    compiler = _Compiler(text, where, lookups or {}, allow_value)
    root = compiler.compile(tree, 1)
    columns = tuple(dict.fromkeys(n.title for n in _walk(root) if isinstance(n, _Column)))
    hashes = any(isinstance(n, _Call) and n.name == "pii" for n in _walk(root))
    return Expression(text, root, columns, hashes)


def as_cell(value: Value) -> object | None:
    """An evaluated value as a payload value (``None`` for missing: the target is left unset)."""
    return None if value is MISSING else value


def row_error(where: str, error: RowError) -> InvalidInputError:
    """The refused row's error, naming the column (or computed field) whose value failed.

    >>> row_error("mapping.columns.amt", RowError("a number", "abc")).message
    "`mapping.columns.amt` must be a number; got 'abc'"
    """
    return InvalidInputError.must(where, error.constraint, error.value)
