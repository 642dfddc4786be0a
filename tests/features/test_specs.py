"""Feature specs: derived names, kind resolution, and config errors that name the field."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from features.facts import Entity, FactKind
from features.operators import Op
from features.specs import (
    Agg,
    Condition,
    DerivedOp,
    FeatureSet,
    FeatureSpec,
    attribute_value,
    derive,
    parse_filter,
)
from features.windows import Duration
from orderguard.errors import ConfigError


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"entity": "device", "field": "orders", "agg": "count", "window": "5m"}
    base.update(overrides)
    return base


def load(*specs: dict[str, Any]) -> FeatureSet:
    return FeatureSet.from_data({"features": list(specs)})


def config_error(*specs: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(*specs)
    return info.value


def test_names_are_derived_from_the_definition() -> None:
    fs = load(spec(),
              spec(entity="wifi", field="users", agg="distinct", window="48h"),
              spec(entity="user", field="refunds", window="30d", qualifier="damaged_or_lost",
                   filter={"reason": ["damaged", "not_received"]}),
              spec(entity="device", field="labels", window="30d", offset="7d", qualifier="fraud",
                   filter={"verdict": "confirmed_fraud"}),
              spec(entity="user", field="orders", agg="time_since", window="30d"))
    assert fs.names == ("count_orders_by_device_5m", "distinct_users_by_wifi_48h",
                        "count_refunds_damaged_or_lost_by_user_30d", "count_labels_fraud_by_device_30d_lag7d",
                        "time_since_orders_by_user_30d")


@pytest.mark.parametrize(("field", "entity", "filters", "kind"), [
    ("paid_fen", "device", {}, FactKind.ORDER),
    ("units", "user", {}, FactKind.ORDER),  # order total units: order facts come first
    ("units", "user_sku", {}, FactKind.LINE),  # SKU pairs exist on line facts only
    ("units", "user", {"sku": ["s1", "s2"]}, FactKind.LINE),  # filtering by SKU needs line facts
    ("refund_fen", "address", {}, FactKind.REFUND),
])
def test_the_kind_of_facts_is_implied_by_field_entity_and_filter(field: str, entity: str,
                                                                 filters: dict[str, Any], kind: FactKind) -> None:
    extra = {"filter": filters, "qualifier": "limited"} if filters else {}
    (only,) = load(spec(entity=entity, field=field, agg="sum", **extra)).specs
    assert only.kind is kind


@pytest.mark.parametrize(("bad", "field"), [
    ({"entity": "devise"}, "features[1].entity"),
    ({"agg": "median"}, "features[1].agg"),
    ({"window": "0m"}, "features[1].window"),
    ({"window": "-5m"}, "features[1].window"),
    ({"window": "soon"}, "features[1].window"),
    ({"offset": "0h"}, "features[1].offset"),
    ({"field": "paid"}, "features[1].field"),
    ({"agg": "sum", "field": "channel"}, "features[1].field"),  # categorical, not numeric
    ({"agg": "distinct", "field": "colours"}, "features[1].field"),
    ({"field": "labels", "facts": "order"}, "features[1].facts"),
    ({"entity": "sku", "field": "orders"}, "features[1].entity"),  # order facts carry no SKU
    ({"filter": {"colour": "red"}, "qualifier": "red"}, "features[1].filter.colour"),
    ({"field": "refunds", "filter": {"reason": ["broken"]}, "qualifier": "x"}, "features[1].filter.reason"),
    ({"field": "refunds", "filter": {"delivered_before_claim": "yes"}, "qualifier": "x"},
     "features[1].filter.delivered_before_claim"),
    ({"field": "refunds", "filter": {"reason": {"gt": "damaged"}}, "qualifier": "x"},
     "features[1].filter.reason.op"),
    ({"filter": {"paid_fen": {"about": 3}}, "qualifier": "x"}, "features[1].filter.paid_fen.about"),
    ({"filter": {"paid_fen": {"in": []}}, "qualifier": "x"}, "features[1].filter.paid_fen"),
    ({"filter": {"paid_fen": {"ge": 100}}}, "features[1].qualifier"),  # a filter needs a qualifier
    ({"qualifier": "Bad Name"}, "features[1].qualifier"),
    ({"colour": "red"}, "features[1].colour"),  # unknown key (pydantic extra=forbid)
    ({"window": 5}, "features[1].window"),  # not a string
])
def test_config_errors_name_the_offending_field(bad: dict[str, Any], field: str) -> None:
    error = config_error(spec(), spec(**bad))
    assert error.field == field
    assert f"`{field}`" in error.message


def test_missing_required_key_is_named() -> None:
    error = config_error({"entity": "device", "field": "orders", "agg": "count"})
    assert error.field == "features[0].window"


def test_duplicate_names_are_rejected_with_a_hint() -> None:
    error = config_error(spec(), spec(window="10m"), spec())
    assert error.field == "features[2]"
    assert "qualifier" in error.message


def test_overriding_the_kind_of_facts_requires_a_qualifier() -> None:
    error = config_error(spec(entity="user", agg="distinct", field="orders", facts="refund"))
    assert error.field == "features[0].qualifier"
    (ok,) = load(spec(entity="user", agg="distinct", field="orders", facts="refund", qualifier="refunded")).specs
    assert ok.kind is FactKind.REFUND
    assert ok.name == "distinct_orders_refunded_by_user_5m"


def test_filter_shorthand_and_explicit_operators() -> None:
    conditions = parse_filter({"reason": ["not_received", "damaged"], "delivered_before_claim": True,
                               "refund_fen": {"ge": 100, "lt": 5000}})
    assert conditions == (
        Condition("delivered_before_claim", Op.EQ, True),
        Condition("reason", Op.IN, ("damaged", "not_received")),
        Condition("refund_fen", Op.GE, 100),
        Condition("refund_fen", Op.LT, 5000),
    )


def test_round_trip_through_data_keeps_every_definition() -> None:
    fs = load(spec(),
              spec(entity="user", field="refunds", window="30d", qualifier="big_after_delivery",
                   filter={"delivered_before_claim": True, "refund_fen": {"ge": 100, "lt": 5000}}),
              spec(entity="device", field="labels", window="30d", offset="7d", qualifier="not_fp",
                   filter={"verdict": {"ne": "false_positive"}}),
              spec(entity="user_sku", field="units", agg="sum", window="24h"))
    again = FeatureSet.from_data(fs.to_data())
    assert again == fs
    assert again.hash() == fs.hash()


def test_hash_changes_with_any_definition_or_order() -> None:
    a = load(spec(), spec(window="10m"))
    assert a.hash() != load(spec(), spec(window="11m")).hash()
    assert a.hash() != load(spec(window="10m"), spec()).hash()


def test_yaml_file_loading_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "features.yaml"
    path.write_text("features:\n  - {entity: ip, field: orders, agg: count, window: 10m}\n", encoding="utf-8")
    assert FeatureSet.from_file(path).names == ("count_orders_by_ip_10m",)
    path.write_text("features: [\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        FeatureSet.from_file(path)
    with pytest.raises(ConfigError) as info:
        FeatureSet.from_file(tmp_path / "absent.yaml")
    assert info.value.field == "features"


def test_python_construction_validates_too() -> None:
    with pytest.raises(ConfigError) as info:
        FeatureSpec(Entity.DEVICE, "orders", Agg.SUM, Duration.parse("1h"))
    assert info.value.field == "field"
    built = FeatureSpec(Entity.DEVICE, "paid_fen", Agg.MEAN, Duration.parse("1h"))
    assert built.kind is FactKind.ORDER and built.value_attr == "paid_fen"


@pytest.mark.parametrize(("condition", "actual", "expected"), [
    (Condition("paid_fen", Op.GE, 100), 100, True),
    (Condition("paid_fen", Op.GT, 100), 100, False),
    (Condition("paid_fen", Op.LT, 100), 99.5, True),
    (Condition("paid_fen", Op.LE, 100), 100.5, False),
    (Condition("reason", Op.NE, "damaged"), "other", True),
    (Condition("reason", Op.NE, "damaged"), None, False),  # unknown never matches, like SQL NULL
    (Condition("reason", Op.NOT_IN, ("damaged",)), None, False),
    (Condition("reason", Op.NOT_IN, ("damaged",)), "other", True),
    (Condition("delivered_before_claim", Op.EQ, True), False, False),
])
def test_condition_semantics(condition: Condition, actual: object, expected: bool) -> None:
    assert condition.matches(actual) is expected


# -- attributes of the order and derived features ---------------------------------------------------------


def full(**extra: Any) -> dict[str, Any]:
    return {"features": [spec(entity="user", field="orders", agg="time_since", window="90d"), spec()], **extra}


def test_attribute_and_derived_names_are_derived_too() -> None:
    fs = FeatureSet.from_data(full(attributes=["virtual_phone", "paid_fen"], derived=[
        {"op": "is_missing", "of": ["time_since_orders_by_user_90d"]},
        {"op": "ratio", "of": ["order_paid_fen", "count_orders_by_device_5m"]},
        {"op": "all", "of": ["order_virtual_phone", "is_missing_time_since_orders_by_user_90d"]},
        {"op": "is_zero", "of": ["count_orders_by_device_5m"]},
    ]))
    assert fs.names[2:] == ("order_virtual_phone", "order_paid_fen", "is_missing_time_since_orders_by_user_90d",
                            "ratio_order_paid_fen_to_count_orders_by_device_5m",
                            "all_order_virtual_phone_and_is_missing_time_since_orders_by_user_90d",
                            "is_zero_count_orders_by_device_5m")
    assert fs.spec_names == fs.names[:2]
    assert len(fs) == 8 and list(fs) == list(fs.specs)
    assert fs.windowed() == FeatureSet(fs.specs)
    assert FeatureSet.from_data(fs.to_data()) == fs


def test_a_set_without_attributes_or_derived_keeps_its_data_form_and_hash() -> None:
    plain = load(spec())
    assert set(plain.to_data()) == {"features"}
    assert FeatureSet.from_data({**plain.to_data(), "attributes": [], "derived": []}).hash() == plain.hash()
    assert FeatureSet.from_data(full(attributes=["night"])).hash() != FeatureSet.from_data(full()).hash()


def test_only_the_distance_needs_reference_data() -> None:
    assert FeatureSet.from_data(full(attributes=["phone_delivery_km"])).needs_gazetteer
    assert not FeatureSet.from_data(full(attributes=["virtual_phone", "night"])).needs_gazetteer


@pytest.mark.parametrize(("data", "field"), [
    (full(attributes=["channel"]), "attributes[0]"),  # categorical: not a number
    (full(attributes=["night", "colour"]), "attributes[1]"),
    (full(attributes=["night", "night"]), "attributes[1]"),
    (full(derived=[{"op": "ratio", "of": ["count_orders_by_device_5m"]}]), "derived[0].of"),
    (full(derived=[{"op": "sum", "of": ["count_orders_by_device_5m"]}]), "derived[0].op"),
    (full(derived=[{"op": "is_zero", "of": ["no_such_feature"]}]), "derived[0].of"),
    (full(derived=[{"op": "is_zero", "of": ["is_zero_count_orders_by_device_5m"]},
                   {"op": "is_zero", "of": ["count_orders_by_device_5m"]}]), "derived[0].of"),  # used before declared
    (full(derived=[{"op": "is_zero", "of": ["count_orders_by_device_5m"]}] * 2), "derived[1]"),
    (full(derived=[{"op": "is_zero", "of": ["count_orders_by_device_5m"], "as": "x"}]), "derived[0].as"),
])
def test_attribute_and_derived_errors_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        FeatureSet.from_data(data)
    assert info.value.field == field
    assert f"`{field}`" in info.value.message


NAN = float("nan")


@pytest.mark.parametrize(("op", "args", "expected"), [
    (DerivedOp.RATIO, (3.0, 4.0), 0.75),
    (DerivedOp.RATIO, (3.0, 0.0), NAN),  # never infinity
    (DerivedOp.RATIO, (NAN, 4.0), NAN),
    (DerivedOp.IS_ZERO, (0.0,), 1.0),
    (DerivedOp.IS_ZERO, (2.0,), 0.0),
    (DerivedOp.IS_ZERO, (NAN,), NAN),
    (DerivedOp.IS_MISSING, (NAN,), 1.0),
    (DerivedOp.IS_MISSING, (0.0,), 0.0),
    (DerivedOp.ALL, (1.0, 1.0, 5.0), 1.0),
    (DerivedOp.ALL, (1.0, 0.0), 0.0),
    (DerivedOp.ALL, (0.0, NAN), NAN),
])
def test_derived_expressions(op: DerivedOp, args: tuple[float, ...], expected: float) -> None:
    got = derive(op, args)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_attribute_values_as_features() -> None:
    assert [attribute_value(v) for v in (True, False, 7, 2.5)] == [1.0, 0.0, 7.0, 2.5]
    assert math.isnan(attribute_value(None))
