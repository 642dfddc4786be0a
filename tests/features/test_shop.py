"""The bundled default shop feature set loads and covers what a shop needs."""

from __future__ import annotations

from features.online import OnlineFeatures
from features.shop import default_shop_features
from features.specs import Agg
from features.stores import MemoryStore
from orderguard.schema import RefundReason
from tests.features.builders import T0, at, make_label, make_order, refunded


def test_default_set_loads_with_unique_names() -> None:
    fs = default_shop_features()
    assert 40 <= len(fs) <= 80
    assert len(set(fs.names)) == len(fs)


def test_default_set_covers_the_shop_risk_families() -> None:
    names = set(default_shop_features().names)
    for required in ("count_orders_by_device_5m", "count_orders_by_ip_10m", "count_orders_by_user_5m",
                     "distinct_users_by_device_48h", "distinct_users_by_wifi_48h",
                     "distinct_users_by_address_48h", "distinct_users_by_phone_48h",
                     "count_refunds_damaged_or_lost_by_user_30d", "count_refunds_damaged_or_lost_by_wifi_30d",
                     "count_refunds_after_delivery_by_user_90d", "sum_units_by_user_sku_24h",
                     "sum_units_by_address_sku_24h", "max_account_age_days_by_user_24h",
                     "distinct_orders_fraud_by_device_90d", "distinct_orders_fraud_by_phone_90d"):
        assert required in names


def test_default_set_runs_online() -> None:
    fs = default_shop_features()
    engine = OnlineFeatures(MemoryStore(), fs)
    first = refunded(make_order("a", registered_at=at(days=-2), coupon_ids=("new",)), when=at(hours=1),
                     reason=RefundReason.NOT_RECEIVED)
    engine.apply(first)
    engine.apply_label(make_label(first, when=at(hours=2)), first)
    probe = make_order("b", created_at=at(hours=3), registered_at=at(days=-2))
    engine.apply(probe)
    v = engine.lookup(probe, as_of=at(hours=3))
    assert v["count_orders_by_device_24h"] == 2
    assert v["count_refunds_damaged_or_lost_by_user_30d"] == 1
    assert v["distinct_orders_fraud_by_device_90d"] == 1
    assert v["max_account_age_days_by_user_24h"] == 2 + 3 / 24
    assert v["max_has_coupon_by_order_1h"] == 0
    assert v["count_orders_with_coupon_by_user_90d"] == 1
    assert v["time_since_orders_by_user_30d"] == 3 * 3600
    assert len(v) == len(fs)
    assert all(spec.agg in Agg for spec in fs)
    assert engine.lookup(first, as_of=T0)["max_has_coupon_by_order_1h"] == 1
