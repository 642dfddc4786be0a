"""The memo of each sorted set's last decoded read: reused only where the new read continues it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.facts import Fact, FactKind
from features.stores.codec import encode_fact, fact_token
from features.stores.range_memo import MemoTotals, RangeMemo


def fact(i: int) -> Fact:
    return Fact(FactKind.ORDER, i, f"f{i}", {}, {})


def read(ids: list[int]) -> bytes:
    """The store's answer for these facts: their tokens joined by spaces."""
    return b" ".join(fact_token(encode_fact(fact(i))) for i in ids)


def kept(memo: RangeMemo, key: str, ids: list[int]) -> None:
    memo.keep(key, read(ids), [fact(i) for i in ids], list(ids))


def test_a_slid_window_reuses_the_overlap_and_asks_only_for_the_new_tokens() -> None:
    memo = RangeMemo(capacity=4)
    kept(memo, "k", [1, 2, 3, 4])
    shared = memo.continued("k", read([3, 4, 5, 6]))
    assert shared is not None
    assert shared.facts == [fact(3), fact(4)] and shared.times == [3, 4]
    assert shared.new_tokens == read([5, 6]).split(b" ")


def test_an_unchanged_read_is_the_last_one() -> None:
    memo = RangeMemo(capacity=4)
    kept(memo, "k", [1, 2])
    shared = memo.continued("k", read([1, 2]))
    assert shared is not None and shared.facts == [fact(1), fact(2)] and shared.new_tokens == []


@pytest.mark.parametrize("ids", [[1, 9, 3, 4], [1, 3, 4], [0, 1, 2, 3, 4], [5, 6], [3]])
def test_a_read_that_does_not_continue_the_last_one_shares_nothing(ids: list[int]) -> None:
    """A fact inserted or removed in the middle, one before the start, a disjoint read, a shorter end."""
    memo = RangeMemo(capacity=4)
    kept(memo, "k", [1, 2, 3, 4])
    assert memo.continued("k", read(ids)) is None


def test_keys_are_apart_and_the_bound_forgets_all_at_once() -> None:
    memo = RangeMemo(capacity=2)
    kept(memo, "a", [1])
    kept(memo, "b", [2])
    assert memo.continued("a", read([2])) is None  # b's read says nothing about a
    kept(memo, "c", [3])  # full: the memo starts afresh
    assert len(memo) == 1 and memo.continued("a", read([1])) is None


def test_the_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RangeMemo(capacity=0)


@given(st.lists(st.integers(0, 30), unique=True).map(sorted), st.lists(st.integers(0, 30), unique=True).map(sorted))
def test_what_is_reused_plus_the_new_tokens_is_always_the_new_read(last: list[int], new: list[int]) -> None:
    memo = RangeMemo(capacity=4)
    if last:
        kept(memo, "k", last)
    shared = memo.continued("k", read(new)) if new else None
    if shared is None:
        return
    reused = [f.ts for f in shared.facts]
    assert reused == shared.times
    assert b" ".join(filter(None, [read(reused), b" ".join(shared.new_tokens)])) == read(new)


_VALUES = st.one_of(st.none(), st.integers(-10**6, 10**6), st.just(0.5))


@given(st.lists(_VALUES, max_size=40), st.lists(st.tuples(st.integers(0, 10), st.lists(_VALUES, max_size=6)),
                                               max_size=8), st.data())
def test_totals_carried_through_slides_are_the_sums_of_the_facts(
        first: list[int | float | None], slides: list[tuple[int, list[int | float | None]]], data: st.DataObject,
) -> None:
    """Whatever a read's history of slides, its totals over any window are the sum and count of the known
    values there, or ``None`` exactly when a value there is not an integer."""
    serial = iter(range(10**6))

    def facts_of(values: list[int | float | None]) -> list[Fact]:
        return [Fact(FactKind.LINE, (n := next(serial)), f"f{n}", {}, {"v": v}) for v in values]

    facts = facts_of(first)
    totals = MemoTotals(facts)
    for skip, added in [(0, []), *slides]:
        skip = min(skip, len(facts))
        facts = facts[skip:] + facts_of(added)
        totals = totals.continued(skip, facts)
        lo = data.draw(st.integers(0, len(facts)))
        hi = data.draw(st.integers(lo, len(facts)))
        got = totals("v", lo, hi)
        if any(isinstance(f.attrs["v"], float) for f in facts):
            assert got is None
        else:
            known = [f.attrs["v"] for f in facts[lo:hi] if f.attrs["v"] is not None]
            assert got == (sum(known), len(known))  # type: ignore[arg-type]
