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

The statement that runs (:func:`frame_query`) evaluates every single-valued entity's
windows directly on the order rows in one pass over the facts (one sort per entity, no
join; an order without the entity gets an empty window, not its NULL-key partition's);
SKU entities are windowed on line rows, reduced per order and joined. (The tests hold it
to the plain per-entity form - each entity in its own CTE, joined - as their oracle.)

Output: one row per order (its ``order`` fact): ``order_key``, ``event_time``
(``details.created_at``, UTC), the carried order attributes if any, and one column per
feature in spec order, each as of that order, the order itself included. Empty windows
give 0 for ``count``/``sum``/``distinct`` and NaN otherwise; SKU entities are reduced
over the order's lines with max (min for ``min`` / ``time_since``), as online.

Two ways in: ``load`` derives facts from :class:`~orderguard.schema.Order` objects
(the order log), one Python object per fact; ``load_facts`` takes facts that are
already columnar (a DataFrame, an Arrow table or stream, a DuckDB relation) in the
facts-table layout (``BatchFeatures.columns``), so a large backfill never leaves
DuckDB/Arrow. Both fill the same table and give the same frame.

Portability note: ``count(DISTINCT ...) OVER (...)`` is DuckDB; Spark SQL spells it
``size(collect_set(...)) OVER (...)``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

import duckdb
import pandas as pd
import pyarrow as pa

from features.declared import BASE_CATALOG, Catalog, EntityRef
from features.facts import (
    MULTI_VALUED,
    AttrType,
    Entity,
    Fact,
    FactKind,
    label_facts,
    order_facts,
)
from features.operators import MEANING
from features.specs import ZERO_WHEN_EMPTY, Agg, Condition, FeatureSet, FeatureSpec
from orderguard.errors import ConfigError, InvalidInputError, must
from orderguard.schema import Label, Order

#: Progress callback: ``(stage, done, total)``; ``total`` is ``None`` when unknown.
Progress = Callable[[str, int, int | None], None]

#: Facts already in columnar form, in the facts-table layout (see :meth:`BatchFeatures.load_facts`).
FactTable: TypeAlias = pd.DataFrame | pa.Table | pa.RecordBatchReader | duckdb.DuckDBPyRelation

_CHUNK = 100_000
_COLUMNAR_CHUNK = 262_144
_SQL_TYPES: Mapping[AttrType, str] = MappingProxyType({
    AttrType.NUMBER: "DOUBLE", AttrType.CATEGORY: "VARCHAR", AttrType.FLAG: "BOOLEAN"})
_ARROW_TYPES: Mapping[AttrType, pa.DataType] = MappingProxyType({
    AttrType.NUMBER: pa.float64(), AttrType.CATEGORY: pa.string(), AttrType.FLAG: pa.bool_()})
_SQL_AGG: Mapping[Agg, str] = MappingProxyType({
    Agg.SUM: "sum", Agg.MEAN: "avg", Agg.MIN: "min", Agg.MAX: "max", Agg.STD: "stddev_pop"})


def _attr_types(catalog: Catalog) -> dict[str, AttrType]:
    types: dict[str, AttrType] = {}
    for attrs in catalog.attributes.values():
        for name, attr_type in attrs.items():
            if types.setdefault(name, attr_type) is not attr_type:
                raise TypeError(f"attribute {name!r} has two types across fact kinds")
    return types


def entity_column(entity: EntityRef) -> str:
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

    >>> from features.operators import Op
    >>> condition_sql(Condition("reason", Op.IN, ("damaged", "not_received")))
    "a_reason IN ('damaged', 'not_received')"
    """
    column = attr_column(condition.attr)
    if isinstance(condition.value, tuple):
        items = ", ".join(sql_literal(v) for v in condition.value)
        return f"{column} {MEANING[condition.op].sql} ({items})"
    return f"{column} {MEANING[condition.op].sql} {sql_literal(condition.value)}"


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


def entity_sql(specs: Sequence[FeatureSpec], entity: EntityRef, *, table: str = "facts") -> str:
    """One query computing every spec of one entity, one row per order that has the entity.

    Single-valued entities are read on the order's own row; SKU entities on its line
    rows, reduced per order with max (min for ``min`` and ``time_since``).
    """
    mine = [s for s in specs if s.entity == entity]
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


def _entities(specs: Sequence[FeatureSpec]) -> list[EntityRef]:
    """The entities the specs group by: built-in ones in their declared order, then declared ones as met."""
    used = {s.entity for s in specs}
    declared = [s.entity for s in specs if not isinstance(s.entity, Entity)]
    return [e for e in Entity if e in used] + list(dict.fromkeys(declared))


def _source_columns(source: FactTable) -> list[str]:
    if isinstance(source, pd.DataFrame):
        return [str(c) for c in source.columns]
    if isinstance(source, pa.Table | pa.RecordBatchReader):
        return list(source.schema.names)
    return [str(c) for c in source.columns]


def _chunks(source: FactTable) -> Iterator[pd.DataFrame | pa.Table]:
    """The source in chunks DuckDB can scan (progress is reported per chunk)."""
    if isinstance(source, pd.DataFrame):
        for start in range(0, len(source), _COLUMNAR_CHUNK):
            yield source.iloc[start:start + _COLUMNAR_CHUNK]
        return
    if isinstance(source, pa.Table):
        for start in range(0, source.num_rows, _COLUMNAR_CHUNK):
            yield source.slice(start, _COLUMNAR_CHUNK)
        return
    if isinstance(source, pa.RecordBatchReader):
        reader = source
    elif hasattr(source, "to_arrow_reader"):  # DuckDB >= 1.4
        reader = source.to_arrow_reader(_COLUMNAR_CHUNK)
    else:
        reader = source.fetch_record_batch(_COLUMNAR_CHUNK)
    for batch in reader:
        yield pa.Table.from_batches([batch])


def _feature_table(entity: EntityRef) -> str:
    return f"feat_{entity.value}"


def frame_query(specs: FeatureSet | Sequence[FeatureSpec], *, table: str = "facts", carry: Sequence[str] = (),
                ordered: bool = True) -> str:
    """The statement :class:`BatchFeatures` runs: the frame in one pass over ``table``.

    Every spec of a single-valued entity (user, device, ...) is a window expression
    evaluated directly on the order rows of ``table`` - one scan, one sort per entity,
    no join - guarded so that an order without the entity gets an empty window rather
    than the aggregate of all other orders without it (their NULL-key partition). SKU
    entities are computed per line and reduced per order in CTEs (:func:`entity_sql`)
    and joined.

    Args:
        specs: the feature definitions, in output column order.
        table: the facts table.
        carry: order attributes output after ``ts`` under their attribute names
            (columns ``a_<attr>`` of ``table``).
        ordered: sort by ``(ts, order_key)``; leave out when the caller sorts anyway.
    """
    spec_list = list(specs)
    single = [s for s in spec_list if s.entity not in MULTI_VALUED]
    multi = [e for e in _entities(spec_list) if e in MULTI_VALUED]
    kinds = ", ".join(sql_literal(k) for k in sorted({FactKind.ORDER.value} | {s.kind.value for s in single}))
    inner = ",\n    ".join(
        ["kind", "e_order AS order_key", "ts", *(f"{attr_column(a)} AS {_quote(a)}" for a in carry),
         *(f"CASE WHEN {entity_column(s.entity)} IS NOT NULL THEN {spec_sql(s)} END AS {_quote(s.name)}"
           for s in single)])
    alias = {e: f"f{i}" for i, e in enumerate(multi)}
    columns = []
    for s in spec_list:
        value = f"CAST({alias.get(s.entity, 'o')}.{_quote(s.name)} AS DOUBLE)"
        if s.agg in ZERO_WHEN_EMPTY:
            value = f"COALESCE({value}, 0.0)"
        columns.append(f"{value} AS {_quote(s.name)}")
    selected = ",\n  ".join(["o.order_key", "o.ts", *(f"o.{_quote(a)}" for a in carry), *columns])
    joins = "".join(f"\nLEFT JOIN {_feature_table(e)} {alias[e]} ON {alias[e]}.order_key = o.order_key"
                    for e in multi)
    body = (f"SELECT\n  {selected}\nFROM (\n  SELECT\n    {inner}\n  FROM {table}\n  WHERE kind IN ({kinds})\n) o"
            f"{joins}\nWHERE o.kind = 'order'" + ("\nORDER BY o.ts, o.order_key" if ordered else ""))
    ctes = ",\n".join(f"{_feature_table(e)} AS (\n{entity_sql(spec_list, e, table=table)}\n)" for e in multi)
    return f"WITH {ctes}\n{body}" if ctes else body


@dataclass(frozen=True, slots=True)
class _Columns:
    kinds: frozenset[FactKind]
    entities: tuple[EntityRef, ...]
    attrs: tuple[tuple[str, AttrType], ...]


def _needed(specs: Sequence[FeatureSpec], carry: Sequence[str] = (), catalog: Catalog = BASE_CATALOG) -> _Columns:
    kinds = {FactKind.ORDER} | {s.kind for s in specs}
    entities: set[EntityRef] = {Entity.ORDER, *(s.entity for s in specs)}
    attrs: set[str] = set(carry)
    for s in specs:
        if s.entity in MULTI_VALUED:
            kinds.add(FactKind.LINE)
        if s.distinct_entity is not None:
            entities.add(s.distinct_entity)
        if s.value_attr is not None:
            attrs.add(s.value_attr)
        attrs.update(c.attr for c in s.filter)
    types = _attr_types(catalog)
    declared = [e for e in catalog.entities.values() if not isinstance(e, Entity) and e in entities]
    return _Columns(frozenset(kinds), tuple(e for e in Entity if e in entities) + tuple(declared),
                    tuple((a, types[a]) for a in sorted(attrs)))


class BatchFeatures:
    """Builds the point-in-time frame of a feature set on an embedded DuckDB database.

    Usage: ``load`` orders (and labels) or ``load_facts`` columnar facts, then
    ``frame()``, ``write_parquet()`` or ``relation()``.

    Args:
        specs: the feature definitions, in output column order.
        database: DuckDB file for data larger than memory (``":memory:"`` by default).
        progress: optional ``(stage, done, total)`` callback, e.g. :func:`rich_progress`.
        carry: order attributes (``features.facts.ATTRIBUTES[order]``, e.g. ``paid_fen``)
            output beside the features, read from the order's own fact: inputs a model
            takes as they are, so the frame needs no join back to the orders.
        memory_limit: DuckDB's ``memory_limit`` (e.g. ``"2GB"``); beyond it the window
            queries spill to a temporary folder, removed on :meth:`close`. ``None``: DuckDB's
            default (80 % of the machine), which a million orders' windows would take.
    """

    def __init__(self, specs: FeatureSet | Sequence[FeatureSpec], *, database: str | Path = ":memory:",
                 progress: Progress | None = None, carry: Sequence[str] = (),
                 memory_limit: str | None = None) -> None:
        self.specs = specs if isinstance(specs, FeatureSet) else FeatureSet(tuple(specs))
        catalog = self.specs.declared.catalog
        order_attrs = catalog.attributes[FactKind.ORDER]
        for i, attr in enumerate(carry):
            if attr not in order_attrs:
                raise ConfigError(must(f"carry[{i}]", "an attribute of order facts (" + ", ".join(
                    sorted(order_attrs)) + ")", attr), field=f"carry[{i}]")
        self.carry = tuple(carry)
        self._progress = progress
        self._declared = self.specs.declared
        self._columns = _needed(self.specs.specs, self.carry, catalog)
        self._con = duckdb.connect(str(database))
        self._spill: tempfile.TemporaryDirectory[str] | None = None
        if memory_limit is not None:
            self._spill = tempfile.TemporaryDirectory(prefix="orderguard-duckdb-")
            self._con.execute("SET memory_limit = ?", [memory_limit])
            self._con.execute("SET temp_directory = ?", [self._spill.name])
        cols = ", ".join(f"{name} {sql_type}" for name, sql_type in self.columns.items())
        self._con.execute(f"CREATE OR REPLACE TABLE facts ({cols})")

    @property
    def columns(self) -> Mapping[str, str]:
        """The facts table layout, column name → SQL type, in table order.

        ``kind`` (a :class:`~features.facts.FactKind` value), ``ts`` (event time in integer
        microseconds since the epoch, ``features.windows.to_us``), ``fact_id``, one
        ``e_<entity>`` key column per entity the specs need (``e_order`` always: the
        order a fact belongs to) and one ``a_<attr>`` column per attribute they read.
        """
        layout = {"kind": "VARCHAR", "ts": "BIGINT", "fact_id": "VARCHAR"}
        layout.update({entity_column(e): "VARCHAR" for e in self._columns.entities})
        layout.update({attr_column(a): _SQL_TYPES[t] for a, t in self._columns.attrs})
        return MappingProxyType(layout)

    def _report(self, stage: str, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress(stage, done, total)

    def _facts(self, orders: Iterable[Order], labels: Iterable[Label]) -> Iterator[Fact]:
        kinds = self._columns.kinds
        declared = self._declared
        by_order: dict[str, list[Label]] = {}
        if FactKind.LABEL in kinds:
            for label in labels:
                by_order.setdefault(str(label.key), []).append(label)
        for order in orders:
            for fact in order_facts(order, declared).facts:
                if fact.kind in kinds:
                    yield fact
            for label in by_order.get(str(order.key), ()):
                yield from label_facts(label, order, declared).facts

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

    def load_facts(self, source: FactTable, *, total: int | None = None) -> int:
        """Load facts that are already columnar; returns the number of facts loaded.

        The fast path for large backfills: no Python object per fact. ``source`` has the
        columns of :attr:`columns` by name (any order; ``fact_id`` may be left out, it is
        only an identity) and nothing else, with values castable to their SQL types;
        keys may be integers (they are compared as text). It may be a pandas DataFrame,
        an Arrow table or record batch reader, or a DuckDB relation of *another*
        connection (e.g. a query over CSV or Parquet files), which is streamed in Arrow
        batches. The caller is responsible for the facts being what
        ``features.facts`` would derive (kinds, event times, one order fact per order).

        All or nothing: a source with missing or unknown columns, a value that does not
        cast, a fact without ``kind`` / ``ts`` / ``e_order`` or an unknown ``kind`` loads
        nothing and raises :class:`~orderguard.errors.InvalidInputError`.

        Args:
            source: the facts.
            total: number of facts, if known (only feeds the progress callback).
        """
        names = _source_columns(source)
        layout = self.columns
        missing = [c for c in layout if c not in names and c != "fact_id"]
        unknown = [c for c in names if c not in layout]
        if missing or unknown:
            wanted = "columns " + ", ".join(layout) + " (fact_id optional)"
            problem = {"missing": missing, "unknown": unknown}
            raise InvalidInputError.must("facts", wanted, {k: v for k, v in problem.items() if v})
        select = ", ".join(
            f"CAST({_quote(c)} AS {t}) AS {c}" if c in names else f"CAST(NULL AS {t}) AS {c}"
            for c, t in layout.items())
        if total is None and isinstance(source, pd.DataFrame | pa.Table):
            total = len(source)
        loaded = 0
        self._con.begin()
        try:
            for chunk in _chunks(source):
                self._con.register("facts_chunk", chunk)
                self._con.execute(f"INSERT INTO facts SELECT {select} FROM facts_chunk")
                loaded += len(chunk)
                self._report("load facts", loaded, total)
            self._check_facts()
        except (duckdb.ConversionException, duckdb.BinderException, duckdb.InvalidInputException) as e:
            self._con.rollback()
            raise InvalidInputError.must("facts", "values castable to the facts table types",
                                         str(e).splitlines()[0]) from e
        except BaseException:
            self._con.rollback()
            raise
        else:
            self._con.commit()
        finally:
            self._con.unregister("facts_chunk")
        self._report("load facts", loaded, loaded)
        return loaded

    def _check_facts(self) -> None:
        kinds = ", ".join(sql_literal(k.value) for k in FactKind)
        row = self._con.execute(
            f"SELECT count(*) FILTER (WHERE kind IS NULL OR kind NOT IN ({kinds})), "
            "count(*) FILTER (WHERE ts IS NULL), count(*) FILTER (WHERE e_order IS NULL), "
            f"any_value(kind) FILTER (WHERE kind NOT IN ({kinds})) FROM facts").fetchall()[0]
        bad_kind, no_ts, no_order, example = row
        if bad_kind:
            raise InvalidInputError.must("facts.kind", "one of " + ", ".join(FactKind), example)
        if no_ts:
            raise InvalidInputError.must("facts.ts", "given on every fact", f"{no_ts} null(s)")
        if no_order:
            raise InvalidInputError.must("facts.e_order", "given on every fact", f"{no_order} null(s)")

    def _query(self, *, ordered: bool = True) -> str:
        return frame_query(self.specs.specs, carry=self.carry, ordered=ordered)

    def frame(self) -> pd.DataFrame:
        """One row per order: ``order_key``, ``event_time`` (UTC), carried attributes and every feature.

        Rows are ordered by event time, then order key. Each call runs the query again.
        """
        self._report("compute features", 0, 1)
        df = self._con.execute(self._query()).df()
        self._report("compute features", 1, 1)
        event_time = pd.to_datetime(df.pop("ts"), unit="us", utc=True)
        df.insert(1, "event_time", event_time)
        return df

    def relation(self, *, ordered: bool = True) -> duckdb.DuckDBPyRelation:
        """The frame as a lazy DuckDB relation on this engine's connection.

        Columns: ``order_key``, ``ts`` (microseconds), carried attributes, every feature;
        ordered by ``ts``, then order key unless ``ordered=False`` (when the caller sorts
        anyway). For post-processing in SQL without bringing the frame into Python, e.g.
        ``relation().query("frame", "SELECT ... FROM frame")``; it is computed when
        consumed, and valid until :meth:`close`.
        """
        return self._con.sql(self._query(ordered=ordered))

    def write_parquet(self, path: Path) -> int:
        """Write the frame to a Parquet file without materialising it in Python; returns its row count.

        ``event_time`` is written as a UTC timestamp, alongside ``ts_us`` (microseconds).
        """
        names = ", ".join(_quote(n) for n in (*self.carry, *(spec.name for spec in self.specs.specs)))
        target = str(path).replace("'", "''")
        query = (f"SELECT order_key, make_timestamp(ts) AS event_time, ts AS ts_us, {names} "
                 f"FROM ({self._query()})")
        self._report("compute features", 0, 1)
        self._con.execute(f"COPY ({query}) TO '{target}' (FORMAT PARQUET)")
        self._report("compute features", 1, 1)
        rows = self._con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchall()[0][0]
        return int(rows)

    def close(self) -> None:
        """Close the DuckDB connection (and remove what it spilled)."""
        self._con.close()
        if self._spill is not None:
            self._spill.cleanup()


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
