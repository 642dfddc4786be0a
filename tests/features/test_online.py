"""The online engine: window edges, idempotence, versions, late orders, labels, delays, eviction."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from features.facts import Entity
from features.online import OnlineFeatures
from features.specs import FeatureSet
from features.stores import MemoryStore, OnlineStore
from orderguard.enrich import Gazetteer
from orderguard.errors import ConfigError
from orderguard.schema import Phone, RefundReason, Verdict
from tests.factories import BASE_TIME, FixedClock, OrderFactory, at, make_label, make_order, refunded


def features(*specs: dict[str, Any], margin: timedelta = timedelta(hours=1),
             clock: FixedClock | None = None, store: OnlineStore | None = None) -> OnlineFeatures:
    """The online engine over ``specs``, on ``store`` (default: a fresh memory store)."""
    return OnlineFeatures(store or MemoryStore(), FeatureSet.from_data({"features": list(specs)}),
                          retention_margin=margin, clock=clock)


COUNT_5M = {"entity": "device", "field": "orders", "agg": "count", "window": "5m"}


def test_window_includes_the_order_itself_and_excludes_exactly_w_before() -> None:
    engine = features(COUNT_5M)
    first, edge, inside = (make_order("a", created_at=BASE_TIME), make_order("b", created_at=at(minutes=5)),
                           make_order("c", created_at=at(minutes=9, seconds=59)))
    for order in (first, edge, inside):
        engine.apply(order)
    assert engine.lookup(first, as_of=BASE_TIME)["count_orders_by_device_5m"] == 1
    assert engine.lookup(edge, as_of=at(minutes=5))["count_orders_by_device_5m"] == 1  # a is exactly 5m old
    assert engine.lookup(inside, as_of=at(minutes=9, seconds=59))["count_orders_by_device_5m"] == 2


def test_same_instant_orders_see_each_other() -> None:
    engine = features(COUNT_5M)
    for name in ("a", "b", "c"):
        engine.apply(make_order(name, created_at=BASE_TIME))
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=BASE_TIME)["count_orders_by_device_5m"] == 3


def test_reapplying_the_same_or_an_older_version_changes_nothing() -> None:
    engine = features(COUNT_5M)
    order = make_order("a", version=5)
    assert engine.apply(order)
    assert not engine.apply(order)
    assert not engine.apply(replace(order, event_version=4))
    assert engine.lookup(order, as_of=BASE_TIME)["count_orders_by_device_5m"] == 1


def test_a_newer_version_replaces_the_orders_facts() -> None:
    engine = features(COUNT_5M)
    engine.apply(make_order("a", device="d1", version=1))
    assert engine.apply(make_order("a", device="d2", version=2))  # the device was corrected
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=BASE_TIME)["count_orders_by_device_5m"] == 0
    assert engine.lookup({Entity.DEVICE: ["d2"]}, as_of=BASE_TIME)["count_orders_by_device_5m"] == 1
    assert not engine.apply(make_order("a", device="d1", version=1))  # the old version arriving late


def test_a_late_order_lands_at_its_event_time() -> None:
    engine = features(COUNT_5M)
    engine.apply(make_order("new", created_at=at(minutes=20)))
    engine.apply(make_order("late", created_at=at(minutes=2)))
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=at(minutes=3))["count_orders_by_device_5m"] == 1
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=at(minutes=20))["count_orders_by_device_5m"] == 1
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=at(minutes=8))["count_orders_by_device_5m"] == 0


def test_filtered_refund_counts_read_refunds_by_claim_time() -> None:
    engine = features({"entity": "user", "field": "refunds", "agg": "count", "window": "30d",
                       "qualifier": "damaged_or_lost", "filter": {"reason": ["damaged", "not_received"]}})
    name = "count_refunds_damaged_or_lost_by_user_30d"
    engine.apply(refunded(make_order("a"), when=at(days=2), reason=RefundReason.DAMAGED))
    engine.apply(refunded(make_order("b"), when=at(days=3), reason=RefundReason.NO_REASON))
    probe = make_order("probe", created_at=at(days=5))
    engine.apply(probe)
    assert engine.lookup(probe, as_of=at(days=1))[name] == 0  # claim not made yet
    assert engine.lookup(probe, as_of=at(days=5))[name] == 1  # the no-reason return does not count


def test_labels_count_only_once_known() -> None:
    engine = features({"entity": "device", "field": "orders", "agg": "distinct", "window": "90d",
                       "qualifier": "fraud", "filter": {"verdict": "confirmed_fraud"}})
    name = "distinct_orders_fraud_by_device_90d"
    bad = make_order("bad", created_at=BASE_TIME)
    engine.apply(bad)
    engine.apply_label(make_label(bad, when=at(days=3)), bad)
    engine.apply_label(make_label(bad, when=at(days=4), reviewer="rev2"), bad)  # second confirmation
    engine.apply_label(make_label(make_order("ok"), when=at(days=3), verdict=Verdict.FALSE_POSITIVE),
                       make_order("ok"))
    later = make_order("later", created_at=at(days=2))
    assert engine.lookup(later, as_of=at(days=2))[name] == 0  # the fraud was confirmed after this order
    assert engine.lookup(later, as_of=at(days=5))[name] == 1  # one order, however many labels


def test_delayed_window_ignores_the_recent_past(online_store: OnlineStore, order_factory: OrderFactory) -> None:
    engine = features({"entity": "device", "field": "orders", "agg": "count", "window": "1h", "offset": "10m"},
                      store=online_store)
    name = "count_orders_by_device_1h_lag10m"
    for minutes in (0, 30, 55, 65):
        engine.apply(order_factory(created_at=at(minutes=minutes)))
    # window at 65m is (65 - 10 - 60, 65 - 10] = (-5m, 55m]: 0, 30 and 55 count, 65 does not
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=at(minutes=65))[name] == 3
    # at 70m: (0m, 60m]: 0 is exactly on the open edge
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=at(minutes=70))[name] == 2


def test_time_since_looks_strictly_before_and_is_missing_without_history() -> None:
    engine = features({"entity": "device", "field": "orders", "agg": "time_since", "window": "1d"})
    name = "time_since_orders_by_device_1d"
    first, peer, second = (make_order("a", created_at=BASE_TIME), make_order("b", created_at=BASE_TIME),
                           make_order("c", created_at=at(minutes=3)))
    for order in (first, peer, second):
        engine.apply(order)
    assert math.isnan(engine.lookup(first, as_of=BASE_TIME)[name])  # a same-instant peer is not "before"
    assert engine.lookup(second, as_of=at(minutes=3))[name] == 180.0


def test_sku_features_take_the_riskiest_line() -> None:
    engine = features({"entity": "user_sku", "field": "units", "agg": "sum", "window": "24h"},
                      {"entity": "user_sku", "field": "unit_price_fen", "agg": "min", "window": "24h"})
    engine.apply(make_order("a", created_at=BASE_TIME, lines=(("s1", 4, 100),)))
    probe = make_order("b", created_at=at(hours=1), lines=(("s1", 1, 300), ("s2", 2, 50)))
    engine.apply(probe)
    vector = engine.lookup(probe, as_of=at(hours=1))
    assert vector["sum_units_by_user_sku_24h"] == 5  # s1: 4 + 1, s2: 2
    assert vector["min_unit_price_fen_by_user_sku_24h"] == 50  # min is reduced with min


def test_numeric_aggregates_over_the_window(online_store: OnlineStore, order_factory: OrderFactory) -> None:
    engine = features(*({"entity": "device", "field": "paid_fen", "agg": agg, "window": "1h"}
                        for agg in ("sum", "mean", "min", "max", "std")), store=online_store)
    for i, price in enumerate((100, 300, 800)):
        engine.apply(order_factory(created_at=at(minutes=i), lines=(("s", 1, price),)))
    v = engine.lookup({Entity.DEVICE: ["d1"]}, as_of=at(minutes=2))
    assert v["sum_paid_fen_by_device_1h"] == 1200
    assert v["mean_paid_fen_by_device_1h"] == 400
    assert v["min_paid_fen_by_device_1h"] == 100
    assert v["max_paid_fen_by_device_1h"] == 800
    assert v["std_paid_fen_by_device_1h"] == pytest.approx(((300**2 + 100**2 + 400**2) / 3) ** 0.5)


def test_an_order_without_the_entity_gets_empty_values() -> None:
    engine = features(COUNT_5M, {"entity": "device", "field": "paid_fen", "agg": "mean", "window": "5m"})
    order = make_order(device=None)
    engine.apply(order)
    v = engine.lookup(order, as_of=BASE_TIME)
    assert v["count_orders_by_device_5m"] == 0
    assert math.isnan(v["mean_paid_fen_by_device_5m"])
    assert v.missing() == ("mean_paid_fen_by_device_5m",)


def test_state_is_evicted_beyond_the_longest_window_and_too_late_orders_are_dropped() -> None:
    engine = features(COUNT_5M, margin=timedelta(minutes=10))
    for i in range(10):
        engine.apply(make_order(f"o{i}", created_at=at(minutes=i)))
    assert engine.store.size() == 10
    engine.apply(make_order("far", created_at=at(hours=2)))
    assert engine.store.size() == 1
    assert not engine.apply(make_order("ancient", created_at=at(minutes=1)))
    assert engine.store.size() == 1
    # lookups within the margin behind the watermark are still exact
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=at(hours=2))["count_orders_by_device_5m"] == 1


def test_a_future_stamp_cannot_evict_the_present_when_a_clock_is_given() -> None:
    clock = FixedClock(at(minutes=30))
    engine = features(COUNT_5M, margin=timedelta(minutes=10), clock=clock)
    engine.apply(make_order("now", created_at=at(minutes=29)))
    engine.apply(make_order("bogus", created_at=at(days=365)))
    assert engine.watermark == at(minutes=30)
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=at(minutes=29))["count_orders_by_device_5m"] == 1


def test_vector_keeps_spec_order_and_the_as_of_time() -> None:
    engine = features(COUNT_5M, {"entity": "ip", "field": "orders", "agg": "count", "window": "10m"})
    v = engine.lookup({}, as_of=BASE_TIME)
    assert list(v) == ["count_orders_by_device_5m", "count_orders_by_ip_10m"]
    assert v.as_of == BASE_TIME
    assert dict(v) == {"count_orders_by_device_5m": 0.0, "count_orders_by_ip_10m": 0.0}


# -- order attributes and derived features online -------------------------------------------------------

WITH_ATTRIBUTES = {
    "features": [{"entity": "user", "field": "orders", "agg": "time_since", "window": "90d"},
                 {"entity": "device", "field": "orders", "agg": "count", "window": "5m"}],
    "attributes": ["paid_fen", "has_coupon", "phone_delivery_km"],
    "derived": [{"op": "is_missing", "of": ["time_since_orders_by_user_90d"]},
                {"op": "all", "of": ["order_has_coupon", "is_missing_time_since_orders_by_user_90d"]},
                {"op": "ratio", "of": ["order_paid_fen", "count_orders_by_device_5m"]}],
}


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.build()


def attributed(gazetteer: Gazetteer) -> OnlineFeatures:
    return OnlineFeatures(MemoryStore(), FeatureSet.from_data(WITH_ATTRIBUTES), gazetteer=gazetteer)


def test_attributes_and_derived_features_of_the_scored_order(gazetteer: Gazetteer) -> None:
    engine = attributed(gazetteer)
    first = make_order("a", coupon_ids=("welcome",), coupon_fen=500, lines=(("s", 1, 2_500),))
    second = make_order("b", created_at=at(minutes=1), lines=(("s", 2, 2_500),))
    engine.apply(first)
    v1 = engine.lookup(first, as_of=BASE_TIME)
    engine.apply(second)
    v2 = engine.lookup(second, as_of=at(minutes=1))
    assert (v1["order_paid_fen"], v1["order_has_coupon"]) == (2_000, 1)
    assert v1["is_missing_time_since_orders_by_user_90d"] == 1  # the account's first order
    assert v1["all_order_has_coupon_and_is_missing_time_since_orders_by_user_90d"] == 1
    assert v2["is_missing_time_since_orders_by_user_90d"] == 0
    assert v2["all_order_has_coupon_and_is_missing_time_since_orders_by_user_90d"] == 0
    assert v2["ratio_order_paid_fen_to_count_orders_by_device_5m"] == 5_000 / 2
    assert math.isnan(v2["order_phone_delivery_km"])  # no phone


def test_explicit_keys_have_no_order_so_attributes_are_missing(gazetteer: Gazetteer) -> None:
    engine = attributed(gazetteer)
    engine.apply(make_order("a"))
    v = engine.lookup({Entity.DEVICE: ["d1"]}, as_of=BASE_TIME)
    assert v["count_orders_by_device_5m"] == 1
    assert math.isnan(v["order_paid_fen"])
    assert math.isnan(v["all_order_has_coupon_and_is_missing_time_since_orders_by_user_90d"])
    assert math.isnan(v["ratio_order_paid_fen_to_count_orders_by_device_5m"])


def test_an_order_looked_up_without_being_applied_gets_the_same_attributes(gazetteer: Gazetteer) -> None:
    engine = attributed(gazetteer)
    order = make_order("a", phone=None, lines=(("s", 3, 990),))
    engine.apply(order)
    applied = engine.lookup(order, as_of=BASE_TIME)
    again = engine.lookup(replace(order), as_of=BASE_TIME)  # an equal order, not the object just applied
    assert dict(applied) == pytest.approx(dict(again), nan_ok=True)


def test_reference_data_is_required_for_the_distance() -> None:
    with pytest.raises(ConfigError) as info:
        OnlineFeatures(MemoryStore(), FeatureSet.from_data(WITH_ATTRIBUTES))
    assert info.value.field == "gazetteer"


def test_distance_follows_the_phone_block_and_the_delivery_district(gazetteer: Gazetteer) -> None:
    engine = attributed(gazetteer)

    def km(order_id: str, prefix: str, address: tuple[str, str, str, str]) -> float:
        order = make_order(order_id, address=address)
        order = replace(order, details=replace(order.details, buyer=replace(
            order.details.buyer, phone=Phone(f"h-{order_id}", prefix=prefix))))
        engine.apply(order)
        return engine.lookup(order, as_of=BASE_TIME)["order_phone_delivery_km"]

    hangzhou = ("浙江省", "杭州市", "西湖区", "文三路1号")
    near = km("a", "1596811", hangzhou)
    same_again = km("b", "1596811", ("浙江省", "杭州市", "西湖区", "古荡新村2幢"))
    far = km("c", "1596811", ("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "解放路1号"))
    assert near < 30 and same_again == near and 3000 < far < 3600
    assert math.isnan(km("d", "159", hangzhou))  # a masked number has no home city


def test_eviction_keeps_state_within_the_horizon_at_every_step(online_store: OnlineStore,
                                                               order_factory: OrderFactory) -> None:
    engine = features(COUNT_5M, margin=timedelta(minutes=10), store=online_store)
    sizes = []
    for i in range(120):
        engine.apply(order_factory(created_at=at(minutes=i)))
        sizes.append(engine.store.size())
    # the horizon is 5m + 10m: 15 one-a-minute orders, plus at most one awaiting the next
    # minute-long eviction step (a step of a quarter of the margin would let 17 pile up)
    assert max(sizes[30:]) <= 16
    assert engine.lookup({Entity.DEVICE: ["d1"]}, as_of=at(minutes=119))["count_orders_by_device_5m"] == 5
