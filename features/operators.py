"""The comparison operators of feature filters and rules, and the one place that says what each means.

A feature filter (``paid_fen ge 100``) is evaluated three ways -- by ``Condition.matches``,
by the online engine's generated Python and by the batch engine's SQL -- and a rule
(``count_orders_by_device_5m ge 5``) by the scorer. All of them read :data:`MEANING`, so
an operator cannot mean one thing online and another in training. Two rules hold for
every operator: an unknown value (None, NaN) never matches, and ordering operators
compare as numbers.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Op(StrEnum):
    """A comparison ``actual <op> value`` (spelled as in spec and rule files)."""

    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"


def _member(actual: Any, values: Any) -> bool:
    return actual in values


def _not_member(actual: Any, values: Any) -> bool:
    return actual not in values


@dataclass(frozen=True, slots=True)
class OpMeaning:
    """What one operator means, in each language that evaluates it.

    Attributes:
        test: ``test(actual, value)`` for a known actual value.
        python: the operator in generated Python (``actual <python> value``).
        sql: the operator in DuckDB SQL.
        sign: how a reviewer reads it (``≥``).
        ordering: compares as numbers (``lt le gt ge``).
        membership: the value is a set of values (``in not_in``).
    """

    test: Callable[[Any, Any], bool]
    python: str
    sql: str
    sign: str
    ordering: bool = False
    membership: bool = False


MEANING: Mapping[Op, OpMeaning] = MappingProxyType({
    Op.EQ: OpMeaning(operator.eq, "==", "=", "="),
    Op.NE: OpMeaning(operator.ne, "!=", "<>", "≠"),
    Op.IN: OpMeaning(_member, "in", "IN", "∈", membership=True),
    Op.NOT_IN: OpMeaning(_not_member, "not in", "NOT IN", "∉", membership=True),
    Op.LT: OpMeaning(operator.lt, "<", "<", "<", ordering=True),
    Op.LE: OpMeaning(operator.le, "<=", "<=", "≤", ordering=True),
    Op.GT: OpMeaning(operator.gt, ">", ">", ">", ordering=True),
    Op.GE: OpMeaning(operator.ge, ">=", ">=", "≥", ordering=True),
})

ORDERING_OPS: frozenset[Op] = frozenset(op for op, m in MEANING.items() if m.ordering)
MEMBERSHIP_OPS: frozenset[Op] = frozenset(op for op, m in MEANING.items() if m.membership)
SCALAR_OPS: frozenset[Op] = frozenset(Op) - MEMBERSHIP_OPS
"""Operators with one value on the right: what a rule may use."""


def matches(op: Op, actual: object, value: object) -> bool:
    """``actual <op> value`` with the shared rules (unknown never matches; ordering is numeric).

    >>> matches(Op.GE, 5, 5.0), matches(Op.IN, "damaged", ("damaged", "lost")), matches(Op.NE, None, 1)
    (True, True, False)
    """
    if actual is None:
        return False
    meaning = MEANING[op]
    if meaning.ordering:
        return meaning.test(float(actual), float(value))  # type: ignore[arg-type]
    return meaning.test(actual, value)


def compare(op: Op, value: float, threshold: float) -> bool:
    """A rule's ``feature <op> threshold`` on numbers; NaN (unknown) is never true.

    >>> compare(Op.GE, 5.0, 5.0), compare(Op.LT, float("nan"), 1.0), compare(Op.NE, float("nan"), 1.0)
    (True, False, False)
    """
    return not math.isnan(value) and MEANING[op].test(value, threshold)
