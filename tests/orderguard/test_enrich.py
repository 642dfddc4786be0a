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


def test_a_remembered_place_is_the_place_a_fresh_gazetteer_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Places are remembered by their names: asked again (known or not), the answer is the one a gazetteer
    that never saw the names gives; a full cache starts afresh instead of growing."""
    import orderguard.enrich as enrich

    monkeypatch.setattr(enrich, "_PLACE_CACHE_SIZE", 3)
    cached = Gazetteer.build()
    names = [("浙江省", "杭州市", "西湖区"), ("火星省", "", ""), ("浙江", "杭州", ""), ("广东省", "深圳市", "南山区"),
             ("新疆维吾尔自治区", "乌鲁木齐市", "天山区"), ("浙江省", "宁波市", "火星区")]
    for _ in range(3):
        for province, city, district in names:
            fresh = Gazetteer.build().locate(province, city, district)
            assert cached.locate(province, city, district) == fresh
            assert len(cached._place_cache) <= 3
    assert cached.locate("火星省") is None and cached.locate("浙江省", "杭州市", "西湖区") is not None


def test_a_remembered_phone_home_is_the_home_a_fresh_gazetteer_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Homes are remembered by the number's first 7 digits: asked again (placed or not), the answer is the one
    a gazetteer that never saw the block gives; made-up blocks cannot grow the cache past its size."""
    import orderguard.enrich as enrich

    monkeypatch.setattr(enrich, "_PHONE_CACHE_SIZE", 3)
    cached = Gazetteer.build()
    blocks = ["1596811", "1380000", "1999999", "1708888", "1596811", "0000000", "13800001234"]
    for _ in range(3):
        for block in blocks:
            assert cached.phone_home(block) == Gazetteer.build().phone_home(block), block
            assert len(cached._phone_cache) <= 3
    assert cached.phone_home("1596811") is not None and cached.phone_home("0000000") is None


def test_urgent_keywords_are_matched_in_normalised_form() -> None:
    from orderguard.settings import ReferenceSettings

    g = Gazetteer.build(ReferenceSettings(urgent_note_keywords=("ＡＳＡＰ", "今天 发")))
    assert g.urgent_keyword("please asap!") == "ＡＳＡＰ"  # full-width keyword, half-width note
    assert g.urgent_keyword("今天发货可以吗") == "今天 发"  # whitespace never counts
    assert g.urgent_keyword("") is None and g.urgent_keyword("放门口") is None


def test_home_cities_are_what_libphonenumber_says_of_the_number_parsed_from_text() -> None:
    """The home city comes from a number built from the digits; it must be the one libphonenumber gives
    the same digits parsed as text, over blocks of every mobile segment (valid, unassigned, invalid)."""
    import random

    import phonenumbers
    from phonenumbers import geocoder

    g = Gazetteer.build()
    rng = random.Random(7)
    prefixes = [f"1{rng.randrange(100, 1000)}{rng.randrange(1000):03d}" for _ in range(400)]
    placed = 0
    for prefix in prefixes:
        text = geocoder.description_for_number(phonenumbers.parse(prefix + "0000", "CN"), "zh")
        want = next((g.locate(p.name, text[len(p.name):] if text.startswith(p.name) else text[len(s):])
                     if text not in (p.name, s) else p
                     for s, p in g.provinces.items() if text.startswith((p.name, s))), None)
        assert g._lookup_phone(prefix) == want, (prefix, text)
        placed += want is not None
    assert 100 < placed < len(prefixes)  # the sample holds both placed and unplaced blocks
    assert g.phone_home("13８0571") is None and g.phone_home("abcdefg") is None  # only ASCII digits
