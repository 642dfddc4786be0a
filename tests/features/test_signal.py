"""Does the shop feature set separate the simulator's abuse? Directional checks per pattern.

Each abuse pattern of ``simulate`` shares something its orders betray (a
handset, a WiFi, a flat, a phone batch, a price, a coupon, an id card). On a small
simulated period, backfilled point-in-time exactly as serving computes them, the
feature a reviewer would cite must be clearly higher (or lower) for that pattern's
orders than for the background's, according to the simulator's ground truth.

What the features cannot see, and why:

* a refund abuser's claim comes days after the order, once the parcel is delivered, so
  as of the order's own creation there is nothing to see; the claim is visible when
  the claim itself is scored (as of its time), checked below;
* devices and WiFis reach us only from the own site and mini-programs: a bot burst on
  Douyin shows in the account's velocity and the shared address, not per device;
* label-derived features need reviewer labels, which the simulator does not produce:
  the test plays a reviewer confirming every device-ring order six hours after it.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from features.derived import point_in_time_features
from features.online import OnlineFeatures
from features.shop import default_shop_features
from features.stores import MemoryStore
from orderguard.enrich import Gazetteer
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Label, Order, Verdict
from simulate.shop import IngestedShop


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.build()


@pytest.fixture(scope="module")
def orders(simulated_shop: IngestedShop) -> list[Order]:
    log = OrderLog.open(simulated_shop.database_url)
    try:
        return list(log.iter_orders())
    finally:
        log.close()


def ring_labels(orders: list[Order], shop: IngestedShop, pattern: str) -> list[Label]:
    """A reviewer confirms every order of ``pattern`` six hours after it was placed."""
    return [Label(o.key, Verdict.CONFIRMED_FRAUD, o.details.created_at + timedelta(hours=6), "reviewer-1")
            for o in orders if shop.truth[str(o.key)].pattern == pattern]


@pytest.fixture(scope="module")
def frame(orders: list[Order], simulated_shop: IngestedShop, gazetteer: Gazetteer) -> pd.DataFrame:
    scored = point_in_time_features(orders, default_shop_features(), gazetteer=gazetteer,
                                    labels=ring_labels(orders, simulated_shop, "device_ring"))
    scored["pattern"] = scored["order_key"].map(lambda k: simulated_shop.truth[k].pattern)
    return scored


def of(frame: pd.DataFrame, pattern: str) -> pd.DataFrame:
    rows = frame[frame["pattern"] == pattern]
    assert len(rows) >= 5, f"the simulated period holds too few {pattern} orders"
    return rows


def test_the_period_holds_every_abuse_pattern(frame: pd.DataFrame) -> None:
    present = set(frame["pattern"])
    assert {"bot_burst", "device_ring", "wifi_ring", "address_ring", "refund_abuse", "virtual_phone",
            "pickup_address", "scalper", "below_price", "coupon_farming", "id_card_reuse"} <= present


@pytest.mark.parametrize(("pattern", "feature"), [
    ("bot_burst", "count_orders_by_user_10m"),  # a script cycling through a few accounts
    ("bot_burst", "distinct_users_by_address_48h"),
    ("device_ring", "distinct_users_by_device_48h"),
    ("wifi_ring", "distinct_users_by_wifi_48h"),
    ("address_ring", "distinct_users_by_address_48h"),  # one flat, written several ways
    ("address_ring", "distinct_users_by_address_30d"),
    ("scalper", "sum_units_by_address_sku_24h"),  # the limit, several times over, to one or two flats
    ("id_card_reuse", "distinct_users_by_id_card_30d"),
    ("id_card_reuse", "count_orders_by_id_card_3d"),
    ("refund_abuse", "distinct_users_by_wifi_48h"),  # the claimants share a WiFi where it is sent
])
def test_shared_identities_stand_out(frame: pd.DataFrame, pattern: str, feature: str) -> None:
    abuse, normal = of(frame, pattern)[feature].mean(), of(frame, "normal")[feature].mean()
    assert abuse >= 2 * normal and abuse >= normal + 0.25, (abuse, normal)


def test_a_bot_burst_shows_per_device_where_a_device_is_sent(frame: pd.DataFrame) -> None:
    with_device = frame[frame["count_orders_by_device_24h"] > 0]
    abuse = of(with_device, "bot_burst")["count_orders_by_device_5m"].mean()
    normal = of(with_device, "normal")["count_orders_by_device_5m"].mean()
    assert abuse >= 2 * normal, (abuse, normal)


@pytest.mark.parametrize(("pattern", "feature"), [
    ("virtual_phone", "order_virtual_phone"),
    ("pickup_address", "order_pickup_address"),
    ("coupon_farming", "all_order_has_coupon_and_is_missing_time_since_orders_by_user_90d"),
])
def test_order_attributes_stand_out(frame: pd.DataFrame, pattern: str, feature: str) -> None:
    abuse, normal = of(frame, pattern)[feature].mean(), of(frame, "normal")[feature].mean()
    assert abuse >= 0.8 and normal <= 0.2, (abuse, normal)


def test_coupon_farms_use_accounts_minutes_old(frame: pd.DataFrame) -> None:
    assert of(frame, "coupon_farming")["order_account_age_days"].median() < 1
    assert of(frame, "normal")["order_account_age_days"].median() > 30


def test_a_price_glitch_is_far_below_the_skus_usual_price(frame: pd.DataFrame) -> None:
    ratio = "ratio_order_max_unit_price_fen_to_mean_unit_price_fen_by_sku_7d_lag2h"
    glitch, normal = of(frame, "below_price")[ratio].median(), of(frame, "normal")[ratio].median()
    assert glitch < 0.3 and 0.8 < normal < 1.25, (glitch, normal)


def test_confirmed_frauds_count_only_once_confirmed(frame: pd.DataFrame, simulated_shop: IngestedShop) -> None:
    ring = of(frame, "device_ring")
    ring = ring[ring["count_orders_by_device_24h"] > 0]  # where the handset is sent
    checked = 0
    for _, group in ring.groupby(ring["order_key"].map(lambda k: simulated_shop.truth[k].group_id)):
        group = group.sort_values("event_time")
        first = group.iloc[0]
        assert first["distinct_orders_fraud_by_device_90d"] == 0  # nothing on this handset was confirmed yet
        later = group[group["event_time"] > first["event_time"] + pd.Timedelta(hours=6)]
        assert (later["distinct_orders_fraud_by_device_90d"] >= 1).all()
        checked += len(later)
    assert checked >= 3
    assert (of(frame, "normal")["distinct_orders_fraud_by_device_90d"] == 0).all()


def test_refund_abuse_stands_out_when_the_claims_are_scored(orders: list[Order], simulated_shop: IngestedShop,
                                                            gazetteer: Gazetteer) -> None:
    """As of each claim: the ring's claims pile up on one SKU within two days."""
    engine = OnlineFeatures(MemoryStore(), default_shop_features(), gazetteer=gazetteer,
                            retention_margin=timedelta(days=30))
    for order in orders:
        engine.apply(order)
    by_pattern: dict[str, list[float]] = {}
    for order in orders:
        if order.refund is not None:
            claim = engine.lookup(order, as_of=order.refund.requested_at)
            pattern = simulated_shop.truth[str(order.key)].pattern
            by_pattern.setdefault(pattern, []).append(claim["count_refunds_damaged_or_lost_by_sku_48h"])
    abuse = sum(by_pattern["refund_abuse"]) / len(by_pattern["refund_abuse"])
    others = [v for p, values in by_pattern.items() if p != "refund_abuse" for v in values]
    assert len(by_pattern["refund_abuse"]) >= 5 and others
    assert abuse >= 2 * (sum(others) / len(others)), (abuse, others)


def test_honest_look_alikes_differ_from_the_abuse_they_resemble(frame: pd.DataFrame) -> None:
    # family gifts: one account, many addresses -- but no address shared by many accounts
    gifts = of(frame, "family_gifts")
    assert gifts["distinct_addresses_by_user_90d"].mean() >= 1.5
    assert gifts["distinct_users_by_address_48h"].mean() <= of(frame, "normal")["distinct_users_by_address_48h"].mean()
    # loyal customers: many orders, from old accounts that are not on their first order
    loyal = of(frame, "loyal_customer")
    assert loyal["count_orders_by_user_90d"].mean() >= 2 * of(frame, "normal")["count_orders_by_user_90d"].mean()
    assert loyal["order_account_age_days"].median() > 365
