"""The in-memory store's own mechanics: what it indexes, running totals of long ranges, one-fact keys."""

from __future__ import annotations

import random

import pytest

from features.facts import AttrValue, Entity, Fact, FactGroup, FactKind
from features.stores import MemoryStore, RangeQuery
from features.stores.base import TOTALS_FROM

SKU = Entity.SKU
LINE = FactKind.LINE


def line(fact_id: str, ts: int, *, sku: str = "s1", price: AttrValue = 100, user: str = "u1") -> Fact:
    return Fact(LINE, ts, fact_id, {SKU: sku, Entity.USER: user}, {"unit_price_fen": price})


def put(store: MemoryStore, *facts: Fact, version: int = 1) -> None:
    for fact in facts:
        store.apply(FactGroup(fact.fact_id, version, (fact,)))


def fetch(store: MemoryStore, entity: Entity = SKU, key: str = "s1", kind: FactKind = LINE, lo: int = 0,
          hi: int = 10**12) -> tuple[list[int], list[str]]:
    (found,) = store.fetch([RangeQuery(entity, key, kind, lo, hi)])
    return list(found.ts), [f.fact_id for f in found.facts]


def test_only_declared_ranges_are_indexed() -> None:
    store = MemoryStore()
    store.declare_reads([(SKU, LINE)])
    put(store, line("a", 1))
    assert fetch(store) == ([1], ["a"])
    assert fetch(store, Entity.USER, "u1") == ([], [])  # nobody reads lines by user: not indexed
    store.declare_reads([(SKU, LINE)])  # nothing new: fine
    with pytest.raises(ValueError, match="rebuild"):
        store.declare_reads([(Entity.USER, LINE)])  # facts already stored were not indexed for it


def test_without_a_declaration_everything_is_indexed_and_stays_so() -> None:
    store = MemoryStore()
    put(store, line("a", 1))
    store.declare_reads([(SKU, LINE)])
    assert fetch(store, Entity.USER, "u1") == ([1], ["a"])


def test_a_second_fact_on_a_one_fact_key_keeps_event_time_order() -> None:
    store = MemoryStore()
    put(store, line("late", 50), line("early", 10), line("peer", 50))
    assert fetch(store) == ([10, 50, 50], ["early", "late", "peer"])
    assert fetch(store, lo=11, hi=49) == ([], [])
    store.evict(before_us=10)
    assert fetch(store) == ([50, 50], ["late", "peer"])


def totals_of(store: MemoryStore, lo: int, hi: int) -> tuple[tuple[int, int] | None, list[AttrValue]]:
    """Totals for every window inside a fetched range, and the values they must sum."""
    (found,) = store.fetch([RangeQuery(SKU, "s1", LINE, lo, hi)])
    assert found.totals is not None
    i, j = 3, len(found.facts) - 2
    return found.totals("unit_price_fen", i, j), [f.attrs["unit_price_fen"] for f in found.facts[i:j]]


def exact(values: list[AttrValue]) -> tuple[int, int]:
    known = [v for v in values if v is not None]
    assert all(isinstance(v, int) for v in known)
    return sum(v for v in known if isinstance(v, int)), len(known)


def test_long_ranges_come_with_exact_running_totals_through_every_change() -> None:
    rng = random.Random(7)
    store = MemoryStore()
    put(store, *(line(f"f{i}", 10 * i, price=rng.choice([None, 990, 1_990, 50_000])) for i in range(3 * TOTALS_FROM)))
    got, values = totals_of(store, 0, 10**9)
    assert got == exact(values)
    put(store, line("appended", 10_000, price=7))  # the totals follow appends
    got, values = totals_of(store, 0, 10**9)
    assert got == exact(values)
    put(store, line("late", 15, price=3))  # a late fact lands inside: totals are rebuilt
    got, values = totals_of(store, 5, 10**9)
    assert got == exact(values)
    store.evict(before_us=40)  # the oldest facts go
    got, values = totals_of(store, 0, 10**9)
    assert got == exact(values)
    put(store, line("f60", 600, price=1), version=2)  # a changed fact in the middle
    got, values = totals_of(store, 0, 10**9)
    assert got == exact(values)


def test_totals_refuse_when_inexact_or_when_the_range_moved() -> None:
    store = MemoryStore()
    put(store, *(line(f"f{i}", i, price=0.5 + i) for i in range(TOTALS_FROM)))
    (found,) = store.fetch([RangeQuery(SKU, "s1", LINE, 0, 10**6)])
    assert found.totals is not None and found.totals("unit_price_fen", 0, 5) is None  # floats: fold instead
    store = MemoryStore()
    put(store, *(line(f"f{i}", 10 * i) for i in range(TOTALS_FROM)))
    (found,) = store.fetch([RangeQuery(SKU, "s1", LINE, 0, 10**6)])
    put(store, line("late", 5))  # positions shift after the fetch
    assert found.totals is not None and found.totals("unit_price_fen", 0, 5) is None


def test_short_ranges_have_no_totals() -> None:
    store = MemoryStore()
    put(store, *(line(f"f{i}", i) for i in range(TOTALS_FROM - 1)))
    (found,) = store.fetch([RangeQuery(SKU, "s1", LINE, 0, 10**6)])
    assert found.totals is None and len(found.facts) == TOTALS_FROM - 1


def test_a_newer_version_with_the_same_facts_moves_nothing_but_counts_as_a_change() -> None:
    store = MemoryStore()
    fact = line("a", 1)
    assert store.apply(FactGroup("g", 1, (fact,)))
    assert store.apply(FactGroup("g", 2, (line("a", 1),)))  # equal facts, newer version
    assert not store.apply(FactGroup("g", 2, (line("a", 1),)))
    assert not store.apply(FactGroup("g", 1, (line("a", 9),)))  # older version
    (found,) = store.fetch([RangeQuery(SKU, "s1", LINE, 0, 10)])
    assert found.facts[0] is fact
