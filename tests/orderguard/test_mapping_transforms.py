"""Mappings that transform: every function, missing values, load-time refusals naming their place,
row errors naming their column, and no way out of the expression language."""

from __future__ import annotations

import contextlib
import json
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from orderguard.errors import ConfigError, InvalidInputError
from orderguard.ingest.files import ColumnMapping, read_records
from orderguard.ingest.normalize import PiiHasher
from orderguard.ingest.transforms import MAX_CHARS, MISSING, RowError, Scope, parse

HASHER = PiiHasher(b"test-key")
TABLES = {"product": {"W": "web", "C": "card", "1": "one"}}


def ev(text: str, row: dict[str, Any] | None = None, value: Any = None, *,
       hasher: PiiHasher | None = HASHER) -> Any:
    """Evaluate one expression as a column rule over ``row`` with the current cell ``value``."""
    return parse(text, where="e", lookups=TABLES).evaluate(Scope(row or {}, value, TABLES, hasher))


def mapping(data: dict[str, Any]) -> ColumnMapping:
    return ColumnMapping.model_validate(data)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- functions and operators ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value", "expected"), [
    ("num(value)", "1,234.5", 1234.5),
    ("num(value)", " 12 ", 12),
    ("num(value)", "-3e2", -300.0),
    ("int(value)", "7.9", 7),
    ("int(value)", "-7.9", -7),
    ("round(value)", "2.5", 3),  # half-up, like fen amounts
    ("round(value)", "-2.5", -3),
    ("round(value, 2)", "2.345", 2.35),
    ("round(value, -2)", "1250", 1300),
    ("round(value * 720)", "12.5", 9000),
    ("round(value * 100)", "19.90", 1990),
    ("str(value)", 12.0, "12"),
    ("str(value)", 12.5, "12.5"),
    ("lower(value)", "Gmail.COM", "gmail.com"),
    ("upper(value)", "jd", "JD"),
    ("strip(value)", "  W ", "W"),
    ("upper(strip(value))", "  jd ", "JD"),
    ("concat(value, '-', 7)", "A", "A-7"),
    ("split(value, '@', 1)", "a@qq.com", "qq.com"),
    ("split(value, '@', -1)", "a@b@qq.com", "qq.com"),
    ("lookup('product', value)", "W", "web"),
    ("lookup('product', value)", 1, "one"),
    ("lookup('product', value, 'other')", "X", "other"),
    ("epoch(value)", "1731283200", "2024-11-11T00:00:00+00:00"),
    ("epoch(value)", 0, "1970-01-01T00:00:00+00:00"),
    ("epoch_ms(value)", "1731283200500", "2024-11-11T00:00:00.500000+00:00"),
    ("add_seconds('2017-11-30T00:00:00+00:00', value)", "86400", "2017-12-01T00:00:00+00:00"),
    ("add_seconds('2017-11-30T00:00:00+08:00', value)", 60, "2017-11-29T16:01:00+00:00"),
    ("add_seconds('2017-11-30T00:00:00Z', value / 2)", "3", "2017-11-30T00:00:01.500000+00:00"),
    ("coalesce(value, 'none')", "", "none"),
    ("coalesce(value, 'none')", "x", "x"),
    ("value // 3", "10", 3),
    ("value % 3", "10", 1),
    ("-value", "4", -4),
    ("value / 4", "10", 2.5),
    ("value - 0.5", "1", 0.5),
])
def test_functions_and_operators(text: str, value: Any, expected: Any) -> None:
    result = ev(text, value=value)
    assert result == expected
    assert type(result) is type(expected)


def test_arithmetic_reads_numeric_text_and_keeps_exact_integers_whole() -> None:
    assert ev("a * b", {"a": "3", "b": "4"}) == 12 and isinstance(ev("a * b", {"a": "3", "b": "4"}), int)
    assert ev("a / b", {"a": "10", "b": "5"}) == 2 and isinstance(ev("a / b", {"a": "10", "b": "5"}), int)
    assert ev("a + 1", {"a": "1,000"}) == 1001
    assert ev("a * 2", {"a": "12.5"}) == 25.0
    assert ev("num(a) + num(b)", {"a": 1, "b": 2.5}) == 3.5


@pytest.mark.parametrize(("text", "value", "constraint"), [
    ("value * 2", "abc", "a number"),
    ("value + 1", "1.2.3", "a number"),
    ("num(value)", "nan", "a number"),
    ("num(value)", "1e999", "a finite number"),
    ("10 / value", "0", "a divisor other than zero"),
    ("10 // value", "0", "a divisor other than zero"),
    ("10 % value", "0.0", "a divisor other than zero"),
    ("value * value * value", "1" + "0" * 20, "a number below 10^40"),
    ("round(value, 99)", "1.5", "a round() precision from -15 to 15"),
    ("epoch(value)", "1e15", "a time within the calendar"),
    ("add_seconds(value, 1)", "2017-11-30", "an ISO-8601 reference time with an offset"),
    ("split('a,b', ',', value)", "x", "a number"),
])
def test_values_that_cannot_be_transformed_are_row_errors(text: str, value: Any, constraint: str) -> None:
    with pytest.raises(RowError) as caught:
        ev(text, value=value)
    assert caught.value.constraint == constraint


def test_columns_by_name_and_by_col() -> None:
    row = {"card1": "4111", "card2": 7, "Phone No": "138 0013 8000", "订单金额": "19.90"}
    assert ev("concat(card1, '|', card2)", row) == "4111|7"
    assert ev("round(订单金额 * 100)", row) == 1990
    assert ev("col('Phone No')", row) == "138 0013 8000"
    with pytest.raises(RowError) as caught:
        ev("concat(card1, card3)", row)
    assert caught.value.value == "card3"


# --- missing values -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "num(value)", "int(value)", "round(value)", "round(value, 2)", "str(value)", "lower(value)", "upper(value)",
    "strip(value)", "concat('a', value)", "split(value, '@', 0)", "lookup('product', value)",
    "lookup('product', value, 'other')", "epoch(value)", "epoch_ms(value)",
    "add_seconds('2017-11-30T00:00:00+00:00', value)", "pii('phone', value)", "value + 1", "1 - value",
    "value * 2", "value / 2", "value // 2", "value % 2", "-value", "round(value * 720)", "coalesce(value)",
])
@pytest.mark.parametrize("empty", [None, ""])
def test_missing_propagates_through_every_function_and_operator(text: str, empty: Any) -> None:
    assert ev(text, value=empty) is MISSING


def test_coalesce_skips_missing_arguments() -> None:
    row = {"phone": "", "mobile": None, "tel": "021-1234", "zero": "0"}
    assert ev("coalesce(phone, mobile, tel, 'none')", row) == "021-1234"
    assert ev("coalesce(phone, mobile)", row) is MISSING
    assert ev("coalesce(zero, tel)", row) == "0"  # zero is a value, not missing
    assert ev("coalesce(phone * 2, 5)", row) == 5


def test_a_missing_result_leaves_the_target_unset() -> None:
    m = mapping({"columns": {"amt": {"to": "amounts.paid_fen", "expr": "round(value * 100)"},
                             "code": {"to": "attributes.product", "expr": "lookup('product', value)"}},
                 "lookups": TABLES})
    assert m.apply({"amt": "", "code": "X"}) == {}
    assert m.apply({"amt": "1", "code": "W"}) == {"amounts": {"paid_fen": 100}, "attributes": {"product": "web"}}


# --- mapping forms --------------------------------------------------------------------------------


def test_one_column_to_several_fields_computed_fields_lookups_and_drops() -> None:
    m = mapping({
        "defaults": {"type": "fixed"},
        "columns": {"id": "tid",
                    "amt": [{"to": ["amounts.goods_fen", "amounts.paid_fen"], "expr": "round(value * 720)"},
                            {"to": "attributes.amount_usd"}],
                    "secret": {"to": []},
                    "code": {"to": "orders.order.0.sku_id", "expr": "lookup('product', value, 'other')"}},
        "fields": [{"to": "attributes.card_key", "expr": "concat(card1, '|', card2)"},
                   {"to": ["attributes.a", "attributes.b"], "expr": "num(card2) + num(amt)"}],
        "lookups": TABLES})
    payload = m.apply({"id": "9", "amt": "1.5", "secret": "x", "code": "W", "card1": "41", "card2": "7"})
    assert payload == {"type": "fixed", "tid": "9", "amounts": {"goods_fen": 1080, "paid_fen": 1080},
                       "attributes": {"amount_usd": "1.5", "card_key": "41|7", "a": 8.5, "b": 8.5},
                       "orders": {"order": [{"sku_id": "web"}]}, "card1": "41", "card2": "7"}


def test_the_rename_form_still_works_through_load(tmp_path: Path) -> None:
    spec = write(tmp_path, "m.yaml",
                 "columns:\n  订单编号: tid\n  商品编码: orders.order.0.sku_id\ndefaults:\n  type: fixed\n")
    file = write(tmp_path, "x.csv", "订单编号,商品编码,空列\nT1,SKU-9,\n")
    assert list(read_records(file, mapping=ColumnMapping.load(spec))) == [
        (2, {"type": "fixed", "tid": "T1", "orders": {"order": [{"sku_id": "SKU-9"}]}})]


def test_the_documented_example_loads_and_converts(tmp_path: Path) -> None:
    spec = write(tmp_path, "m.yaml", """
columns:
  订单编号: tid
  TransactionAmt:
    - {to: amounts.paid_fen, expr: "round(value * 720)"}
    - {to: attributes.amount_usd}
  TransactionDT: {to: created_at, expr: "add_seconds('2017-11-30T00:00:00+00:00', value)"}
  ProductCD: {to: attributes.product, expr: "lookup('product', value)"}
  card1: {to: attributes.card1}
  P_emaildomain: {to: attributes.email_domain, expr: "lower(value)"}
fields:
  - {to: attributes.card_key, expr: "concat(card1, '|', card2)"}
  - {to: buyer.phone, expr: "pii('phone', col('Phone No'))"}
lookups:
  product: {W: web, C: card, 1: one}
defaults: {type: fixed}
""")
    file = write(tmp_path, "x.csv",
                 "订单编号,TransactionAmt,TransactionDT,ProductCD,card1,card2,P_emaildomain,Phone No\n"
                 "T1,12.5,86400,1,4111,7,QQ.com,138 0013 8000\n")
    [(line, payload)] = list(read_records(file, mapping=ColumnMapping.load(spec), hasher=HASHER))
    assert line == 2
    assert payload == {
        "type": "fixed", "tid": "T1", "amounts": {"paid_fen": 9000}, "created_at": "2017-12-01T00:00:00+00:00",
        "attributes": {"amount_usd": "12.5", "product": "one", "card1": "4111", "email_domain": "qq.com",
                       "card_key": "4111|7"},
        "card2": "7", "Phone No": "138 0013 8000", "buyer": {"phone": HASHER.hash("phone", "13800138000")}}


def test_pii_hashes_with_the_deployments_key_and_keeps_no_clear_value(tmp_path: Path) -> None:
    m = mapping({"columns": {"手机": [{"to": "buyer.phone", "expr": "pii('phone', value)"}],
                             "Name": {"to": "buyer.name", "expr": "pii('name', strip(value))"}}})
    assert m.needs_hasher
    payload = m.apply({"手机": "138-0013-8000", "Name": " 张三 "}, hasher=HASHER)
    assert payload == {"buyer": {"phone": HASHER.hash("phone", "13800138000"), "name": HASHER.hash("name", "张三")}}
    text = json.dumps(payload, ensure_ascii=False)
    assert "0013" not in text and "张三" not in text
    with pytest.raises(InvalidInputError, match="PII key") as caught:
        m.apply({"手机": "13800138000"})
    assert caught.value.field == "mapping.columns.手机[0]"
    file = write(tmp_path, "x.csv", "手机\n13800138000\n")
    with pytest.raises(ConfigError, match="PII key"):
        read_records(file, mapping=m)
    [(_, hashed)] = list(read_records(file, mapping=m, hasher=HASHER))
    assert hashed == {"buyer": {"phone": HASHER.hash("phone", "13800138000")}}


# --- load-time refusals ---------------------------------------------------------------------------


def rule(expr: str) -> dict[str, Any]:
    return {"columns": {"TransactionAmt": {"to": "amounts.paid_fen", "expr": expr}}, "lookups": TABLES}


@pytest.mark.parametrize(("data", "field", "why"), [
    (rule("open(value)"), "mapping.columns.TransactionAmt.expr", "unknown function 'open'"),
    (rule("__import__('os')"), "mapping.columns.TransactionAmt.expr", "unknown function '__import__'"),
    (rule("value.__class__"), "mapping.columns.TransactionAmt.expr", "attribute access is not allowed"),
    (rule("str.join('', value)"), "mapping.columns.TransactionAmt.expr", "unknown function 'str.join'"),
    (rule("value[0]"), "mapping.columns.TransactionAmt.expr", "subscripts are not allowed"),
    (rule("round(value, ndigits=2)"), "mapping.columns.TransactionAmt.expr", "keyword arguments"),
    (rule("round(value, 1, 2)"), "mapping.columns.TransactionAmt.expr", "round() takes 1 to 2 arguments, not 3"),
    (rule("split(value, '@')"), "mapping.columns.TransactionAmt.expr", "split() takes 3 arguments, not 2"),
    (rule("concat()"), "mapping.columns.TransactionAmt.expr", "concat() takes at least 1 argument, not 0"),
    (rule("lookup('nope', value)"), "mapping.columns.TransactionAmt.expr", "lookup table 'nope' is not in"),
    (rule("lookup(value, value)"), "mapping.columns.TransactionAmt.expr", "takes a quoted name first"),
    (rule("pii(value, value)"), "mapping.columns.TransactionAmt.expr", "takes a quoted name first"),
    (rule("col(value)"), "mapping.columns.TransactionAmt.expr", "takes a quoted name first"),
    (rule("add_seconds('2017-11-30', value)"), "mapping.columns.TransactionAmt.expr", "with an offset"),
    (rule("add_seconds('yesterday', value)"), "mapping.columns.TransactionAmt.expr", "ISO-8601"),
    (rule("split(value, '', 0)"), "mapping.columns.TransactionAmt.expr", "non-empty separator"),
    (rule("value ** 2"), "mapping.columns.TransactionAmt.expr", "'**' is not allowed"),
    (rule("value > 1"), "mapping.columns.TransactionAmt.expr", "comparisons are not allowed"),
    (rule("value if value else 1"), "mapping.columns.TransactionAmt.expr", "conditional expressions"),
    (rule("(lambda: 1)()"), "mapping.columns.TransactionAmt.expr", "unknown function"),
    (rule("lambda: 1"), "mapping.columns.TransactionAmt.expr", "lambdas are not allowed"),
    (rule("[v for v in value]"), "mapping.columns.TransactionAmt.expr", "comprehensions are not allowed"),
    (rule("f'{value}'"), "mapping.columns.TransactionAmt.expr", "f-strings are not allowed"),
    (rule("not value"), "mapping.columns.TransactionAmt.expr", "'not' is not allowed"),
    (rule("True"), "mapping.columns.TransactionAmt.expr", "the literal True is not allowed"),
    (rule("1e999"), "mapping.columns.TransactionAmt.expr", "not a finite number"),
    (rule("value +"), "mapping.columns.TransactionAmt.expr", "it does not parse"),
    (rule("value\x00"), "mapping.columns.TransactionAmt.expr", "it does not parse"),
    (rule(" "), "mapping.columns.TransactionAmt.expr", "it is empty"),
    (rule("value" + " + 1" * 200), "mapping.columns.TransactionAmt.expr", f"at most {MAX_CHARS} characters"),
    (rule("-" * 40 + "value"), "mapping.columns.TransactionAmt.expr", "nests deeper than"),
    (rule("+".join(["1"] * 201)), "mapping.columns.TransactionAmt.expr", "at most 200 parts"),
    ({"columns": {"A": [{"to": "a"}, {"to": "b", "expr": "nope(value)"}]}}, "mapping.columns.A[1].expr",
     "unknown function 'nope'"),
    ({"fields": [{"to": "a", "expr": "1"}, {"to": "k", "expr": "concat(value, 'x')"}]}, "mapping.fields[1].expr",
     "`value` is only defined in a column's own rule"),
    ({"fields": [{"to": "a"}]}, "mapping.fields[0].expr", "an expression over the row's columns"),
    ({"fields": [{"to": "a", "expr": "1"}, {"to": "a..b", "expr": "1"}]}, "mapping.fields[1].to", "dotted"),
    ({"fields": [{"to": [], "expr": "1"}]}, "mapping.fields[0].to", "at least one payload path"),
    ({"columns": {"A": {"to": " "}}}, "mapping.columns.A.to", "dotted payload path"),
    ({"columns": {"A": {"to": ["a", ""]}}}, "mapping.columns.A.to[1]", "dotted payload path"),
    ({"columns": {"A": "x..y"}}, "mapping.columns.A", "dotted payload path"),
    ({"columns": {"A": "items.5000.sku"}}, "mapping.columns.A", "at most 999"),
    ({"defaults": {"": 1}}, "mapping.defaults.", "dotted payload path"),
])
def test_mappings_are_refused_at_load_naming_the_place(data: dict[str, Any], field: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        mapping(data)
    assert caught.value.field == field
    assert why in str(caught.value)
    if field.endswith(".expr") and "over the row's columns" not in why:
        assert "Allowed: literals, column names" in str(caught.value)


@pytest.mark.parametrize(("text", "field"), [
    ("columns: {a: {to: x, expr: 'open(value)'}}\n", "mapping.columns.a.expr"),
    ("columns: {a: {to: x, exprr: 'value'}}\n", "mapping.columns.a.exprr"),
    ("columns: {a: [{to: x}, {to: 5}]}\n", "mapping.columns.a[1].to"),
    ("fields: [{to: x, expr: '1'}, {to: 'y', expr: 'value'}]\n", "mapping.fields[1].expr"),
    ("lookups: {p: {W: [1]}}\n", "mapping.lookups.p.W"),
    ("columns: [1, 2]\n", "mapping.columns"),
    ("- 1\n", "mapping"),
])
def test_load_names_the_file_and_the_field(tmp_path: Path, text: str, field: str) -> None:
    spec = write(tmp_path, "m.yaml", text)
    with pytest.raises(ConfigError) as caught:
        ColumnMapping.load(spec)
    assert caught.value.field == field
    assert str(spec) in str(caught.value)


# --- reading files --------------------------------------------------------------------------------


def test_a_bad_csv_row_is_refused_at_its_line_and_the_next_rows_convert(tmp_path: Path) -> None:
    file = write(tmp_path, "x.csv", "id,TransactionAmt\n1,2.5\n2,abc\n3,\n4,1\n")
    spec = write(tmp_path, "m.yaml", yaml.safe_dump(
        {"columns": {"TransactionAmt": {"to": "amounts.paid_fen", "expr": "round(value * 100)"}}}))
    records = list(read_records(file, mapping=ColumnMapping.load(spec)))
    assert records[0] == (2, {"id": "1", "amounts": {"paid_fen": 250}})
    line, error = records[1]
    assert line == 3 and isinstance(error, InvalidInputError)
    assert error.field == "mapping.columns.TransactionAmt"
    assert error.message == "`mapping.columns.TransactionAmt` must be a number; got 'abc'"
    assert records[2] == (4, {"id": "3"})  # an empty cell sets nothing
    assert records[3] == (5, {"id": "4", "amounts": {"paid_fen": 100}})


def test_a_column_the_header_lacks_is_a_row_error_naming_it(tmp_path: Path) -> None:
    file = write(tmp_path, "x.csv", "card1\n4111\n")
    m = mapping({"fields": [{"to": "attributes.key", "expr": "concat(card1, '|', card2)"}]})
    [(line, error)] = list(read_records(file, mapping=m))
    assert line == 2 and isinstance(error, InvalidInputError) and error.field == "mapping.fields[0]"
    assert "'card2'" in error.message and "header" in error.message


def test_colliding_paths_are_a_row_error_not_a_crash(tmp_path: Path) -> None:
    file = write(tmp_path, "x.csv", "a,a.b\nx,y\n")
    [(line, error)] = list(read_records(file))
    assert line == 2 and isinstance(error, InvalidInputError) and error.field == "a.b"
    m = mapping({"columns": {"k": {"to": ["items.0", "items.x"]}}})
    with pytest.raises(InvalidInputError, match="list indexes"):
        m.apply({"k": "1"})


def test_xlsx_rows_transform_and_a_bad_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Order ID", "amount_usd", "dt", "email"])
    sheet.append([123456789012.0, 12.5, 86400, "Mail.QQ.com"])
    sheet.append(["A-2", "n/a", 60, None])
    sheet.append(["A-3", 1, None, "x@Y"])
    book.save(path)
    m = mapping({"columns": {"Order ID": "tid",
                             "amount_usd": {"to": "amounts.paid_fen", "expr": "round(value * 720)"},
                             "dt": {"to": "created_at", "expr": "add_seconds('2017-11-30T00:00:00+00:00', value)"},
                             "email": {"to": "attributes.domain", "expr": "lower(split(value, '.', -2))"}}})
    records = list(read_records(path, mapping=m))
    assert records[0] == (2, {"tid": 123456789012, "amounts": {"paid_fen": 9000},
                              "created_at": "2017-12-01T00:00:00+00:00", "attributes": {"domain": "qq"}})
    line, error = records[1]
    assert line == 3 and isinstance(error, InvalidInputError) and error.field == "mapping.columns.amount_usd"
    assert records[2] == (4, {"tid": "A-3", "amounts": {"paid_fen": 720}})


# --- properties -----------------------------------------------------------------------------------

TOKENS = ["value", "a", "b", "col('a')", "(", ")", ",", " ", "+", "-", "*", "/", "//", "%", "**", ".", "[", "]",
          "0", "1", "7", "2.5", "1e309", "'x'", "''", "'2017-11-30T00:00:00+00:00'", "=", "<", "if", "lambda",
          "__class__", ":", *(f"{name}(" for name in ["num", "int", "round", "str", "lower", "upper", "strip",
                                                       "concat", "split", "lookup", "epoch", "epoch_ms", "add_seconds",
                                                       "coalesce", "pii", "col", "eval", "getattr"]),
          "'product'", "'phone'", "'t'"]
CELLS = st.one_of(st.none(), st.just(""), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                  st.text(max_size=8), st.sampled_from(["12.5", "1,000", "-3", "0", "1e400", "W", "abc"]))


def _only_allowed_errors(text: str, value: Any, a: Any, b: Any) -> None:
    try:
        expression = parse(text, where="e", lookups=TABLES)
    except ConfigError:
        return
    for hasher in (HASHER, None):
        with contextlib.suppress(RowError):  # the only error a checked expression may raise on a row
            expression.evaluate(Scope({"a": a, "b": b}, value, TABLES, hasher))


@settings(max_examples=500, deadline=None)
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=14), value=CELLS, a=CELLS, b=CELLS)
def test_generated_expressions_raise_only_config_errors_at_load_and_row_errors_after(
        tokens: list[str], value: Any, a: Any, b: Any) -> None:
    _only_allowed_errors("".join(tokens), value, a, b)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60), value=CELLS)
def test_arbitrary_text_raises_only_config_errors_at_load(text: str, value: Any) -> None:
    _only_allowed_errors(text, value, "1", "2")


_OPS: dict[str, Callable[[int, int], int]] = {"+": operator.add, "-": operator.sub, "*": operator.mul,
                                              "//": operator.floordiv, "%": operator.mod}
#: An expression's text, the row it reads, and Python's own result (None: a division by zero).
Case = tuple[str, dict[str, str], int | None]


def _leaf(n: int, as_column: bool) -> Case:
    if as_column:
        name = f"c{abs(n)}{'n' if n < 0 else ''}"
        return name, {name: str(n)}, n
    return f"({n})", {}, n


def _join(left: Case, op: str, right: Case) -> Case:
    expected = None
    if left[2] is not None and right[2] is not None and not (op in ("//", "%") and right[2] == 0):
        expected = _OPS[op](left[2], right[2])
    return f"({left[0]} {op} {right[0]})", {**left[1], **right[1]}, expected


CASES: st.SearchStrategy[Case] = st.recursive(
    st.builds(_leaf, st.integers(-1000, 1000), st.booleans()),
    lambda inner: st.builds(_join, inner, st.sampled_from(sorted(_OPS)), inner),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(case=CASES)
def test_integer_arithmetic_matches_python(case: Case) -> None:
    text, row, expected = case
    expression = parse(f"num({text})", where="e", allow_value=False)
    if expected is None:
        with pytest.raises(RowError, match="zero"):
            expression.evaluate(Scope(row))
    else:
        result = expression.evaluate(Scope(row))
        assert result == expected and isinstance(result, int)


@settings(max_examples=200, deadline=None)
@given(a=st.integers(-10**9, 10**9), b=st.integers(-10**9, 10**9).filter(bool))
def test_division_matches_python(a: int, b: int) -> None:
    assert ev("a / b", {"a": str(a), "b": b}) == a / b
