"""Fulfilment steps: what the systems around an order report about it, kept beside the order log.

A channel says an order is paid, shipped, delivered. Between those words sit the shop's
own systems, and that is where orders get stuck: the payment gateway's callback to the
ERP/OMS is lost, the ERP never acknowledges the order, stock is not locked, the waybill
is printed but the parcel never leaves the warehouse, the carrier goes silent, the
carrier says delivered while the buyer says not received. Each of those systems reports
its step here (``POST /v1/fulfilment`` or ``orderguard health ingest FILE``), and the
order-health sweeper (``health``) reads one timeline per order across all of them.

The rules are the order log's:

* **Idempotent.** A step is keyed by ``(channel, order id, kind, event_id)``, the
  sender's own id of the report. The same report again is a duplicate; the same key
  with other content is a conflict (the first accepted is kept, the newcomer refused
  with 409 naming ``event_id``). A refused item never stops the good ones of a batch.
* **Event time.** Everything is ordered by ``time``, the moment the step happened in the
  sender's system, never by arrival; ``received_at`` is kept for audit only.
* **Bounded, plain input.** One documented JSON object per step (the same for every
  sender): text fields have length limits and no control characters; a time without an
  offset is shop time (Asia/Shanghai).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from orderguard.clock import as_utc
from orderguard.dbkeys import pairs_in
from orderguard.errors import EventConflictError, InvalidInputError, must
from orderguard.ingest.codec import stored_json
from orderguard.ingest.orderlog import FULFILMENT_EVENTS, AppendOutcome, connection_guard, redacted
from orderguard.schema import Channel, OrderKey

#: Longest text of each free field (characters) and the most steps one request or file chunk may carry.
ID_MAX = 128
TEXT_MAX = 200
BATCH_MAX = 1000


class StepKind(StrEnum):
    """Which step of fulfilment a report is about, in the order they normally happen."""

    PAYMENT_CALLBACK = "payment_callback"  # the payment gateway confirmed the payment to the ERP/OMS
    DEPOSIT_PAID = "deposit_paid"  # a presale's deposit was paid (``due_at``: the balance's deadline)
    BALANCE_PAID = "balance_paid"  # a presale's balance was paid
    ERP_SYNC = "erp_sync"  # the ERP/OMS acknowledged the order
    INVENTORY_LOCK = "inventory_lock"  # stock was reserved for it
    WAYBILL_PRINTED = "waybill_printed"  # the warehouse printed its waybill
    OUT_SCAN = "out_scan"  # the parcel left the warehouse (出库扫描)
    TRACKING = "tracking"  # a carrier tracking node (carrier, waybill, node)
    DELIVERED = "delivered"  # the carrier says delivered / signed for
    COMPLAINT = "complaint"  # the buyer complained (``reason``: not_received, damaged …)


#: Fields a report may carry, each with what it must be (for the error message and the docs).
FIELDS: Mapping[str, str] = {
    "channel": "the sales channel (tmall, jd, douyin, kuaishou, wechat, site)",
    "order_id": "the channel's order id",
    "kind": "the step: " + ", ".join(k.value for k in StepKind),
    "event_id": "the sender's id of this report (repeats are duplicates)",
    "time": "when it happened, ISO 8601 (no offset = shop time)",
    "source": "the reporting system (alipay, erp, wms, sf-express …), optional",
    "carrier": "carrier code, optional",
    "waybill": "waybill number, optional",
    "node": "tracking node text or code, optional",
    "reason": "complaint reason (not_received, damaged, wrong_item, other), optional",
    "due_at": "a deposit's balance deadline, ISO 8601, optional",
}
_TEXT_FIELDS = ("source", "carrier", "waybill", "node", "reason")


@dataclass(frozen=True, slots=True)
class FulfilmentEvent:
    """One reported step of one order.

    Attributes:
        key: the order.
        kind: the step.
        event_id: the sender's id of the report; with ``key`` and ``kind`` its identity.
        event_time: when the step happened (UTC); everything orders by it.
        received_at: when orderguard received the report (UTC); audit only.
        due_at: for ``deposit_paid``, the deadline of the balance payment.
    """

    key: OrderKey
    kind: StepKind
    event_id: str
    event_time: datetime
    received_at: datetime
    source: str = ""
    carrier: str = ""
    waybill: str = ""
    node: str = ""
    reason: str = ""
    due_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored and wire form (times as UTC ISO text)."""
        out: dict[str, Any] = {"channel": self.key.channel.value, "order_id": self.key.channel_order_id,
                               "kind": self.kind.value, "event_id": self.event_id,
                               "time": self.event_time.isoformat()}
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.due_at is not None:
            out["due_at"] = self.due_at.isoformat()
        return out

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical content (receive time excluded: a retry is the same report)."""
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _text(item: Mapping[str, Any], name: str, *, required: bool, most: int) -> str:
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInputError(f"`{name}` is required ({FIELDS[name]})", field=name)
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInputError.must(name, "a string", value)
    text = str(value).strip()
    if not text and required:
        raise InvalidInputError(f"`{name}` is required ({FIELDS[name]})", field=name)
    if len(text) > most:
        raise InvalidInputError.must(name, f"at most {most} characters", text)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InvalidInputError.must(name, "text without control characters", text)
    return text


def _moment(item: Mapping[str, Any], name: str, *, required: bool) -> datetime | None:
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInputError(f"`{name}` is required ({FIELDS[name]})", field=name)
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidInputError.must(name, "an ISO 8601 time such as 2024-11-11T10:00:00+08:00", value)
    try:
        moment = as_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError) as e:
        raise InvalidInputError.must(name, "an ISO 8601 time such as 2024-11-11T10:00:00+08:00", value) from e
    if not 2000 <= moment.year <= 2200:
        raise InvalidInputError.must(name, "a time between the years 2000 and 2200", value)
    return moment


def parse_event(item: object, *, received_at: datetime) -> FulfilmentEvent:
    """A report as sent (one JSON object, see :data:`FIELDS`) → a :class:`FulfilmentEvent`.

    >>> from datetime import UTC
    >>> e = parse_event({"channel": "jd", "order_id": "9", "kind": "out_scan", "event_id": "wms-1",
    ...                  "time": "2024-11-11T10:00:00"}, received_at=datetime(2024, 11, 11, tzinfo=UTC))
    >>> (str(e.key), e.kind.value, e.event_time.isoformat())
    ('jd:9', 'out_scan', '2024-11-11T02:00:00+00:00')

    Raises:
        InvalidInputError: naming the first field that is missing or wrong.
    """
    if not isinstance(item, Mapping):
        raise InvalidInputError.must("body", "a JSON object (one step) or an array of them", item)
    unknown = sorted(str(k) for k in item if k not in FIELDS)
    if unknown:
        raise InvalidInputError(f"`{unknown[0]}` is not a field of a fulfilment step (fields: "
                                f"{', '.join(FIELDS)})", field=unknown[0])
    channel_text = _text(item, "channel", required=True, most=16).lower()
    try:
        channel = Channel(channel_text)
    except ValueError as e:
        raise InvalidInputError.must("channel", f"one of {', '.join(c.value for c in Channel)}",
                                     channel_text) from e
    kind_text = _text(item, "kind", required=True, most=32).lower()
    try:
        kind = StepKind(kind_text)
    except ValueError as e:
        raise InvalidInputError.must("kind", f"one of {', '.join(k.value for k in StepKind)}", kind_text) from e
    event_time = _moment(item, "time", required=True)
    assert event_time is not None
    texts = {name: _text(item, name, required=False, most=TEXT_MAX) for name in _TEXT_FIELDS}
    return FulfilmentEvent(key=OrderKey(channel, _text(item, "order_id", required=True, most=ID_MAX)), kind=kind,
                           event_id=_text(item, "event_id", required=True, most=ID_MAX), event_time=event_time,
                           received_at=received_at, due_at=_moment(item, "due_at", required=False),
                           reason=texts["reason"].lower(), **{k: v for k, v in texts.items() if k != "reason"})


def event_from_row(payload: Mapping[str, Any], received_at: datetime) -> FulfilmentEvent:
    """A stored report back as an event (the stored form is the wire form, already checked)."""
    return parse_event(payload, received_at=received_at)


@dataclass(frozen=True, slots=True)
class StepAppend:
    """What :meth:`FulfilmentLog.append` did with each report, in input order."""

    outcomes: tuple[AppendOutcome, ...]

    @property
    def inserted(self) -> int:
        """Reports newly stored."""
        return self.outcomes.count(AppendOutcome.INSERTED)

    @property
    def duplicates(self) -> int:
        """Reports stored before with the same content."""
        return self.outcomes.count(AppendOutcome.DUPLICATE)

    @property
    def conflicts(self) -> int:
        """Reports refused: their key is taken by other content."""
        return self.outcomes.count(AppendOutcome.CONFLICT)


def conflict_error(event: FulfilmentEvent) -> EventConflictError:
    """The 409 of a report whose key is taken by other content."""
    return EventConflictError(must("event_id", f"new for {event.key} {event.kind.value} or carry identical "
                                               "content", event.event_id), field="event_id")


_Ident = tuple[str, str, str, str]


def _ident(event: FulfilmentEvent) -> _Ident:
    return (event.key.channel.value, event.key.channel_order_id, event.kind.value, event.event_id)


@dataclass(frozen=True, slots=True)
class StoredStep:
    """A stored report and its row id (the sweeper's cursor)."""

    id: int
    event: FulfilmentEvent


class FulfilmentLog:
    """Append-only store of fulfilment reports on the order log's engine (tables made by its migrations)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._where = redacted(engine.url)
        self._dialect = engine.dialect.name

    def _guard(self) -> AbstractContextManager[None]:
        return connection_guard("order log", self._where)

    def append(self, events: Sequence[FulfilmentEvent]) -> StepAppend:
        """Store new reports in one transaction; duplicates and conflicts are reported, never raised."""
        first: dict[_Ident, int] = {}
        rows: list[dict[str, Any]] = []
        for i, event in enumerate(events):
            ident = _ident(event)
            if ident in first:
                continue
            first[ident] = i
            rows.append({"channel": ident[0], "channel_order_id": ident[1], "kind": ident[2], "event_id": ident[3],
                         "event_time": event.event_time, "received_at": event.received_at,
                         "content_hash": event.content_hash, "payload": event.to_dict()})
        if not rows:
            return StepAppend(())
        rows.sort(key=lambda r: (r["channel"], r["channel_order_id"], r["kind"], r["event_id"]))
        c = FULFILMENT_EVENTS.c
        with self._guard(), self._engine.begin() as conn:
            inserted = self._insert(conn, rows)
            taken = [ident for ident in first if ident not in inserted]
            stored: dict[_Ident, str] = {}
            for start in range(0, len(taken), 200):
                chunk = taken[start:start + 200]
                # the orders' steps, narrowed to the exact keys here: a row-value IN would scan on SQLite
                stmt = sa.select(c.channel, c.channel_order_id, c.kind, c.event_id, c.content_hash).where(
                    pairs_in(c.channel, c.channel_order_id, [i[:2] for i in chunk]))
                wanted = set(chunk)
                stored.update({ident: r[4] for r in conn.execute(stmt)
                               if (ident := (r[0], r[1], r[2], r[3])) in wanted})
        outcomes: list[AppendOutcome] = []
        for i, event in enumerate(events):
            ident = _ident(event)
            if ident in inserted and first[ident] == i:
                outcomes.append(AppendOutcome.INSERTED)
            elif event.content_hash == stored.get(ident, events[first[ident]].content_hash):
                outcomes.append(AppendOutcome.DUPLICATE)
            else:
                outcomes.append(AppendOutcome.CONFLICT)
        return StepAppend(tuple(outcomes))

    def _insert(self, conn: Connection, rows: list[dict[str, Any]]) -> set[_Ident]:
        c = FULFILMENT_EVENTS.c
        keys = [c.channel, c.channel_order_id, c.kind, c.event_id]
        if self._dialect == "postgresql":
            pg = postgresql.insert(FULFILMENT_EVENTS).on_conflict_do_nothing(index_elements=keys).returning(*keys)
            return {(r[0], r[1], r[2], r[3]) for r in conn.execute(pg, rows)}
        lite = sqlite.insert(FULFILMENT_EVENTS).on_conflict_do_nothing(index_elements=keys).returning(*keys)
        return {(r[0], r[1], r[2], r[3]) for r in conn.execute(lite, rows)}

    def of_order(self, key: OrderKey) -> list[FulfilmentEvent]:
        """Every report of one order, by event time."""
        c = FULFILMENT_EVENTS.c
        stmt = (sa.select(c.payload, c.received_at)
                .where(c.channel == key.channel.value, c.channel_order_id == key.channel_order_id)
                .order_by(c.event_time, c.id))
        with self._guard(), self._engine.connect() as conn:
            return [event_from_row(stored_json(p), r) for p, r in conn.execute(stmt)]

    def after(self, cursor: int, *, limit: int = 5000) -> list[StoredStep]:
        """Reports stored after row ``cursor``, oldest row first (the sweeper's feed)."""
        c = FULFILMENT_EVENTS.c
        stmt = sa.select(c.id, c.payload, c.received_at).where(c.id > cursor).order_by(c.id).limit(limit)
        with self._guard(), self._engine.connect() as conn:
            return [StoredStep(int(i), event_from_row(stored_json(p), r)) for i, p, r in conn.execute(stmt)]

    def iter_range(self, *, start: datetime | None = None, end: datetime | None = None,
                   page: int = 5000) -> Iterator[StoredStep]:
        """Reports with ``start <= time < end`` by event time (ties by row), paged by keyset (replays)."""
        c = FULFILMENT_EVENTS.c
        after: tuple[datetime, int] | None = None
        while True:
            stmt = sa.select(c.id, c.payload, c.received_at, c.event_time)
            if start is not None:
                stmt = stmt.where(c.event_time >= start)
            if end is not None:
                stmt = stmt.where(c.event_time < end)
            if after is not None:
                stmt = stmt.where(sa.tuple_(c.event_time, c.id) > sa.tuple_(
                    sa.literal(after[0], type_=c.event_time.type), sa.literal(after[1], type_=c.id.type)))
            with self._guard(), self._engine.connect() as conn:
                rows = conn.execute(stmt.order_by(c.event_time, c.id).limit(page)).all()
            for i, p, r, _ in rows:
                yield StoredStep(int(i), event_from_row(stored_json(p), r))
            if len(rows) < page:
                return
            after = (rows[-1][3], int(rows[-1][0]))

    def last_id(self) -> int:
        """The highest report row id (0 when none is stored)."""
        c = FULFILMENT_EVENTS.c
        with self._guard(), self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(c.id), 0))).scalar_one())

    def count(self) -> int:
        """How many reports are stored."""
        with self._guard(), self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(FULFILMENT_EVENTS)).scalar_one())
