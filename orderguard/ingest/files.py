"""Read exported order files (JSONL, CSV, XLSX) as channel payloads.

Shops export orders from each platform's seller back-office as spreadsheets whose
column titles vary (often Chinese). A :class:`ColumnMapping` (YAML) maps those titles
to the channel payload's field paths; dotted paths build nested objects and numeric
segments build lists, so one flat row becomes the same payload the webhook would send:

.. code-block:: yaml

    columns:
      订单编号: tid
      订单状态: status
      商品编码: orders.order.0.sku_id
    defaults:
      type: fixed

Without a mapping, CSV/XLSX column titles are taken as field paths. JSONL holds one
channel payload per line. Every record carries its 1-based line number (the header is
line 1 in CSV/XLSX) so a bad row can be reported precisely.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from orderguard.errors import ConfigError, InvalidInputError, OrderGuardError

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".xlsx")

Record = tuple[int, Mapping[str, Any] | OrderGuardError]


class ColumnMapping(BaseModel):
    """Export column title → payload field path, plus constant fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str] = {}
    defaults: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path) -> ColumnMapping:
        """Load and validate a mapping file; errors name the file and the field."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"`{path}` must be a readable YAML file; {e}", field="mapping") from e
        try:
            return cls.model_validate(data or {})
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"`{path}:{where}` {first['msg']}", field=f"mapping.{where}") from e


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a dotted ``path``; numeric segments index lists.

    >>> d: dict = {}
    >>> set_path(d, "orders.order.0.sku_id", "A1"); set_path(d, "tid", "9")
    >>> d
    {'orders': {'order': [{'sku_id': 'A1'}]}, 'tid': '9'}
    """
    parts = path.split(".")
    node: Any = target
    for part, nxt in zip(parts, [*parts[1:], None], strict=True):
        is_last = nxt is None
        child_default: Any = [] if (nxt is not None and nxt.isdigit()) else {}
        if isinstance(node, list):
            index = int(part)
            while len(node) <= index:
                node.append(None)
            if is_last:
                node[index] = value
            else:
                if node[index] is None:
                    node[index] = child_default
                node = node[index]
        else:
            if is_last:
                node[part] = value
            else:
                node = node.setdefault(part, child_default)


def _row_to_payload(row: Mapping[str, Any], mapping: ColumnMapping | None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if mapping is not None:
        for key, value in mapping.defaults.items():
            set_path(payload, key, value)
    for title, value in row.items():
        if title is None or value is None or value == "":
            continue
        path = mapping.columns.get(title, title) if mapping is not None else title
        set_path(payload, str(path).strip(), value)
    return payload


def _read_jsonl(path: Path) -> Iterator[Record]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as e:
                yield number, InvalidInputError(f"line {number} must be valid JSON; {e.msg} at column {e.colno}",
                                                field="payload")


def _read_csv(path: Path, mapping: ColumnMapping | None) -> Iterator[Record]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield reader.line_num, _row_to_payload(row, mapping)


def _read_xlsx(path: Path, mapping: ColumnMapping | None) -> Iterator[Record]:
    from openpyxl import load_workbook  # heavy import, only when an XLSX is read

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = workbook.active.iter_rows(values_only=True) if workbook.active else iter(())
        header = next(rows, None)
        if header is None:
            return
        titles = [str(h).strip() if h is not None else "" for h in header]
        for number, values in enumerate(rows, start=2):
            if all(v is None for v in values):
                continue
            # Spreadsheets store ids and fen amounts as floats; keep whole numbers whole.
            row = {t: (int(v) if isinstance(v, float) and v.is_integer() else v)
                   for t, v in zip(titles, values, strict=False) if t}
            yield number, _row_to_payload(row, mapping)
    finally:
        workbook.close()


def read_records(path: Path, *, mapping: ColumnMapping | None = None) -> Iterator[Record]:
    """Yield ``(line_number, payload_or_error)`` for every record of an export file."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInputError(f"`FILE` must end in one of {', '.join(SUPPORTED_SUFFIXES)}; got {path.name!r}",
                                field="FILE")
    if not path.is_file():
        raise InvalidInputError(f"`FILE` must be an existing file; got {str(path)!r}", field="FILE")
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path)
    if suffix == ".csv":
        return _read_csv(path, mapping)
    return _read_xlsx(path, mapping)


def count_records(path: Path) -> int | None:
    """Cheap total for the progress bar (lines for text files; None for XLSX)."""
    if path.suffix.lower() == ".xlsx":
        return None
    with path.open("rb") as fh:
        lines = sum(1 for _ in fh)
    return lines - 1 if path.suffix.lower() == ".csv" else lines
