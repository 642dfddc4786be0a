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
column may map to a rule ``{to: path | [paths], expr: ...}`` (no ``expr``: the cell as
is) or to a list of rules (one column to several fields); ``to: []`` drops it. ``fields``
computes targets from several columns, and ``lookups`` holds the tables ``lookup()`` reads:

.. code-block:: yaml

    columns:
      订单编号: tid                                         # rename, as before
      TransactionAmt:                                       # one column to several fields
        - {to: [amounts.goods_fen, amounts.paid_fen], expr: "round(value * 720)"}
        - {to: attributes.amount_usd}
      TransactionDT: {to: created_at, expr: "add_seconds('2017-11-30T00:00:00+00:00', value)"}
      ProductCD: {to: attributes.product, expr: "lookup('product', value, 'other')"}
      P_emaildomain: {to: attributes.email_domain, expr: "lower(value)"}
      isFraud: {to: []}
    fields:                                                 # computed from several columns
      - {to: attributes.card_key, expr: "concat(card1, '|', card2)"}
      - {to: buyer.phone, expr: "pii('phone', col('Phone No'))"}
    lookups:
      product: {W: web, C: card, R: retail}
    defaults:
      type: fixed

A row becomes ``defaults``, then every column (its rules, or its title as the path when
the mapping has none; empty cells set nothing), then ``fields``. Expressions are parsed
and checked once, when the mapping loads; a refusal is a ``ConfigError`` naming its place
(``mapping.columns.TransactionAmt[0].expr``, ``mapping.fields[1].to``). A row whose value
cannot be transformed is a refused row naming its column, and the other rows are kept.
``pii()`` needs the deployment's PII key, passed to :func:`read_records`. Targets under
``attributes.`` become the order's source attributes (``orderguard.ingest.attributes``).

Without a mapping, CSV/XLSX column titles are taken as field paths. JSONL holds one
channel payload per line. Every record carries its 1-based line number (the header is
line 1 in CSV/XLSX) so a bad row can be reported precisely.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, PrivateAttr, Tag, ValidationError, field_validator

from orderguard.errors import ConfigError, InvalidInputError, OrderGuardError
from orderguard.ingest.normalize import PiiHasher
from orderguard.ingest.transforms import Expression, RowError, Scope, as_cell, lookup_key, parse, row_error

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".xlsx")
#: Largest list index a field path may use (``orders.order.3.sku_id``); a row never holds more items.
MAX_LIST_INDEX: Final = 999

Record = tuple[int, Mapping[str, Any] | OrderGuardError]
#: Which records (by 0-based index) a reader yields; None: all.
Wanted = Callable[[int], bool] | None


class TargetRule(BaseModel):
    """One target of a column or of a computed field: payload path(s) and an optional expression."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: list[str]
    expr: str | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """``to: path`` is short for ``to: [path]``."""
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise ValueError("must be a dotted payload path or a list of them")
        return value


def _rule_shape(value: Any) -> str:
    if isinstance(value, str):
        return "path"
    return "rules" if isinstance(value, list) else "rule"


#: A column's mapping: a path (rename), one rule, or several rules.
ColumnRule = Annotated[
    Annotated[str, Tag("path")] | Annotated[TargetRule, Tag("rule")] | Annotated[list[TargetRule], Tag("rules")],
    Discriminator(_rule_shape),
]
LookupValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class _Target:
    """A checked rule: where its value goes, how it is computed (``None``: the cell as is), and its place."""

    paths: tuple[str, ...]
    expression: Expression | None
    where: str


class ColumnMapping(BaseModel):
    """Export column title → payload path or transform rules, computed fields, lookup tables and constants.

    Every expression is parsed and checked when the mapping is built (``load`` or
    ``model_validate``), so a mapping that exists is one that can run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, ColumnRule] = {}
    fields: list[TargetRule] = []
    lookups: dict[str, dict[str, LookupValue]] = {}
    defaults: dict[str, Any] = {}
    _columns: dict[str, tuple[_Target, ...]] = PrivateAttr(default_factory=dict)
    _fields: tuple[_Target, ...] = PrivateAttr(default=())

    @field_validator("lookups", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        """YAML reads a key ``1`` or ``1.5`` as a number; cells are matched against keys as text."""
        if not isinstance(value, dict):
            return value
        return {name: ({lookup_key(k): v for k, v in table.items()} if isinstance(table, dict) else table)
                for name, table in value.items()}

    def model_post_init(self, context: Any, /) -> None:
        """Parse every expression once, here: a bad mapping fails before the first row (``ConfigError``)."""
        for key in self.defaults:
            _checked_path(key, where=f"mapping.defaults.{key}")
        for title, rule in self.columns.items():
            where = f"mapping.columns.{title}"
            if isinstance(rule, str):
                self._columns[title] = (_Target((_checked_path(rule, where=where),), None, where),)
            elif isinstance(rule, TargetRule):
                self._columns[title] = (self._target(rule, where=where, in_column=True),)
            else:
                self._columns[title] = tuple(self._target(r, where=f"{where}[{i}]", in_column=True)
                                             for i, r in enumerate(rule))
        self._fields = tuple(self._target(r, where=f"mapping.fields[{i}]", in_column=False)
                             for i, r in enumerate(self.fields))

    def _target(self, rule: TargetRule, *, where: str, in_column: bool) -> _Target:
        paths = tuple(_checked_path(p, where=f"{where}.to" + (f"[{i}]" if len(rule.to) > 1 else ""))
                      for i, p in enumerate(rule.to))
        if rule.expr is None:
            if not in_column:
                raise ConfigError.must(f"{where}.expr", "an expression over the row's columns", None)
            return _Target(paths, None, where)
        if not in_column and not paths:
            raise ConfigError.must(f"{where}.to", "at least one payload path", [])
        expression = parse(rule.expr, where=f"{where}.expr", lookups=self.lookups, allow_value=in_column)
        return _Target(paths, expression, where)

    @property
    def needs_hasher(self) -> bool:
        """Whether some expression calls ``pii()``, so reading needs the deployment's PII key."""
        targets = [*self._fields, *(t for ts in self._columns.values() for t in ts)]
        return any(t.expression is not None and t.expression.hashes for t in targets)

    def apply(self, row: Mapping[str, Any], *, hasher: PiiHasher | None = None) -> dict[str, Any]:
        """One row as a payload: defaults, then every column (its rules, or its title as the path), then fields.

        Raises:
            InvalidInputError: a value cannot be transformed (naming the column or field), or two
                paths collide.
        """
        payload: dict[str, Any] = {}
        for key, value in self.defaults.items():
            set_path(payload, key, value)
        for title, value in row.items():
            if title is None:  # CSV cells beyond the header
                continue
            targets = self._columns.get(title)
            if targets is None:
                if value is not None and value != "":
                    set_path(payload, str(title).strip(), value)
                continue
            for target in targets:
                _fill(payload, target, Scope(row, value, self.lookups, hasher), value)
        for target in self._fields:
            _fill(payload, target, Scope(row, None, self.lookups, hasher), None)
        return payload

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
            where = _place(first["loc"])
            place, field = (f"{path}:{where}", f"mapping.{where}") if where else (str(path), "mapping")
            raise ConfigError(f"`{place}` {first['msg']}", field=field) from e
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}", field=e.field) from e


def _fill(payload: dict[str, Any], target: _Target, scope: Scope, value: Any) -> None:
    """Set one target's value at its paths; a missing value sets nothing."""
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


def _place(loc: Sequence[int | str]) -> str:
    """A validation error's location as a mapping path, without pydantic's union labels.

    >>> _place(("columns", "金额", "rules", 0, "exprr")), _place(("lookups", "p", "W", "str"))
    ('columns.金额[0].exprr', 'lookups.p.W')
    """
    parts = list(loc)
    if parts[:1] == ["columns"] and len(parts) > 2:
        del parts[2]
    if parts[:1] == ["lookups"] and len(parts) > 3:
        del parts[3:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _checked_path(path: str, *, where: str) -> str:
    """A target path, its segments stripped; refused when a segment is empty or an index is too large."""
    parts = [part.strip() for part in path.split(".")]
    if not path.strip() or any(not part for part in parts):
        raise ConfigError.must(where, "a dotted payload path (e.g. amounts.paid_fen)", path)
    if any(_is_index(part) and int(part) > MAX_LIST_INDEX for part in parts):
        raise ConfigError.must(where, f"a path whose list indexes are at most {MAX_LIST_INDEX}", path)
    return ".".join(parts)


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a dotted ``path``; numeric segments index lists.

    Raises ``InvalidInputError`` when the path crosses a value already set by another
    path (``a`` holds text, then ``a.b``) or uses a list index above ``MAX_LIST_INDEX``.

    >>> d: dict = {}
    >>> set_path(d, "orders.order.0.sku_id", "A1"); set_path(d, "tid", "9")
    >>> d
    {'orders': {'order': [{'sku_id': 'A1'}]}, 'tid': '9'}
    """
    parts = path.split(".")
    node: Any = target
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        child: Any = None if last else ([] if _is_index(parts[depth + 1]) else {})
        if isinstance(node, dict):
            if last:
                node[part] = value
                return
            node = node.setdefault(part, child)
        elif isinstance(node, list):
            if not _is_index(part) or int(part) > MAX_LIST_INDEX:
                raise InvalidInputError(f"`{path}` must use list indexes from 0 to {MAX_LIST_INDEX} where "
                                        f"{'.'.join(parts[:depth])!r} is a list; got {part!r}", field=path)
            index = int(part)
            node.extend([None] * (index + 1 - len(node)))
            if last:
                node[index] = value
                return
            if node[index] is None:
                node[index] = child
            node = node[index]
        else:
            raise InvalidInputError(f"`{path}` must not reach into {'.'.join(parts[:depth])!r}, which another "
                                    "column already set to a value", field=path)


def _row_to_payload(row: Mapping[str, Any], mapping: ColumnMapping | None,
                    hasher: PiiHasher | None = None) -> dict[str, Any] | OrderGuardError:
    """One row as a payload, or the row's error (so the reader keeps going)."""
    try:
        if mapping is not None:
            return mapping.apply(row, hasher=hasher)
        payload: dict[str, Any] = {}
        for title, value in row.items():
            if title is None or value is None or value == "":
                continue
            set_path(payload, str(title).strip(), value)
        return payload
    except InvalidInputError as e:
        return e


def _read_jsonl(path: Path, wanted: Wanted) -> Iterator[Record]:
    index = -1
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            index += 1
            if wanted is not None and not wanted(index):
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as e:
                yield number, InvalidInputError(f"line {number} must be valid JSON; {e.msg} at column {e.colno}",
                                                field="payload")


def _read_csv(path: Path, mapping: ColumnMapping | None, hasher: PiiHasher | None, wanted: Wanted,
              ) -> Iterator[Record]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for index, row in enumerate(reader):
            if wanted is None or wanted(index):
                yield reader.line_num, _row_to_payload(row, mapping, hasher)


def _read_xlsx(path: Path, mapping: ColumnMapping | None, hasher: PiiHasher | None, wanted: Wanted,
               ) -> Iterator[Record]:
    from openpyxl import load_workbook  # heavy import, only when an XLSX is read

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = workbook.active.iter_rows(values_only=True) if workbook.active else iter(())
        header = next(rows, None)
        if header is None:
            return
        titles = [str(h).strip() if h is not None else "" for h in header]
        index = -1
        for number, values in enumerate(rows, start=2):
            if all(v is None for v in values):
                continue
            index += 1
            if wanted is not None and not wanted(index):
                continue
            # Spreadsheets store ids and fen amounts as floats; keep whole numbers whole.
            row = {t: (int(v) if isinstance(v, float) and v.is_integer() else v)
                   for t, v in zip(titles, values, strict=False) if t}
            yield number, _row_to_payload(row, mapping, hasher)
    finally:
        workbook.close()


def read_records(path: Path, *, mapping: ColumnMapping | None = None,
                 hasher: PiiHasher | None = None, wanted: Wanted = None) -> Iterator[Record]:
    """Yield ``(line_number, payload_or_error)`` for every record of an export file.

    ``hasher`` is the deployment's PII key, for mappings that hash columns (``pii()``).
    ``wanted(i)`` (when given) says whether to yield the ``i``-th record (0-based, blank lines not
    counted); the others are not decoded at all: a worker of a parallel import reads only its share.

    Raises:
        InvalidInputError: the file's suffix is not supported or the file does not exist.
        ConfigError: the mapping hashes columns and no ``hasher`` is given.
    """
    if mapping is not None and mapping.needs_hasher and hasher is None:
        raise ConfigError("`mapping` calls pii(), so reading needs the deployment's PII key (`hasher`)",
                          field="mapping")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInputError(f"`FILE` must end in one of {', '.join(SUPPORTED_SUFFIXES)}; got {path.name!r}",
                                field="FILE")
    if not path.is_file():
        raise InvalidInputError(f"`FILE` must be an existing file; got {str(path)!r}", field="FILE")
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path, wanted)
    if suffix == ".csv":
        return _read_csv(path, mapping, hasher, wanted)
    return _read_xlsx(path, mapping, hasher, wanted)


def count_records(path: Path) -> int | None:
    """Cheap total for the progress bar (lines for text files; None for XLSX)."""
    if path.suffix.lower() == ".xlsx":
        return None
    with path.open("rb") as fh:
        lines = sum(1 for _ in fh)
    return lines - 1 if path.suffix.lower() == ".csv" else lines
