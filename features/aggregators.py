"""What each aggregation means over a window's values: one pass of built-ins per aggregation.

The online engine (``features.online``, whose generated code calls :func:`fold`) computes
a feature from the values of the facts inside its window; the batch engine computes the
same aggregation in DuckDB SQL (``features.batch``), and the parity tests hold the two to
the same figures. This module is the Python side of that definition:

* ``count`` - the number of facts;
* ``sum`` / ``mean`` - exactly rounded sums (``math.fsum``), so a long window of amounts
  in fen does not drift;
* ``std`` - the population standard deviation, two passes (mean, then the squared
  deviations): a plain ``Σx² - (Σx)²/n`` cancels catastrophically for amounts in fen
  (values ~1e6, squares ~1e12);
* ``min`` / ``max`` - the extreme value;
* ``distinct`` - the number of different values;
* ``time_since`` - seconds from the query time back to the newest event time (values are
  event times in microseconds).

Values over nothing: ``count`` / ``sum`` / ``distinct`` are 0, the others NaN (missing),
as :data:`features.specs.ZERO_WHEN_EMPTY` says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from features.specs import ZERO_WHEN_EMPTY, Agg

NAN = float("nan")


def _std(values: Sequence[Any]) -> float:
    n = len(values)
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((float(v) - mean) ** 2 for v in values) / n)


_FOLDS: Mapping[Agg, Callable[[Sequence[Any], int], float]] = MappingProxyType({
    Agg.COUNT: lambda values, t: float(len(values)),
    Agg.SUM: lambda values, t: math.fsum(values),
    Agg.MEAN: lambda values, t: math.fsum(values) / len(values),
    Agg.STD: lambda values, t: _std(values),
    Agg.MIN: lambda values, t: float(min(values)),
    Agg.MAX: lambda values, t: float(max(values)),
    Agg.DISTINCT: lambda values, t: float(len(set(values))),
    Agg.TIME_SINCE: lambda values, t: (t - max(values)) / 1e6,
})


def fold(agg: Agg, values: Sequence[Any], *, as_of_us: int = 0) -> float:
    """The aggregate of ``values`` as of ``as_of_us`` (which only ``time_since`` reads).

    >>> fold(Agg.STD, [2, 4, 4, 4, 5, 5, 7, 9]), fold(Agg.MAX, []), fold(Agg.SUM, [])
    (2.0, nan, 0.0)
    >>> fold(Agg.DISTINCT, ["u1", "u2", "u1"]), fold(Agg.TIME_SINCE, [1_000_000, 4_000_000], as_of_us=10_000_000)
    (2.0, 6.0)
    """
    if not values:
        return 0.0 if agg in ZERO_WHEN_EMPTY else NAN
    return _FOLDS[agg](values, as_of_us)
