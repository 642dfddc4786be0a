"""One contract every online store passes: memory, SQLite and Redis (a real server; fails if down).

Every test takes the top-level ``online_store`` fixture, parametrised over
``features.stores.STORE_TYPES``: a new backend registered there runs this suite for free.

The first half speaks the store protocol directly (``features.stores.base``): versioned
groups, ranges by event time, eviction. The second half runs the online engine on each
store: idempotent apply, late arrival, eviction, as-of lookups, an unknown entity.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from features.facts import AttrValue, Entity, Fact, FactGroup, FactKind
from features.online import OnlineFeatures
from features.specs import FeatureSet
from features.stores import OnlineStore, RangeQuery, RedisStoreConfig, SqliteStoreConfig
from features.stores.base import FactRange
from features.stores.memory import MemoryStoreConfig
from features.windows import to_us
from orderguard.schema import (
    Order,
)
from tests.factories import make_order
from tests.stores import StoreRecipe, make_recipe

T0 = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)
MIN = 60_000_000
BASE = to_us(T0)
StoreConfigModel = MemoryStoreConfig | SqliteStoreConfig | RedisStoreConfig


def fact(fact_id: str, ts: int, *, kind: FactKind = FactKind.ORDER, device: str | None = "d1",
         user: str = "u1", **attrs: AttrValue) -> Fact:
    entities: dict[str, str] = {Entity.USER: user}
    if device is not None:
        entities[Entity.DEVICE] = device
    return Fact(kind, ts, fact_id, entities, {"paid_fen": 100, **attrs})


def group(group_id: str, *facts: Fact, version: int = 1) -> FactGroup:
    return FactGroup(group_id, version, facts)


def ids(store: OnlineStore, entity: Entity, key: str, lo: int = 0, hi: int = 2**62,
        kind: FactKind = FactKind.ORDER) -> list[str]:
    (found,) = store.fetch([RangeQuery(entity, key, kind, lo, hi)])
    assert list(found.ts) == [f.ts for f in found.facts]
    return [f.fact_id for f in found.facts]


# -- the store protocol ---------------------------------------------------------------------------------


def test_facts_come_back_by_entity_key_in_event_time_order(online_store: OnlineStore) -> None:
    assert online_store.apply(group("g2", fact("b", BASE + 2 * MIN)))
    assert online_store.apply(group("g1", fact("a", BASE + MIN), fact("a2", BASE + 3 * MIN, device="d2")))
    assert ids(online_store, Entity.DEVICE, "d1") == ["a", "b"]
    assert ids(online_store, Entity.DEVICE, "d2") == ["a2"]
    assert ids(online_store, Entity.USER, "u1") == ["a", "b", "a2"]
    assert ids(online_store, Entity.DEVICE, "unknown") == []
    assert online_store.size() == 2


def test_range_bounds_are_inclusive_and_peers_all_returned(online_store: OnlineStore) -> None:
    online_store.apply(group("g", *(fact(f"f{i}", BASE + (i // 2) * MIN) for i in range(6))))
    assert sorted(ids(online_store, Entity.DEVICE, "d1", lo=BASE + MIN, hi=BASE + 2 * MIN)) == ["f2", "f3", "f4", "f5"]
    assert ids(online_store, Entity.DEVICE, "d1", lo=BASE + MIN + 1, hi=BASE + 2 * MIN - 1) == []


def test_kinds_are_fetched_separately(online_store: OnlineStore) -> None:
    online_store.apply(group("g", fact("o", BASE), fact("l", BASE, kind=FactKind.LINE)))
    assert ids(online_store, Entity.DEVICE, "d1") == ["o"]
    assert ids(online_store, Entity.DEVICE, "d1", kind=FactKind.LINE) == ["l"]
    assert ids(online_store, Entity.DEVICE, "d1", kind=FactKind.REFUND) == []


def test_applying_the_same_group_twice_is_a_no_op(online_store: OnlineStore) -> None:
    g = group("g", fact("a", BASE), version=7)
    assert online_store.apply(g)
    assert not online_store.apply(g)
    assert ids(online_store, Entity.DEVICE, "d1") == ["a"]


def test_older_versions_are_ignored_and_newer_ones_replace(online_store: OnlineStore) -> None:
    online_store.apply(group("g", fact("a", BASE, device="d1"), version=5))
    assert not online_store.apply(group("g", fact("a", BASE, device="d9"), version=4))
    assert ids(online_store, Entity.DEVICE, "d1") == ["a"]
    assert online_store.apply(group("g", fact("a", BASE + MIN, device="d2"), version=6))
    assert ids(online_store, Entity.DEVICE, "d1") == []
    assert ids(online_store, Entity.DEVICE, "d2") == ["a"]
    assert online_store.size() == 1


def test_same_version_with_different_facts_replaces(online_store: OnlineStore) -> None:
    online_store.apply(group("g", fact("a", BASE, delivered=False), version=5))
    assert online_store.apply(group("g", fact("a", BASE, delivered=True), version=5))
    (found,) = online_store.fetch([RangeQuery(Entity.DEVICE, "d1", FactKind.ORDER, 0, 2**62)])
    assert [f.attrs["delivered"] for f in found.facts] == [True]


def test_late_groups_land_at_their_event_time(online_store: OnlineStore) -> None:
    for i in (5, 1, 3, 0, 4, 2):
        online_store.apply(group(f"g{i}", fact(f"f{i}", BASE + i * MIN)))
    assert ids(online_store, Entity.DEVICE, "d1") == [f"f{i}" for i in range(6)]
    assert ids(online_store, Entity.DEVICE, "d1", lo=BASE + 2 * MIN, hi=BASE + 3 * MIN) == ["f2", "f3"]


def test_attributes_and_keys_round_trip_exactly(online_store: OnlineStore) -> None:
    odd = Fact(FactKind.REFUND, BASE, "jd:1/refund/r:1",
               {Entity.ADDRESS: "浙江|杭州:西湖 1号", Entity.USER: "jd:买家"},
               {"reason": "not_received", "refund_fen": 1990, "claim_hours": 1.25,
                "delivered_before_claim": True, "sku": None})
    online_store.apply(group("jd:1", odd))
    (found,) = online_store.fetch([RangeQuery(Entity.ADDRESS, "浙江|杭州:西湖 1号", FactKind.REFUND, BASE, BASE)])
    assert list(found.facts) == [odd]
    assert type(found.facts[0].attrs["refund_fen"]) is int


def test_one_fetch_answers_many_queries_in_order(online_store: OnlineStore) -> None:
    online_store.apply(group("g", fact("a", BASE, device="d1", user="u1"), fact("b", BASE, device="d2", user="u2")))
    results = online_store.fetch([RangeQuery(Entity.USER, "u2", FactKind.ORDER, 0, 2**62),
                           RangeQuery(Entity.DEVICE, "nobody", FactKind.ORDER, 0, 2**62),
                           RangeQuery(Entity.DEVICE, "d1", FactKind.ORDER, 0, 2**62)])
    assert [[f.fact_id for f in r.facts] for r in results] == [["b"], [], ["a"]]
    assert online_store.fetch([]) == []


def test_eviction_drops_groups_whose_newest_fact_is_old(online_store: OnlineStore) -> None:
    online_store.apply(group("old", fact("o", BASE)))
    online_store.apply(group("mixed", fact("m1", BASE), fact("m2", BASE + 10 * MIN)))
    online_store.apply(group("new", fact("n", BASE + 20 * MIN)))
    assert online_store.evict(before_us=BASE + 5 * MIN) == 1
    assert online_store.size() == 2
    assert ids(online_store, Entity.DEVICE, "d1") == ["m1", "m2", "n"]  # a group goes as a whole
    assert online_store.evict(before_us=BASE + 10 * MIN) == 1
    assert ids(online_store, Entity.DEVICE, "d1") == ["n"]
    assert online_store.evict(before_us=BASE + 10 * MIN) == 0
    assert online_store.apply(group("old", fact("o", BASE)))  # a group evicted may come back
    assert online_store.size() == 2


def test_eviction_follows_the_newest_version(online_store: OnlineStore) -> None:
    online_store.apply(group("g", fact("a", BASE), version=1))
    online_store.apply(group("g", fact("a", BASE + 30 * MIN), version=2))
    assert online_store.evict(before_us=BASE + MIN) == 0
    assert ids(online_store, Entity.DEVICE, "d1") == ["a"]


def test_durable_stores_survive_reopening(durable_store_recipe: StoreRecipe) -> None:
    first = durable_store_recipe.open()
    first.apply(group("g", fact("a", BASE), version=3))
    first.close()
    second = durable_store_recipe.open()
    try:
        assert ids(second, Entity.DEVICE, "d1") == ["a"]
        assert not second.apply(group("g", fact("a", BASE), version=3))
    finally:
        second.close()


def test_declared_reads_are_served_and_facts_keyed_by_plain_strings_are_found(online_store: OnlineStore) -> None:
    online_store.declare_reads([(Entity.DEVICE, FactKind.ORDER), (Entity.USER, FactKind.ORDER)])
    plain = Fact(FactKind.ORDER, BASE, "p", {"device": "d1", "user": "u1"}, {"paid_fen": 100})
    online_store.apply(group("g", plain))
    assert ids(online_store, Entity.DEVICE, "d1") == ["p"]
    assert ids(online_store, Entity.USER, "u1") == ["p"]
    (found,) = online_store.fetch([RangeQuery(Entity.DEVICE, "d1", FactKind.ORDER, BASE, BASE)])
    assert list(found.facts) == [plain]
    assert found.facts[0].entities[Entity.USER] == "u1"


def test_a_newer_version_with_the_same_facts_is_stored_and_keeps_them(online_store: OnlineStore) -> None:
    assert online_store.apply(group("g", fact("a", BASE), version=1))
    assert online_store.apply(group("g", fact("a", BASE), version=2))  # a status change: same facts
    assert not online_store.apply(group("g", fact("a", BASE, device="d9"), version=1))
    assert ids(online_store, Entity.DEVICE, "d1") == ["a"]
    assert online_store.size() == 1


# -- apply and fetch in one call ---------------------------------------------------------------------------


@pytest.fixture
def twin_store(online_store_recipe: StoreRecipe, request: pytest.FixtureRequest,
               tmp_path: Path) -> Iterator[OnlineStore]:
    """A second, separate store of the same backend as ``online_store``."""
    recipes = make_recipe(online_store_recipe.kind, request, tmp_path / "twin")
    opened = next(recipes).open()
    yield opened
    opened.close()
    next(recipes, None)  # removes its keys from a shared server


def fact_ids(ranges: Sequence[FactRange]) -> list[list[tuple[str, int, dict[str, AttrValue]]]]:
    return [sorted((f.fact_id, f.ts, dict(f.attrs)) for f in r.facts) for r in ranges]


EVERYTHING = [RangeQuery(Entity.DEVICE, "d1", FactKind.ORDER, 0, 2**62),
              RangeQuery(Entity.USER, "u1", FactKind.ORDER, BASE, BASE + 10 * MIN),
              RangeQuery(Entity.DEVICE, "d2", FactKind.ORDER, 0, 2**62),
              RangeQuery(Entity.DEVICE, "d1", FactKind.LINE, 0, 2**62),
              RangeQuery(Entity.DEVICE, "nobody", FactKind.ORDER, 0, 2**62)]

#: (group, eviction cutoff) in turn: new groups, a late one, a duplicate, a stale version, a newer version
#: with the same facts, the same version re-derived with other facts, a newer version moving a fact to
#: another key, eviction riding along, a group evicted coming back.
STEPS: list[tuple[FactGroup, int | None]] = [
    (group("g1", fact("a", BASE + MIN), fact("l", BASE + MIN, kind=FactKind.LINE)), None),
    (group("g2", fact("b", BASE + 3 * MIN)), None),
    (group("g0", fact("z", BASE)), None),  # late
    (group("g2", fact("b", BASE + 3 * MIN)), None),  # duplicate
    (group("g3", fact("c", BASE + 5 * MIN, delivered=False), version=4), None),
    (group("g3", fact("c", BASE + 5 * MIN, device="d9"), version=3), None),  # stale
    (group("g3", fact("c", BASE + 5 * MIN, delivered=False), version=5), None),  # same facts, newer
    (group("g3", fact("c", BASE + 5 * MIN, delivered=True), version=5), None),  # same version, changed
    (group("g1", fact("a", BASE + 2 * MIN, device="d2"), version=2), None),  # moves, drops the line
    (group("g4", fact("d", BASE + 30 * MIN)), BASE + MIN),  # evicts g0 on the way
    (group("g5", fact("e", BASE + 31 * MIN)), BASE + 6 * MIN),  # evicts g1 to g3
    (group("g0", fact("z", BASE)), None),  # an evicted group may come back
]


def test_apply_and_fetch_equals_apply_then_evict_then_fetch(online_store: OnlineStore,
                                                            twin_store: OnlineStore) -> None:
    for g, cutoff in STEPS:
        changed = twin_store.apply(g)
        if cutoff is not None:
            twin_store.evict(before_us=cutoff)
        expected = twin_store.fetch(EVERYTHING)
        together = online_store.apply_and_fetch(g, EVERYTHING, evict_before_us=cutoff)
        assert together[0] == changed, g
        assert fact_ids(together[1]) == fact_ids(expected), g
        assert [list(r.ts) for r in together[1]] == [[f.ts for f in r.facts] for r in together[1]]
        assert online_store.size() == twin_store.size()
    assert fact_ids(online_store.fetch(EVERYTHING)) == fact_ids(twin_store.fetch(EVERYTHING))


def test_apply_and_fetch_reads_the_group_it_applies(online_store: OnlineStore) -> None:
    changed, (mine,) = online_store.apply_and_fetch(
        group("g", fact("a", BASE), fact("b", BASE + MIN)),
        [RangeQuery(Entity.DEVICE, "d1", FactKind.ORDER, BASE, BASE + MIN)])
    assert changed and [f.fact_id for f in mine.facts] == ["a", "b"] and list(mine.ts) == [BASE, BASE + MIN]
    changed, ranges = online_store.apply_and_fetch(group("g", fact("a", BASE), fact("b", BASE + MIN)), [])
    assert not changed and ranges == []


# -- the online engine on every store ------------------------------------------------------------------------

SPECS = FeatureSet.from_data({"features": [
    {"entity": "device", "field": "orders", "agg": "count", "window": "10m"},
    {"entity": "device", "field": "paid_fen", "agg": "mean", "window": "10m"},
    {"entity": "user_sku", "field": "units", "agg": "sum", "window": "1h"},
]})


def order(order_id: str, *, minutes: float, device: str | None = "d1", version: int = 1,
          qty: int = 1) -> Order:
    return make_order(order_id, created_at=T0 + timedelta(minutes=minutes), device=device, version=version,
                      lines=(("sku", qty, 500),), address=("上海市", "上海市", "浦东新区", "张江路 1 号"))


def test_engine_is_idempotent_and_handles_late_orders(online_store: OnlineStore) -> None:
    engine = OnlineFeatures(online_store, SPECS)
    late, now = order("late", minutes=1), order("now", minutes=5, qty=3)
    assert engine.apply(now)
    assert engine.apply(late)
    assert not engine.apply(late)
    v = engine.lookup(now, as_of=T0 + timedelta(minutes=5))
    assert v["count_orders_by_device_10m"] == 2
    assert v["mean_paid_fen_by_device_10m"] == (500 + 1500) / 2
    assert v["sum_units_by_user_sku_1h"] == 4
    assert engine.lookup(now, as_of=T0 + timedelta(minutes=2))["count_orders_by_device_10m"] == 1


def test_engine_lookups_as_of_any_time_and_for_an_unknown_entity(online_store: OnlineStore) -> None:
    engine = OnlineFeatures(online_store, SPECS)
    for i in range(4):
        engine.apply(order(f"o{i}", minutes=4 * i))
    counts = [engine.lookup({Entity.DEVICE: ["d1"]}, as_of=T0 + timedelta(minutes=m))["count_orders_by_device_10m"]
              for m in (0, 4, 8, 10, 12, 30)]
    assert counts == [1, 2, 3, 2, 3, 0]  # at 10m the order at 0m is exactly on the open edge
    nobody = engine.lookup({Entity.DEVICE: ["nobody"]}, as_of=T0)
    assert nobody["count_orders_by_device_10m"] == 0
    assert math.isnan(nobody["mean_paid_fen_by_device_10m"])
    no_device = order("x", minutes=0, device=None)
    engine.apply(no_device)
    assert engine.lookup(no_device, as_of=T0)["count_orders_by_device_10m"] == 0


def test_engine_evicts_behind_the_watermark(online_store: OnlineStore) -> None:
    engine = OnlineFeatures(online_store, SPECS, retention_margin=timedelta(minutes=30))
    for i in range(5):
        engine.apply(order(f"o{i}", minutes=i))
    assert online_store.size() == 5
    engine.apply(order("later", minutes=24 * 60))
    assert online_store.size() == 1
    assert not engine.apply(order("too-late", minutes=2))
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=T0 + timedelta(days=1))["count_orders_by_device_10m"] == 1


def test_a_store_that_keeps_its_facts_has_not_lost_its_state(online_store: OnlineStore) -> None:
    assert not online_store.lost_state()
    online_store.apply(group("g", fact("a", BASE)))
    assert not online_store.lost_state()
    assert not online_store.lost_state()  # asking again changes nothing


def test_engine_apply_and_lookup_many_equals_one_order_at_a_time(online_store: OnlineStore,
                                                                 twin_store: OnlineStore) -> None:
    """The score route's batches: a repeat, a late order, an order that moves the watermark a day on (and
    evicts) in the middle of a batch, one then too late to apply, and one after: each order's values, the
    store and the watermark are what one call per order gives."""
    batched = OnlineFeatures(online_store, SPECS, retention_margin=timedelta(minutes=30))
    single = OnlineFeatures(twin_store, SPECS, retention_margin=timedelta(minutes=30))
    batches = [[order("a", minutes=0), order("b", minutes=5, qty=3), order("a", minutes=0, version=2, qty=2),
                order("late", minutes=1)],
               [order("b", minutes=5, qty=3), order("c", minutes=24 * 60), order("too-late", minutes=2),
                order("d", minutes=24 * 60 + 1, device=None), order("e", minutes=24 * 60 + 2)]]
    for batch in batches:
        got = batched.apply_and_lookup_many([(o, o.details.created_at) for o in batch])
        for o, one in zip(batch, got, strict=True):
            two = single.apply_and_lookup(o, as_of=o.details.created_at)
            assert not isinstance(one, Exception)
            assert one.as_of == two.as_of and list(one) == list(two)
            assert all(one[n] == two[n] or (math.isnan(one[n]) and math.isnan(two[n])) for n in one), o.key
            assert batched.keys_of(o) == single.keys_of(o)
        assert online_store.size() == twin_store.size()
        assert batched.watermark == single.watermark


def test_engine_apply_and_lookup_equals_apply_then_lookup(online_store: OnlineStore, twin_store: OnlineStore) -> None:
    together = OnlineFeatures(online_store, SPECS, retention_margin=timedelta(minutes=30))
    apart = OnlineFeatures(twin_store, SPECS, retention_margin=timedelta(minutes=30))
    stream = [order("a", minutes=0), order("b", minutes=5, qty=3), order("a", minutes=0, version=2, qty=2),
              order("late", minutes=1), order("b", minutes=5, qty=3), order("c", minutes=24 * 60),
              order("too-late", minutes=2), order("d", minutes=24 * 60 + 1, device=None)]
    for o in stream:
        as_of = o.details.created_at
        apart.apply(o)
        one, two = together.apply_and_lookup(o, as_of=as_of), apart.lookup(o, as_of=as_of)
        assert one.as_of == two.as_of and list(one) == list(two)
        assert all(one[n] == two[n] or (math.isnan(one[n]) and math.isnan(two[n])) for n in one), o.key
        assert online_store.size() == twin_store.size()
        assert together.watermark == apart.watermark
