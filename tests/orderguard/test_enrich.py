"""Phone and address enrichment against independently known geography."""

from __future__ import annotations

import pytest

from orderguard.enrich import Gazetteer, is_virtual_phone, pickup_keyword
from orderguard.schema import Address, Phone


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.build()


@pytest.mark.parametrize(("segment", "virtual"), [("170", True), ("171", True), ("162", True), ("165", True),
                                                   ("167", True), ("138", False), ("199", False), ("177", False)])
def test_virtual_segments(segment: str, virtual: bool) -> None:
    assert is_virtual_phone(Phone(hash="x", prefix=segment + "1234")) is virtual


@pytest.mark.parametrize(("detail", "keyword"), [
    ("文三路 100 号", None), ("XX小区菜鸟驿站", "驿站"), ("丰巢快递柜", "快递柜"),
    ("临时住址", "临时"), ("代收点3号", "代收点"),
])
def test_pickup_keywords(detail: str, keyword: str | None) -> None:
    assert pickup_keyword(Address("浙江省", "杭州市", "西湖区", detail)) == keyword


def test_phone_to_delivery_distance_uses_home_city(gazetteer: Gazetteer) -> None:
    hangzhou_phone = Phone(hash="x", prefix="1596811")  # a Hangzhou mobile block
    local = gazetteer.phone_to_delivery_km(hangzhou_phone, Address("浙江省", "杭州市", "西湖区", "d"))
    far = gazetteer.phone_to_delivery_km(hangzhou_phone, Address("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "d"))
    assert local is not None and local < 30
    assert far is not None and 3000 < far < 3600  # Hangzhou - Urumqi is ~3,270 km great-circle


def test_unknown_places_and_masked_phones_give_none(gazetteer: Gazetteer) -> None:
    assert gazetteer.phone_to_delivery_km(Phone(hash="x", prefix="138"), Address("浙江省", "杭州市", "", "d")) is None
    assert gazetteer.locate("火星省") is None
    found = gazetteer.locate("浙江", "杭州")
    assert found is not None and found.name == "杭州市"
