"""Feature values read as short Chinese and English phrases that show the value."""

from __future__ import annotations

import math
import re

import pytest

from features.describe import KNOWN_ATTRIBUTES, MISSING_EN, MISSING_ZH, FeatureDescriber, Phrase, money, number
from features.facts import ATTRIBUTES, DISTINCT_FIELDS, ORDER_ATTRIBUTES, AttrType, Entity
from features.shop import default_shop_features
from features.specs import Agg, AttributeSpec, DerivedOp, DerivedSpec, FeatureSet, FeatureSpec, parse_filter
from features.windows import Duration
from orderguard.errors import ConfigError

SHOP = default_shop_features()
#: A name or a template leaking into a phrase: snake_case words or unfilled braces.
_LEAK = re.compile(r"[a-z]+_[a-z_]+|[{}]")
#: Latin words a Chinese phrase may hold.
_LATIN_IN_ZH = {"IP", "WiFi"}


def _readable(phrase: Phrase) -> bool:
    """Both texts filled in, no raw names or templates, Chinese in Chinese."""
    return (bool(phrase.zh and phrase.en) and not _LEAK.search(phrase.zh + phrase.en)
            and re.search(r"[\u4e00-\u9fff]", phrase.zh) is not None
            and set(re.findall(r"[A-Za-z]+", phrase.zh)) <= _LATIN_IN_ZH)


@pytest.fixture(scope="module")
def shop() -> FeatureDescriber:
    return FeatureDescriber(SHOP)


def _flag_like(name: str) -> bool:
    return name.startswith(("is_", "all_")) or name in {a.name for a in SHOP.attributes
                                                        if ORDER_ATTRIBUTES[a.attr] is AttrType.FLAG}


def test_the_examples_read_as_reviewers_say_them(shop: FeatureDescriber) -> None:
    burst = shop.describe("count_orders_by_device_5m", 6.0)
    assert (burst.zh, burst.en) == ("同一设备5分钟内下单6次", "6 orders from this device in 5 min")
    assert shop.describe("distinct_users_by_address_30d", 3.0).zh == "同一收货地址30天内关联3个账号"
    assert shop.describe("order_virtual_phone", 1.0).zh == "虚拟运营商号段"


def test_every_shop_feature_has_a_readable_phrase_for_known_and_missing_values(shop: FeatureDescriber) -> None:
    assert set(shop.names) == set(SHOP.names) and len(SHOP.names) == 95
    for name in SHOP.names:
        value = 1.0 if _flag_like(name) else 7.0
        for phrase in (shop.describe(name, value), shop.describe(name, math.nan), shop.label(name)):
            assert phrase.zh and phrase.en, name
            assert not _LEAK.search(phrase.zh) and not _LEAK.search(phrase.en), (name, phrase)
            assert re.search(r"[\u4e00-\u9fff]", phrase.zh), (name, phrase.zh)
        missing = shop.describe(name, math.nan)
        assert missing.zh.endswith(MISSING_ZH) and missing.en.endswith(MISSING_EN), name


def test_windowed_aggregates_show_their_value(shop: FeatureDescriber) -> None:
    for spec in SHOP.specs:
        if spec.agg is Agg.TIME_SINCE:
            assert "3分钟" in shop.describe(spec.name, 180.0).zh
            assert "2 days" in shop.describe(spec.name, 2 * 86400.0).en
            continue
        value, shown = (12_345.0, money(12_345.0)) if spec.field.endswith("_fen") else (7.0, "7")
        phrase = shop.describe(spec.name, value)
        assert shown in phrase.zh and shown in phrase.en, (spec.name, phrase)
        assert shop.describe(spec.name, value + 2) != phrase, spec.name


def test_windows_and_delays_are_spelled_out(shop: FeatureDescriber) -> None:
    usual_price = shop.describe("mean_unit_price_fen_by_sku_7d_lag2h", 5990.0)
    assert "7天内" in usual_price.zh and "截至2小时前" in usual_price.zh and "¥59.90" in usual_price.zh
    assert "in 7 days" in usual_price.en and "up to 2 h ago" in usual_price.en
    assert "48小时内" in shop.describe("distinct_users_by_wifi_48h", 4.0).zh


def test_flags_read_differently_when_set_and_unset(shop: FeatureDescriber) -> None:
    for name in SHOP.names:
        if _flag_like(name):
            assert shop.describe(name, 1.0) != shop.describe(name, 0.0), name


def test_first_order_and_new_address_read_as_absence_of_history(shop: FeatureDescriber) -> None:
    first = shop.describe("is_missing_time_since_orders_by_user_90d", 1.0)
    assert "无更早" in first.zh and "no earlier order" in first.en
    coupon_first = shop.describe("all_order_has_coupon_and_is_missing_time_since_orders_by_user_90d", 1.0)
    assert coupon_first.zh.startswith(shop.describe("order_has_coupon", 1.0).zh)
    assert first.zh in coupon_first.zh and first.en in coupon_first.en


def test_a_ratio_names_both_sides_and_shows_a_percentage(shop: FeatureDescriber) -> None:
    name = "ratio_order_max_unit_price_fen_to_mean_unit_price_fen_by_sku_7d_lag2h"
    phrase = shop.describe(name, 0.35)
    assert phrase.zh.startswith(shop.label("order_max_unit_price_fen").zh) and "35%" in phrase.zh
    assert shop.label("mean_unit_price_fen_by_sku_7d_lag2h").en in phrase.en and "35%" in phrase.en


def test_an_unknown_feature_is_a_key_error(shop: FeatureDescriber) -> None:
    with pytest.raises(KeyError):
        shop.describe("count_orders_by_device_7m", 1.0)
    assert "count_orders_by_device_7m" not in shop and "count_orders_by_device_5m" in shop


def test_the_vocabulary_knows_every_attribute() -> None:
    every = {a for kind in ATTRIBUTES.values() for a in kind} | set(ORDER_ATTRIBUTES)
    assert every <= KNOWN_ATTRIBUTES


def _every_valid_spec() -> list[FeatureSpec]:
    """One spec per valid (entity, agg, field) combination, with a 1-day window."""
    numeric = sorted({a for kind in ATTRIBUTES.values() for a, t in kind.items() if t is not AttrType.CATEGORY})
    fields = {Agg.COUNT: ["orders", "lines", "refunds", "labels"], Agg.TIME_SINCE: ["orders", "refunds"],
              Agg.DISTINCT: sorted(DISTINCT_FIELDS)}
    specs = []
    for entity in Entity:
        for agg in Agg:
            for field in fields.get(agg, numeric):
                try:
                    specs.append(FeatureSpec(entity, field, agg, Duration.parse("1d")))
                except ConfigError:
                    continue
    return specs


def test_any_valid_spec_and_attribute_is_describable() -> None:
    specs = _every_valid_spec()
    attributes = tuple(AttributeSpec(a) for a, t in ORDER_ATTRIBUTES.items() if t is not AttrType.CATEGORY)
    describer = FeatureDescriber(FeatureSet(tuple(specs), attributes))
    assert len(specs) > 200
    for name in describer.names:
        for value in (0.0, 1.0, 2.5, math.nan):
            phrase = describer.describe(name, value)
            assert _readable(phrase), (name, phrase)


@pytest.mark.parametrize(("filter_", "zh", "en"), [
    ({"reason": ["damaged", "not_received"]}, "“破损/未收到”", "'damaged / not received'"),
    ({"claim_hours": {"le": 2}}, "下单到申请退款的时长≤2小时", "time from order to claim ≤ 2 h"),
    ({"reason": {"not_in": ["no_reason"]}}, "非“七天无理由”", "not 'no-reason return'"),
    ({"refund_fen": {"ge": 50_000}}, "退款金额≥¥500", "refund amount ≥ ¥500"),
    ({"channel": "douyin"}, "抖音渠道", "on Douyin"),
    ({"delivered_before_claim": False}, "签收前", "before delivery"),
])
def test_filters_read_as_modifiers(filter_: dict[str, object], zh: str, en: str) -> None:
    spec = FeatureSpec(Entity.USER, "refunds", Agg.COUNT, Duration.parse("30d"), parse_filter(filter_),
                       qualifier="filtered")
    phrase = FeatureDescriber(FeatureSet((spec,))).describe(spec.name, 2.0)
    assert zh in phrase.zh and en in phrase.en, phrase
    assert "2" in phrase.zh and phrase.en.startswith("2 ")


def test_what_is_counted_carries_its_own_filter() -> None:
    claimants = FeatureSpec(Entity.WIFI, "users", Agg.DISTINCT, Duration.parse("48h"),
                            parse_filter({"reason": ["damaged"]}), qualifier="claiming_damaged")
    new_accounts = FeatureSpec(Entity.WIFI, "users", Agg.DISTINCT, Duration.parse("7d"),
                               parse_filter({"account_age_days": {"le": 30}}), qualifier="new")
    describer = FeatureDescriber(FeatureSet((claimants, new_accounts)))
    claiming = describer.describe(claimants.name, 4.0)
    assert claiming.zh == "同一WiFi 48小时内关联4个申请“破损”退款的账号"
    assert claiming.en == "4 accounts with 'damaged' refund claims linked to this WiFi in 48 h"
    assert "注册天数≤30天" in describer.describe(new_accounts.name, 2.0).zh


def test_derived_features_are_phrased_from_their_arguments() -> None:
    count = FeatureSpec(Entity.PHONE, "orders", Agg.COUNT, Duration.parse("1h"))
    feature_set = FeatureSet((count,), (AttributeSpec("night"),),
                             (DerivedSpec(DerivedOp.IS_ZERO, (count.name,)),
                              DerivedSpec(DerivedOp.ALL, ("order_night", f"is_zero_{count.name}"))))
    describer = FeatureDescriber(feature_set)
    label = describer.label(count.name)
    assert describer.describe(f"is_zero_{count.name}", 1.0).zh == f"{label.zh}为0"
    both = describer.describe(f"all_order_night_and_is_zero_{count.name}", 1.0)
    assert both.en == (f"{describer.describe('order_night', 1.0).en} and "
                       f"{describer.describe(f'is_zero_{count.name}', 1.0).en}")


def test_numbers_and_money_are_short() -> None:
    assert number(3.0) == "3" and number(0.5) == "0.5"
    assert money(199_900) == "¥1,999" and money(1) == "¥0.01"


def test_a_phrase_written_again_reads_as_a_describer_that_never_saw_it() -> None:
    """Phrases are kept by (feature, value): the second reading of a value, in any order of features and
    values, is the phrase a fresh describer writes for it. ``-0.0`` and ``0.0`` are one key, and read as 0."""
    features = default_shop_features()
    warm, values = FeatureDescriber(features), [-0.0, 0.0, 1.0, 2.5, 7.0, 300.0, 86_400.0, 1e9, -3.0]
    for round_ in range(2):
        for name in warm.names:
            for value in values if round_ == 0 else reversed(values):
                assert warm.describe(name, value) == FeatureDescriber(features).describe(name, value), (name, value)
    assert "-0" not in FeatureDescriber(features).describe("count_orders_by_device_5m", -0.0).en
