"""Each aggregation agrees with its spelling-out in the standard library."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.aggregators import fold
from features.specs import Agg

NUMERIC = (Agg.SUM, Agg.MEAN, Agg.MIN, Agg.MAX, Agg.STD)
AS_OF = 10**15

values_st = st.lists(st.one_of(st.integers(0, 10**7), st.floats(-1e6, 1e6, allow_nan=False)), max_size=40)


def brute(agg: Agg, values: Sequence[float]) -> float:
    """Each aggregation spelled out with the standard library, independently of the module."""
    if agg is Agg.COUNT:
        return float(len(values))
    if agg is Agg.SUM:
        return float(math.fsum(values))
    if not values:
        return math.nan
    formulas: dict[Agg, Callable[[Sequence[float]], float]] = {
        Agg.MEAN: statistics.fmean, Agg.MIN: min, Agg.MAX: max, Agg.STD: statistics.pstdev,
    }
    return float(formulas[agg](values))


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@pytest.mark.parametrize("agg", [Agg.COUNT, *NUMERIC])
@given(values=values_st)
def test_one_pass_matches_brute_force(agg: Agg, values: list[float]) -> None:
    assert close(fold(agg, values), brute(agg, values))


@given(keys=st.lists(st.sampled_from(["u1", "u2", "u3", "u4"]), max_size=20))
def test_distinct_counts_each_value_once(keys: list[str]) -> None:
    assert fold(Agg.DISTINCT, keys) == len(set(keys))


@given(stamps=st.lists(st.integers(0, AS_OF), max_size=20))
def test_time_since_is_seconds_back_to_the_newest_time(stamps: list[int]) -> None:
    expected = (AS_OF - max(stamps)) / 1e6 if stamps else math.nan
    assert close(fold(Agg.TIME_SINCE, stamps, as_of_us=AS_OF), expected)


def test_empty_values_are_zero_for_counts_and_sums_and_missing_otherwise() -> None:
    for agg in Agg:
        value = fold(agg, [], as_of_us=AS_OF)
        if agg in (Agg.COUNT, Agg.SUM, Agg.DISTINCT):
            assert value == 0.0
        else:
            assert math.isnan(value)


def test_std_stays_accurate_for_large_amounts_in_fen() -> None:
    # A plain sum of squares loses every digit here: 1e8 fen squared is 1e16, beyond 2**53.
    values = [100_000_000 + d for d in (1, 2, 3, 4)]
    assert math.isclose(fold(Agg.STD, values), statistics.pstdev([1, 2, 3, 4]), rel_tol=1e-9)


def test_flags_aggregate_as_zero_or_one() -> None:
    assert fold(Agg.SUM, [True, False, True]) == 2.0
    assert fold(Agg.MAX, [False, True]) == 1.0
