"""Rule packs: loading errors name the rule and field; evaluation renders readable reasons."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from orderguard.errors import ConfigError
from scoring.rules import ListKeys, load_rules, load_rules_file

FEATURES = {"count_orders_by_device_5m", "count_orders_by_ip_5m", "is_virtual_phone"}


def pack(**overrides: Any) -> dict[str, Any]:
    rule = {"code": "DEVICE_BURST_5M", "points": 50,
            "when": {"feature": "count_orders_by_device_5m", "op": "ge", "value": 5},
            "reason": {"zh": "同一设备5分钟内下单{value:.0f}次（阈值{threshold:.0f}）",
                       "en": "{value:.0f} orders from one device within 5 min (threshold {threshold:.0f})"}}
    rule.update(overrides)
    return {"rules": [rule]}


def test_rule_fires_at_threshold_with_values_in_both_languages() -> None:
    rules = load_rules(pack(), known_features=FEATURES)
    hit = rules.evaluate({"count_orders_by_device_5m": 6.0}).hits
    assert [(h.code, h.points) for h in hit] == [("DEVICE_BURST_5M", 50)]
    assert hit[0].reason_zh == "同一设备5分钟内下单6次（阈值5）"
    assert hit[0].reason_en == "6 orders from one device within 5 min (threshold 5)"
    assert rules.evaluate({"count_orders_by_device_5m": 5.0}).points == 50
    assert rules.evaluate({"count_orders_by_device_5m": 4.0}).hits == ()


def test_missing_or_nan_feature_never_fires() -> None:
    rules = load_rules(pack(), known_features=FEATURES)
    assert rules.evaluate({}).hits == ()
    assert rules.evaluate({"count_orders_by_device_5m": math.nan}).hits == ()


def test_compound_conditions_and_named_placeholders() -> None:
    rules = load_rules(pack(when={"all": [{"feature": "count_orders_by_ip_5m", "op": "ge", "value": 3},
                                          {"feature": "is_virtual_phone", "op": "eq", "value": 1}]},
                            reason={"zh": "IP下单{count_orders_by_ip_5m:.0f}次且虚拟号", "en": "ip {value:.0f}"}),
                       known_features=FEATURES)
    assert rules.evaluate({"count_orders_by_ip_5m": 3, "is_virtual_phone": 0}).hits == ()
    [hit] = rules.evaluate({"count_orders_by_ip_5m": 4, "is_virtual_phone": 1}).hits
    assert hit.reason_zh == "IP下单4次且虚拟号" and hit.values == {"count_orders_by_ip_5m": 4, "is_virtual_phone": 1}
    any_rules = load_rules(pack(when={"any": [{"feature": "count_orders_by_ip_5m", "op": "ge", "value": 3},
                                              {"feature": "is_virtual_phone", "op": "eq", "value": 1}]}),
                           known_features=FEATURES)
    assert len(any_rules.evaluate({"count_orders_by_ip_5m": 0, "is_virtual_phone": 1}).hits) == 1


def test_deny_and_allow_lists() -> None:
    data = pack()
    data["deny"] = {"points": 90, "phones": ["p1"], "devices": ["d1"]}
    data["allow"] = {"vip_min_member_level": 3, "addresses": ["a-good"]}
    rules = load_rules(data, known_features=FEATURES)
    result = rules.evaluate({}, ListKeys(phone="p1", device="d2", member_level=1))
    assert [h.code for h in result.hits] == ["DENY_PHONE"] and result.points == 90 and not result.allow_listed
    assert rules.evaluate({}, ListKeys(member_level=3)).allow_listed
    assert rules.evaluate({}, ListKeys(address="a-good")).allow_listed
    assert not rules.evaluate({}, ListKeys(member_level=2)).allow_listed


@pytest.mark.parametrize(("data", "field", "fragment"), [
    (pack(when={"feature": "count_orders_by_moon_5m", "op": "ge", "value": 5}), "rules[0].when.feature",
     "DEVICE_BURST_5M"),
    (pack(when={"feature": "count_orders_by_device_5m", "op": "approx", "value": 5}), "rules[0].when.op",
     "DEVICE_BURST_5M"),
    (pack(when={"feature": "count_orders_by_device_5m", "op": "in", "value": 5}), "rules[0].when.op",
     "one threshold"),
    (pack(points="many"), "rules[0].points", "DEVICE_BURST_5M"),
    (pack(code="lower-case"), "rules[0].code", "lower-case"),
    (pack(reason={"zh": "{nope}", "en": "x"}), "rules[0].reason.zh", "DEVICE_BURST_5M"),
    (pack(when={"all": [{"feature": "count_orders_by_ip_5m", "op": "ge", "value": 1},
                        {"feature": "unknown", "op": "ge", "value": 1}]}), "rules[0].when.all[1].feature", "unknown"),
    ({"rules": [pack()["rules"][0], pack()["rules"][0]]}, "rules[1].code", "twice"),
    ({"rules": [], "extra": 1}, "extra", "extra"),
])
def test_bad_packs_fail_at_load_naming_rule_and_field(data: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_rules(data, known_features=FEATURES)
    assert info.value.field == field
    assert fragment in info.value.message


def test_bad_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules\.yaml"):
        load_rules_file(path)
