"""The order log: append-only, idempotent store of order events and their current state.

The log is the source of truth of ingest (DESIGN.md §3.1). Two tables:

``order_events``
    Every accepted event, never updated or deleted, keyed by
    ``(channel, channel_order_id, event_version)``. The full event is kept as JSON
    (:mod:`orderguard.ingest.codec`) next to the columns queries need, with the
    ``content_hash`` that tells a harmless re-send from a conflicting one.
``orders``
    The current state of each order, :func:`~orderguard.ingest.state.derive_order`
    applied to all its stored events. Rewritten from the full history whenever an event
    of the order is accepted, so an older version arriving late never overwrites a newer
    state and the result never depends on arrival order.

Append semantics:

* same key, same content hash → duplicate, a no-op;
* same key, different content → conflict: the event stored first is kept, the newcomer
  is reported in :attr:`AppendResult.conflicts` (the batch itself never fails for it);
* an order known only through after-sale events (the refund document overtook the order
  document) has its events stored but **no** ``orders`` row: ``derive_order`` cannot
  build an order without its document, such an order cannot be scored or shown, and
  :meth:`OrderLog.get` returns ``None``. The row appears, with the full status timeline,
  as soon as the order document arrives. :attr:`AppendResult.pending` lists such keys.

Time: every datetime is stored and returned as tz-aware UTC. Reads are ordered by event
time with ties broken by the order key; receive time is stored, never used for ordering.
Key columns sort by code point on every backend (binary collation), like Python strings.

Backends: SQLite (default, a file under ``data_dir``; WAL journal, ``synchronous=NORMAL``
so a power cut may lose the last commits but never corrupts the file) and PostgreSQL
through psycopg 3 (``postgresql+psycopg://…``). The schema is created and upgraded by the
Alembic environment in ``orderguard/ingest/migrations`` on :meth:`OrderLog.open`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from orderguard.dbkeys import pairs_in
from orderguard.errors import ConfigError, EventConflictError, InvalidInputError, ServiceUnavailableError, must
from orderguard.ingest import codec
from orderguard.ingest.multirow import MultiRowInsert, bind_processors, bound_rows
from orderguard.ingest.state import advance_order, derive_order
from orderguard.ingest.state_memo import StateMemo
from orderguard.schema import Channel, Order, OrderEvent, OrderKey, OrderStatus
from orderguard.settings import DatabaseSettings

#: Most composite keys bound in one ``IN`` list (3 parameters each; SQLite allows 32766).
_IN_CHUNK = 1000

#: Seconds a SQLite writer waits for another process's write transaction.
_SQLITE_BUSY_TIMEOUT_S = 30

#: Bytes the SQLite write-ahead log may hold before the owner's checkpoint starts it over: the
#: ``database.wal_limit_mb`` setting's default (see :meth:`OrderLog.checkpoint`).
DEFAULT_WAL_LIMIT_BYTES = DatabaseSettings().wal_limit_bytes

#: Bytes of one write-ahead log frame beyond its page: the frame header.
_WAL_FRAME_HEADER = 24

#: Seconds to wait for a PostgreSQL connection before reporting the service down.
_PG_CONNECT_TIMEOUT_S = 5


def _advisory_lock_id(name: str) -> int:
    """A stable signed 64-bit id for ``pg_advisory_xact_lock``, namespaced to the log.

    >>> _advisory_lock_id("site:SO1") == _advisory_lock_id("site:SO1") != _advisory_lock_id("site:SO2")
    True
    """
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"og-orderlog").digest()
    return int.from_bytes(digest, "big", signed=True)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Timestamp column that only accepts and only returns tz-aware UTC datetimes.

    PostgreSQL stores ``timestamptz``; SQLite stores fixed-width UTC text
    (``YYYY-MM-DD HH:MM:SS.ffffff``), which sorts chronologically as text.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(must("datetime", "tz-aware", value))
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _key_text() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


#: Table definitions used by the queries; the schema itself is owned by the migrations
#: (``migrations/versions``), which a test compares against these.
METADATA = sa.MetaData()

ORDER_EVENTS = sa.Table(
    "order_events",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("channel", _key_text(), nullable=False),
    sa.Column("channel_order_id", _key_text(), nullable=False),
    sa.Column("event_version", sa.BigInteger(), nullable=False),
    sa.Column("event_time", UtcDateTime(), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("channel_status", sa.String(), nullable=False),
    sa.Column("content_hash", sa.String(), nullable=False),
    sa.Column("payload", _json(), nullable=False),
    sa.UniqueConstraint("channel", "channel_order_id", "event_version", name="uq_order_events_key"),
    sa.Index("ix_order_events_time", "event_time", "channel", "channel_order_id", "event_version"),
)

ORDERS = sa.Table(
    "orders",
    METADATA,
    sa.Column("channel", _key_text(), nullable=False),
    sa.Column("channel_order_id", _key_text(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("event_version", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("shop_id", sa.String(), nullable=False),
    sa.Column("account_id", sa.String(), nullable=False),
    sa.Column("state", _json(), nullable=False),
    sa.PrimaryKeyConstraint("channel", "channel_order_id", name="pk_orders"),
    sa.Index("ix_orders_created", "created_at", "channel", "channel_order_id"),
    sa.Index("ix_orders_status", "status"),
)

#: The ``IN`` lists of a :func:`_by_keys` statement, in key column order.
_KEY_LISTS = ("channels", "ids", "versions")


def _by_keys(table: sa.Table, names: tuple[str, ...], *, versions: bool = False,
             undecoded: tuple[str, ...] = ()) -> sa.Select[Any]:
    """``SELECT names FROM table`` for the keys in ``:channels`` x ``:ids`` (and ``:versions``), built once.

    Why not :func:`~orderguard.dbkeys.pairs_in`: a statement built per call costs more than
    the query it runs (an append of one event ran five of them: ~1 ms of SQLAlchemy
    construction and cache-key work against ~0.1 ms in SQLite). Two expanding ``IN`` lists
    on the key's leading columns keep the index search (SQLite walks the index for each
    combination) and the statement is compiled once; the caller keeps only its exact
    pairs (a combination of one key's channel with another's id is rare and harmless).
    Columns named in ``undecoded`` come back as the driver returns them, without the column type's
    result processing.
    """
    c = table.c
    channels, ids, event_versions = _KEY_LISTS
    where = [c.channel.in_(sa.bindparam(channels, expanding=True)),
             c.channel_order_id.in_(sa.bindparam(ids, expanding=True))]
    if versions:
        where.append(c.event_version.in_(sa.bindparam(event_versions, expanding=True)))
    return sa.select(*(sa.type_coerce(c[name], sa.Text) if name in undecoded else c[name]
                       for name in names)).where(*where)


#: The state as the driver hands it over, undecoded (SQLite: the JSON text), for :class:`StateMemo`.
_STORED_STATES = _by_keys(ORDERS, ("channel", "channel_order_id", "event_version", "state"), undecoded=("state",))
_SQLITE_KEY_VERSIONS = _by_keys(ORDER_EVENTS, ("channel", "channel_order_id", "event_version"))
_SQLITE_STORED_HASHES = _by_keys(ORDER_EVENTS, ("channel", "channel_order_id", "event_version", "content_hash"),
                                 versions=True)
_SQLITE_PAYLOADS = _by_keys(ORDER_EVENTS, ("channel", "channel_order_id", "event_version", "payload"),
                            versions=True)


def _pg_upsert_orders() -> Any:
    """``INSERT INTO orders ... ON CONFLICT (key) DO UPDATE`` every other column, on PostgreSQL (built once)."""
    insert: Any = postgresql.insert(ORDERS)
    excluded = insert.excluded
    updates = {col.name: excluded[col.name] for col in ORDERS.c if col.name not in ("channel", "channel_order_id")}
    return insert.on_conflict_do_update(index_elements=[ORDERS.c.channel, ORDERS.c.channel_order_id], set_=updates)


_PG_UPSERT_ORDERS = _pg_upsert_orders()


#: Served decisions (``scoring.records``), migration 0002.
SCORE_RECORDS = sa.Table(
    "score_records", METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("order_key", _key_text(), nullable=False),
    sa.Column("event_version", sa.BigInteger(), nullable=False),
    sa.Column("event_time", UtcDateTime(), nullable=False),
    sa.Column("scored_at", UtcDateTime(), nullable=False),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("risk_level", sa.String(), nullable=False),
    sa.Column("decision", sa.String(), nullable=False),
    sa.Column("rules_only", sa.Boolean(), nullable=False),
    sa.Column("model_version", sa.String(), nullable=True),
    sa.Column("settings_hash", sa.String(), nullable=False),
    sa.Column("feature_set_hash", sa.String(), nullable=False),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("record", _json(), nullable=False),
    # migration 0010: the rule pack version that judged it, and the shadow candidate's verdict beside it
    sa.Column("rules_version", sa.String(64), nullable=True),
    sa.Column("shadow_version", sa.String(64), nullable=True),
    sa.Column("shadow_score", sa.Float(), nullable=True),
    sa.Column("shadow_decision", sa.String(16), nullable=True),
    sa.UniqueConstraint("order_key", "event_version", name="uq_score_records_key"),
    sa.Index("ix_score_records_decision", "decision", "scored_at"),
    sa.Index("ix_score_records_event_time", "event_time"),
    sa.Index("ix_score_records_shadow", "shadow_version", "scored_at"),
)

#: Reviewer labels (``orderguard.labels``), migration 0003: append-only, one row per label version.
LABELS = sa.Table(
    "labels", METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("channel", _key_text(), nullable=False),
    sa.Column("channel_order_id", _key_text(), nullable=False),
    sa.Column("verdict", sa.String(), nullable=False),
    sa.Column("labeled_at", UtcDateTime(), nullable=False),
    sa.Column("reviewer_id", _key_text(), nullable=False),
    sa.Column("note", sa.Text(), nullable=False),
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("channel", "channel_order_id", "labeled_at", "reviewer_id", name="uq_labels_key"),
    sa.Index("ix_labels_labeled_at", "labeled_at", "channel", "channel_order_id", "reviewer_id"),
)

#: API keys (``orderguard.access``), migration 0005: only the SHA-256 of a key is stored.
API_KEYS = sa.Table(
    "api_keys", METADATA,
    sa.Column("prefix", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("roles", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_used_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
)

#: People who sign in (``orderguard.access``), migration 0005: argon2 password hashes; 0006: sessions signed in
#: before ``sessions_after`` are refused (sign-out, password change, disabling).
USERS = sa.Table(
    "users", METADATA,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("roles", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("disabled_at", UtcDateTime(), nullable=True),
    sa.Column("sessions_after", UtcDateTime(), nullable=True),
)

#: Orders open on the review desk (``serving.desk``), migration 0007: who works each, until when.
DESK_CLAIMS = sa.Table(
    "desk_claims", METADATA,
    sa.Column("order_key", _key_text(), primary_key=True),
    sa.Column("reviewer", _key_text(), nullable=False),
    sa.Column("claimed_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)

#: Messages owed to other systems (alerts, order actions), migration 0007: delivered with retries by a sender.
OUTBOX = sa.Table(
    "outbox", METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(32), nullable=False),
    sa.Column("destination", sa.String(64), nullable=False),
    sa.Column("dedup_key", _key_text(), nullable=False),
    sa.Column("payload", _json(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("delivered_at", UtcDateTime(), nullable=True),
    sa.Column("failed_at", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.UniqueConstraint("destination", "dedup_key", name="uq_outbox_dedup"),
    sa.Index("ix_outbox_due", "delivered_at", "failed_at", "next_attempt_at"),
)

#: Outcomes of verify orders' step-up checks (``orderguard.verifications``), migration 0008.
VERIFICATIONS = sa.Table(
    "verifications", METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("order_key", _key_text(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("verified_at", UtcDateTime(), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Index("ix_verifications_order", "order_key", "verified_at"),
)

#: Fulfilment steps reported by the systems around the order (``orderguard.fulfilment``), migration 0009:
#: payment gateway, ERP/OMS, warehouse, carrier, customer service. Idempotent by the sender's event id.
FULFILMENT_EVENTS = sa.Table(
    "fulfilment_events", METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("channel", _key_text(), nullable=False),
    sa.Column("channel_order_id", _key_text(), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("event_id", _key_text(), nullable=False),
    sa.Column("event_time", UtcDateTime(), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("payload", _json(), nullable=False),
    sa.UniqueConstraint("channel", "channel_order_id", "kind", "event_id", name="uq_fulfilment_events_key"),
    sa.Index("ix_fulfilment_events_order", "channel", "channel_order_id", "event_time"),
    sa.Index("ix_fulfilment_events_time", "event_time"),
)

#: What the order-health sweeper found (``health.store``), migration 0009: one row per order and check, open
#: while ``resolved_at`` is null.
HEALTH_FINDINGS = sa.Table(
    "health_findings", METADATA,
    sa.Column("order_key", _key_text(), nullable=False),
    sa.Column("check_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("component", sa.String(32), nullable=False),
    sa.Column("due_at", UtcDateTime(), nullable=False),
    sa.Column("flagged_at", UtcDateTime(), nullable=False),
    sa.Column("resolved_at", UtcDateTime(), nullable=True),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("order_key", "check_id", name="pk_health_findings"),
    sa.Index("ix_health_findings_open", "resolved_at", "due_at"),
)

#: The shop's health after each sweep (``health.store``), migration 0009: the dashboard's chart and counts.
HEALTH_SNAPSHOTS = sa.Table(
    "health_snapshots", METADATA,
    sa.Column("taken_at", UtcDateTime(), primary_key=True),
    sa.Column("overall", sa.Float(), nullable=False),
    sa.Column("orders", sa.Integer(), nullable=False),
    sa.Column("summary", _json(), nullable=False),
)

#: Rule packs as applied (``scoring.pack_store``), migration 0010: one row per change of the live pack or of the
#: shadow candidate, numbered 1, 2, ... across both; the YAML text itself, its hash, who applied it and the diff.
RULE_PACKS = sa.Table(
    "rule_packs", METADATA,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("applied_at", UtcDateTime(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("diff", sa.Text(), nullable=False),
    sa.Column("note", sa.Text(), nullable=False),
    sa.Column("bands", _json(), nullable=True),
    sa.Column("rollback_of", sa.Integer(), nullable=True),
    sa.Index("ix_rule_packs_role", "role", "version"),
)

_EVENT_ORDER = (ORDER_EVENTS.c.event_time, ORDER_EVENTS.c.channel, ORDER_EVENTS.c.channel_order_id,
                ORDER_EVENTS.c.event_version)
_ORDER_ORDER = (ORDERS.c.created_at, ORDERS.c.channel, ORDERS.c.channel_order_id)

_Ident = tuple[str, str, int]  # (channel, channel_order_id, event_version)
_Key = tuple[str, str]  # (channel, channel_order_id)

#: Columns written by :meth:`OrderLog.append`, in insert order.
_EVENT_COLUMNS = ("channel", "channel_order_id", "event_version", "event_time", "received_at", "kind",
                  "status", "channel_status", "content_hash", "payload")

# PostgreSQL bulk statements. A batch travels as ONE parameter: a JSON array of rows
# expanded server-side by ``jsonb_to_recordset`` (inserts) or as one array per key column
# expanded by ``unnest`` (lookups). No per-row placeholders to render, escape and parse,
# and the key joins use the unique index; ``COLLATE "C"`` matches the key columns.

#: The ``orders`` columns, in insert order.
_ORDER_COLUMNS = ("channel", "channel_order_id", "status", "event_version", "updated_at", "created_at", "shop_id",
                  "account_id", "state")

#: Where the state sits in an ``orders`` row.
_ORDER_STATE_AT = _ORDER_COLUMNS.index("state")

#: SQLite's multi-row forms of the two writes of an append (``orderguard.ingest.multirow``).
_SQLITE_EVENT_ROWS = MultiRowInsert(
    "order_events", _EVENT_COLUMNS,
    " ON CONFLICT (channel, channel_order_id, event_version) DO NOTHING"
    " RETURNING channel, channel_order_id, event_version")
_SQLITE_ORDER_ROWS = MultiRowInsert(
    "orders", _ORDER_COLUMNS,
    " ON CONFLICT (channel, channel_order_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _ORDER_COLUMNS[2:]))

_PG_INSERT_EVENTS = sa.text(
    "INSERT INTO order_events (channel, channel_order_id, event_version, event_time, received_at, kind,"
    " status, channel_status, content_hash, payload)"
    " SELECT r.channel, r.channel_order_id, r.event_version, r.event_time, r.received_at, r.kind, r.status,"
    " r.channel_status, r.content_hash, r.payload"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(channel text, channel_order_id text,"
    " event_version bigint, event_time timestamptz, received_at timestamptz, kind text, status text,"
    " channel_status text, content_hash text, payload jsonb)"
    " ON CONFLICT (channel, channel_order_id, event_version) DO NOTHING"
    " RETURNING channel, channel_order_id, event_version")
_PG_IDENT_JOIN = (
    " FROM unnest(CAST(:channel AS text[]), CAST(:channel_order_id AS text[]), CAST(:event_version AS bigint[]))"
    " AS k(channel, channel_order_id, event_version)"
    ' JOIN order_events e ON e.channel = k.channel COLLATE "C"'
    ' AND e.channel_order_id = k.channel_order_id COLLATE "C" AND e.event_version = k.event_version')
_PG_STORED_HASHES = sa.text(
    "SELECT e.channel, e.channel_order_id, e.event_version, e.content_hash" + _PG_IDENT_JOIN)
_PG_PAYLOADS = sa.text("SELECT e.channel, e.channel_order_id, e.event_version, e.payload" + _PG_IDENT_JOIN)
_PG_KEY_VERSIONS = sa.text(
    "SELECT e.channel, e.channel_order_id, e.event_version"
    " FROM unnest(CAST(:channel AS text[]), CAST(:channel_order_id AS text[])) AS k(channel, channel_order_id)"
    ' JOIN order_events e ON e.channel = k.channel COLLATE "C"'
    ' AND e.channel_order_id = k.channel_order_id COLLATE "C"')
_PG_LOCK_KEYS = sa.text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:ids AS bigint[])) AS k")


def _columns(tuples: Sequence[tuple[Any, ...]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Tuples → one list per column, the parameters of the ``unnest`` statements.

    >>> _columns([("jd", "1"), ("site", "2")], ("channel", "channel_order_id"))
    {'channel': ['jd', 'site'], 'channel_order_id': ['1', '2']}
    """
    return {name: [t[i] for t in tuples] for i, name in enumerate(names)}


class AppendOutcome(StrEnum):
    """What happened to one event handed to :meth:`OrderLog.append`."""

    INSERTED = "inserted"
    DUPLICATE = "duplicate"  # same key and content already stored (or earlier in the batch)
    CONFLICT = "conflict"  # same key, different content: rejected, the stored one is kept


@dataclass(frozen=True, slots=True)
class EventConflict:
    """An event rejected because its key is taken by an event with other content.

    Attributes:
        key: the order.
        event_version: the version both events claim.
        kept_hash: content hash of the event the log keeps (the first accepted).
        rejected_hash: content hash of the rejected newcomer.
    """

    key: OrderKey
    event_version: int
    kept_hash: str
    rejected_hash: str

    @property
    def reason(self) -> str:
        """One line for logs and API responses."""
        return (f"{self.key} version {self.event_version} is already stored with different content "
                f"(kept {self.kept_hash[:12]}, rejected {self.rejected_hash[:12]})")

    def to_error(self) -> EventConflictError:
        """The domain error (HTTP 409) for callers that report conflicts as errors."""
        return EventConflictError(
            must("event_version", f"new for {self.key} or carry identical content", self.event_version),
            field="event_version")


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of one :meth:`OrderLog.append` call.

    Attributes:
        outcomes: one per input event, in input order.
        conflicts: the rejected events, in input order.
        orders: current state of every order that gained an event, sorted by key.
        pending: orders that gained an event but have no order document yet (only
            after-sale events), sorted by key; they have no ``orders`` row.
    """

    outcomes: tuple[AppendOutcome, ...]
    conflicts: tuple[EventConflict, ...]
    orders: tuple[Order, ...]
    pending: tuple[OrderKey, ...]

    @property
    def inserted(self) -> int:
        """Number of events newly stored."""
        return self.outcomes.count(AppendOutcome.INSERTED)

    @property
    def duplicates(self) -> int:
        """Number of events that were already stored with the same content."""
        return self.outcomes.count(AppendOutcome.DUPLICATE)


@dataclass(frozen=True, slots=True)
class LogSnapshot:
    """Deterministic dump of a log's content, for comparing two logs.

    Receive times and ``raw`` are left out (they legitimately differ between two
    deliveries of one event); everything that defines state is in.

    Attributes:
        events: ``(order key, event_version, content_hash)`` sorted by key and version.
        orders: ``(order key, canonical JSON of the Order)`` sorted by key.
    """

    events: tuple[tuple[str, int, str], ...]
    orders: tuple[tuple[str, str], ...]


def redacted(url: str | URL) -> str:
    """The URL with its password masked, safe for messages and logs.

    >>> redacted("postgresql+psycopg://og:secret@db:5432/og")
    'postgresql+psycopg://og:***@db:5432/og'
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa_exc.ArgumentError:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def connection_guard(what: str, where: str) -> Iterator[None]:
    """Turn a lost or refused database connection into :class:`ServiceUnavailableError` (503) naming the
    ``what`` database at ``where`` (a password-free URL) and the driver's first line: every store kept in the
    order-log database (orders, labels, access) reports an outage the same way."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as e:
        raise ServiceUnavailableError(f"{what} database {where} is unavailable: {_first_line(e)}",
                                      field="database.url") from e


def _sqlite_on_connect(*, memory: bool, background_checkpoints: bool, wal_limit_bytes: int
                       ) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
                if background_checkpoints:  # OrderLog.checkpoint does it, off the commits of requests
                    cursor.execute("PRAGMA wal_autocheckpoint=0")
                    # the commit that starts the log over trims a file grown past twice the limit (a long
                    # read kept every checkpoint short of the end): not the usual one, a tick past the limit,
                    # whose trimming cost a pause every restart (freed blocks are discarded, measured)
                    cursor.execute(f"PRAGMA journal_size_limit={2 * int(wal_limit_bytes)}")
            cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fsync at checkpoints
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_S * 1000}")
        finally:
            cursor.close()

    return on_connect


def create_log_engine(url: str, *, echo: bool = False, background_checkpoints: bool = False,
                      wal_limit_bytes: int = DEFAULT_WAL_LIMIT_BYTES) -> Engine:
    """Build the engine of an order log URL (no connection is made yet).

    SQLite: the parent directory is created and every connection gets the WAL journal
    and busy timeout; ``sqlite://`` (in memory) shares one connection. With
    ``background_checkpoints`` its commits never copy the write-ahead log into the database
    (SQLite's automatic checkpoint runs inside the commit that fills the log, so one request
    in a thousand pages would pay for it): the owner calls :meth:`OrderLog.checkpoint`
    periodically instead (:meth:`OrderLog.checkpoint` says how the log is kept near ``wal_limit_bytes``).
    Other processes on the same file keep their automatic checkpoints. PostgreSQL:
    ``postgresql://`` is read as ``postgresql+psycopg://``; connections are pinged
    before use so a database restart costs one failed check, not a failed request.

    Raises:
        ConfigError: the URL is malformed or names an unsupported backend.
        ServiceUnavailableError: the SQLite directory cannot be created.
    """
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as e:
        raise ConfigError.must("database.url", "a SQLAlchemy URL", redacted(url)) from e
    backend = parsed.get_backend_name()
    common: dict[str, Any] = {"echo": echo, "json_serializer": codec.dumps, "json_deserializer": codec.loads}
    if backend == "sqlite":
        database = parsed.database or ""
        memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        if not memory:
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ServiceUnavailableError(
                    f"order log database {redacted(parsed)} is unavailable: cannot create its directory ({e})",
                    field="database.url") from e
        connect_args: dict[str, Any] = {"timeout": _SQLITE_BUSY_TIMEOUT_S}
        if memory:
            connect_args["check_same_thread"] = False
            engine = sa.create_engine(parsed, connect_args=connect_args, poolclass=StaticPool, **common)
        else:
            engine = sa.create_engine(parsed, connect_args=connect_args, **common)
        sa_event.listen(engine, "connect", _sqlite_on_connect(memory=memory,
                                                              background_checkpoints=background_checkpoints,
                                                              wal_limit_bytes=wal_limit_bytes))
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() != "psycopg":
            raise ConfigError.must("database.url", "a postgresql+psycopg:// URL (psycopg 3)", redacted(parsed))
        return sa.create_engine(parsed, pool_pre_ping=True,
                                connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S}, **common)
    raise ConfigError.must("database.url", "a sqlite:/// or postgresql+psycopg:// URL", redacted(parsed))


def migration_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic configuration of the order log, built in code (no ``alembic.ini``).

    Works from an installed package: the script location is the ``migrations`` folder
    next to this module. Pass ``connection`` to migrate inside a caller's transaction,
    or ``url`` for Alembic commands that open their own connection.
    """
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items.

    >>> [list(c) for c in _chunks([1, 2, 3], 2)]
    [[1, 2], [3]]
    """
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _order_row(order: Order, details: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The ``orders`` row of ``order``; ``details`` maps ``id(event.details)`` to its encoding for the events
    this append just encoded (an order's details are its newest document's, the very object)."""
    return {
        "channel": order.key.channel.value,
        "channel_order_id": order.key.channel_order_id,
        "status": order.status.value,
        "event_version": order.event_version,
        "updated_at": order.updated_at,
        "created_at": order.details.created_at,
        "shop_id": order.details.shop_id,
        "account_id": order.details.buyer.account_id,
        "state": codec.order_to_dict(order, details=details.get(id(order.details))),
    }


def _aware(value: datetime | None, *, field: str) -> datetime | None:
    """A query bound must be tz-aware: a naive one would silently mean local time."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidInputError.must(field, "a tz-aware datetime", value)
    return value


def _okey(channel: str, channel_order_id: str) -> OrderKey:
    return OrderKey(Channel(channel), channel_order_id)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one checkpoint did: the pages of the write-ahead log it has copied into the database, and the
    bytes the log holds (copied or not) until a commit starts it over."""

    copied: int
    wal_bytes: int


class OrderLog:
    """The order log over one SQLAlchemy engine (SQLite or PostgreSQL).

    Thread-safe to the extent of the engine's pool: every method checks a connection
    out for its own short transaction. Use :meth:`open` to get a migrated log.
    """

    def __init__(self, engine: Engine, *, remembered_states: int = 0) -> None:
        """Wrap an engine, preferably one from :func:`create_log_engine` (pragmas, JSON
        codec); the schema is not touched (see :meth:`migrate`).

        ``remembered_states``: how many of the order states it writes the log keeps decoded
        (``orderguard.ingest.state_memo``), for a batch job that appends the same orders again
        and again (a file import: 20-30 % of its append). Off by default: the service's appends
        are of orders it has not seen, and keeping their states alive cost its score route
        10-20 % of its throughput, measured, in collections of the longer-lived heap.
        """
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigError.must("database.url", "a SQLite or PostgreSQL database", redacted(engine.url))
        self._engine = engine
        self._dialect = engine.dialect.name
        self._where = redacted(engine.url)
        self._memo = StateMemo(remembered_states) if remembered_states else None
        if self._dialect == "sqlite":
            self._event_binds = bind_processors(ORDER_EVENTS, _EVENT_COLUMNS, engine.dialect)
            self._order_binds = bind_processors(ORDERS, _ORDER_COLUMNS, engine.dialect)

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def open(cls, url: str, *, echo: bool = False, background_checkpoints: bool = False,
             wal_limit_bytes: int = DEFAULT_WAL_LIMIT_BYTES, remembered_states: int = 0) -> OrderLog:
        """Create the engine for ``url`` (``background_checkpoints``, ``wal_limit_bytes``: see
        :func:`create_log_engine`) and migrate the schema to head (``remembered_states``: see
        :meth:`__init__`).

        Safe to call concurrently from several processes and on an up-to-date database
        (then it only checks the version).

        Raises:
            ConfigError: unsupported or malformed URL.
            ServiceUnavailableError: the database cannot be reached (the message names the
                URL without its password).
        """
        log = cls(create_log_engine(url, echo=echo, background_checkpoints=background_checkpoints,
                                    wal_limit_bytes=wal_limit_bytes),
                  remembered_states=remembered_states)
        try:
            log.migrate()
        except BaseException:
            log.close()
            raise
        return log

    @property
    def engine(self) -> Engine:
        """The underlying engine, for read-only SQL by batch jobs (e.g. feature backfills)."""
        return self._engine

    def migrate(self) -> None:
        """Run the Alembic migrations to head in one transaction under a migration lock.

        The lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL) makes a
        second process wait and then find the schema already at head.
        """
        with self._guard(), self._engine.connect() as conn:
            if self._dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                             {"k": _advisory_lock_id("orderlog-migrations")})
            command.upgrade(migration_config(connection=conn), "head")
            conn.commit()

    def checkpoint(self) -> Checkpoint:
        """Copy what the SQLite write-ahead log holds into the database without waiting for readers or
        holding off writers (``PASSIVE``); a no-op elsewhere.

        It copies only the frames committed when it began, and SQLite starts the log over
        from its beginning only at a commit that finds all of it copied: under a steady
        stream of commits from another thread that never happens, and the file grows without
        bound (measured: 570 MB in 20 s of 500 scores a second). So a service runs it on a
        thread of its own, and when :attr:`Checkpoint.wal_bytes` says the log has outgrown
        its limit, once more on its writer's thread *between two commits*: nothing is
        appended while it copies the few frames left, and the next commit starts the log
        over, writing into the file's blocks again (a file that grew past twice the limit is
        trimmed to that). ``RESTART`` would make sure of the restart, but it waits for every
        reader: one long export would stall every write.
        """
        if self._dialect != "sqlite":
            return Checkpoint(0, 0)
        with self._guard(), self._engine.connect() as conn:
            row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").first()
            frame = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one()) + _WAL_FRAME_HEADER
        if row is None or int(row[1]) < 0:  # not in WAL mode (-1): nothing to copy
            return Checkpoint(0, 0)
        return Checkpoint(copied=max(int(row[2]), 0), wal_bytes=int(row[1]) * frame)

    @property
    def memo(self) -> StateMemo | None:
        """The states this log wrote last (``orderguard.ingest.state_memo``), if it keeps any."""
        return self._memo

    def close(self) -> None:
        """Release every pooled connection; the log must not be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> OrderLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _guard(self) -> AbstractContextManager[None]:
        return connection_guard("order log", self._where)

    # ------------------------------------------------------------------ writing

    def append(self, events: Sequence[OrderEvent]) -> AppendResult:
        """Store new events and bring the touched orders' current state up to date.

        One transaction: insert with ``ON CONFLICT DO NOTHING`` (rows sorted by key, so two
        concurrent writers cannot deadlock), read back the stored content hash only for
        keys that were already taken, then re-derive the touched orders from all their
        stored events with one query. Conflicts are reported, never raised.

        Raises:
            InvalidInputError: an event cannot be encoded (naive datetime, non-JSON
                ``raw``); nothing of the batch is stored then.
            ServiceUnavailableError: the database cannot be reached; nothing is stored.
        """
        encoded: list[tuple[_Ident, str]] = []
        first: dict[_Ident, int] = {}
        rows: list[dict[str, Any]] = []
        details: dict[int, Mapping[str, Any]] = {}
        for i, event in enumerate(events):
            data = codec.event_to_dict(event)
            digest = codec.content_hash_of(data)
            ident = (event.key.channel.value, event.key.channel_order_id, event.event_version)
            encoded.append((ident, digest))
            if ident in first:
                continue
            first[ident] = i
            if event.details is not None:
                details[id(event.details)] = data["details"]
            rows.append({
                "channel": ident[0], "channel_order_id": ident[1], "event_version": ident[2],
                "event_time": event.event_time, "received_at": event.received_at,
                "kind": event.kind.value, "status": event.status.value,
                "channel_status": event.channel_status, "content_hash": digest, "payload": data,
            })
        if not rows:
            return AppendResult((), (), (), ())
        rows.sort(key=lambda r: (r["channel"], r["channel_order_id"], r["event_version"]))

        with self._guard(), self._engine.begin() as conn:
            inserted = self._insert_events(conn, rows)
            collided = [ident for ident in first if ident not in inserted]
            stored = self._stored_hashes(conn, collided)
            fresh = {ident: events[first[ident]] for ident in inserted}
            orders, pending = self._refresh_orders(conn, fresh, details)

        kept = {ident: stored.get(ident, encoded[i][1]) for ident, i in first.items()}
        outcomes: list[AppendOutcome] = []
        conflicts: list[EventConflict] = []
        for i, (ident, digest) in enumerate(encoded):
            if ident in inserted and first[ident] == i:
                outcomes.append(AppendOutcome.INSERTED)
            elif digest == kept[ident]:
                outcomes.append(AppendOutcome.DUPLICATE)
            else:
                outcomes.append(AppendOutcome.CONFLICT)
                conflicts.append(EventConflict(events[i].key, ident[2], kept[ident], digest))
        return AppendResult(tuple(outcomes), tuple(conflicts), orders, pending)

    def _insert_events(self, conn: Connection, rows: list[dict[str, Any]]) -> set[_Ident]:
        """Insert, skipping taken keys; the keys actually inserted come back via RETURNING."""
        if self._dialect == "postgresql":
            # Times as the payload's UTC ISO text; PostgreSQL parses them into timestamptz.
            doc = [{**r, "event_time": r["payload"]["event_time"], "received_at": r["payload"]["received_at"]}
                   for r in rows]
            return {(r[0], r[1], r[2]) for r in conn.execute(_PG_INSERT_EVENTS, {"rows": codec.dumps(doc)})}
        bound = bound_rows(rows, _EVENT_COLUMNS, self._event_binds)
        return {(r[0], r[1], r[2]) for r in _SQLITE_EVENT_ROWS.execute(conn, bound)}

    def _select_by_ident(self, conn: Connection, pg_stmt: sa.TextClause, sqlite_stmt: sa.Select[Any],
                         idents: Sequence[_Ident]) -> list[tuple[Any, ...]]:
        """Rows ``(channel, channel_order_id, event_version, column)`` of ``order_events`` for exact event keys
        (one array query on PostgreSQL, a :func:`_by_keys` statement per chunk on SQLite)."""
        if not idents:
            return []
        if self._dialect == "postgresql":
            return [tuple(r) for r in conn.execute(pg_stmt, _columns(idents, _EVENT_COLUMNS[:3]))]
        return self._rows_by_keys(conn, sqlite_stmt, idents)

    def _stored_hashes(self, conn: Connection, idents: Sequence[_Ident]) -> dict[_Ident, str]:
        rows = self._select_by_ident(conn, _PG_STORED_HASHES, _SQLITE_STORED_HASHES, idents)
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    def _stored_states(self, conn: Connection, keys: Sequence[_Key]) -> dict[_Key, tuple[int, Any]]:
        """``event_version`` and stored state, as the driver returns it, of the given orders that have one."""
        return {(ch, oid): (int(version), state)
                for ch, oid, version, state in self._rows_by_keys(conn, _STORED_STATES, keys)}

    @staticmethod
    def _rows_by_keys(conn: Connection, stmt: sa.Select[Any], keys: Sequence[_Key] | Sequence[_Ident],
                      ) -> list[tuple[Any, ...]]:
        """The rows of a :func:`_by_keys` statement for exactly these keys: order keys, or event keys for a
        statement built with ``versions`` (each key's columns fill the statement's ``IN`` list of that name)."""
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(keys, _IN_CHUNK):
            wanted: set[tuple[Any, ...]] = set(chunk)
            width = len(chunk[0])
            lists = {name: sorted({k[i] for k in chunk}) for i, name in enumerate(_KEY_LISTS[:width])}
            out.extend(tuple(r) for r in conn.execute(stmt, lists) if tuple(r[:width]) in wanted)
        return out

    def _versions_of(self, conn: Connection, keys: Sequence[_Key]) -> list[_Ident]:
        """Every stored ``(channel, channel_order_id, event_version)`` of the given orders."""
        if self._dialect == "postgresql":
            rows = conn.execute(_PG_KEY_VERSIONS, _columns(keys, _EVENT_COLUMNS[:2]))
            return [(r[0], r[1], r[2]) for r in rows]
        return [(r[0], r[1], r[2]) for r in self._rows_by_keys(conn, _SQLITE_KEY_VERSIONS, keys)]

    def _refresh_orders(self, conn: Connection, fresh: Mapping[_Ident, OrderEvent],
                        details: Mapping[int, Mapping[str, Any]],
                        ) -> tuple[tuple[Order, ...], tuple[OrderKey, ...]]:
        """Re-derive and store the current state of every order that gained an event.

        Events inserted by this call are taken from memory; only older events of the same
        orders are read back (and decoded). On PostgreSQL a per-order advisory lock makes
        concurrent appenders to one order re-derive one after the other, each seeing the
        other's committed events (SQLite has a single writer anyway). A stored state this log wrote itself
        is taken from its memo, when it keeps one, instead of decoded; ``details`` holds the
        encodings of the fresh events' details (see :func:`_order_row`).
        """
        keys = sorted({(ident[0], ident[1]) for ident in fresh})
        if not keys:
            return (), ()
        if self._dialect == "postgresql":
            conn.execute(_PG_LOCK_KEYS, {"ids": sorted({_advisory_lock_id(f"{ch}:{oid}") for ch, oid in keys})})
        fresh_by_key: dict[_Key, list[OrderEvent]] = defaultdict(list)
        for ident, event in fresh.items():
            fresh_by_key[(ident[0], ident[1])].append(event)
        # Fast path: the stored state is older than every new event, so it can be advanced
        # without reading the order's history back (the usual in-order stream).
        advanced: dict[_Key, Order] = {}
        for key, (version, state) in self._stored_states(conn, keys).items():
            if min(e.event_version for e in fresh_by_key[key]) > version:
                base = (self._memo.order(key, state) if self._memo is not None
                        else codec.order_from_dict(codec.stored_json(state)))
                advanced[key] = advance_order(base, fresh_by_key[key])
        slow = [k for k in keys if k not in advanced]
        by_key: dict[_Key, list[OrderEvent]] = defaultdict(list)
        missing: list[_Ident] = []
        for ident in self._versions_of(conn, slow) if slow else ():
            known = fresh.get(ident)
            if known is None:
                missing.append(ident)
            else:
                by_key[(ident[0], ident[1])].append(known)
        for ch, oid, _, payload in self._select_by_ident(conn, _PG_PAYLOADS, _SQLITE_PAYLOADS, missing):
            by_key[(ch, oid)].append(codec.event_from_dict(codec.stored_json(payload)))

        orders: list[Order] = []
        pending: list[_Key] = []
        for key in keys:
            order = advanced[key] if key in advanced else derive_order(by_key[key])
            if order is None:
                pending.append(key)
            else:
                orders.append(order)
        if orders:
            self._upsert_orders(conn, orders, details)
        for chunk in _chunks(pending, _IN_CHUNK):  # normally a no-op: state never un-derives
            conn.execute(ORDERS.delete().where(pairs_in(ORDERS.c.channel, ORDERS.c.channel_order_id, chunk)))
        return tuple(orders), tuple(_okey(ch, oid) for ch, oid in pending)

    def _upsert_orders(self, conn: Connection, orders: Sequence[Order],
                       details: Mapping[int, Mapping[str, Any]]) -> None:
        """Write the orders' rows and remember each state as stored (the JSON text on SQLite; on PostgreSQL
        the JSON value, which is what its driver returns for a ``jsonb`` column)."""
        rows = [_order_row(order, details) for order in orders]
        if self._dialect == "postgresql":
            conn.execute(_PG_UPSERT_ORDERS, rows)
            stored: list[Any] = [row["state"] for row in rows]
        else:
            bound = bound_rows(rows, _ORDER_COLUMNS, self._order_binds)
            _SQLITE_ORDER_ROWS.execute(conn, bound)
            stored = [row[_ORDER_STATE_AT] for row in bound]
        if self._memo is not None:
            for order, state in zip(orders, stored, strict=True):
                self._memo.keep((order.key.channel.value, order.key.channel_order_id), state, order)

    # ------------------------------------------------------------------ reading

    def get(self, key: OrderKey) -> Order | None:
        """Current state of one order, or ``None`` when unknown or still without its order document."""
        stmt = sa.select(ORDERS.c.state).where(ORDERS.c.channel == key.channel.value,
                                                ORDERS.c.channel_order_id == key.channel_order_id)
        with self._guard(), self._engine.connect() as conn:
            state = conn.execute(stmt).scalar_one_or_none()
        return None if state is None else codec.order_from_dict(state)

    def history(self, key: OrderKey) -> list[OrderEvent]:
        """Every stored event of one order by ``event_version`` (empty when unknown)."""
        c = ORDER_EVENTS.c
        stmt = sa.select(c.payload).where(c.channel == key.channel.value,
                                          c.channel_order_id == key.channel_order_id).order_by(c.event_version)
        with self._guard(), self._engine.connect() as conn:
            payloads = conn.execute(stmt).scalars().all()
        return [codec.event_from_dict(p) for p in payloads]

    def _pages(self, base: sa.Select[Any], order: Sequence[sa.ColumnElement[Any]], *,
               batch_size: int) -> Iterator[sa.Row[Any]]:
        """Keyset pagination: short read transactions, stable order, no server cursor held open.

        Rows appended while iterating appear if they sort after the current position.
        """
        if batch_size < 1:
            raise InvalidInputError.must("batch_size", "a positive integer", batch_size)
        after: tuple[Any, ...] | None = None
        width = len(order)
        while True:
            stmt = base.order_by(*order).limit(batch_size)
            if after is not None:
                stmt = stmt.where(sa.tuple_(*order) > sa.tuple_(
                    *(sa.literal(v, type_=col.type) for v, col in zip(after, order, strict=True))))
            with self._guard(), self._engine.connect() as conn:
                rows = conn.execute(stmt).all()
            yield from rows
            if len(rows) < batch_size:
                return
            after = tuple(rows[-1][-width:])

    def iter_events(self, *, start: datetime | None = None, end: datetime | None = None,
                    batch_size: int = 5000) -> Iterator[OrderEvent]:
        """Stored events with ``start <= event_time < end`` (UTC; either bound optional).

        Ordered by ``(event_time, channel, channel_order_id, event_version)``: event time,
        ties broken by the order key, never by receive time. Read page by page
        (``batch_size`` events per query).
        """
        c = ORDER_EVENTS.c
        base = sa.select(c.payload, *_EVENT_ORDER)
        start, end = _aware(start, field="start"), _aware(end, field="end")
        if start is not None:
            base = base.where(c.event_time >= start)
        if end is not None:
            base = base.where(c.event_time < end)
        for row in self._pages(base, _EVENT_ORDER, batch_size=batch_size):
            yield codec.event_from_dict(row[0])

    def events_after(self, cursor: int, *, limit: int = 5000) -> list[tuple[int, OrderEvent]]:
        """Events stored after row ``cursor`` with their row ids, in row order: the feed of a reader that follows
        the log as it grows (the order-health sweeper). On PostgreSQL ids are handed out before commit, so a
        follower re-reads a margin behind its cursor; folding an event twice must be harmless to it."""
        c = ORDER_EVENTS.c
        stmt = sa.select(c.id, c.payload).where(c.id > cursor).order_by(c.id).limit(limit)
        with self._guard(), self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [(int(i), codec.event_from_dict(p)) for i, p in rows]

    def last_event_id(self) -> int:
        """The highest event row id (0 for an empty log)."""
        return self._scalar_int(sa.select(sa.func.coalesce(sa.func.max(ORDER_EVENTS.c.id), 0)))

    def iter_orders(self, *, start: datetime | None = None, end: datetime | None = None,
                    batch_size: int = 5000) -> Iterator[Order]:
        """Current orders created in ``start <= created_at < end`` (UTC; bounds optional).

        Ordered by ``(details.created_at, channel, channel_order_id)``. Orders still
        without their order document are not included (see the module docstring).
        """
        base = sa.select(ORDERS.c.state, *_ORDER_ORDER)
        start, end = _aware(start, field="start"), _aware(end, field="end")
        if start is not None:
            base = base.where(ORDERS.c.created_at >= start)
        if end is not None:
            base = base.where(ORDERS.c.created_at < end)
        for row in self._pages(base, _ORDER_ORDER, batch_size=batch_size):
            yield codec.order_from_dict(row[0])

    def _scalar_int(self, stmt: sa.Select[Any]) -> int:
        with self._guard(), self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def count_events(self) -> int:
        """Number of stored events."""
        return self._scalar_int(sa.select(sa.func.count()).select_from(ORDER_EVENTS))

    def count_orders(self) -> int:
        """Number of orders with a current state (orders awaiting their document excluded)."""
        return self._scalar_int(sa.select(sa.func.count()).select_from(ORDERS))

    def status_counts(self) -> dict[OrderStatus, int]:
        """Orders per current status; statuses no order is in are absent."""
        stmt = sa.select(ORDERS.c.status, sa.func.count()).group_by(ORDERS.c.status)
        with self._guard(), self._engine.connect() as conn:
            return {OrderStatus(status): int(n) for status, n in conn.execute(stmt)}

    def snapshot(self) -> LogSnapshot:
        """Every event identity and content hash plus every current order, sorted in Python
        (code point order), so logs on different backends compare equal when they hold the
        same content."""
        c = ORDER_EVENTS.c
        with self._guard(), self._engine.connect() as conn:
            event_rows = conn.execute(sa.select(c.channel, c.channel_order_id, c.event_version,
                                                c.content_hash)).all()
            order_rows = conn.execute(sa.select(ORDERS.c.channel, ORDERS.c.channel_order_id,
                                                ORDERS.c.state)).all()
        events = sorted((ch, oid, int(v), h) for ch, oid, v, h in event_rows)
        orders = sorted((ch, oid, state) for ch, oid, state in order_rows)
        return LogSnapshot(
            events=tuple((str(_okey(ch, oid)), v, h) for ch, oid, v, h in events),
            orders=tuple((str(_okey(ch, oid)), codec.canonical_json(codec.order_to_dict(
                codec.order_from_dict(state))).decode()) for ch, oid, state in orders),
        )
