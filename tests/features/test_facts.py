"""Facts derived from orders and labels: identities, entity keys, times and attributes."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from features.facts import (
    ATTRIBUTES,
    ORDER_ATTRIBUTES,
    REFERENCE_ATTRIBUTES,
    AttrValue,
    Entity,
    FactKind,
    address_key,
    entity_keys,
    group_keys,
    label_facts,
    order_attributes,
    order_facts,
    reference_inputs,
)
from orderguard.enrich import Gazetteer
from orderguard.schema import Address, Channel, Order, OrderStatus, Phone, RefundReason, Verdict
from orderguard.settings import ReferenceSettings, WarehouseSettings
from tests.factories import BASE_TIME, at, closed_unpaid, delivered, make_label, make_order, refunded, us


def test_an_order_becomes_one_order_fact_and_one_line_fact_per_line() -> None:
    order = make_order("o1", lines=(("s1", 2, 500), ("s2", 1, 990)), coupon_ids=("c1",), coupon_fen=100)
    group = order_facts(order)
    assert group.group_id == "site:o1"
    assert group.version == order.event_version
    kinds = [f.kind for f in group.facts]
    assert kinds == [FactKind.ORDER, FactKind.LINE, FactKind.LINE]
    assert all(f.ts == us(BASE_TIME) for f in group.facts)
    assert len({f.fact_id for f in group.facts}) == 3
    head = group.facts[0]
    assert head.attrs["units"] == 3
    assert head.attrs["goods_fen"] == 2 * 500 + 990
    assert head.attrs["has_coupon"] is True
    assert group.facts[2].attrs["line_fen"] == 990


def test_every_fact_has_exactly_the_attributes_of_its_kind() -> None:
    order = refunded(make_order(registered_at=at(days=-3)), when=at(hours=5))
    unpaid = closed_unpaid(make_order("o2", status=OrderStatus.CREATED), when=at(minutes=30))
    facts = [*order_facts(order).facts, *order_facts(unpaid).facts,
             *label_facts(make_label(order, when=at(days=1)), order).facts]
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
    order = make_order("o7", device="d7", wifi="w7", created_at=BASE_TIME)
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
        label_facts(make_label(make_order("a"), when=BASE_TIME), make_order("b"))


def test_account_age_in_days_at_order_time() -> None:
    order = make_order(registered_at=at(days=-10, hours=-12))
    assert order_facts(order).facts[0].attrs["account_age_days"] == pytest.approx(10.5)
    assert order_facts(make_order()).facts[0].attrs["account_age_days"] is None


# -- order attributes: what a reviewer reads off the order itself ------------------------------------------


def order_attrs(order: Order) -> Mapping[str, AttrValue]:
    (head,) = [f for f in order_facts(order).facts if f.kind is FactKind.ORDER]
    return head.attrs


def with_phone(order: Order, prefix: str | None) -> Order:
    buyer = replace(order.details.buyer, phone=Phone("hash-1", prefix=prefix))
    return replace(order, details=replace(order.details, buyer=buyer))


@pytest.mark.parametrize(("prefix", "virtual"), [("1701234", True), ("1651234", True), ("138", False),
                                                 ("1381234", False), (None, None)])
def test_virtual_phone_is_known_only_when_some_digits_are(prefix: str | None, virtual: bool | None) -> None:
    assert order_attrs(with_phone(make_order(), prefix))["virtual_phone"] is virtual
    assert order_attrs(make_order(phone=None))["virtual_phone"] is None


def test_pickup_station_addresses_are_flagged() -> None:
    station = make_order(address=("浙江省", "杭州市", "西湖区", "古荡新村 菜鸟驿站"))
    home = make_order(address=("浙江省", "杭州市", "西湖区", "文三路100号3幢201"))
    assert order_attrs(station)["pickup_address"] is True
    assert order_attrs(home)["pickup_address"] is False
    assert order_attrs(make_order(address=None))["pickup_address"] is None


def test_whole_thousand_amount_without_a_message() -> None:
    plain = make_order(lines=(("card", 2, 100_000),))
    noted = replace(plain, details=replace(plain.details, buyer_message="送给朋友的礼物"))
    odd = make_order(lines=(("card", 2, 99_900),))
    assert order_attrs(plain)["whole_thousand_no_message"] is True
    assert order_attrs(noted)["whole_thousand_no_message"] is False
    assert order_attrs(odd)["whole_thousand_no_message"] is False


@pytest.mark.parametrize(("utc_hour", "night"), [(15, False), (16, True), (22, True), (23, False)])
def test_night_is_midnight_to_seven_in_beijing(utc_hour: int, night: bool) -> None:
    created = datetime(2024, 11, 11, utc_hour, 30, tzinfo=UTC)  # Beijing is eight hours ahead
    assert order_attrs(make_order(created_at=created))["night"] is night


def test_weekend_follows_the_beijing_calendar() -> None:
    friday_night_utc = datetime(2024, 11, 8, 16, 30, tzinfo=UTC)  # Saturday 00:30 in Beijing
    sunday_night_utc = datetime(2024, 11, 10, 16, 30, tzinfo=UTC)  # Monday 00:30 in Beijing
    assert order_attrs(make_order(created_at=friday_night_utc))["weekend"] is True
    assert order_attrs(make_order(created_at=sunday_night_utc))["weekend"] is False


def test_line_price_extremes_of_the_order() -> None:
    attrs = order_attrs(make_order(lines=(("a", 1, 500), ("b", 3, 120), ("c", 1, 9_900))))
    assert (attrs["max_unit_price_fen"], attrs["min_unit_price_fen"]) == (9_900, 120)
    assert order_attrs(make_order(lines=()))["max_unit_price_fen"] is None


def test_user_address_pairs_the_account_with_where_it_ships() -> None:
    keys = entity_keys(make_order(account="u7"))
    assert keys[Entity.USER_ADDRESS] == (f"site:u7|{keys[Entity.ADDRESS][0]}",)
    assert Entity.USER_ADDRESS not in entity_keys(make_order(address=None))
    assert Entity.USER_ADDRESS not in entity_keys(make_order(account=None))


def test_group_keys_are_the_orders_entity_keys() -> None:
    for order in (make_order(lines=(("s1", 1, 1), ("s2", 2, 1), ("s1", 1, 1)), wifi="w", ip="1.2.3.4"),
                  make_order(device=None, address=None, lines=()),
                  refunded(make_order(lines=(("s9", 1, 1),)), when=at(days=1), sku="s9")):
        assert group_keys(order_facts(order)) == entity_keys(order)


def test_entity_maps_stay_out_of_the_garbage_collector() -> None:
    # plain-string keys and values: CPython does not track such dicts, so millions of stored
    # facts add nothing to each young-generation collection
    for fact in order_facts(make_order(lines=(("s1", 1, 1),))).facts:
        assert not gc.is_tracked(fact.entities)
        assert not gc.is_tracked(fact.attrs)
        assert all(type(entity) is str for entity in fact.entities)


def test_order_attributes_are_the_order_fact_plus_reference_data() -> None:
    gazetteer = Gazetteer.build()
    hangzhou_phone = with_phone(make_order(address=("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "解放路1号")),
                                "1596811")
    attrs = order_attributes(hangzhou_phone, gazetteer=gazetteer)
    assert set(attrs) == set(ORDER_ATTRIBUTES)
    assert {k: v for k, v in attrs.items() if k not in REFERENCE_ATTRIBUTES} == dict(order_attrs(hangzhou_phone))
    km = attrs["phone_delivery_km"]
    assert isinstance(km, float) and 3000 < km < 3600  # Hangzhou to Urumqi, great circle
    assert order_attributes(hangzhou_phone)["phone_delivery_km"] is None  # no reference data given
    assert order_attributes(with_phone(make_order(), "138"), gazetteer=gazetteer)["phone_delivery_km"] is None
    # the cache key holds everything the reference attributes read: phone digits, region, shop, note
    plain = make_order(phone=None)
    assert reference_inputs(plain) == reference_inputs(make_order(phone=None))
    assert reference_inputs(plain) != reference_inputs(make_order(phone=None, shop="north"))
    assert reference_inputs(plain) != reference_inputs(replace(plain, details=replace(plain.details,
                                                                                      buyer_message="急用")))


def test_warehouse_distance_and_urgent_note_read_the_reference_settings() -> None:
    urumqi_phone = with_phone(make_order(), "1390000")
    attrs = order_attributes(urumqi_phone, gazetteer=Gazetteer.build())
    assert isinstance(attrs["phone_warehouse_km"], float) and attrs["phone_warehouse_km"] > 3000  # to Hangzhou
    north = Gazetteer.build(ReferenceSettings(warehouses={"shop1": WarehouseSettings(province="新疆维吾尔自治区",
                                                                                     city="乌鲁木齐市")}))
    near = order_attributes(urumqi_phone, gazetteer=north)["phone_warehouse_km"]
    assert isinstance(near, float) and near < 100
    assert order_attributes(make_order(phone=None), gazetteer=north)["phone_warehouse_km"] is None

    def note(text: str) -> Order:
        return replace(urumqi_phone, details=replace(urumqi_phone.details, buyer_message=text))

    assert order_attributes(note("宝贝生日，今天 发货可以吗"), gazetteer=north)["urgent_note"] is True  # spaces ignored
    assert order_attributes(note("请尽快发货"), gazetteer=north)["urgent_note"] is False
    birthday_only = Gazetteer.build(ReferenceSettings(urgent_note_keywords=("生日",)))
    assert order_attributes(note("宝贝生日"), gazetteer=birthday_only)["urgent_note"] is True
    assert order_attributes(note("急用"), gazetteer=birthday_only)["urgent_note"] is False
    assert order_attributes(note("急用"))["urgent_note"] is None  # no reference data given


def test_an_order_closed_unpaid_counts_at_the_close_and_one_ever_paid_never_does() -> None:
    placed = make_order("o1", ip_prefix="net1", status=OrderStatus.CREATED)
    closed = closed_unpaid(placed, when=at(minutes=30), status=OrderStatus.CANCELLED)
    [fact] = [f for f in order_facts(closed).facts if f.kind is FactKind.UNPAID_CLOSE]
    assert fact.ts == us(at(minutes=30)) and fact.entities["ip_prefix"] == "net1" and fact.attrs["open_hours"] == 0.5
    assert not any(f.kind is FactKind.UNPAID_CLOSE for f in order_facts(placed).facts)  # still open
    paid_then_cancelled = closed_unpaid(make_order("o2", ip_prefix="net1"), when=at(minutes=30))
    assert not any(f.kind is FactKind.UNPAID_CLOSE for f in order_facts(paid_then_cancelled).facts)
