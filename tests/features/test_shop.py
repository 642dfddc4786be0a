"""The bundled default shop feature set loads and covers what the shop's reviewers look at."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from features.online import OnlineFeatures
from features.shop import default_shop_features
from features.specs import AttributeSpec, DerivedSpec, FeatureSpec
from features.stores import MemoryStore
from orderguard.enrich import Gazetteer
from orderguard.schema import RefundReason
from tests.factories import BASE_TIME, at, delivered, make_label, make_order, refunded

#: One feature per thing the shop's reviewers check (the brief of the shop's rule pack).
REVIEWER_CHECKS = (
    # velocity per device / IP / account in 5 and 10 minutes
    "count_orders_by_device_5m", "count_orders_by_device_10m", "count_orders_by_ip_5m", "count_orders_by_ip_10m",
    "count_orders_by_user_5m", "count_orders_by_user_10m",
    # rings: distinct accounts per device, WiFi, address and phone in 48 hours
    "distinct_users_by_device_48h", "distinct_users_by_wifi_48h", "distinct_users_by_address_48h",
    "distinct_users_by_phone_48h",
    # refund claims per account, device, WiFi, address; claims on parcels already delivered
    "count_refunds_damaged_or_lost_by_user_30d", "count_refunds_damaged_or_lost_by_device_30d",
    "count_refunds_damaged_or_lost_by_wifi_30d", "count_refunds_damaged_or_lost_by_address_30d",
    "count_refunds_after_delivery_by_user_90d", "count_refunds_after_delivery_by_wifi_90d",
    # hoarding: units of one SKU per account / address / device
    "sum_units_by_user_sku_24h", "sum_units_by_address_sku_24h", "sum_units_by_device_sku_24h",
    # price against the SKU's usual price
    "mean_unit_price_fen_by_sku_7d_lag2h", "order_max_unit_price_fen",
    "ratio_order_max_unit_price_fen_to_mean_unit_price_fen_by_sku_7d_lag2h",
    # account age, first order, coupon on the first order
    "order_account_age_days", "is_missing_time_since_orders_by_user_90d",
    "all_order_has_coupon_and_is_missing_time_since_orders_by_user_90d",
    # delivery address against the account's history
    "is_missing_time_since_orders_by_user_address_90d", "distinct_addresses_by_user_90d",
    # address and phone signals
    "order_pickup_address", "order_virtual_phone", "order_phone_delivery_km",
    # amount, time of day and week
    "order_whole_thousand_no_message", "order_night", "order_weekend",
    # one id card across shops
    "count_orders_by_id_card_3d", "distinct_shops_by_id_card_3d",
    # reviewer-confirmed frauds on the same identities
    "distinct_orders_fraud_by_device_90d", "distinct_orders_fraud_by_address_90d",
    "distinct_orders_fraud_by_wifi_90d", "distinct_orders_fraud_by_phone_90d",
)


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.build()


def test_default_set_loads_with_unique_readable_names() -> None:
    fs = default_shop_features()
    assert 60 <= len(fs) <= 100
    assert len(set(fs.names)) == len(fs) == len(fs.names)
    assert all(name.isascii() and name == name.lower() and " " not in name for name in fs.names)


def test_default_set_covers_what_reviewers_check() -> None:
    names = set(default_shop_features().names)
    assert [check for check in REVIEWER_CHECKS if check not in names] == []


def test_every_feature_is_declared_as_data() -> None:
    fs = default_shop_features()
    kinds = [type(x) for x in (*fs.specs, *fs.attributes, *fs.derived)]
    assert set(kinds) == {FeatureSpec, AttributeSpec, DerivedSpec}
    assert fs.needs_gazetteer  # phone_delivery_km
    assert type(fs).from_data(fs.to_data()) == fs


def test_default_set_runs_online(gazetteer: Gazetteer) -> None:
    fs = default_shop_features()
    engine = OnlineFeatures(MemoryStore(), fs, gazetteer=gazetteer)
    first = make_order("a", registered_at=at(days=-2), coupon_ids=("new",), phone="p1")
    claimed = refunded(delivered(first, when=at(minutes=30)), when=at(hours=1), reason=RefundReason.NOT_RECEIVED)
    engine.apply(first)
    v_first = engine.lookup(first, as_of=BASE_TIME)
    engine.apply(claimed)
    engine.apply_label(make_label(claimed, when=at(hours=2)), claimed)
    probe = make_order("b", created_at=at(hours=3), registered_at=at(days=-2), phone="p1",
                       address=("浙江省", "杭州市", "西湖区", "文三路菜鸟驿站"))
    engine.apply(probe)
    v = engine.lookup(probe, as_of=at(hours=3))
    assert len(v) == len(fs)
    assert v["count_orders_by_device_24h"] == 2
    assert v["count_refunds_damaged_or_lost_by_user_30d"] == 1
    assert v["count_refunds_after_delivery_by_user_90d"] == 1
    assert v["distinct_orders_fraud_by_device_90d"] == 1
    assert v["order_account_age_days"] == pytest.approx(2 + 3 / 24)
    assert v["time_since_orders_by_user_30d"] == 3 * 3600
    # the first order: new account, coupon on its first order, a first address
    assert v_first["is_missing_time_since_orders_by_user_90d"] == 1
    assert v_first["all_order_has_coupon_and_is_missing_time_since_orders_by_user_90d"] == 1
    assert v_first["is_missing_time_since_orders_by_user_address_90d"] == 1
    # the second: not a first order, no coupon, a new (pick-up station) address for this account
    assert v["is_missing_time_since_orders_by_user_90d"] == 0
    assert v["order_has_coupon"] == 0
    assert v["all_order_has_coupon_and_is_missing_time_since_orders_by_user_90d"] == 0
    assert v["is_missing_time_since_orders_by_user_address_90d"] == 1
    assert v["distinct_addresses_by_user_90d"] == 2
    assert v["order_pickup_address"] == 1
    assert math.isnan(v["order_virtual_phone"])  # the phone's digits are unknown
    assert v["order_night"] == 0  # 11:00 Beijing time, a Monday
    assert v["order_weekend"] == 0


def test_night_and_weekend_are_beijing_time(gazetteer: Gazetteer) -> None:
    engine = OnlineFeatures(MemoryStore(), default_shop_features(), gazetteer=gazetteer)
    saturday_1am = make_order("n", created_at=datetime(2024, 11, 8, 17, 30, tzinfo=UTC))  # Sat 01:30 Beijing
    engine.apply(saturday_1am)
    v = engine.lookup(saturday_1am, as_of=saturday_1am.details.created_at)
    assert (v["order_night"], v["order_weekend"]) == (1, 1)
