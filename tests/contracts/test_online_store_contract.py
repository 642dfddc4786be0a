"""One contract every online store passes: memory, SQLite and Redis (a real server; fails if down).

The first half speaks the store protocol directly (``features.stores.base``): versioned
groups, ranges by event time, eviction. The second half runs the online engine on each
store: idempotent apply, late arrival, eviction, as-of lookups, an unknown entity.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from features.facts import AttrValue, Entity, Fact, FactGroup, FactKind
from features.online import OnlineFeatures
from features.specs import FeatureSet
from features.stores import STORE_TYPES, OnlineStore, RangeQuery, RedisStoreConfig, SqliteStoreConfig
from features.stores.memory import MemoryStoreConfig
from features.windows import to_us
from orderguard.schema import (
    Address,
    Amounts,
    Channel,
    ClientInfo,
    Order,
    OrderDetails,
    OrderKey,
    OrderLine,
    OrderStatus,
    Party,
    StatusChange,
)

T0 = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)
MIN = 60_000_000
BASE = to_us(T0)
StoreConfigModel = MemoryStoreConfig | SqliteStoreConfig | RedisStoreConfig


@dataclass(frozen=True)
class StoreRecipe:
    """How to open (and reopen) one test store: its configuration, with state in a test-only place."""

    config: StoreConfigModel
    directory: Path

    @property
    def kind(self) -> str:
        return self.config.type

    def open(self) -> OnlineStore:
        return self.config.open(self.directory)


def make_recipe(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreRecipe]:
    """The backend's default configuration, moved out of the way of real data.

    A new backend in ``features.stores.STORE_TYPES`` runs this suite with its defaults;
    the options the suite knows how to isolate (a file ``path``, a key ``prefix``, a
    server ``url``) are pointed at the test's own places.
    """
    config_class = STORE_TYPES[kind]
    options: dict[str, object] = {"type": kind}
    fields = config_class.model_fields
    if "path" in fields:
        options["path"] = tmp_path / f"{kind}.db"
    if "prefix" in fields:
        options["prefix"] = f"og:test:contract:{uuid.uuid4().hex}"
    if kind == "redis":
        options["url"] = request.getfixturevalue("redis_url")
    made = StoreRecipe(config_class.model_validate(options), tmp_path)
    yield made
    if "prefix" in fields:  # shared servers keep state after the test: remove this test's keys
        cleaner = made.open()
        cleaner.clear()  # type: ignore[attr-defined]
        cleaner.close()


@pytest.fixture(params=sorted(STORE_TYPES))
def recipe(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreRecipe]:
    yield from make_recipe(request.param, request, tmp_path)


@pytest.fixture(params=[t for t in sorted(STORE_TYPES) if t != "memory"])
def durable_recipe(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreRecipe]:
    """Stores whose state outlives the process (memory is rebuilt by replaying the order log)."""
    yield from make_recipe(request.param, request, tmp_path)


@pytest.fixture
def store(recipe: StoreRecipe) -> Iterator[OnlineStore]:
    opened = recipe.open()
    yield opened
    opened.close()


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


def test_facts_come_back_by_entity_key_in_event_time_order(store: OnlineStore) -> None:
    assert store.apply(group("g2", fact("b", BASE + 2 * MIN)))
    assert store.apply(group("g1", fact("a", BASE + MIN), fact("a2", BASE + 3 * MIN, device="d2")))
    assert ids(store, Entity.DEVICE, "d1") == ["a", "b"]
    assert ids(store, Entity.DEVICE, "d2") == ["a2"]
    assert ids(store, Entity.USER, "u1") == ["a", "b", "a2"]
    assert ids(store, Entity.DEVICE, "unknown") == []
    assert store.size() == 2


def test_range_bounds_are_inclusive_and_peers_all_returned(store: OnlineStore) -> None:
    store.apply(group("g", *(fact(f"f{i}", BASE + (i // 2) * MIN) for i in range(6))))
    assert sorted(ids(store, Entity.DEVICE, "d1", lo=BASE + MIN, hi=BASE + 2 * MIN)) == ["f2", "f3", "f4", "f5"]
    assert ids(store, Entity.DEVICE, "d1", lo=BASE + MIN + 1, hi=BASE + 2 * MIN - 1) == []


def test_kinds_are_fetched_separately(store: OnlineStore) -> None:
    store.apply(group("g", fact("o", BASE), fact("l", BASE, kind=FactKind.LINE)))
    assert ids(store, Entity.DEVICE, "d1") == ["o"]
    assert ids(store, Entity.DEVICE, "d1", kind=FactKind.LINE) == ["l"]
    assert ids(store, Entity.DEVICE, "d1", kind=FactKind.REFUND) == []


def test_applying_the_same_group_twice_is_a_no_op(store: OnlineStore) -> None:
    g = group("g", fact("a", BASE), version=7)
    assert store.apply(g)
    assert not store.apply(g)
    assert ids(store, Entity.DEVICE, "d1") == ["a"]


def test_older_versions_are_ignored_and_newer_ones_replace(store: OnlineStore) -> None:
    store.apply(group("g", fact("a", BASE, device="d1"), version=5))
    assert not store.apply(group("g", fact("a", BASE, device="d9"), version=4))
    assert ids(store, Entity.DEVICE, "d1") == ["a"]
    assert store.apply(group("g", fact("a", BASE + MIN, device="d2"), version=6))
    assert ids(store, Entity.DEVICE, "d1") == []
    assert ids(store, Entity.DEVICE, "d2") == ["a"]
    assert store.size() == 1


def test_same_version_with_different_facts_replaces(store: OnlineStore) -> None:
    store.apply(group("g", fact("a", BASE, delivered=False), version=5))
    assert store.apply(group("g", fact("a", BASE, delivered=True), version=5))
    (found,) = store.fetch([RangeQuery(Entity.DEVICE, "d1", FactKind.ORDER, 0, 2**62)])
    assert [f.attrs["delivered"] for f in found.facts] == [True]


def test_late_groups_land_at_their_event_time(store: OnlineStore) -> None:
    for i in (5, 1, 3, 0, 4, 2):
        store.apply(group(f"g{i}", fact(f"f{i}", BASE + i * MIN)))
    assert ids(store, Entity.DEVICE, "d1") == [f"f{i}" for i in range(6)]
    assert ids(store, Entity.DEVICE, "d1", lo=BASE + 2 * MIN, hi=BASE + 3 * MIN) == ["f2", "f3"]


def test_attributes_and_keys_round_trip_exactly(store: OnlineStore) -> None:
    odd = Fact(FactKind.REFUND, BASE, "jd:1/refund/r:1",
               {Entity.ADDRESS: "浙江|杭州:西湖 1号", Entity.USER: "jd:买家"},
               {"reason": "not_received", "refund_fen": 1990, "claim_hours": 1.25,
                "delivered_before_claim": True, "sku": None})
    store.apply(group("jd:1", odd))
    (found,) = store.fetch([RangeQuery(Entity.ADDRESS, "浙江|杭州:西湖 1号", FactKind.REFUND, BASE, BASE)])
    assert list(found.facts) == [odd]
    assert type(found.facts[0].attrs["refund_fen"]) is int


def test_one_fetch_answers_many_queries_in_order(store: OnlineStore) -> None:
    store.apply(group("g", fact("a", BASE, device="d1", user="u1"), fact("b", BASE, device="d2", user="u2")))
    results = store.fetch([RangeQuery(Entity.USER, "u2", FactKind.ORDER, 0, 2**62),
                           RangeQuery(Entity.DEVICE, "nobody", FactKind.ORDER, 0, 2**62),
                           RangeQuery(Entity.DEVICE, "d1", FactKind.ORDER, 0, 2**62)])
    assert [[f.fact_id for f in r.facts] for r in results] == [["b"], [], ["a"]]
    assert store.fetch([]) == []


def test_eviction_drops_groups_whose_newest_fact_is_old(store: OnlineStore) -> None:
    store.apply(group("old", fact("o", BASE)))
    store.apply(group("mixed", fact("m1", BASE), fact("m2", BASE + 10 * MIN)))
    store.apply(group("new", fact("n", BASE + 20 * MIN)))
    assert store.evict(before_us=BASE + 5 * MIN) == 1
    assert store.size() == 2
    assert ids(store, Entity.DEVICE, "d1") == ["m1", "m2", "n"]  # a group goes as a whole
    assert store.evict(before_us=BASE + 10 * MIN) == 1
    assert ids(store, Entity.DEVICE, "d1") == ["n"]
    assert store.evict(before_us=BASE + 10 * MIN) == 0
    assert store.apply(group("old", fact("o", BASE)))  # a group evicted may come back
    assert store.size() == 2


def test_eviction_follows_the_newest_version(store: OnlineStore) -> None:
    store.apply(group("g", fact("a", BASE), version=1))
    store.apply(group("g", fact("a", BASE + 30 * MIN), version=2))
    assert store.evict(before_us=BASE + MIN) == 0
    assert ids(store, Entity.DEVICE, "d1") == ["a"]


def test_durable_stores_survive_reopening(durable_recipe: StoreRecipe) -> None:
    first = durable_recipe.open()
    first.apply(group("g", fact("a", BASE), version=3))
    first.close()
    second = durable_recipe.open()
    try:
        assert ids(second, Entity.DEVICE, "d1") == ["a"]
        assert not second.apply(group("g", fact("a", BASE), version=3))
    finally:
        second.close()


def test_declared_reads_are_served_and_facts_keyed_by_plain_strings_are_found(store: OnlineStore) -> None:
    store.declare_reads([(Entity.DEVICE, FactKind.ORDER), (Entity.USER, FactKind.ORDER)])
    plain = Fact(FactKind.ORDER, BASE, "p", {"device": "d1", "user": "u1"}, {"paid_fen": 100})
    store.apply(group("g", plain))
    assert ids(store, Entity.DEVICE, "d1") == ["p"]
    assert ids(store, Entity.USER, "u1") == ["p"]
    (found,) = store.fetch([RangeQuery(Entity.DEVICE, "d1", FactKind.ORDER, BASE, BASE)])
    assert list(found.facts) == [plain]
    assert found.facts[0].entities[Entity.USER] == "u1"


def test_a_newer_version_with_the_same_facts_is_stored_and_keeps_them(store: OnlineStore) -> None:
    assert store.apply(group("g", fact("a", BASE), version=1))
    assert store.apply(group("g", fact("a", BASE), version=2))  # a status change: same facts
    assert not store.apply(group("g", fact("a", BASE, device="d9"), version=1))
    assert ids(store, Entity.DEVICE, "d1") == ["a"]
    assert store.size() == 1


# -- the online engine on every store ------------------------------------------------------------------

SPECS = FeatureSet.from_data({"features": [
    {"entity": "device", "field": "orders", "agg": "count", "window": "10m"},
    {"entity": "device", "field": "paid_fen", "agg": "mean", "window": "10m"},
    {"entity": "user_sku", "field": "units", "agg": "sum", "window": "1h"},
]})


def order(order_id: str, *, minutes: float, device: str | None = "d1", version: int = 1,
          qty: int = 1) -> Order:
    created = T0 + timedelta(minutes=minutes)
    details = OrderDetails(
        shop_id="s", created_at=created, buyer=Party("u1"), lines=(OrderLine("sku", qty, 500),),
        amounts=Amounts(goods_fen=500 * qty, paid_fen=500 * qty),
        address=Address("上海市", "上海市", "浦东新区", "张江路 1 号"),
        client=ClientInfo(device_id=device) if device else None)
    return Order(OrderKey(Channel.SITE, order_id), OrderStatus.PAID, details, version, created,
                 (StatusChange(OrderStatus.PAID, created, version, "paid"),))


def test_engine_is_idempotent_and_handles_late_orders(store: OnlineStore) -> None:
    engine = OnlineFeatures(store, SPECS)
    late, now = order("late", minutes=1), order("now", minutes=5, qty=3)
    assert engine.apply(now)
    assert engine.apply(late)
    assert not engine.apply(late)
    v = engine.lookup(now, as_of=T0 + timedelta(minutes=5))
    assert v["count_orders_by_device_10m"] == 2
    assert v["mean_paid_fen_by_device_10m"] == (500 + 1500) / 2
    assert v["sum_units_by_user_sku_1h"] == 4
    assert engine.lookup(now, as_of=T0 + timedelta(minutes=2))["count_orders_by_device_10m"] == 1


def test_engine_lookups_as_of_any_time_and_for_an_unknown_entity(store: OnlineStore) -> None:
    engine = OnlineFeatures(store, SPECS)
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


def test_engine_evicts_behind_the_watermark(store: OnlineStore) -> None:
    engine = OnlineFeatures(store, SPECS, retention_margin=timedelta(minutes=30))
    for i in range(5):
        engine.apply(order(f"o{i}", minutes=i))
    assert store.size() == 5
    engine.apply(order("later", minutes=24 * 60))
    assert store.size() == 1
    assert not engine.apply(order("too-late", minutes=2))
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=T0 + timedelta(days=1))["count_orders_by_device_10m"] == 1
