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

History from another system needs transforms too (``orderguard.ingest.transforms``): a
column may map to a rule ``{to: path | [paths], expr: ...}`` or a list of rules (one
column to several fields), ``to: []`` drops it, ``fields`` computes targets from several
columns, and ``lookups`` holds the tables ``lookup()`` reads:

.. code-block:: yaml

    columns:
      TransactionAmt:
        - {to: [amounts.goods_fen, amounts.paid_fen], expr: "round(value * 720)"}
        - {to: attributes.amount_usd}
      TransactionDT: {to: [created_at, updated_at], expr: "add_seconds('2017-11-30T00:00:00+00:00', value)"}
      isFraud: {to: []}
    fields:
      - {to: attributes.card_key, expr: "concat(card1, '|', card2)"}
    lookups:
      product: {W: web, C: card}

Expressions are checked when the mapping loads, naming their place; a row whose value
cannot be transformed is a refused row naming its column, and the other rows are kept.
Targets under ``attributes.`` become the order's source attributes
(``orderguard.ingest.attributes``).

Without a mapping, CSV/XLSX column titles are taken as field paths. JSONL holds one
channel payload per line. Every record carries its 1-based line number (the header is
line 1 in CSV/XLSX) so a bad row can be reported precisely.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from orderguard.errors import ConfigError, InvalidInputError, OrderGuardError
from orderguard.ingest.normalize import PiiHasher
from orderguard.ingest.transforms import Expression, RowError, Scope, as_cell, parse, row_error

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".xlsx")

Record = tuple[int, Mapping[str, Any] | OrderGuardError]


class TargetRule(BaseModel):
    """One target of a column or of a computed field: payload path(s) and an optional expression."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str | list[str]
    expr: str | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """The target paths (none: the column is dropped)."""
        return (self.to,) if isinstance(self.to, str) else tuple(self.to)


@dataclass(frozen=True, slots=True)
class _Target:
    paths: tuple[str, ...]
    expression: Expression | None
    where: str


class ColumnMapping(BaseModel):
    """Export column title → payload field path or transform rules, computed fields, lookup tables, constants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str | TargetRule | list[TargetRule]] = {}
    fields: list[TargetRule] = []
    lookups: dict[str, dict[str, str | int | float | bool]] = {}
    defaults: dict[str, Any] = {}
    _columns: dict[str, tuple[_Target, ...]] = PrivateAttr(default_factory=dict)
    _fields: tuple[_Target, ...] = PrivateAttr(default=())

    def model_post_init(self, context: Any, /) -> None:
        """Parse every expression once, here: a bad mapping fails before the first row (``ConfigError``)."""
        for title, rule in self.columns.items():
            if isinstance(rule, str):
                _check_path(rule, where=f"mapping.columns.{title}")
                continue
            rules = [rule] if isinstance(rule, TargetRule) else rule
            single = isinstance(rule, TargetRule)
            self._columns[title] = tuple(
                self._target(r, where=f"mapping.columns.{title}" + ("" if single else f"[{i}]"), allow_value=True)
                for i, r in enumerate(rules))
        fields = []
        for i, r in enumerate(self.fields):
            if r.expr is None:
                raise ConfigError.must(f"mapping.fields[{i}].expr", "an expression over the row's columns", None)
            fields.append(self._target(r, where=f"mapping.fields[{i}]", allow_value=False))
        self._fields = tuple(fields)

    def _target(self, rule: TargetRule, *, where: str, allow_value: bool) -> _Target:
        for i, path in enumerate(rule.paths):
            _check_path(path, where=f"{where}.to" + ("" if isinstance(rule.to, str) else f"[{i}]"))
        expression = (parse(rule.expr, where=f"{where}.expr", lookups=self.lookups, allow_value=allow_value)
                      if rule.expr is not None else None)
        return _Target(rule.paths, expression, where)

    def apply(self, row: Mapping[str, Any], *, hasher: PiiHasher | None = None) -> dict[str, Any]:
        """One row as a payload: defaults, then every column (its rules, or its title as the path), then fields.

        Raises ``InvalidInputError`` naming the column (or field) whose value could not be transformed.
        """
        payload: dict[str, Any] = {}
        for key, value in self.defaults.items():
            set_path(payload, key, value)
        for title, value in row.items():
            if title is None:
                continue
            targets = self._columns.get(title)
            if targets is None:
                if value is None or value == "":
                    continue
                path = self.columns.get(title, title)
                set_path(payload, str(path).strip(), value)
                continue
            for target in targets:
                self._fill(payload, target, Scope(row, value, self.lookups, hasher), value)
        for target in self._fields:
            self._fill(payload, target, Scope(row, None, self.lookups, hasher), None)
        return payload

    @staticmethod
    def _fill(payload: dict[str, Any], target: _Target, scope: Scope, value: Any) -> None:
        if not target.paths:
            return
        if target.expression is None:
            result = None if value == "" else value
        else:
            try:
                result = as_cell(target.expression.evaluate(scope))
            except RowError as e:
                raise row_error(target.where, e) from None
        if result is None:
            return
        for path in target.paths:
            set_path(payload, path, result)

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
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}", field=e.field) from e


def _check_path(path: str, *, where: str) -> None:
    parts = path.strip().split(".")
    if not path.strip() or any(not part.strip() for part in parts):
        raise ConfigError.must(where, "a dotted payload path (e.g. amounts.paid_fen)", path)


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


def _row_to_payload(row: Mapping[str, Any], mapping: ColumnMapping | None,
                    hasher: PiiHasher | None = None) -> dict[str, Any] | OrderGuardError:
    if mapping is not None:
        try:
            return mapping.apply(row, hasher=hasher)
        except InvalidInputError as e:
            return e
    payload: dict[str, Any] = {}
    for title, value in row.items():
        if title is None or value is None or value == "":
            continue
        set_path(payload, str(title).strip(), value)
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


def _read_csv(path: Path, mapping: ColumnMapping | None, hasher: PiiHasher | None) -> Iterator[Record]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield reader.line_num, _row_to_payload(row, mapping, hasher)


def _read_xlsx(path: Path, mapping: ColumnMapping | None, hasher: PiiHasher | None) -> Iterator[Record]:
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
            yield number, _row_to_payload(row, mapping, hasher)
    finally:
        workbook.close()


def read_records(path: Path, *, mapping: ColumnMapping | None = None,
                 hasher: PiiHasher | None = None) -> Iterator[Record]:
    """Yield ``(line_number, payload_or_error)`` for every record of an export file.

    ``hasher`` is the deployment's PII key, for mappings that hash columns (``pii()``).
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInputError(f"`FILE` must end in one of {', '.join(SUPPORTED_SUFFIXES)}; got {path.name!r}",
                                field="FILE")
    if not path.is_file():
        raise InvalidInputError(f"`FILE` must be an existing file; got {str(path)!r}", field="FILE")
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path)
    if suffix == ".csv":
        return _read_csv(path, mapping, hasher)
    return _read_xlsx(path, mapping, hasher)


def count_records(path: Path) -> int | None:
    """Cheap total for the progress bar (lines for text files; None for XLSX)."""
    if path.suffix.lower() == ".xlsx":
        return None
    with path.open("rb") as fh:
        lines = sum(1 for _ in fh)
    return lines - 1 if path.suffix.lower() == ".csv" else lines
