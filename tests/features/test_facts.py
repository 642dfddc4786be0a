"""Facts derived from orders and labels: identities, entity keys, times and attributes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from features.facts import (
    ATTRIBUTES,
    Entity,
    FactKind,
    address_key,
    entity_keys,
    label_facts,
    order_facts,
)
from orderguard.schema import Address, Channel, RefundReason, Verdict
from tests.features.builders import T0, at, delivered, make_label, make_order, refunded, us


def test_an_order_becomes_one_order_fact_and_one_line_fact_per_line() -> None:
    order = make_order("o1", lines=(("s1", 2, 500), ("s2", 1, 990)), coupon_ids=("c1",), coupon_fen=100)
    group = order_facts(order)
    assert group.group_id == "site:o1"
    assert group.version == order.event_version
    kinds = [f.kind for f in group.facts]
    assert kinds == [FactKind.ORDER, FactKind.LINE, FactKind.LINE]
    assert all(f.ts == us(T0) for f in group.facts)
    assert len({f.fact_id for f in group.facts}) == 3
    head = group.facts[0]
    assert head.attrs["units"] == 3
    assert head.attrs["goods_fen"] == 2 * 500 + 990
    assert head.attrs["has_coupon"] is True
    assert group.facts[2].attrs["line_fen"] == 990


def test_every_fact_has_exactly_the_attributes_of_its_kind() -> None:
    order = refunded(make_order(registered_at=at(days=-3)), when=at(hours=5))
    facts = [*order_facts(order).facts, *label_facts(make_label(order, when=at(days=1)), order).facts]
    assert {f.kind for f in facts} == set(FactKind)
    for fact in facts:
        assert set(fact.attrs) == set(ATTRIBUTES[fact.kind])


def test_status_is_not_an_attribute_because_it_is_future_information() -> None:
    for attrs in ATTRIBUTES.values():
        assert "status" not in attrs


def test_user_and_shop_keys_are_scoped_by_channel() -> None:
    jd = entity_keys(make_order(channel=Channel.JD, account="buyer"))
    douyin = entity_keys(make_order(channel=Channel.DOUYIN, account="buyer"))
    assert jd[Entity.USER] == ("jd:buyer",)
    assert jd[Entity.USER] != douyin[Entity.USER]
    assert jd[Entity.SHOP] != douyin[Entity.SHOP]


def test_addresses_match_across_spacing_and_full_width_digits() -> None:
    a = Address("浙江省", "杭州市", "西湖区", "文三路 １００号 3-201")
    b = Address("浙江省", "杭州市", "西湖区", "文三路100号3201")
    other = Address("浙江省", "杭州市", "西湖区", "文三路101号3201")
    assert address_key(a) == address_key(b)
    assert address_key(a) != address_key(other)


def test_sku_keys_one_per_distinct_sku_with_pairs() -> None:
    order = make_order(account="u9", device="d9", lines=(("s1", 1, 1), ("s2", 1, 1), ("s1", 3, 1)))
    keys = entity_keys(order)
    assert keys[Entity.SKU] == ("s1", "s2")
    assert keys[Entity.USER_SKU] == ("site:u9|s1", "site:u9|s2")
    assert keys[Entity.DEVICE_SKU] == ("d9|s1", "d9|s2")
    assert len(keys[Entity.ADDRESS_SKU]) == 2


def test_missing_identities_give_no_key() -> None:
    keys = entity_keys(make_order(device=None, address=None, phone=None, lines=(("s1", 1, 1),)))
    for entity in (Entity.DEVICE, Entity.IP, Entity.WIFI, Entity.ADDRESS, Entity.PHONE, Entity.ID_CARD,
                   Entity.DEVICE_SKU, Entity.ADDRESS_SKU):
        assert entity not in keys
    assert keys[Entity.USER_SKU] == ("site:u1|s1",)


def test_refund_fact_is_at_the_claim_time_and_knows_about_delivery_before_it() -> None:
    order = make_order()
    shipped = delivered(order, when=at(days=2))
    late_claim = refunded(shipped, when=at(days=3), reason=RefundReason.NOT_RECEIVED, amount_fen=1990)
    early_claim = refunded(order, when=at(days=1), reason=RefundReason.NOT_RECEIVED)
    (refund,) = [f for f in order_facts(late_claim).facts if f.kind is FactKind.REFUND]
    assert refund.ts == us(at(days=3))
    assert refund.attrs["delivered_before_claim"] is True
    assert refund.attrs["reason"] == "not_received"
    assert refund.attrs["claim_hours"] == pytest.approx(72.0)
    (early,) = [f for f in order_facts(early_claim).facts if f.kind is FactKind.REFUND]
    assert early.attrs["delivered_before_claim"] is False


def test_delivery_after_the_claim_does_not_count_as_before() -> None:
    claim = refunded(make_order(), when=at(days=1), reason=RefundReason.NOT_RECEIVED)
    later = delivered(claim, when=at(days=2))
    (refund,) = [f for f in order_facts(later).facts if f.kind is FactKind.REFUND]
    assert refund.attrs["delivered_before_claim"] is False


def test_refund_naming_a_sku_carries_the_sku_keys() -> None:
    claim = refunded(make_order(lines=(("s1", 1, 1), ("s2", 1, 1))), when=at(days=1), sku="s2")
    (refund,) = [f for f in order_facts(claim).facts if f.kind is FactKind.REFUND]
    assert refund.entities[Entity.SKU] == "s2"
    assert refund.entities[Entity.USER_SKU] == "site:u1|s2"


def test_label_fact_is_at_labeled_at_with_the_labelled_orders_entities() -> None:
    order = make_order("o7", device="d7", wifi="w7", created_at=T0)
    label = make_label(order, when=at(days=4), verdict=Verdict.CONFIRMED_FRAUD)
    group = label_facts(label, order)
    (fact,) = group.facts
    assert fact.ts == us(at(days=4))
    assert fact.attrs["verdict"] == "confirmed_fraud"
    assert fact.entities[Entity.DEVICE] == "d7"
    assert fact.entities[Entity.WIFI] == "w7"
    assert fact.entities[Entity.ORDER] == "site:o7"
    assert group.group_id != order_facts(order).group_id
    other_reviewer = label_facts(replace(label, reviewer_id="rev2"), order)
    assert other_reviewer.group_id != group.group_id


def test_label_for_another_order_is_refused() -> None:
    with pytest.raises(ValueError, match="label is for"):
        label_facts(make_label(make_order("a"), when=T0), make_order("b"))


def test_account_age_in_days_at_order_time() -> None:
    order = make_order(registered_at=at(days=-10, hours=-12))
    assert order_facts(order).facts[0].attrs["account_age_days"] == pytest.approx(10.5)
    assert order_facts(make_order()).facts[0].attrs["account_age_days"] is None
