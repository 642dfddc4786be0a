"""Mergeable aggregation state: ``update`` one value, ``merge`` two states, read ``value``.

Each state keeps sufficient statistics only, so folding facts one by one, folding
partitions and merging them, or recomputing from scratch all give the same value:
this is what lets the online engine, the batch engine and backfills agree.

* ``count`` - the number of facts;
* ``sum`` - the running total;
* ``mean`` - count and total (the mean is total / count, as SQL's ``avg``);
* ``std`` - count, mean and the sum of squared deviations ``m2``, merged with Chan's
  parallel formula. Chosen over a plain sum of squares, whose ``Σx² - (Σx)²/n``
  cancels catastrophically for amounts in fen (values ~1e6, squares ~1e12);
* ``min`` / ``max`` - the extreme value;
* ``distinct`` - the exact set of values (windows are bounded, so the set is too);
* ``time_since`` - the newest event time seen; the value is the seconds from the query
  time back to it.

Values over nothing: ``count``/``sum``/``distinct`` are 0, the others NaN (missing).
States are small mutable accumulators, private to one computation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, Self

from features.specs import Agg

NAN = float("nan")


class State(Protocol):
    """The interface every aggregation state implements."""

    def update(self, value: object) -> None:
        """Fold one value in (the value's type depends on the aggregation)."""

    def merge(self, other: Self) -> None:
        """Fold another state of the same aggregation in."""

    def value(self, as_of_us: int) -> float:
        """The aggregate; ``as_of_us`` (query time, microseconds) matters only for ``time_since``."""


class CountState:
    """Number of facts.

    >>> s = CountState(); s.update(None); s.update(None); s.value(0)
    2.0
    """

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def update(self, value: object) -> None:
        self.n += 1

    def merge(self, other: Self) -> None:
        self.n += other.n

    def value(self, as_of_us: int) -> float:
        return float(self.n)


class SumState:
    """Sum of values; 0 over nothing (like ``COALESCE(SUM(x), 0)``).

    >>> s = SumState(); s.update(1990); s.update(10); s.value(0)
    2000.0
    """

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0.0

    def update(self, value: object) -> None:
        self.total += float(value)  # type: ignore[arg-type]

    def merge(self, other: Self) -> None:
        self.total += other.total

    def value(self, as_of_us: int) -> float:
        return self.total


class MeanState:
    """Arithmetic mean as total / count; NaN over nothing.

    >>> s = MeanState(); [s.update(v) for v in (1, 2, 6)] and s.value(0)
    3.0
    """

    __slots__ = ("n", "total")

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0

    def update(self, value: object) -> None:
        self.n += 1
        self.total += float(value)  # type: ignore[arg-type]

    def merge(self, other: Self) -> None:
        self.n += other.n
        self.total += other.total

    def value(self, as_of_us: int) -> float:
        return self.total / self.n if self.n else NAN


class StdState:
    """Population standard deviation via Welford updates and Chan merges; NaN over nothing.

    >>> s = StdState(); [s.update(v) for v in (2, 4, 4, 4, 5, 5, 7, 9)] and s.value(0)
    2.0
    """

    __slots__ = ("m2", "mean", "n")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, value: object) -> None:
        x = float(value)  # type: ignore[arg-type]
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def merge(self, other: Self) -> None:
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.mean += delta * other.n / n
        self.n = n

    def value(self, as_of_us: int) -> float:
        return math.sqrt(max(self.m2, 0.0) / self.n) if self.n else NAN


class MinState:
    """Smallest value; NaN over nothing.

    >>> s = MinState(); s.update(3); s.update(-1); s.value(0)
    -1.0
    """

    __slots__ = ("best",)

    def __init__(self) -> None:
        self.best: float | None = None

    def update(self, value: object) -> None:
        x = float(value)  # type: ignore[arg-type]
        if self.best is None or x < self.best:
            self.best = x

    def merge(self, other: Self) -> None:
        if other.best is not None:
            self.update(other.best)

    def value(self, as_of_us: int) -> float:
        return NAN if self.best is None else self.best


class MaxState:
    """Largest value; NaN over nothing.

    >>> s = MaxState(); s.update(3); s.update(-1); s.value(0)
    3.0
    """

    __slots__ = ("best",)

    def __init__(self) -> None:
        self.best: float | None = None

    def update(self, value: object) -> None:
        x = float(value)  # type: ignore[arg-type]
        if self.best is None or x > self.best:
            self.best = x

    def merge(self, other: Self) -> None:
        if other.best is not None:
            self.update(other.best)

    def value(self, as_of_us: int) -> float:
        return NAN if self.best is None else self.best


class DistinctState:
    """Exact number of distinct values; 0 over nothing.

    >>> s = DistinctState(); [s.update(v) for v in ("a", "b", "a")] and s.value(0)
    2.0
    """

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: set[object] = set()

    def update(self, value: object) -> None:
        self.seen.add(value)

    def merge(self, other: Self) -> None:
        self.seen |= other.seen

    def value(self, as_of_us: int) -> float:
        return float(len(self.seen))


class TimeSinceState:
    """Seconds from the query time back to the newest event time seen; NaN over nothing.

    Values are event times in microseconds.

    >>> s = TimeSinceState(); s.update(1_000_000); s.update(4_000_000); s.value(10_000_000)
    6.0
    """

    __slots__ = ("latest",)

    def __init__(self) -> None:
        self.latest: int | None = None

    def update(self, value: object) -> None:
        ts = int(value)  # type: ignore[call-overload]
        if self.latest is None or ts > self.latest:
            self.latest = ts

    def merge(self, other: Self) -> None:
        if other.latest is not None:
            self.update(other.latest)

    def value(self, as_of_us: int) -> float:
        return NAN if self.latest is None else (as_of_us - self.latest) / 1e6


_STATES: Mapping[Agg, type[State]] = MappingProxyType({
    Agg.COUNT: CountState, Agg.SUM: SumState, Agg.MEAN: MeanState, Agg.STD: StdState,
    Agg.MIN: MinState, Agg.MAX: MaxState, Agg.DISTINCT: DistinctState, Agg.TIME_SINCE: TimeSinceState,
})


def new_state(agg: Agg) -> State:
    """A fresh, empty state for an aggregation.

    >>> new_state(Agg.SUM).value(0), new_state(Agg.MEAN).value(0)
    (0.0, nan)
    """
    return _STATES[agg]()


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
    """The same aggregate as a state fed ``values`` one by one, computed in one pass of built-ins.

    The online hot path uses it: a window's values are already in hand, so the
    incremental state would only add per-value call overhead. Values over nothing are
    those of the states (0 or NaN). ``sum``/``mean``/``std`` use exactly rounded sums.

    >>> fold(Agg.STD, [2, 4, 4, 4, 5, 5, 7, 9]), fold(Agg.MAX, []), fold(Agg.SUM, [])
    (2.0, nan, 0.0)
    """
    if not values:
        return new_state(agg).value(as_of_us)
    return _FOLDS[agg](values, as_of_us)


def aggregate(agg: Agg, values: Iterable[object], *, as_of_us: int = 0) -> float:
    """Fold values into a fresh state and read it: the reference definition of each aggregation.

    >>> aggregate(Agg.DISTINCT, ["u1", "u2", "u1"])
    2.0
    """
    state = new_state(agg)
    for v in values:
        state.update(v)
    return state.value(as_of_us)
