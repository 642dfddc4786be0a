"""The pool's inputs as DuckDB tables, point in time: what was known at ``as_of``, nothing later.

Four tables, one layout whatever fills them (the order log here; a benchmark's generator
or a data scientist's own files elsewhere), so the pool's SQL (``segments.pool``) never
knows where its rows came from:

``orders``  one row per order as of ``as_of``: ``order_key``, ``account`` (``channel:account_id``,
            the feature store's ``user`` key), ``channel``, ``created_at``, ``status``, ``paid_fen``,
            ``registered_at``, ``refund_reason``, ``refund_at``, ``phone_hash``, ``phone_masked``,
            ``id_card_hash``, ``device``, ``wifi``, ``ip``, ``address`` (the identity keys as
            ``features.facts`` keys them; NULL when the order has none)
``labels``  every verdict known by ``as_of``: ``order_key``, ``verdict``, ``labeled_at``
``scores``  every score record made by ``as_of``: ``order_key``, ``event_time``, ``scored_at``, ``score``,
            ``decision``
``deny``    the rule pack's deny lists: ``entity`` (phone / device / address), ``key``

Times are naive UTC ``TIMESTAMP``s (DuckDB compares them without a time-zone setting).

From the order log, events are streamed as they are stored (key, version, time, status
and the JSON payload as text) in Arrow batches, and DuckDB folds them into orders with
the order log's own rule (``orderguard.ingest.state.derive_order``: status from the newest
version, details from the newest carrying a snapshot, refund from the newest carrying
one), keeping only events with ``event_time < as_of``. So an as-of in the past sees each
order in the state it was in then, and Python never touches an order row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orderguard.ingest.orderlog import LABELS, ORDER_EVENTS, SCORE_RECORDS, connection_guard

#: ``(stage, done, total)``: how far loading has come; ``total`` None when unknown.
Progress = Callable[[str, int, int | None], None]

ORDERS_DDL = """
CREATE OR REPLACE TABLE orders (
    order_key VARCHAR NOT NULL, account VARCHAR NOT NULL, channel VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL, paid_fen BIGINT,
    registered_at TIMESTAMP, refund_reason VARCHAR, refund_at TIMESTAMP,
    phone_hash VARCHAR, phone_masked VARCHAR, id_card_hash VARCHAR,
    device VARCHAR, wifi VARCHAR, ip VARCHAR, address VARCHAR)
"""
LABELS_DDL = """
CREATE OR REPLACE TABLE labels (order_key VARCHAR NOT NULL, verdict VARCHAR NOT NULL, labeled_at TIMESTAMP NOT NULL)
"""
SCORES_DDL = """
CREATE OR REPLACE TABLE scores (order_key VARCHAR NOT NULL, event_time TIMESTAMP NOT NULL,
    scored_at TIMESTAMP NOT NULL, score DOUBLE NOT NULL, decision VARCHAR NOT NULL)
"""
DENY_DDL = "CREATE OR REPLACE TABLE deny (entity VARCHAR NOT NULL, key VARCHAR NOT NULL)"
TABLES = ("orders", "labels", "scores", "deny")

_BATCH = 20_000

#: The payload fields the pool reads, by JSON path (the codec writes the schema's field names).
_DETAIL_PATHS = (
    ("account_id", "$.details.buyer.account_id"),
    ("created_at", "$.details.created_at"),
    ("registered_at", "$.details.buyer.registered_at"),
    ("paid_fen", "$.details.amounts.paid_fen"),
    ("phone_hash", "$.details.buyer.phone.hash"),
    ("phone_masked", "$.details.buyer.phone.masked"),
    ("id_card_hash", "$.details.buyer.id_card_hash"),
    ("device", "$.details.client.device_id"),
    ("wifi", "$.details.client.wifi_hash"),
    ("ip", "$.details.client.ip"),
    ("address", "$.details.address.key"),
)

#: Each batch of stored events keeps only the fields the pool reads: the JSON is parsed once, on the way in,
#: and the payload text is never held whole (a long history would not fit in memory).
_PARSE = f"""
INSERT INTO raw_events
SELECT channel, channel_order_id, event_version, status,
       json_extract_string(payload, [{", ".join(f"'{p}'" for _, p in _DETAIL_PATHS)}]),
       json_extract_string(payload, ['$.refund.reason', '$.refund.requested_at']),
       json_exists(payload, '$.details'), json_exists(payload, '$.refund')
FROM batch_in
"""

_FOLD = """
CREATE OR REPLACE TABLE orders AS
WITH folded AS (
    SELECT channel, channel_order_id,
           arg_max(status, event_version) AS status,
           arg_max(d, event_version) FILTER (WHERE has_details) AS d,
           arg_max(r, event_version) FILTER (WHERE has_refund) AS r
    FROM raw_events GROUP BY channel, channel_order_id
)
SELECT channel || ':' || channel_order_id AS order_key,
       channel || ':' || d[1] AS account,
       channel,
       CAST(CAST(d[2] AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) AS created_at,
       status,
       CAST(d[4] AS BIGINT) AS paid_fen,
       CAST(CAST(d[3] AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) AS registered_at,
       r[1] AS refund_reason,
       CAST(CAST(r[2] AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) AS refund_at,
       d[5] AS phone_hash, d[6] AS phone_masked, d[7] AS id_card_hash,
       d[8] AS device, d[9] AS wifi, d[10] AS ip, d[11] AS address
FROM folded
WHERE d IS NOT NULL AND d[1] IS NOT NULL AND d[1] <> ''
"""


@dataclass(frozen=True, slots=True)
class InputCounts:
    """How many rows each input table holds."""

    events: int
    orders: int
    labels: int
    scores: int
    deny: int


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as the naive UTC value the input tables hold (refuses a naive ``moment``: whose clock?)."""
    if moment.tzinfo is None:
        raise ValueError("as_of must carry a time zone")
    return moment.astimezone(UTC).replace(tzinfo=None)


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Empty input tables in the shared layout (a loader, a test or a generator fills them)."""
    for ddl in (ORDERS_DDL, LABELS_DDL, SCORES_DDL, DENY_DDL):
        con.execute(ddl)


def _stream(engine: Engine, stmt: sa.Select[Any], names: Sequence[str], *,
            stage: str, progress: Progress | None) -> Iterator[pa.Table]:
    done = 0
    with connection_guard("read", "the order log"), engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(stmt)
        for rows in result.partitions():
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
            yield pa.table({n: list(c) for n, c in zip(names, columns, strict=True)})
            done += len(rows)
            if progress is not None:
                progress(stage, done, None)


def _utc_column(values: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """SQLite hands back aware datetimes, PostgreSQL too: store them as naive UTC microseconds."""
    if pa.types.is_timestamp(values.type) and values.type.tz is not None:
        return values.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
    return values


def _naive(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    for name in columns:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, _utc_column(table.column(name)))
    return table


def load_from_log(con: duckdb.DuckDBPyConnection, engine: Engine, *, as_of: datetime,
                  deny: Sequence[tuple[str, str]] = (), progress: Progress | None = None) -> InputCounts:
    """Fill the input tables with what the order log knew at ``as_of`` (exclusive)."""
    cut = as_of.astimezone(UTC)
    create_tables(con)
    con.execute("CREATE OR REPLACE TEMP TABLE raw_events (channel VARCHAR, channel_order_id VARCHAR, "
                "event_version BIGINT, status VARCHAR, d VARCHAR[], r VARCHAR[], has_details BOOLEAN, "
                "has_refund BOOLEAN)")
    e = ORDER_EVENTS.c
    events = sa.select(e.channel, e.channel_order_id, e.event_version, e.status,
                       sa.cast(e.payload, sa.Text)).where(e.event_time < cut)
    n_events = 0
    for batch in _stream(engine, events, ("channel", "channel_order_id", "event_version", "status", "payload"),
                         stage="events", progress=progress):
        con.register("batch_in", batch)
        con.execute(_PARSE)
        con.unregister("batch_in")
        n_events += batch.num_rows
    con.execute(_FOLD)
    con.execute("DROP TABLE raw_events")

    lab = LABELS.c
    labels = sa.select(sa.func.concat(lab.channel, ":", lab.channel_order_id) if engine.dialect.name != "sqlite"
                       else (lab.channel + ":" + lab.channel_order_id), lab.verdict, lab.labeled_at
                       ).where(lab.labeled_at < cut)
    for batch in _stream(engine, labels, ("order_key", "verdict", "labeled_at"), stage="labels", progress=progress):
        con.register("batch_in", _naive(batch, ("labeled_at",)))
        con.execute("INSERT INTO labels SELECT * FROM batch_in")
        con.unregister("batch_in")

    s = SCORE_RECORDS.c
    scores = sa.select(s.order_key, s.event_time, s.scored_at, s.score, s.decision).where(
        s.scored_at < cut, s.event_time < cut)
    for batch in _stream(engine, scores, ("order_key", "event_time", "scored_at", "score", "decision"),
                         stage="scores", progress=progress):
        con.register("batch_in", _naive(batch, ("event_time", "scored_at")))
        con.execute("INSERT INTO scores SELECT * FROM batch_in")
        con.unregister("batch_in")

    if deny:
        con.executemany("INSERT INTO deny VALUES (?, ?)", [list(pair) for pair in deny])
    return counts(con, events=n_events)


def counts(con: duckdb.DuckDBPyConnection, *, events: int = 0) -> InputCounts:
    """Row counts of the input tables."""
    def n(table: str) -> int:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    return InputCounts(events=events, orders=n("orders"), labels=n("labels"), scores=n("scores"), deny=n("deny"))
