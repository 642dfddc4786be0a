"""The memo of each sorted set's last decoded read: reused only where the new read continues it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.facts import Fact, FactKind
from features.stores.codec import encode_fact, fact_token
from features.stores.range_memo import Kept, MemoTotals, RangeMemo


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


def test_keys_are_apart_and_the_bound_forgets_the_least_recently_read() -> None:
    memo = RangeMemo(capacity=2)
    kept(memo, "a", [1])
    kept(memo, "b", [2])
    assert memo.continued("a", read([2])) is None  # b's read says nothing about a
    kept(memo, "a", [1, 3])  # a read again: b is now the least recent
    kept(memo, "c", [4])
    assert len(memo) == 2
    assert memo.continued("b", read([2])) is None
    assert memo.continued("a", read([1, 3])) is not None and memo.continued("c", read([4])) is not None


def test_a_new_generation_forgets_every_read_and_a_read_of_another_is_not_kept() -> None:
    """Stamps mean nothing across a flush of the store: reads of an earlier generation must not be extended."""
    memo = RangeMemo(capacity=4)
    memo.adopt(b"g1")
    memo.keep("k", read([1, 2]), [fact(1), fact(2)], [1, 2], lo=0, stamp=b"5", generation=b"g1")
    assert memo.since("k", 1) is not None
    memo.adopt(b"g2")
    assert memo.since("k", 1) is None and len(memo) == 0
    memo.keep("k", read([1, 2]), [fact(1), fact(2)], [1, 2], lo=0, stamp=b"5", generation=b"g1")  # raced the flush
    assert len(memo) == 0


@pytest.mark.parametrize(("lo", "stamp", "usable"), [(1, b"5", True), (2, b"5", True), (0, b"5", True),
                                                     (-1, b"5", False), (3, b"5", False), (1, b"", False)])
def test_a_read_is_extended_only_from_within_a_stamped_last_read(lo: int, stamp: bytes, usable: bool) -> None:
    """Before the last read's start it lacks facts; after its last fact it holds nothing of use; without a
    stamp the store cannot say it is unchanged."""
    memo = RangeMemo(capacity=4)
    memo.keep("k", read([1, 2]), [fact(1), fact(2)], [1, 2], lo=0, stamp=stamp)
    assert (memo.since("k", lo) is not None) == usable


@given(st.lists(st.integers(0, 30), unique=True).map(sorted), st.integers(0, 30), st.integers(0, 30),
       st.lists(st.integers(31, 40), unique=True).map(sorted))
def test_an_extended_read_is_the_base_within_its_bounds_then_the_new_tokens(base: list[int], lo: int, hi: int,
                                                                              after: list[int]) -> None:
    kept_base = Kept(read(base), [fact(i) for i in base], list(base), MemoTotals.of([fact(i) for i in base]), 0,
                     b"1")
    tail = read(after) if hi >= 30 else b""
    shared, whole = RangeMemo.extended(kept_base, lo, hi, tail)
    inside = [i for i in base if lo <= i <= hi]
    assert shared.facts == [fact(i) for i in inside] and shared.times == inside
    assert shared.new_tokens == (tail.split(b" ") if tail else [])
    assert whole == read(inside + (after if tail else []))
    facts, times, _ = shared.with_new([fact(i) for i in after] if tail else [])
    assert times == inside + (after if tail else []) and facts == [fact(i) for i in times]


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
