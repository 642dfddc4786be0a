"""Declared attributes and entities: loaded with every problem named, read as documented, and served."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from features.declared import EntityName
from features.derived import point_in_time_features
from features.describe import FeatureDescriber
from features.facts import entity_keys, order_facts
from features.online import OnlineFeatures
from features.specs import FeatureSet
from features.stores import MemoryStore
from orderguard.errors import ConfigError
from orderguard.schema import Amounts, Channel, Order, OrderDetails, OrderKey, OrderLine, OrderStatus, Party

T0 = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)

DECLARE: dict[str, Any] = {
    "attributes": [
        {"name": "amount_usd", "type": "number", "unit": "USD"},
        {"name": "card_type", "type": "category", "values": ["debit", "credit"]},
        {"name": "vip", "type": "flag", "source": "vip_v2", "missing": False},
    ],
    "entities": [
        {"name": "card", "of": ["card1", "card2"], "pii": True, "label": {"zh": "同一银行卡", "en": "this card"}},
        {"name": "email_domain", "of": ["email_domain"], "plural": "email_domains"},
    ],
}


def feature_set(**extra: Any) -> FeatureSet:
    data: dict[str, Any] = {"declare": DECLARE, "features": [
        {"entity": "card", "field": "orders", "agg": "count", "window": "1h"},
        {"entity": "card", "field": "amount_usd", "agg": "sum", "window": "24h"},
        {"entity": "email_domain", "field": "cards", "agg": "distinct", "window": "24h"},
        {"entity": "user", "field": "orders", "agg": "count", "window": "24h", "qualifier": "vip_debit",
         "filter": {"vip": True, "card_type": "debit"}},
    ], "attributes": ["amount_usd", "card_type", "vip"]}
    data.update(extra)
    return FeatureSet.from_data(data)


def order(i: int, minute: int, **attributes: str | int | float | bool) -> Order:
    details = OrderDetails(shop_id="s", created_at=T0.replace(minute=minute), buyer=Party(account_id=f"u{i % 2}"),
                           lines=(OrderLine("sku", 1, 1000),), amounts=Amounts(goods_fen=1000, paid_fen=1000),
                           attributes=attributes)
    return Order(OrderKey(Channel.SITE, f"o{i}"), OrderStatus.PAID, details, 1, details.created_at, ())


def test_declared_features_are_named_and_round_trip() -> None:
    fs = feature_set()
    assert fs.names[:4] == ("count_orders_by_card_1h", "sum_amount_usd_by_card_24h",
                            "distinct_cards_by_email_domain_24h", "count_orders_vip_debit_by_user_24h")
    assert fs.names[4:] == ("order_amount_usd", "order_card_type", "order_vip")
    again = FeatureSet.from_data(fs.to_data())
    assert again == fs and again.hash() == fs.hash()
    assert isinstance(fs.specs[0].entity, EntityName)


def test_the_shop_set_keeps_its_hash_when_nothing_is_declared() -> None:
    plain = FeatureSet.from_data({"features": [{"entity": "device", "field": "orders", "agg": "count",
                                                "window": "5m"}]})
    assert "declare" not in plain.to_data()
    with_empty = FeatureSet.from_data({"declare": {}, **plain.to_data()})
    assert with_empty.hash() == plain.hash()


def test_values_are_coerced_and_missing_takes_the_policy() -> None:
    fs = feature_set()
    engine = OnlineFeatures(MemoryStore(), fs)
    a = order(1, 0, card1="4111", card2=7, amount_usd="1,200.5", card_type="credit", vip_v2="yes",
              email_domain="mail.com")
    b = order(3, 5, card1="4111", card2=7.0, amount_usd="n/a", card_type="prepaid", email_domain="mail.com")
    for o in (a, b):
        engine.apply(o)
    va = engine.lookup(a, as_of=a.details.created_at)
    vb = engine.lookup(b, as_of=b.details.created_at)
    assert va["order_amount_usd"] == 1200.5 and va["order_card_type"] == 1.0 and va["order_vip"] == 1.0
    assert math.isnan(vb["order_amount_usd"])  # unreadable → missing
    assert vb["order_card_type"] == 2.0  # not among the values → len(values)
    assert vb["order_vip"] == 0.0  # absent → the declared missing value
    assert vb["count_orders_by_card_1h"] == 2.0  # 7 and 7.0 are one card
    assert vb["sum_amount_usd_by_card_24h"] == 1200.5
    assert vb["distinct_cards_by_email_domain_24h"] == 1.0


def test_pii_keys_are_digests_and_a_missing_part_means_no_key() -> None:
    fs = feature_set()
    keys = entity_keys(order(1, 0, card1="4111111111111111", card2="7", email_domain="x.com"),
                       declared=fs.declared)
    assert "4111111111111111" not in keys["card"][0] and len(keys["card"][0]) == 32
    assert keys["email_domain"] == ("x.com",)
    assert "card" not in entity_keys(order(1, 0, card1="4111"), declared=fs.declared)
    assert "card" not in entity_keys(order(1, 0, card1="4111", card2="7"))  # nothing declared: no key
    facts = order_facts(order(1, 0, card1="4111", card2="7"), fs.declared).facts
    assert all("card" in f.entities for f in facts)  # line facts carry it as well


def test_online_equals_batch_for_declared_features() -> None:
    fs = feature_set()
    orders = [order(i, i * 3, card1=str(4000 + i % 3), card2="1", amount_usd=i * 1.5,
                    card_type=("debit", "credit")[i % 2], vip_v2=i % 3 == 0, email_domain=f"d{i % 2}.com")
              for i in range(15)]
    frame = point_in_time_features(orders, fs)
    engine = OnlineFeatures(MemoryStore(), fs)
    for o in orders:
        engine.apply(o)
    for row in frame.to_dict("records"):
        o = next(x for x in orders if str(x.key) == row["order_key"])
        online = engine.lookup(o, as_of=o.details.created_at)
        for name in fs.names:
            assert online[name] == pytest.approx(row[name], nan_ok=True), name
    assert frame["count_orders_vip_debit_by_user_24h"].max() >= 1


def test_reasons_name_declared_entities_and_attributes() -> None:
    describer = FeatureDescriber(feature_set())
    label = describer.label("count_orders_by_card_1h")
    assert "同一银行卡" in label.zh and "this card" in label.en
    assert "amount usd (USD)" in describer.label("order_amount_usd").en


@pytest.mark.parametrize(("declare", "features", "field"), [
    ({"attributes": [{"name": "paid_fen", "type": "number"}]}, [], "declare.attributes[0].name"),
    ({"attributes": [{"name": "Card", "type": "number"}]}, [], "declare.attributes[0].name"),
    ({"attributes": [{"name": "x", "type": "text"}]}, [], "declare.attributes[0].type"),
    ({"attributes": [{"name": "x", "type": "number", "missing": "many"}]}, [], "declare.attributes[0].missing"),
    ({"attributes": [{"name": "x", "type": "number", "values": ["a"]}]}, [], "declare.attributes[0].values"),
    ({"attributes": [{"name": "x", "type": "number"}, {"name": "x", "type": "flag"}]}, [],
     "declare.attributes[1].name"),
    ({"entities": [{"name": "device", "of": ["a"]}]}, [], "declare.entities[0].name"),
    ({"entities": [{"name": "card", "of": []}]}, [], "declare.entities[0].of"),
    ({"entities": [{"name": "card", "of": ["a", "b", "c", "d", "e"]}]}, [], "declare.entities[0].of"),
    ({"entities": [{"name": "card", "of": ["sku"]}]}, [], "declare.entities[0].of[0]"),
    ({"entities": [{"name": "card", "of": ["a"], "plural": "users"}]}, [], "declare.entities[0].plural"),
    ({}, [{"entity": "card", "field": "orders", "agg": "count", "window": "1h"}], "features[0].entity"),
    ({"attributes": [{"name": "tier", "type": "category"}]},
     [{"entity": "user", "field": "tier", "agg": "sum", "window": "1h"}], "features[0].field"),
    ({"attributes": [{"name": "tier", "type": "category", "values": ["a"]}]},
     [{"entity": "user", "field": "orders", "agg": "count", "window": "1h", "qualifier": "q",
       "filter": {"tier": "zz"}}], "features[0].filter.tier"),
])
def test_bad_declarations_are_refused_naming_the_field(declare: dict[str, Any], features: list[dict[str, Any]],
                                                       field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FeatureSet.from_data({"declare": declare, "features": features})
    assert caught.value.field == field


def test_a_category_served_as_an_input_needs_its_values() -> None:
    with pytest.raises(ConfigError) as caught:
        FeatureSet.from_data({"declare": {"attributes": [{"name": "tier", "type": "category"}]}, "features": [],
                              "attributes": ["tier"]})
    assert caught.value.field == "attributes[0]"


def test_a_set_extends_the_shops_and_adds_its_own() -> None:
    from features.shop import default_shop_features

    shop = default_shop_features()
    own = FeatureSet.from_data({"extends": "shop", "declare": DECLARE, "features": [
        {"entity": "card", "field": "orders", "agg": "count", "window": "1h"}], "attributes": ["amount_usd"],
        "monotone": ["count_orders_by_card_1h"]})
    assert own.names[:len(shop.specs)] == shop.spec_names
    assert "count_orders_by_card_1h" in own.names and "order_amount_usd" in own.names
    assert len(own) == len(shop) + 2 and own.monotone == (*shop.monotone, "count_orders_by_card_1h")
    with pytest.raises(ConfigError) as caught:
        FeatureSet.from_data({"extends": "bank", "features": []})
    assert caught.value.field == "extends"
