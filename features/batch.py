"""Point-in-time training frame: every feature as of every order, in SQL generated from the specs.

The batch engine turns orders and labels into the same facts as the online engine
(``features.facts``), loads them into one table and computes each spec with a window
function over it. The SQL is generated from the spec list (no feature-specific code),
plain enough to run on another engine (Spark SQL) when the data outgrows one machine;
here it runs on embedded DuckDB.

How a spec becomes SQL (``features.windows`` is the one definition of the edges)::

    <agg>(CASE WHEN kind = '<kind>' AND <filter> THEN <value> END)
        OVER (PARTITION BY e_<entity> ORDER BY ts
              RANGE BETWEEN <a> PRECEDING AND <b> PRECEDING)

with ``ts`` in integer microseconds and ``(a, b) = Window.frame(...)``: the frame is
``t - a <= ts <= t - b``, i.e. ``(t - o - w, t - o]``. ``RANGE`` (not ``ROWS``) frames
give every peer - facts stamped at the same microsecond - the same value, matching
the online lookup. Facts of every kind share one partition per entity, so "refund
claims by this device as of this order" is a filtered aggregate over the device's
partition evaluated on the order's row.

Output: one row per order (its ``order`` fact): ``order_key``, ``event_time``
(``details.created_at``, UTC) and one column per feature in spec order, each as of
that order, the order itself included. Empty windows give 0 for ``count``/``sum``/
``distinct`` and NaN otherwise; SKU entities are reduced over the order's lines with
max (min for ``min`` / ``time_since``), as online.

Portability note: ``count(DISTINCT ...) OVER (...)`` is DuckDB; Spark SQL spells it
``size(collect_set(...)) OVER (...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from features.facts import (
    ATTRIBUTES,
    MULTI_VALUED,
    AttrType,
    Entity,
    Fact,
    FactKind,
    label_facts,
    order_facts,
)
from features.specs import ZERO_WHEN_EMPTY, Agg, Condition, FeatureSet, FeatureSpec, Op
from orderguard.schema import Label, Order

#: Progress callback: ``(stage, done, total)``; ``total`` is ``None`` when unknown.
Progress = Callable[[str, int, int | None], None]

_CHUNK = 100_000
_SQL_TYPES: Mapping[AttrType, str] = MappingProxyType({
    AttrType.NUMBER: "DOUBLE", AttrType.CATEGORY: "VARCHAR", AttrType.FLAG: "BOOLEAN"})
_ARROW_TYPES: Mapping[AttrType, pa.DataType] = MappingProxyType({
    AttrType.NUMBER: pa.float64(), AttrType.CATEGORY: pa.string(), AttrType.FLAG: pa.bool_()})
_SQL_AGG: Mapping[Agg, str] = MappingProxyType({
    Agg.SUM: "sum", Agg.MEAN: "avg", Agg.MIN: "min", Agg.MAX: "max", Agg.STD: "stddev_pop"})
_SQL_OP: Mapping[Op, str] = MappingProxyType({
    Op.EQ: "=", Op.NE: "<>", Op.IN: "IN", Op.NOT_IN: "NOT IN", Op.LT: "<", Op.LE: "<=", Op.GT: ">",
    Op.GE: ">="})


def _attr_types() -> dict[str, AttrType]:
    types: dict[str, AttrType] = {}
    for attrs in ATTRIBUTES.values():
        for name, attr_type in attrs.items():
            if types.setdefault(name, attr_type) is not attr_type:
                raise TypeError(f"attribute {name!r} has two types across fact kinds")
    return types


def entity_column(entity: Entity) -> str:
    """Column of an entity's key in the facts table.

    >>> entity_column(Entity.DEVICE_SKU)
    'e_device_sku'
    """
    return f"e_{entity.value}"


def attr_column(attr: str) -> str:
    """Column of a fact attribute in the facts table.

    >>> attr_column("paid_fen")
    'a_paid_fen'
    """
    return f"a_{attr}"


def sql_literal(value: object) -> str:
    """A SQL literal for a filter value (strings quoted with quotes doubled).

    >>> sql_literal("o'k"), sql_literal(True), sql_literal(2.5), sql_literal(3)
    ("'o''k'", 'TRUE', '2.5', '3')
    """
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("'", "''")
    return f"'{text}'"


def condition_sql(condition: Condition) -> str:
    """One filter condition as SQL; unknown (NULL) attributes never match, as online.

    >>> condition_sql(Condition("reason", Op.IN, ("damaged", "not_received")))
    "a_reason IN ('damaged', 'not_received')"
    """
    column = attr_column(condition.attr)
    if isinstance(condition.value, tuple):
        items = ", ".join(sql_literal(v) for v in condition.value)
        return f"{column} {_SQL_OP[condition.op]} ({items})"
    return f"{column} {_SQL_OP[condition.op]} {sql_literal(condition.value)}"


def window_sql(spec: FeatureSpec) -> str:
    """The ``OVER (...)`` clause of a spec: its entity partition and its event-time frame.

    >>> from features.windows import Duration
    >>> window_sql(FeatureSpec(Entity.DEVICE, "orders", Agg.COUNT, Duration.parse("5m")))
    'OVER (PARTITION BY e_device ORDER BY ts RANGE BETWEEN 299999999 PRECEDING AND CURRENT ROW)'
    """
    a, b = spec.frame.frame(strict=spec.strict)
    upper = "CURRENT ROW" if b == 0 else f"{b} PRECEDING"
    return f"OVER (PARTITION BY {entity_column(spec.entity)} ORDER BY ts RANGE BETWEEN {a} PRECEDING AND {upper})"


def spec_sql(spec: FeatureSpec) -> str:
    """The window expression computing one spec on every row of its entity's partition.

    >>> from features.windows import Duration
    >>> spec_sql(FeatureSpec(Entity.WIFI, "users", Agg.DISTINCT, Duration.parse("48h")))[:57]
    "count(DISTINCT CASE WHEN kind = 'order' THEN e_user END) "
    """
    cond = " AND ".join([f"kind = '{spec.kind.value}'", *(condition_sql(c) for c in spec.filter)])
    over = window_sql(spec)
    if spec.agg is Agg.COUNT:
        return f"count(CASE WHEN {cond} THEN 1 END) {over}"
    if spec.agg is Agg.DISTINCT:
        assert spec.distinct_entity is not None
        return f"count(DISTINCT CASE WHEN {cond} THEN {entity_column(spec.distinct_entity)} END) {over}"
    if spec.agg is Agg.TIME_SINCE:
        return f"(ts - max(CASE WHEN {cond} THEN ts END) {over}) / 1000000.0"
    assert spec.value_attr is not None
    value = f"CAST({attr_column(spec.value_attr)} AS DOUBLE)"
    return f"{_SQL_AGG[spec.agg]}(CASE WHEN {cond} THEN {value} END) {over}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def entity_sql(specs: Sequence[FeatureSpec], entity: Entity, *, table: str = "facts") -> str:
    """One query computing every spec of one entity, one row per order that has the entity.

    Single-valued entities are read on the order's own row; SKU entities on its line
    rows, reduced per order with max (min for ``min`` and ``time_since``).
    """
    mine = [s for s in specs if s.entity is entity]
    if not mine:
        raise ValueError(f"no spec is by {entity.value}")
    multi = entity in MULTI_VALUED
    query_kind = FactKind.LINE if multi else FactKind.ORDER
    kinds = sorted({s.kind.value for s in mine} | {query_kind.value})
    inner = ",\n    ".join(f"{spec_sql(s)} AS {_quote(s.name)}" for s in mine)
    kind_list = ", ".join(sql_literal(k) for k in kinds)
    source = (f"SELECT kind, e_order,\n    {inner}\n  FROM {table}\n"
              f"  WHERE {entity_column(entity)} IS NOT NULL AND kind IN ({kind_list})")
    if not multi:
        cols = ", ".join(_quote(s.name) for s in mine)
        return f"SELECT e_order AS order_key, {cols}\nFROM (\n  {source}\n) WHERE kind = 'order'"
    reduced = ", ".join(
        f"{'min' if s.agg in (Agg.MIN, Agg.TIME_SINCE) else 'max'}({_quote(s.name)}) AS {_quote(s.name)}"
        for s in mine)
    return (f"SELECT e_order AS order_key, {reduced}\nFROM (\n  {source}\n) WHERE kind = 'line'\n"
            "GROUP BY e_order")


def _entities(specs: Sequence[FeatureSpec]) -> list[Entity]:
    return [e for e in Entity if any(s.entity is e for s in specs)]


def _feature_table(entity: Entity) -> str:
    return f"feat_{entity.value}"


def join_sql(specs: Sequence[FeatureSpec], *, table: str = "facts") -> str:
    """Join the per-entity results onto the order rows, filling empty windows (see module doc)."""
    entities = _entities(specs)
    alias = {e: f"f{i}" for i, e in enumerate(entities)}
    columns = []
    for s in specs:
        value = f"CAST({alias[s.entity]}.{_quote(s.name)} AS DOUBLE)"
        if s.agg in ZERO_WHEN_EMPTY:
            value = f"COALESCE({value}, 0.0)"
        columns.append(f"{value} AS {_quote(s.name)}")
    joins = "".join(f"\nLEFT JOIN {_feature_table(e)} {alias[e]} ON {alias[e]}.order_key = o.e_order"
                    for e in entities)
    selected = ",\n  ".join(["o.e_order AS order_key", "o.ts AS ts", *columns])
    return f"SELECT\n  {selected}\nFROM {table} o{joins}\nWHERE o.kind = 'order'\nORDER BY o.ts, o.e_order"


def frame_sql(specs: FeatureSet | Sequence[FeatureSpec], *, table: str = "facts") -> str:
    """The whole point-in-time frame as one SQL statement (for inspection or another engine)."""
    spec_list = list(specs)
    ctes = ",\n".join(f"{_feature_table(e)} AS (\n{entity_sql(spec_list, e, table=table)}\n)"
                      for e in _entities(spec_list))
    body = join_sql(spec_list, table=table)
    return f"WITH {ctes}\n{body}" if ctes else body


@dataclass(frozen=True, slots=True)
class _Columns:
    kinds: frozenset[FactKind]
    entities: tuple[Entity, ...]
    attrs: tuple[tuple[str, AttrType], ...]


def _needed(specs: Sequence[FeatureSpec]) -> _Columns:
    kinds = {FactKind.ORDER} | {s.kind for s in specs}
    entities = {Entity.ORDER} | {s.entity for s in specs}
    attrs: set[str] = set()
    for s in specs:
        if s.entity in MULTI_VALUED:
            kinds.add(FactKind.LINE)
        if s.distinct_entity is not None:
            entities.add(s.distinct_entity)
        if s.value_attr is not None:
            attrs.add(s.value_attr)
        attrs.update(c.attr for c in s.filter)
    types = _attr_types()
    return _Columns(frozenset(kinds), tuple(e for e in Entity if e in entities),
                    tuple((a, types[a]) for a in sorted(attrs)))


class BatchFeatures:
    """Builds the point-in-time frame of a feature set on an embedded DuckDB database.

    Usage: ``load`` orders (and labels) once, then ``frame()`` or ``write_parquet()``.

    Args:
        specs: the feature definitions, in output column order.
        database: DuckDB file for data larger than memory (``":memory:"`` by default).
        progress: optional ``(stage, done, total)`` callback, e.g. :func:`rich_progress`.
    """

    def __init__(self, specs: FeatureSet | Sequence[FeatureSpec], *, database: str | Path = ":memory:",
                 progress: Progress | None = None) -> None:
        self.specs = specs if isinstance(specs, FeatureSet) else FeatureSet(tuple(specs))
        self._progress = progress
        self._columns = _needed(self.specs.specs)
        self._con = duckdb.connect(str(database))
        cols = ["kind VARCHAR", "ts BIGINT", "fact_id VARCHAR"]
        cols += [f"{entity_column(e)} VARCHAR" for e in self._columns.entities]
        cols += [f"{attr_column(a)} {_SQL_TYPES[t]}" for a, t in self._columns.attrs]
        self._con.execute(f"CREATE OR REPLACE TABLE facts ({', '.join(cols)})")
        self._computed = False

    def _report(self, stage: str, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress(stage, done, total)

    def _facts(self, orders: Iterable[Order], labels: Iterable[Label]) -> Iterator[Fact]:
        kinds = self._columns.kinds
        by_order: dict[str, list[Label]] = {}
        if FactKind.LABEL in kinds:
            for label in labels:
                by_order.setdefault(str(label.key), []).append(label)
        for order in orders:
            for fact in order_facts(order).facts:
                if fact.kind in kinds:
                    yield fact
            for label in by_order.get(str(order.key), ()):
                yield from label_facts(label, order).facts

    def load(self, orders: Iterable[Order], *, labels: Iterable[Label] = (), total: int | None = None) -> int:
        """Turn orders and their labels into facts and load them; returns the number of facts.

        Pass every order once, in its newest version (as the order log gives them);
        labels whose order is not among ``orders`` are ignored. ``total`` (number of
        orders, if known) only feeds the progress callback.
        """
        entities = self._columns.entities
        attrs = self._columns.attrs
        schema = pa.schema([("kind", pa.string()), ("ts", pa.int64()), ("fact_id", pa.string())]
                           + [(entity_column(e), pa.string()) for e in entities]
                           + [(attr_column(a), _ARROW_TYPES[t]) for a, t in attrs])
        loaded = 0
        rows: list[tuple[Any, ...]] = []
        for fact in self._facts(orders, labels):
            ents = fact.entities
            values = fact.attrs
            rows.append((fact.kind.value, fact.ts, fact.fact_id, *[ents.get(e) for e in entities],
                         *[values.get(a) for a, _ in attrs]))
            if len(rows) >= _CHUNK:
                loaded += self._insert(rows, schema)
                rows = []
                self._report("load facts", loaded, None)
        loaded += self._insert(rows, schema)
        self._report("load facts", loaded, loaded)
        self._computed = False
        return loaded

    def _insert(self, rows: list[tuple[Any, ...]], schema: pa.Schema) -> int:
        if not rows:
            return 0
        columns = list(zip(*rows, strict=True))
        chunk = pa.Table.from_arrays([pa.array(col, type=field.type) for col, field in zip(columns, schema,
                                                                                             strict=True)],
                                     schema=schema)
        self._con.register("facts_chunk", chunk)
        try:
            self._con.execute("INSERT INTO facts SELECT * FROM facts_chunk")
        finally:
            self._con.unregister("facts_chunk")
        return len(rows)

    def _compute(self) -> None:
        if self._computed:
            return
        specs = self.specs.specs
        entities = _entities(specs)
        for i, entity in enumerate(entities):
            self._report("compute features", i, len(entities))
            self._con.execute(f"CREATE OR REPLACE TEMP TABLE {_feature_table(entity)} AS "
                              f"{entity_sql(specs, entity)}")
        self._report("compute features", len(entities), len(entities))
        self._computed = True

    def frame(self) -> pd.DataFrame:
        """One row per order: ``order_key``, ``event_time`` (UTC) and every feature, ordered by time."""
        self._compute()
        df = self._con.execute(join_sql(self.specs.specs)).df()
        event_time = pd.to_datetime(df.pop("ts"), unit="us", utc=True)
        df.insert(1, "event_time", event_time)
        return df

    def write_parquet(self, path: Path) -> int:
        """Write the frame to a Parquet file without materialising it in Python; returns its row count.

        ``event_time`` is written as a UTC timestamp, alongside ``ts_us`` (microseconds).
        """
        self._compute()
        names = ", ".join(_quote(n) for n in self.specs.names)
        target = str(path).replace("'", "''")
        query = (f"SELECT order_key, make_timestamp(ts) AS event_time, ts AS ts_us, {names} "
                 f"FROM ({join_sql(self.specs.specs)})")
        self._con.execute(f"COPY ({query}) TO '{target}' (FORMAT PARQUET)")
        row = self._con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
        return int(row[0]) if row is not None else 0

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()


def point_in_time_frame(orders: Iterable[Order], specs: FeatureSet | Sequence[FeatureSpec], *,
                        labels: Iterable[Label] = (), progress: Progress | None = None) -> pd.DataFrame:
    """Every feature as of every order (see :class:`BatchFeatures`), in memory."""
    batch = BatchFeatures(specs, progress=progress)
    try:
        batch.load(orders, labels=labels)
        return batch.frame()
    finally:
        batch.close()


@contextmanager
def rich_progress() -> Iterator[Progress]:
    """A progress callback drawing one rich progress bar per stage."""
    from rich.progress import Progress as RichProgress

    with RichProgress(transient=False) as bars:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield report
