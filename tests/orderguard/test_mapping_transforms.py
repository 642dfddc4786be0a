"""Mappings that transform: every function, missing values, load-time refusals naming their place, row errors
naming their column, and no escape from the expression language."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orderguard.errors import ConfigError, InvalidInputError
from orderguard.ingest.files import ColumnMapping, read_records
from orderguard.ingest.normalize import PiiHasher
from orderguard.ingest.transforms import MISSING, RowError, Scope, parse

HASHER = PiiHasher(b"k")


def ev(text: str, row: dict[str, Any] | None = None, value: Any = None, **lookups: dict[str, Any]) -> Any:
    return parse(text, where="e", lookups=lookups).evaluate(Scope(row or {}, value, lookups, HASHER))


@pytest.mark.parametrize(("text", "value", "expected"), [
    ("round(value * 720)", "12.5", 9000),
    ("round(value, 1)", "2.345", 2.3),
    ("num(value) + 1", "1,234.5", 1235.5),
    ("int(value)", "7.9", 7),
    ("value // 3", 10, 3),
    ("value % 3", 10, 1),
    ("-value", "4", -4),
    ("str(value)", 12.0, "12"),
    ("lower(value)", "Prepaid", "prepaid"),
    ("upper(strip(value))", "  jd ", "JD"),
    ("split(value, '@', 1)", "a@mail.com", "mail.com"),
    ("epoch(value)", 1731283200, "2024-11-11T00:00:00+00:00"),
    ("epoch_ms(value)", "1731283200000", "2024-11-11T00:00:00+00:00"),
    ("add_seconds('2017-11-30T00:00:00+00:00', value)", "86400", "2017-12-01T00:00:00+00:00"),
    ("add_seconds('2018-04-01T00:00:00+08:00', value + 86400)", "31", "2018-04-01T16:00:31+00:00"),
])
def test_functions_and_arithmetic(text: str, value: Any, expected: Any) -> None:
    assert ev(text, value=value) == expected


def test_columns_concat_lookup_coalesce_and_pii() -> None:
    row = {"card1": "4111", "card2": 7, "Phone No": "138 0013 8000", "code": "W", "empty": ""}
    assert ev("concat(card1, '|', card2)", row) == "4111|7"
    assert ev("lookup('p', code)", row, p={"W": "web"}) == "web"
    assert ev("lookup('p', 'X', 'other')", row, p={"W": "web"}) == "other"
    assert ev("lookup('p', 'X')", row, p={"W": "web"}) is MISSING
    assert ev("coalesce(empty, card2, 'x')", row) == 7
    assert ev("concat(card1, empty)", row) is MISSING  # missing propagates
    assert ev("round(empty * 100)", row) is MISSING
    hashed = ev("pii('phone', col('Phone No'))", row)
    assert hashed == HASHER.hash("phone", "13800138000") and "138" not in hashed


@pytest.mark.parametrize(("text", "why"), [
    ("value.__class__", "attribute access"),
    ("value[0]", "subscripts"),
    ("eval('1')", "unknown function 'eval'"),
    ("round(value, ndigits=2)", "keyword arguments"),
    ("round()", "round() takes 1 to 2 arguments"),
    ("lookup('nope', value)", "lookup table 'nope'"),
    ("lookup(value, value)", "quoted name"),
    ("add_seconds('2017-11-30', value)", "offset"),
    ("value if value else 1", "IfExp"),
    ("value > 1", "comparisons"),
    ("lambda: 1", "lambdas"),
    ("[value]", "List"),
    ("True", "literal True"),
    ("1 +", "a valid expression"),
    ("value" + " + 1" * 300, "at most 500 characters"),
])
def test_load_time_refusals_name_the_place(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text, where="mapping.columns.x.expr", lookups={"p": {}})
    assert caught.value.field == "mapping.columns.x.expr"
    assert why in str(caught.value)


def test_value_is_only_defined_in_a_columns_own_rule() -> None:
    with pytest.raises(ConfigError) as caught:
        ColumnMapping.model_validate({"fields": [{"to": "attributes.k", "expr": "concat(value, 'x')"}]})
    assert caught.value.field == "mapping.fields[0].expr"


@pytest.mark.parametrize(("data", "field"), [
    ({"columns": {"A": [{"to": "a"}, {"to": "b", "expr": "nope(value)"}]}}, "mapping.columns.A[1].expr"),
    ({"columns": {"A": {"to": "a..b"}}}, "mapping.columns.A.to"),
    ({"columns": {"A": {"to": ["a", ""]}}}, "mapping.columns.A.to[1]"),
    ({"columns": {"A": {"to": "a", "expr": "lookup('t', value)"}}}, "mapping.columns.A.expr"),
    ({"fields": [{"to": "a"}]}, "mapping.fields[0].expr"),
])
def test_mappings_are_checked_when_they_load(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ColumnMapping.model_validate(data)
    assert caught.value.field == field


def test_one_column_to_several_fields_drops_and_the_old_rename(tmp_path: Path) -> None:
    mapping = ColumnMapping.model_validate({
        "defaults": {"type": "order"},
        "columns": {"id": "order_id", "amt": [{"to": ["amounts.goods_fen", "amounts.paid_fen"],
                                               "expr": "round(value * 100)"}, {"to": "attributes.amount"}],
                    "secret": {"to": []}, "code": {"to": "items.0.sku_id", "expr": "lookup('p', value, 'other')"}},
        "fields": [{"to": "attributes.key", "expr": "concat(id, '-', code)"}],
        "lookups": {"p": {"W": "web"}}})
    payload = mapping.apply({"id": "9", "amt": "1.5", "secret": "x", "code": "W", "other": "kept"})
    assert payload == {"type": "order", "order_id": "9", "amounts": {"goods_fen": 150, "paid_fen": 150},
                       "attributes": {"amount": "1.5", "key": "9-W"}, "items": [{"sku_id": "web"}], "other": "kept"}


def test_a_bad_row_is_refused_by_line_and_the_next_one_kept(tmp_path: Path) -> None:
    file = tmp_path / "x.csv"
    file.write_text("id,amt\n1,2.5\n2,abc\n3,\n4,1\n", encoding="utf-8")
    spec = tmp_path / "m.yaml"
    spec.write_text(yaml.safe_dump({"columns": {"amt": {"to": "amounts.paid_fen", "expr": "round(value * 100)"}}}),
                    encoding="utf-8")
    records = list(read_records(file, mapping=ColumnMapping.load(spec)))
    assert records[0] == (2, {"id": "1", "amounts": {"paid_fen": 250}})
    line, error = records[1]
    assert line == 3 and isinstance(error, InvalidInputError) and error.field == "mapping.columns.amt"
    assert "must be a number" in str(error)
    assert records[2] == (4, {"id": "3"})  # an empty cell: the target is not set
    assert records[3] == (5, {"id": "4", "amounts": {"paid_fen": 100}})


@pytest.mark.parametrize("text", ["round(value, 1000000000000000000000000000000)", "value * 1e308 * 10",
                                  "epoch(99999999999999999999)", "add_seconds('2017-11-30T00:00:00+00:00', 1e300)",
                                  "split(value, '', 0)", "int(value) // 0"])
def test_extremes_are_row_errors_not_crashes(text: str) -> None:
    with pytest.raises(RowError):
        parse(text, where="e").evaluate(Scope({}, "3", {}, HASHER))


def test_division_by_zero_and_pii_without_a_key_are_row_errors() -> None:
    mapping = ColumnMapping.model_validate({"columns": {"a": {"to": "x", "expr": "10 / value"},
                                                        "p": {"to": "y", "expr": "pii('phone', value)"}}})
    with pytest.raises(InvalidInputError, match="divide by zero"):
        mapping.apply({"a": "0"})
    with pytest.raises(InvalidInputError, match="PII key"):
        mapping.apply({"p": "13800138000"})
    assert mapping.apply({"p": "13800138000"}, hasher=HASHER)["y"] == HASHER.hash("phone", "13800138000")


def test_load_names_the_file(tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text("columns: {a: {to: x, expr: 'open(value)'}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        ColumnMapping.load(spec)
    assert str(spec) in str(caught.value) and caught.value.field == "mapping.columns.a.expr"


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(
    st.text(alphabet="value()+-*/%.,'[]_ abcdeilmnoprstuxz0123456789", max_size=60),
    st.builds(lambda f, a, b: f"{f}({a}, {b})", st.sampled_from(["round", "split", "epoch", "add_seconds", "concat",
                                                                  "lookup", "coalesce", "int", "num"]),
              st.sampled_from(["value", "'t'", "''", "0", "-1", "10000000000000000000000", "1e308", "'x'"]),
              st.sampled_from(["value", "0", "'2017-11-30T00:00:00+00:00'", "99999999999999999999", "''"]))))
def test_arbitrary_text_is_refused_at_load_or_evaluates_without_escaping(text: str) -> None:
    try:
        expression = parse(text, where="e", lookups={"t": {}})
    except ConfigError:
        return
    with contextlib.suppress(RowError):  # the only error a parsed expression may raise on a row
        expression.evaluate(Scope({}, "3", {"t": {}}, HASHER))


@settings(max_examples=200, deadline=None)
@given(a=st.integers(-10**6, 10**6), b=st.integers(1, 10**4), c=st.integers(-100, 100))
def test_arithmetic_matches_python(a: int, b: int, c: int) -> None:
    assert ev("a * c + b - a // b + a % b", {"a": str(a), "b": b, "c": str(c)}) == a * c + b - a // b + a % b
