"""Export-file reading: line numbers, column mappings, JSONL/CSV/XLSX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from orderguard.errors import ConfigError, InvalidInputError, OrderGuardError
from orderguard.ingest.files import ColumnMapping, count_records, read_records


def _write_mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_reports_bad_json_with_its_line_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{bad\n{"a": 2}\n', encoding="utf-8")
    records = list(read_records(path))
    assert [n for n, _ in records] == [1, 3, 4]
    assert records[0][1] == {"a": 1} and records[2][1] == {"a": 2}
    error = records[1][1]
    assert isinstance(error, OrderGuardError)
    assert "line 3" in error.message


def test_csv_mapping_builds_nested_payloads_with_header_as_line_one(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("订单编号,商品编码,数量,空列\nT1,SKU-9,2,\nT2,SKU-8,1,\n", encoding="utf-8-sig")
    mapping = ColumnMapping.load(_write_mapping(tmp_path, """
columns:
  订单编号: tid
  商品编码: orders.order.0.sku_id
  数量: orders.order.0.num
defaults:
  type: fixed
"""))
    records = list(read_records(path, mapping=mapping))
    assert [n for n, _ in records] == [2, 3]
    assert records[0][1] == {"type": "fixed", "tid": "T1", "orders": {"order": [{"sku_id": "SKU-9", "num": "2"}]}}
    assert count_records(path) == 2


def test_xlsx_rows_keep_whole_numbers_whole_and_skip_blank_rows(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["orderId", "amount_fen"])
    sheet.append([123456789012.0, 1990.0])
    sheet.append([None, None])
    sheet.append(["A-2", 12.5])
    book.save(path)
    records = list(read_records(path))
    assert records == [(2, {"orderId": 123456789012, "amount_fen": 1990}), (4, {"orderId": "A-2", "amount_fen": 12.5})]


def test_unsupported_suffix_and_missing_file_name_the_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="FILE"):
        read_records(tmp_path / "orders.txt")
    with pytest.raises(InvalidInputError, match="existing file"):
        read_records(tmp_path / "missing.csv")


def test_bad_mapping_fails_at_load_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        ColumnMapping.load(_write_mapping(tmp_path, "columns: [1, 2]\n"))
    assert info.value.field == "mapping.columns"
    with pytest.raises(ConfigError) as info:
        ColumnMapping.load(_write_mapping(tmp_path, "colums: {}\n"))
    assert info.value.field == "mapping.colums"


def test_jsonl_payload_objects_round_trip(tmp_path: Path) -> None:
    payloads = [{"tid": str(i), "nested": {"k": [1, 2]}} for i in range(3)]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in payloads), encoding="utf-8")
    assert [p for _, p in read_records(path)] == payloads


def test_a_reader_yields_only_the_wanted_records_and_reads_no_other(tmp_path: Path) -> None:
    """A parallel import's worker reads only its share: records counted without blank lines, and a record it
    does not want is not even decoded (the bad JSON on line 4 is another worker's to report)."""
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"a": 0}\n\n{"a": 1}\n{bad\n{"a": 3}\n', encoding="utf-8")
    odd = list(read_records(jsonl, wanted=lambda i: i % 2 == 1))
    assert odd == [(3, {"a": 1}), (5, {"a": 3})]
    even = list(read_records(jsonl, wanted=lambda i: i % 2 == 0))
    assert [n for n, _ in even] == [1, 4] and isinstance(even[1][1], OrderGuardError)
    csv_file = tmp_path / "x.csv"
    csv_file.write_text("tid,n\nT0,1\nT1,2\nT2,3\n", encoding="utf-8")
    assert list(read_records(csv_file, wanted=lambda i: i != 1)) == [(2, {"tid": "T0", "n": "1"}),
                                                                       (4, {"tid": "T2", "n": "3"})]
    xlsx = tmp_path / "x.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["tid"], ["T0"], [None], ["T1"], ["T2"]):
        sheet.append(row)
    book.save(xlsx)
    assert list(read_records(xlsx, wanted=lambda i: i >= 1)) == [(4, {"tid": "T1"}), (5, {"tid": "T2"})]
