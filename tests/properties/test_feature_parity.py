"""Online lookups equal the batch point-in-time frame, for every feature, on every store.

Streams are drawn to hit the hard cases: few devices / accounts / WiFis / addresses /
SKUs so entities collide, creation times on a grid that puts orders exactly on the
5m / 10m / 1h / 24h / 48h window edges and at the same instant, refund claims before and
after delivery, orders closed unpaid (counted per IP range at the close, some shown paid
later), device corrections, reviewer labels, re-sent duplicate events and
shuffled arrival (older events arriving after newer ones). The order attributes vary
too: masked, clear and virtual-operator phones, pick-up-station and far-away addresses,
whole-thousand amounts with and without a buyer message, Beijing daytime and
weekend nights; derived features combine them with windowed ones. Declared attributes and
entities (``features.declared``) are read from source attributes that are sometimes absent,
unreadable or changed by a correction, and keyed, aggregated and filtered on like the shop's. The online side replays
the events the way serving does: the order log folds the events received so far
(``derive_order``) and the engine applies that order. The batch side sees each order
once, in its final state, plus the labels. Redis is a real server (fails if down).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.derived import point_in_time_features
from features.online import FeatureVector, OnlineFeatures
from features.specs import FeatureSet
from features.stores import MemoryStore
from features.stores.base import TOTALS_FROM
from orderguard.enrich import Gazetteer
from orderguard.ingest.normalize import event_version
from orderguard.ingest.state import derive_order
from orderguard.schema import (
    Address,
    Amounts,
    Channel,
    ClientInfo,
    EventKind,
    Label,
    Order,
    OrderDetails,
    OrderEvent,
    OrderKey,
    OrderLine,
    OrderStatus,
    Party,
    Phone,
    Refund,
    RefundReason,
    Verdict,
)
from orderguard.settings import ReferenceSettings, WarehouseSettings
from tests.stores import every_store

T0 = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)
#: Creation minutes chosen so that pairs of orders sit exactly on the windows' edges.
EDGE_MINUTES = (0, 1, 4, 5, 6, 10, 15, 55, 60, 65, 70, 1440, 1445, 1500, 2880, 2885)
DELAYS_MIN = (0, 1, 5, 60, 1440)

#: Declared attributes and entities (features.declared), read from source attributes the streams vary.
DECLARE = {
    "attributes": [
        {"name": "amount_usd", "type": "number", "unit": "USD"},
        {"name": "card_type", "type": "category", "values": ["debit", "credit"]},
        {"name": "upstream_flag", "type": "flag", "source": "flag_v2", "missing": False},
    ],
    "entities": [
        {"name": "card", "of": ["card1", "card_type"], "pii": True},
        {"name": "card_user", "of": ["card1", "user"]},
    ]}
#: Features over them: keyed by a declared entity, aggregating and filtering on declared attributes.
DECLARED_FEATURES = [
    {"entity": "card", "field": "orders", "agg": "count", "window": "1h"},
    {"entity": "card", "field": "amount_usd", "agg": "sum", "window": "24h"},
    {"entity": "card", "field": "users", "agg": "distinct", "window": "48h"},
    {"entity": "user", "field": "cards", "agg": "distinct", "window": "48h"},
    {"entity": "device", "field": "amount_usd", "agg": "max", "window": "24h"},
    {"entity": "card", "field": "refunds", "agg": "count", "window": "48h"},
    {"entity": "card_user", "field": "orders", "agg": "time_since", "window": "48h"},
    {"entity": "card", "field": "orders", "agg": "distinct", "window": "48h", "qualifier": "fraud",
     "filter": {"verdict": "confirmed_fraud"}},
    {"entity": "device", "field": "orders", "agg": "count", "window": "24h", "qualifier": "flagged_debit",
     "filter": {"upstream_flag": True, "card_type": "debit"}},
]

SPECS = FeatureSet.from_data({"declare": DECLARE, "features": [*DECLARED_FEATURES,
    {"entity": "device", "field": "orders", "agg": "count", "window": "5m"},
    {"entity": "ip_prefix", "field": "unpaid_closes", "agg": "count", "window": "24h"},
    {"entity": "ip_prefix", "field": "unpaid_closes", "agg": "count", "window": "1h"},
    {"entity": "ip_prefix", "field": "orders", "agg": "count", "window": "1h"},
    {"entity": "user", "field": "unpaid_closes", "agg": "time_since", "window": "48h"},
    {"entity": "device", "field": "orders", "agg": "count", "window": "10m", "offset": "5m"},
    {"entity": "user", "field": "orders", "agg": "count", "window": "1h"},
    {"entity": "wifi", "field": "users", "agg": "distinct", "window": "48h"},
    {"entity": "address", "field": "users", "agg": "distinct", "window": "24h"},
    {"entity": "user", "field": "devices", "agg": "distinct", "window": "24h"},
    {"entity": "phone", "field": "addresses", "agg": "distinct", "window": "48h"},
    {"entity": "device", "field": "paid_fen", "agg": "sum", "window": "1h"},
    {"entity": "user", "field": "paid_fen", "agg": "mean", "window": "24h"},
    {"entity": "device", "field": "paid_fen", "agg": "min", "window": "24h"},
    {"entity": "user", "field": "paid_fen", "agg": "max", "window": "48h"},
    {"entity": "device", "field": "paid_fen", "agg": "std", "window": "48h"},
    {"entity": "device", "field": "orders", "agg": "time_since", "window": "24h"},
    {"entity": "user", "field": "orders", "agg": "time_since", "window": "1h", "offset": "5m"},
    {"entity": "user", "field": "account_age_days", "agg": "mean", "window": "24h"},
    {"entity": "device", "field": "has_coupon", "agg": "sum", "window": "24h"},
    {"entity": "device", "field": "orders", "agg": "count", "window": "1h", "qualifier": "big",
     "filter": {"paid_fen": {"ge": 1990}}},
    {"entity": "user", "field": "refunds", "agg": "count", "window": "48h", "qualifier": "damaged_or_lost",
     "filter": {"reason": ["damaged", "not_received"]}},
    {"entity": "device", "field": "refunds", "agg": "count", "window": "48h", "qualifier": "after_delivery",
     "filter": {"delivered_before_claim": True}},
    {"entity": "address", "field": "refund_fen", "agg": "sum", "window": "24h"},
    {"entity": "device", "field": "orders", "agg": "distinct", "window": "48h", "qualifier": "fraud",
     "filter": {"verdict": "confirmed_fraud"}},
    {"entity": "user", "field": "labels", "agg": "count", "window": "48h", "offset": "1h"},
    {"entity": "user_sku", "field": "units", "agg": "sum", "window": "24h"},
    {"entity": "device_sku", "field": "unit_price_fen", "agg": "max", "window": "1h"},
    {"entity": "sku", "field": "unit_price_fen", "agg": "min", "window": "1h"},
    {"entity": "address_sku", "field": "users", "agg": "distinct", "window": "48h"},
    {"entity": "sku", "field": "lines", "agg": "time_since", "window": "1h"},
    {"entity": "sku", "field": "unit_price_fen", "agg": "mean", "window": "24h", "offset": "1h"},
    {"entity": "user_address", "field": "orders", "agg": "time_since", "window": "48h"},
    {"entity": "device", "field": "orders", "agg": "count", "window": "24h", "qualifier": "at_night",
     "filter": {"night": True}},
    {"entity": "address", "field": "users", "agg": "distinct", "window": "48h", "qualifier": "pickup",
     "filter": {"pickup_address": True}},
    {"entity": "phone", "field": "orders", "agg": "count", "window": "24h", "qualifier": "virtual",
     "filter": {"virtual_phone": True}},
    # the shop's returns, damaged-on-delivered claims, device-new-to-account and same-cart features
    {"entity": "user", "field": "refunds", "agg": "count", "window": "7d"},
    {"entity": "user", "field": "refunds", "agg": "count", "window": "48h", "qualifier": "damaged_after_delivery",
     "filter": {"reason": "damaged", "delivered_before_claim": True}},
    {"entity": "user_device", "field": "orders", "agg": "time_since", "window": "48h"},
    {"entity": "user_cart", "field": "orders", "agg": "count", "window": "10m"},
], "attributes": ["has_coupon", "account_age_days", "paid_fen", "max_unit_price_fen", "min_unit_price_fen",
                  "virtual_phone", "pickup_address", "phone_delivery_km", "whole_thousand_no_message", "night",
                  "weekend", "amount_usd", "card_type", "upstream_flag", "phone_warehouse_km", "urgent_note"],
   "derived": [
    {"op": "is_missing", "of": ["time_since_orders_by_user_address_48h"]},
    {"op": "all", "of": ["order_has_coupon", "is_missing_time_since_orders_by_user_address_48h"]},
    {"op": "ratio", "of": ["order_max_unit_price_fen", "mean_unit_price_fen_by_sku_24h_lag1h"]},
    {"op": "is_zero", "of": ["count_refunds_damaged_or_lost_by_user_48h"]},
    {"op": "is_missing", "of": ["time_since_orders_by_user_device_48h"]},
]})

ADDRESSES = (Address("上海市", "上海市", "浦东新区", "张江路 88 号"),
             Address("浙江省", "杭州市", "西湖区", "文三路１００号"),
             Address("浙江省", "杭州市", "西湖区", "文三路 100 号"),  # the same place as the previous one
             Address("浙江省", "杭州市", "西湖区", "古荡新村菜鸟驿站"),  # a pick-up station
             Address("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "解放北路 1 号"))  # far from a Hangzhou phone
#: Phones: hash and the digits the channel shows (none, masked, a Hangzhou block, a virtual operator).
PHONES = (None, ("p0", None), ("p0", "138"), ("p1", "1596811"), ("p2", "1701234"), ("p2", "170"),
          ("p3", "1390000"))  # an Urumqi block: far from the Hangzhou warehouse, near the "north" one
#: Shops: the default warehouse (Hangzhou), and one configured in Harbin (``REFERENCE``).
SHOPS = ("shop", "north")
REFERENCE = ReferenceSettings(warehouses={"north": WarehouseSettings(province="黑龙江省", city="哈尔滨市")})
#: Beijing Monday 10:00, and Friday 01:00 so that the grid reaches into a weekend night.
BASES = (T0, T0 + timedelta(days=4, hours=-9))


@dataclass(frozen=True)
class Stream:
    """Events in arrival order, and labels with where in the arrival they happen."""

    arrivals: tuple[OrderEvent, ...]
    labels: tuple[tuple[int, Label], ...]


def _event(key: OrderKey, *, at: datetime, kind: EventKind, status: OrderStatus,
           details: OrderDetails | None = None, refund: Refund | None = None) -> OrderEvent:
    return OrderEvent(key=key, event_version=event_version(at, kind=kind, status=status), event_time=at,
                      received_at=at + timedelta(seconds=2), kind=kind, status=status,
                      channel_status=status.value, details=details, refund=refund)


@st.composite
def order_history(draw: st.DrawFn, index: int, base: datetime) -> tuple[list[OrderEvent], Label | None]:
    """The events of one order (creation, maybe delivery, claim, device correction) and maybe a label."""
    key = OrderKey(draw(st.sampled_from([Channel.SITE, Channel.JD])), f"o{index}")
    created = base + timedelta(minutes=draw(st.sampled_from(EDGE_MINUTES)), seconds=draw(st.sampled_from([0, 0, 7])))
    lines = tuple(OrderLine(draw(st.sampled_from(["s0", "s1", "s2"])), draw(st.integers(1, 3)),
                            draw(st.sampled_from([100, 1990, 50_000, 100_000])))
                  for _ in range(draw(st.integers(0, 3))))
    goods = sum(line.qty * line.unit_price_fen for line in lines)
    coupon = draw(st.sampled_from([0, 0, 100]))
    registered = draw(st.sampled_from([None, T0 - timedelta(days=3), T0 - timedelta(hours=7)]))
    phone = draw(st.sampled_from(PHONES))
    buyer = Party(account_id=draw(st.sampled_from(["u0", "u1", "u2"])), registered_at=registered,
                  phone=Phone(phone[0], prefix=phone[1]) if phone else None)

    def client(device: str | None) -> ClientInfo | None:
        wifi = draw(st.sampled_from([None, "w0", "w1"]))
        prefix = draw(st.sampled_from([None, "p0", "p1"]))
        return ClientInfo(device_id=device, wifi_hash=wifi, ip_prefix=prefix) if device or wifi or prefix else None

    def attributes() -> dict[str, str | int | float | bool]:
        """Source attributes as ingest keeps them: some absent, numbers as text or numbers, unreadable ones."""
        drawn = {"card1": draw(st.sampled_from([None, "4111", "5500", 4111])),
                 "card_type": draw(st.sampled_from([None, "debit", "credit", "prepaid"])),
                 "amount_usd": draw(st.sampled_from([None, 12.5, "99.9", "n/a", 0])),
                 "flag_v2": draw(st.sampled_from([None, True, "false", "1", "maybe"]))}
        return {k: v for k, v in drawn.items() if v is not None}

    details = OrderDetails(
        shop_id=draw(st.sampled_from(SHOPS)), created_at=created, buyer=buyer, lines=lines,
        amounts=Amounts(goods_fen=goods, paid_fen=max(goods - coupon, 0), coupon_fen=coupon),
        address=draw(st.sampled_from([None, *ADDRESSES])), client=client(draw(st.sampled_from([None, "d0", "d1"]))),
        buyer_message=draw(st.sampled_from(["", "", "请尽快发货", "急用，今天发"])), attributes=attributes())
    unpaid = draw(st.booleans())
    events = [_event(key, at=created, kind=EventKind.ORDER, status=OrderStatus.CREATED if unpaid else OrderStatus.PAID,
                     details=details)]
    if unpaid and draw(st.booleans()):  # closed unpaid (timeout or buyer), later perhaps shown paid after all
        closed_at = created + timedelta(minutes=draw(st.sampled_from(DELAYS_MIN)), seconds=4)
        events.append(_event(key, at=closed_at, kind=EventKind.ORDER,
                             status=draw(st.sampled_from([OrderStatus.CANCELLED, OrderStatus.CLOSED])),
                             details=details))
    if draw(st.booleans()):
        delivered_at = created + timedelta(minutes=draw(st.sampled_from(DELAYS_MIN)), seconds=1)
        events.append(_event(key, at=delivered_at, kind=EventKind.ORDER, status=OrderStatus.DELIVERED,
                             details=details))
    if draw(st.booleans()):
        claimed = created + timedelta(minutes=draw(st.sampled_from(DELAYS_MIN)), seconds=2)
        names_sku: bool = draw(st.booleans())
        refund = Refund(f"r{index}", draw(st.sampled_from(list(RefundReason))), draw(st.sampled_from([500, 1990])),
                        claimed, sku_id=lines[0].sku_id if lines and names_sku else None)
        events.append(_event(key, at=claimed, kind=EventKind.AFTER_SALE, status=OrderStatus.REFUND_REQUESTED,
                             refund=refund))
    if draw(st.booleans()):  # the channel corrects the order: another device
        fixed = created + timedelta(minutes=draw(st.sampled_from(DELAYS_MIN)), seconds=3)
        corrected = replace(details, client=client(draw(st.sampled_from(["d0", "d1"]))),
                            attributes=attributes() if draw(st.booleans()) else details.attributes)
        events.append(_event(key, at=fixed, kind=EventKind.ORDER, status=OrderStatus.SHIPPED, details=corrected))
    label = None
    if draw(st.booleans()):
        labeled_at = created + timedelta(minutes=draw(st.sampled_from(DELAYS_MIN)))
        label = Label(key, draw(st.sampled_from(list(Verdict))), labeled_at, "rev")
    return events, label


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    base = draw(st.sampled_from(BASES))
    histories = [draw(order_history(i, base)) for i in range(draw(st.integers(1, 12)))]
    events = [e for history, _ in histories for e in history]
    duplicates = draw(st.lists(st.sampled_from(events), max_size=4))
    arrivals = tuple(draw(st.permutations(events + duplicates)))
    labels = tuple((draw(st.integers(0, len(arrivals))), label) for _, label in histories if label is not None)
    return Stream(arrivals, labels)


def final_orders(stream: Stream) -> list[Order]:
    by_key: dict[OrderKey, list[OrderEvent]] = {}
    for event in stream.arrivals:
        by_key.setdefault(event.key, []).append(event)
    return [o for events in by_key.values() if (o := derive_order(events)) is not None]


def replay(engine: OnlineFeatures, stream: Stream) -> None:
    """Serving's path: fold the events received so far, apply; labels with the order known then."""
    received: dict[OrderKey, list[OrderEvent]] = {}
    for position, event in enumerate([*stream.arrivals, None]):
        for at_position, label in stream.labels:
            current = derive_order(received.get(label.key, []))
            if at_position == position and current is not None:
                engine.apply_label(label, current)
        if event is None:
            break
        received.setdefault(event.key, []).append(event)
        order = derive_order(received[event.key])
        if order is not None:
            engine.apply(order)
    finals = {o.key: o for o in final_orders(stream)}
    for _, label in stream.labels:  # the label desk re-applies once the order is final
        if label.key in finals:
            engine.apply_label(label, finals[label.key])


def batch_values(stream: Stream, gazetteer: Gazetteer) -> dict[str, dict[str, float]]:
    frame = point_in_time_features(final_orders(stream), SPECS, labels=[label for _, label in stream.labels],
                                   gazetteer=gazetteer)
    return {row["order_key"]: {name: float(row[name]) for name in SPECS.names} for row in frame.to_dict("records")}


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def assert_parity(engine: OnlineFeatures, stream: Stream, expected: dict[str, dict[str, float]], *,
                  store: str, since: datetime | None = None) -> None:
    orders = final_orders(stream)
    assert set(expected) == {str(o.key) for o in orders}
    for order in orders:
        if since is not None and order.details.created_at < since:
            continue
        online = engine.lookup(order, as_of=order.details.created_at)
        wrong = {name: (online[name], value) for name, value in expected[str(order.key)].items()
                 if not same(online[name], value)}
        assert not wrong, f"{store}: {order.key} online != batch: {wrong}"


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.build(REFERENCE)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams())
def test_online_equals_batch_on_every_store(stream: Stream, redis_url: str, gazetteer: Gazetteer) -> None:
    expected = batch_values(stream, gazetteer)
    with every_store(redis_url) as stores:
        for name, store in stores.items():
            engine = OnlineFeatures(store, SPECS, gazetteer=gazetteer,
                                    retention_margin=timedelta(days=30))  # no eviction here
            replay(engine, stream)
            assert_parity(engine, stream, expected, store=name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), margin_h=st.sampled_from([1, 6, 30]))
def test_lookups_within_the_margin_stay_exact_under_eviction(stream: Stream, margin_h: int,
                                                             gazetteer: Gazetteer) -> None:
    engine = OnlineFeatures(MemoryStore(), SPECS, gazetteer=gazetteer, retention_margin=timedelta(hours=margin_h))
    replay(engine, stream)
    assert engine.watermark is not None
    assert_parity(engine, stream, batch_values(stream, gazetteer), store="memory (evicting)",
                  since=engine.watermark - timedelta(hours=margin_h))


def same_vectors(one: FeatureVector, two: FeatureVector) -> dict[str, tuple[float, float]]:
    """The features whose values differ (NaN equals NaN here)."""
    assert list(one) == list(two) and one.as_of == two.as_of
    return {name: (one[name], two[name]) for name in one if not same(one[name], two[name])}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), margin_h=st.sampled_from([1, 30 * 24]))
def test_scoring_in_one_store_call_equals_apply_then_lookup(stream: Stream, margin_h: int, redis_url: str,
                                                            gazetteer: Gazetteer) -> None:
    """Scoring's path (``apply_and_lookup``: one store call) gives what apply, then lookup give, at every
    arrival, evicting or not, on every store."""
    with every_store(redis_url) as together_stores, every_store(redis_url) as apart_stores:
        for name in together_stores:
            margin = timedelta(hours=margin_h)
            together = OnlineFeatures(together_stores[name], SPECS, gazetteer=gazetteer, retention_margin=margin)
            apart = OnlineFeatures(apart_stores[name], SPECS, gazetteer=gazetteer, retention_margin=margin)
            received: dict[OrderKey, list[OrderEvent]] = {}
            for position, event in enumerate(stream.arrivals):
                for at_position, label in stream.labels:
                    current = derive_order(received.get(label.key, []))
                    if at_position == position and current is not None:
                        assert together.apply_label(label, current) == apart.apply_label(label, current)
                received.setdefault(event.key, []).append(event)
                order = derive_order(received[event.key])
                if order is None:
                    continue
                as_of = order.details.created_at
                apart.apply(order)
                wrong = same_vectors(together.apply_and_lookup(order, as_of=as_of), apart.lookup(order, as_of=as_of))
                assert not wrong, f"{name}: {order.key} one call != apply then lookup: {wrong}"
                assert together.watermark == apart.watermark
            assert together_stores[name].size() == apart_stores[name].size()


LONG_RANGE_SPECS = FeatureSet.from_data({"features": [
    {"entity": "sku", "field": "unit_price_fen", "agg": "mean", "window": "24h", "offset": "1h"},
    {"entity": "sku", "field": "units", "agg": "sum", "window": "6h"},
    {"entity": "sku", "field": "units", "agg": "max", "window": "6h"},
    {"entity": "sku", "field": "lines", "agg": "count", "window": "24h"},
], "attributes": ["max_unit_price_fen"], "derived": [
    {"op": "ratio", "of": ["order_max_unit_price_fen", "mean_unit_price_fen_by_sku_24h_lag1h"]},
]})


def popular_sku_stream(seed: int) -> Stream:
    """Two days of a best-selling SKU: long ranges, late arrivals, re-priced corrections."""
    rng = random.Random(seed)
    events: list[OrderEvent] = []
    for i in range(220):
        key = OrderKey(Channel.SITE, f"p{i}")
        created = T0 + timedelta(minutes=rng.randrange(0, 48 * 60), seconds=rng.choice([0, 30]))
        price = rng.choice([1_990, 1_990, 2_190, 199])  # 199: a price glitch
        extra = (OrderLine("s9", 1, 500),) if rng.random() < 0.2 else ()
        lines = (OrderLine("best", rng.randint(1, 4), price), *extra)
        goods = sum(line.qty * line.unit_price_fen for line in lines)
        details = OrderDetails(shop_id="shop", created_at=created, buyer=Party(account_id=f"u{rng.randrange(40)}"),
                               lines=lines, amounts=Amounts(goods_fen=goods, paid_fen=goods))
        events.append(_event(key, at=created, kind=EventKind.ORDER, status=OrderStatus.PAID, details=details))
        if rng.random() < 0.1:  # the shop corrects the price afterwards
            fixed = replace(details, lines=(OrderLine("best", lines[0].qty, 1_990), *lines[1:]))
            events.append(_event(key, at=created + timedelta(minutes=20), kind=EventKind.ORDER,
                                 status=OrderStatus.SHIPPED, details=fixed))
    events.sort(key=lambda e: e.event_time + timedelta(minutes=rng.choice([0, 0, 0, 45])))  # some arrive late
    return Stream(tuple(events), ())


@pytest.mark.parametrize("seed", [1, 2])
def test_long_ranges_agree_on_every_store(seed: int, redis_url: str) -> None:
    stream = popular_sku_stream(seed)
    frame = point_in_time_features(final_orders(stream), LONG_RANGE_SPECS)
    expected = {row["order_key"]: {n: float(row[n]) for n in LONG_RANGE_SPECS.names}
                for row in frame.to_dict("records")}
    assert frame["count_lines_by_sku_24h"].max() >= 2 * TOTALS_FROM  # long enough for the running totals
    with every_store(redis_url) as stores:
        for name, store in stores.items():
            engine = OnlineFeatures(store, LONG_RANGE_SPECS, retention_margin=timedelta(days=30))
            replay(engine, stream)
            for order in final_orders(stream):
                online = engine.lookup(order, as_of=order.details.created_at)
                wrong = {n: (online[n], v) for n, v in expected[str(order.key)].items() if not same(online[n], v)}
                assert not wrong, f"{name}: {order.key} online != batch: {wrong}"
