"""The outbox: every message orderguard owes another system, kept in the order-log database until delivered.

A held order's alert to the review team's chat robot, a reviewer's release or cancel to
the shop's order system: each is first a row of table ``outbox`` (migration 0007),
written by the request that caused it, and a sender (``serving.notify.sender``) delivers
rows later. So a receiver that is down or slow delays its messages but never slows or
fails the request that queued them, and a message outlives a restart of the service.

Pure SQL, no network: what a message says and how it is sent is the sender's business.

* **Idempotent queuing.** ``(destination, dedup_key)`` is unique; queuing the same
  message again is a no-op (``INSERT … ON CONFLICT DO NOTHING``, on SQLite and
  PostgreSQL alike), so a retried request or a replayed score never alerts twice.
* **Retries.** A failed delivery is tried again after :meth:`Backoff.delay`: doubling
  from ``first`` up to ``cap``, without jitter, so a test (or an operator reading
  ``next_attempt_at``) can tell exactly when. After ``max_attempts`` the message is a
  *dead letter*: ``failed_at`` is set, it is never sent again, and it stays in the table
  with its ``last_error`` for inspection (:meth:`Outbox.dead_letters`).
* **Claiming.** Several sender processes may share one database (one per service
  worker). :meth:`Outbox.claim` leases due rows with one conditional
  ``UPDATE … SET next_attempt_at = now + lease WHERE id IN (…) AND <still due>``: of
  two senders that read the same rows, only the one whose update matched a row owns
  it; the other's condition no longer holds. This was chosen over PostgreSQL's
  ``SELECT … FOR UPDATE SKIP LOCKED`` because it is one code path, tested on both
  databases (SQLite has no row locks), holds no lock across the network call, and
  lets a crashed sender's rows come back by themselves when the lease ends. What
  ``SKIP LOCKED`` would add, contending senders each finding *other* rows at once,
  buys nothing at alert volumes: the losing sender simply finds them gone and looks
  again at its next poll. Delivery is therefore **at least once**: a sender that dies
  after sending but before :meth:`Outbox.delivered` sends again after the lease, so
  every message carries its ``dedup_key`` for the receiver to drop repeats.

Times are tz-aware UTC, given by the caller (``now``); nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from orderguard.errors import ConfigError, InvalidInputError
from orderguard.ingest.orderlog import OUTBOX, connection_guard, redacted

#: Longest topic and destination (the columns' sizes).
TOPIC_MAX = 32
DESTINATION_MAX = 64
#: Longest dedup key, and the part of an error message kept in ``last_error`` (characters).
DEDUP_KEY_MAX = 512
ERROR_MAX = 1000


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to queue: what it is about (``topic``), who gets it, its identity, its content.

    Attributes:
        topic: what kind of message (``alert``, ``order_action`` …); at most 32 characters.
        destination: who receives it (a robot, the order system); at most 64 characters.
        dedup_key: unique per destination: the same key again is the same message.
        payload: JSON-serialisable content; the sender renders it for its receiver.
    """

    topic: str
    destination: str
    dedup_key: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One stored message and its delivery state.

    ``next_attempt_at`` is when it may be (re)sent; while a sender holds it, the end of
    that sender's lease. ``attempts`` counts deliveries tried, the successful one included.
    """

    id: int
    topic: str
    destination: str
    dedup_key: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None
    last_error: str | None

    @property
    def state(self) -> str:
        """``delivered``, ``dead`` (a dead letter) or ``pending``."""
        if self.delivered_at is not None:
            return "delivered"
        return "dead" if self.failed_at is not None else "pending"


@dataclass(frozen=True, slots=True)
class Backoff:
    """When a failed message is tried again, and how often at most.

    >>> b = Backoff(first=timedelta(seconds=30), cap=timedelta(minutes=4), max_attempts=10)
    >>> [b.delay(n).total_seconds() for n in range(1, 7)]
    [30.0, 60.0, 120.0, 240.0, 240.0, 240.0]
    """

    first: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 20

    def __post_init__(self) -> None:
        if self.first <= timedelta(0):
            raise ConfigError.must("backoff_first", "a positive duration", str(self.first))
        if self.cap < self.first:
            raise ConfigError.must("backoff_cap", f"at least backoff_first ({self.first})", str(self.cap))
        if self.max_attempts < 1:
            raise ConfigError.must("max_attempts", "at least 1", self.max_attempts)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed delivery: ``first · 2^(attempts-1)``, at most ``cap``."""
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1; got {attempts}")
        unit = timedelta(microseconds=1)
        first, cap = self.first // unit, self.cap // unit
        return timedelta(microseconds=min(cap, first << min(attempts - 1, 64)))


def _aware(now: datetime, field: str = "now") -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInputError.must(field, "a tz-aware datetime", now)
    return now


def _checked(message: Outgoing) -> Outgoing:
    for field, value, most in (("topic", message.topic, TOPIC_MAX), ("destination", message.destination,
                                                                      DESTINATION_MAX),
                               ("dedup_key", message.dedup_key, DEDUP_KEY_MAX)):
        if not isinstance(value, str) or not value or len(value) > most:
            raise InvalidInputError.must(field, f"1 to {most} characters", value)
    if not isinstance(message.payload, Mapping):
        raise InvalidInputError.must("payload", "a JSON object", type(message.payload).__name__)
    return message


def _message(row: sa.Row[Any]) -> Message:
    m = row._mapping
    return Message(id=int(m["id"]), topic=m["topic"], destination=m["destination"], dedup_key=m["dedup_key"],
                   payload=dict(m["payload"]), created_at=m["created_at"], attempts=int(m["attempts"]),
                   next_attempt_at=m["next_attempt_at"], delivered_at=m["delivered_at"], failed_at=m["failed_at"],
                   last_error=m["last_error"])


_C = OUTBOX.c
_OPEN = sa.and_(_C.delivered_at.is_(None), _C.failed_at.is_(None))


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(_OPEN, _C.next_attempt_at <= now)


class Outbox:
    """The ``outbox`` table of the order-log database (open the order log first: it migrates the schema).

    Every method is one or two short transactions, safe to call from several threads and
    processes; a lost database raises ``ServiceUnavailableError`` like every store of the
    order-log database.
    """

    def __init__(self, engine: Engine) -> None:
        # Cheap on purpose (no I/O, no URL rendering): the score path may build one per held order.
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigError.must("database.url", "a SQLite or PostgreSQL database", redacted(engine.url))
        self._engine = engine

    def _guard(self) -> AbstractContextManager[None]:
        return connection_guard("outbox", redacted(self._engine.url))

    # ------------------------------------------------------------------ queuing

    def enqueue(self, topic: str, destination: str, *, dedup_key: str, payload: Mapping[str, Any],
                now: datetime) -> bool:
        """Queue one message, due at once; ``False`` (and nothing changed) when it is queued already."""
        return self.enqueue_many([Outgoing(topic, destination, dedup_key, payload)], now=now) == 1

    def enqueue_many(self, messages: Iterable[Outgoing], *, now: datetime) -> int:
        """Queue several messages in one ``INSERT``; how many were new (repeats are skipped silently).

        One statement, so a request that queues a message per receiver costs one round trip.
        """
        at = _aware(now)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for message in map(_checked, messages):
            rows.setdefault((message.destination, message.dedup_key), {
                "topic": message.topic, "destination": message.destination, "dedup_key": message.dedup_key,
                "payload": dict(message.payload), "created_at": at, "attempts": 0, "next_attempt_at": at})
        if not rows:
            return 0
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        stmt = (insert(OUTBOX).values(list(rows.values()))
                .on_conflict_do_nothing(index_elements=["destination", "dedup_key"]).returning(_C.id))
        with self._guard(), self._engine.begin() as conn:
            return len(conn.execute(stmt).all())

    # ------------------------------------------------------------------ sending

    def due(self, *, now: datetime, limit: int = 100) -> list[Message]:
        """Messages that may be sent at ``now``, longest waiting first (``next_attempt_at``, then id); nothing
        is claimed: for looking, use :meth:`claim` to send."""
        stmt = sa.select(OUTBOX).where(_due(_aware(now))).order_by(_C.next_attempt_at, _C.id).limit(limit)
        with self._guard(), self._engine.connect() as conn:
            return [_message(row) for row in conn.execute(stmt)]

    def claim(self, *, now: datetime, limit: int, lease: timedelta) -> list[Message]:
        """Due messages leased to the caller until ``now + lease``, in :meth:`due` order.

        No other caller gets them before the lease ends (see the module's "Claiming");
        the caller then reports each with :meth:`delivered` or :meth:`failed_attempt`,
        or hands some back with :meth:`postpone`. Choose ``lease`` longer than the
        sending can take: a message whose lease ends while it is being sent may be sent
        twice.
        """
        if lease <= timedelta(0):
            raise InvalidInputError.must("lease", "a positive duration", str(lease))
        candidates = self.due(now=now, limit=limit)
        if not candidates:
            return []
        until = now + lease
        stmt = (OUTBOX.update().where(_C.id.in_([m.id for m in candidates]), _due(now))
                .values(next_attempt_at=until).returning(_C.id))
        with self._guard(), self._engine.begin() as conn:
            won = {int(i) for i in conn.execute(stmt).scalars()}
        return [replace(m, next_attempt_at=until) for m in candidates if m.id in won]

    def delivered(self, message_id: int, *, now: datetime) -> bool:
        """Record a successful delivery; ``False`` when the message was delivered (or dead) already."""
        stmt = (OUTBOX.update().where(_C.id == message_id, _OPEN)
                .values(delivered_at=_aware(now), attempts=_C.attempts + 1, last_error=None))
        with self._guard(), self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def failed_attempt(self, message_id: int, *, now: datetime, error: str, backoff: Backoff,
                       final: bool = False) -> Message | None:
        """Record a failed delivery: due again after ``backoff.delay(attempts)``, or a dead letter once
        ``backoff.max_attempts`` deliveries have failed (or at once when ``final``: retrying cannot help).

        Returns the message as stored now, or ``None`` when it is no longer pending (delivered or dead).
        """
        at = _aware(now)
        text = error.strip()[:ERROR_MAX] or "unknown error"
        for _ in range(3):  # a concurrent change of the same row (a lapsed lease) is re-read, not overwritten
            current = self.get(message_id)
            if current is None or current.state != "pending":
                return None
            attempts = current.attempts + 1
            dead = final or attempts >= backoff.max_attempts
            values: dict[str, Any] = {"attempts": attempts, "last_error": text}
            if dead:
                values["failed_at"] = at
            else:
                values["next_attempt_at"] = at + backoff.delay(attempts)
            # Compare-and-set on the attempts seen: the write transaction starts with its write (SQLite's
            # writer lock is then taken before reading, so concurrent writers queue instead of failing).
            stmt = OUTBOX.update().where(_C.id == message_id, _OPEN, _C.attempts == current.attempts).values(**values)
            with self._guard(), self._engine.begin() as conn:
                if conn.execute(stmt).rowcount == 1:
                    return replace(current, **values)
        return None

    def postpone(self, message_ids: Sequence[int], *, until: datetime) -> int:
        """Hand claimed messages back unsent, due at ``until`` (their attempts unchanged): a sender that finds a
        receiver down does not try that receiver's other messages now. How many were pending."""
        if not message_ids:
            return 0
        stmt = OUTBOX.update().where(_C.id.in_(list(message_ids)), _OPEN).values(next_attempt_at=_aware(until))
        with self._guard(), self._engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    # ------------------------------------------------------------------ inspecting

    def get(self, message_id: int) -> Message | None:
        """One message by id, in any state."""
        with self._guard(), self._engine.connect() as conn:
            row = conn.execute(sa.select(OUTBOX).where(_C.id == message_id)).first()
        return _message(row) if row is not None else None

    def find(self, destination: str, dedup_key: str) -> Message | None:
        """The message queued for ``destination`` under ``dedup_key``, in any state."""
        stmt = sa.select(OUTBOX).where(_C.destination == destination, _C.dedup_key == dedup_key)
        with self._guard(), self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        return _message(row) if row is not None else None

    def pending_count(self) -> int:
        """Messages neither delivered nor dead (those being sent right now included)."""
        with self._guard(), self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(OUTBOX).where(_OPEN)).scalar_one())

    def dead_letters(self, *, limit: int = 100) -> list[Message]:
        """Messages given up on, most recent first, with their ``last_error``."""
        stmt = (sa.select(OUTBOX).where(_C.failed_at.is_not(None), _C.delivered_at.is_(None))
                .order_by(_C.failed_at.desc(), _C.id.desc()).limit(limit))
        with self._guard(), self._engine.connect() as conn:
            return [_message(row) for row in conn.execute(stmt)]
