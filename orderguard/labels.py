"""The label log: reviewers' verdicts on orders, facts with their own time.

A :class:`~orderguard.schema.Label` says what a reviewer (or a platform's dispute
ruling) concluded about an order and *when* (``labeled_at``). Labels live beside the
order log (same database, table ``labels``, migration 0003) and are append-only:

* a relabel (a later verdict on the same order) adds a row; the history is kept and
  :meth:`LabelLog.current` answers with the newest verdict known at a given time;
* a label is identified by ``(order, labeled_at, reviewer_id)``. The same label
  again (same verdict) is a no-op, so re-importing a file is idempotent; the first
  stored note and source are kept. The same identity with a *different* verdict is a
  conflict and is refused: one reviewer cannot say two things at the same instant;
* a label must name an order of the order log (one whose order document arrived),
  must not predate the order's creation and must not be stamped in the future of the
  moment it is recorded (more than :data:`FUTURE_TOLERANCE` ahead): a label from the
  future would leak into training sets cut before it.

Time semantics (DESIGN.md §3.5): training joins the labels known by its cutoff,
``labeled_at <= cutoff`` (:meth:`LabelLog.current` with ``as_of``); label-derived
features read every label version with ``labeled_at <= t`` (:meth:`LabelLog.iter_labels`).
``recorded_at`` (when orderguard stored the row) is kept for audit, never used for
ordering. Reads are ordered by ``(labeled_at, channel, channel_order_id, reviewer_id)``:
when two reviewers labelled one order at the same instant, the greater reviewer id
(code-point order) is the newer one. That tie rule depends on content only, so two
databases holding the same labels agree, whatever order they were stored in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from orderguard.dbkeys import pairs_in
from orderguard.errors import (
    ConfigError,
    EventConflictError,
    InvalidInputError,
    NotFoundError,
    OrderGuardError,
    must,
)
from orderguard.ingest.orderlog import LABELS, ORDERS, connection_guard, redacted
from orderguard.schema import Channel, Label, OrderKey, Verdict

#: How far ahead of the recording time a label may be stamped (clock skew between a
#: reviewer's workstation or a platform export and this service).
FUTURE_TOLERANCE = timedelta(minutes=5)

#: Longest reviewer id and note accepted (characters).
REVIEWER_MAX = 128
NOTE_MAX = 2000

#: Most order keys bound in one ``IN`` list (2 parameters each).
_IN_CHUNK = 1000

#: Rows per page when streaming labels.
_PAGE = 5000

_Key = tuple[str, str]  # (channel, channel_order_id)
_Ident = tuple[str, str, datetime, str]  # (channel, channel_order_id, labeled_at UTC, reviewer_id)


class LabelOutcome(StrEnum):
    """What happened to one label handed to :meth:`LabelLog.add`."""

    ADDED = "added"
    DUPLICATE = "duplicate"  # the same label is already stored (or earlier in the batch)


@dataclass(frozen=True, slots=True)
class AddResult:
    """Outcome of one :meth:`LabelLog.add` call.

    Attributes:
        outcomes: one per input label, in input order.
        stored: the labels newly stored, normalised (UTC ``labeled_at``, trimmed
            reviewer id), in input order; these are the ones to apply to online features.
    """

    outcomes: tuple[LabelOutcome, ...]
    stored: tuple[Label, ...]

    @property
    def added(self) -> int:
        """Number of labels newly stored."""
        return self.outcomes.count(LabelOutcome.ADDED)

    @property
    def duplicates(self) -> int:
        """Number of labels that were already stored."""
        return self.outcomes.count(LabelOutcome.DUPLICATE)


@dataclass(frozen=True, slots=True)
class LabelProblem:
    """Why one label of a batch cannot be stored.

    Attributes:
        index: 0-based position in the batch.
        error: the reason; its ``field`` is the label's field (``order_key``,
            ``verdict``, ``labeled_at``, ``reviewer_id`` or ``note``).
    """

    index: int
    error: OrderGuardError


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """One stored label version.

    Attributes:
        id: storage sequence number (later rows have higher ids).
        source: where it came from: ``api``, ``cli``, ``file:<name>`` …
        recorded_at: when orderguard stored it, UTC; audit only.
    """

    id: int
    key: OrderKey
    verdict: Verdict
    labeled_at: datetime
    reviewer_id: str
    note: str
    source: str
    recorded_at: datetime

    @property
    def label(self) -> Label:
        """The domain label this record stores."""
        return Label(self.key, self.verdict, self.labeled_at, self.reviewer_id, self.note)


def normalized(label: Label) -> Label | OrderGuardError:
    """The label with UTC time, a known verdict and a trimmed reviewer id, or why it is invalid.

    Checks only what needs no database (see :meth:`LabelLog.check` for the rest).

    >>> from orderguard.schema import Channel
    >>> t = datetime(2024, 11, 12, 10, tzinfo=UTC)
    >>> normalized(Label(OrderKey(Channel.JD, "1"), Verdict.FALSE_POSITIVE, t, " r1 ")).reviewer_id
    'r1'
    >>> normalized(Label(OrderKey(Channel.JD, "1"), Verdict.FALSE_POSITIVE, t, " ")).field
    'reviewer_id'
    """
    try:
        verdict = Verdict(label.verdict)
    except ValueError:
        return InvalidInputError.must("verdict", f"one of {', '.join(v.value for v in Verdict)}", label.verdict)
    at = label.labeled_at
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        return InvalidInputError.must("labeled_at", "a tz-aware datetime", at)
    reviewer = label.reviewer_id.strip() if isinstance(label.reviewer_id, str) else ""
    if not reviewer or len(reviewer) > REVIEWER_MAX:
        return InvalidInputError.must("reviewer_id", f"a non-empty id of at most {REVIEWER_MAX} characters",
                                      label.reviewer_id)
    note = label.note if isinstance(label.note, str) else ""
    if len(note) > NOTE_MAX:
        return InvalidInputError.must("note", f"at most {NOTE_MAX} characters", f"{note[:20]}… ({len(note)})")
    try:
        utc = at.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return InvalidInputError.must("labeled_at", "a time within the calendar", at.isoformat())
    return Label(label.key, verdict, utc, reviewer, note)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _record(row: sa.Row[Any]) -> LabelRecord:
    m = row._mapping
    return LabelRecord(id=int(m["id"]), key=OrderKey(Channel(m["channel"]), m["channel_order_id"]),
                       verdict=Verdict(m["verdict"]), labeled_at=m["labeled_at"], reviewer_id=m["reviewer_id"],
                       note=m["note"], source=m["source"], recorded_at=m["recorded_at"])


def _aware(value: datetime | None, *, field: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidInputError.must(field, "a tz-aware datetime", value)
    return value


class LabelLog:
    """Append-only store of reviewer labels on the order log's engine (tables made by its migrations).

    Every method uses its own short transaction, so one instance can be shared by the
    routes of a service. Open the order log first (``OrderLog.open`` migrates the schema)
    and pass its ``engine``.
    """

    #: Read order; unique per row (the label identity), so it also serves keyset pagination.
    _ORDER = (LABELS.c.labeled_at, LABELS.c.channel, LABELS.c.channel_order_id, LABELS.c.reviewer_id)

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigError.must("database.url", "a SQLite or PostgreSQL database", redacted(engine.url))
        self._engine = engine
        self._dialect = engine.dialect.name
        self._where = redacted(engine.url)

    def _guard(self) -> AbstractContextManager[None]:
        return connection_guard("label", self._where)

    # ------------------------------------------------------------------ writing

    def check(self, labels: Sequence[Label], *, recorded_at: datetime) -> tuple[LabelProblem, ...]:
        """Every reason some of ``labels`` cannot be stored (empty when all can), in input order.

        Nothing is written. A label that is already stored is not a problem (adding it is
        a no-op). Use it to report all bad rows of a file or batch at once.
        """
        when = self._recorded_at(recorded_at)
        with self._guard(), self._engine.connect() as conn:
            problems, _ = self._check(conn, labels, recorded_at=when)
        return problems

    def add(self, labels: Sequence[Label], *, source: str, recorded_at: datetime) -> AddResult:
        """Store new labels atomically; exact repeats are no-ops.

        Args:
            labels: the verdicts to store.
            source: where they come from (``api``, ``cli``, ``file:<name>`` …), kept for audit.
            recorded_at: the time of storing (the caller's clock), UTC; labels stamped more
                than :data:`FUTURE_TOLERANCE` after it are refused.

        Raises:
            NotFoundError: a label names an order that is not in the order log
                (``field="order_key"``).
            InvalidInputError: a label breaks a constraint (bad verdict, naive or too
                early/late ``labeled_at``, empty reviewer id).
            EventConflictError: the same reviewer already gave another verdict on the
                order at the same ``labeled_at``.
            In a batch of several labels the error is the first problem found; its
            message and field name the position (``labels.3.labeled_at``). Nothing of
            the batch is stored on any error.
        """
        if not source.strip():
            raise InvalidInputError.must("source", "non-empty", source)
        when = self._recorded_at(recorded_at)
        for attempt in (1, 2):
            try:
                with self._guard(), self._engine.connect() as conn:
                    if self._dialect == "sqlite":
                        conn.exec_driver_sql("BEGIN IMMEDIATE")  # check and insert under one write lock
                    problems, outcomes = self._check(conn, labels, recorded_at=when)
                    if problems:
                        conn.rollback()
                        raise _as_error(problems, batch=len(labels) > 1)
                    fresh = [label for label, outcome in outcomes if outcome is LabelOutcome.ADDED]
                    if fresh:
                        conn.execute(LABELS.insert(), [_row(label, source=source, recorded_at=when)
                                                       for label in fresh])
                    conn.commit()
                return AddResult(tuple(o for _, o in outcomes), tuple(fresh))
            except sa_exc.IntegrityError:
                # A concurrent writer stored one of these labels between our check and insert;
                # the retry sees it as a duplicate (or a conflict).
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _recorded_at(recorded_at: datetime) -> datetime:
        aware = _aware(recorded_at, field="recorded_at")
        assert aware is not None
        return aware.astimezone(UTC)

    def _check(self, conn: Connection, labels: Sequence[Label], *, recorded_at: datetime,
               ) -> tuple[tuple[LabelProblem, ...], list[tuple[Label, LabelOutcome]]]:
        """Problems, and for a clean batch each normalised label with its outcome."""
        problems: list[LabelProblem] = []
        clean: list[tuple[int, Label]] = []
        for i, label in enumerate(labels):
            result = normalized(label)
            if isinstance(result, OrderGuardError):
                problems.append(LabelProblem(i, result))
            elif result.labeled_at > recorded_at + FUTURE_TOLERANCE:
                problems.append(LabelProblem(i, InvalidInputError(
                    must("labeled_at", f"no later than the time of recording ({recorded_at.isoformat()})",
                         result.labeled_at.isoformat()), field="labeled_at")))
            else:
                clean.append((i, result))
        keys = sorted({(label.key.channel.value, label.key.channel_order_id) for _, label in clean})
        created = self._created_at(conn, keys)
        stored = self._stored_verdicts(conn, [k for k in keys if k in created])
        outcomes: list[tuple[Label, LabelOutcome]] = []
        for i, label in clean:
            key = (label.key.channel.value, label.key.channel_order_id)
            if key not in created:
                problems.append(LabelProblem(i, NotFoundError(
                    must("order_key", "an order in the order log", str(label.key)), field="order_key")))
                continue
            if label.labeled_at < created[key]:
                problems.append(LabelProblem(i, InvalidInputError(
                    must("labeled_at", f"no earlier than the order's creation ({created[key].isoformat()})",
                         label.labeled_at.isoformat()), field="labeled_at")))
                continue
            ident = (*key, label.labeled_at, label.reviewer_id)
            known = stored.get(ident)
            if known is None:
                stored[ident] = label.verdict
                outcomes.append((label, LabelOutcome.ADDED))
            elif known is label.verdict:
                outcomes.append((label, LabelOutcome.DUPLICATE))
            else:
                problems.append(LabelProblem(i, EventConflictError(
                    must("verdict", f"{known.value} (reviewer {label.reviewer_id!r} already gave that verdict on "
                                    f"{label.key} at {label.labeled_at.isoformat()})", label.verdict.value),
                    field="verdict")))
        problems.sort(key=lambda p: p.index)
        return tuple(problems), outcomes

    def _created_at(self, conn: Connection, keys: Sequence[_Key]) -> dict[_Key, datetime]:
        """Creation time of the given orders that have a current state in the order log."""
        o = ORDERS.c
        out: dict[_Key, datetime] = {}
        for chunk in _chunks(keys, _IN_CHUNK):
            stmt = sa.select(o.channel, o.channel_order_id, o.created_at).where(
                pairs_in(o.channel, o.channel_order_id, chunk))
            out.update(((ch, oid), at) for ch, oid, at in conn.execute(stmt))
        return out

    def _stored_verdicts(self, conn: Connection, keys: Sequence[_Key]) -> dict[_Ident, Verdict]:
        c = LABELS.c
        out: dict[_Ident, Verdict] = {}
        for chunk in _chunks(keys, _IN_CHUNK):
            stmt = sa.select(c.channel, c.channel_order_id, c.labeled_at, c.reviewer_id, c.verdict).where(
                pairs_in(c.channel, c.channel_order_id, chunk))
            out.update(((ch, oid, at, rev), Verdict(v)) for ch, oid, at, rev, v in conn.execute(stmt))
        return out

    # ------------------------------------------------------------------ reading

    def history(self, key: OrderKey) -> list[LabelRecord]:
        """Every stored label of one order, oldest first (empty when none); the last one is in force."""
        c = LABELS.c
        stmt = (sa.select(LABELS).where(c.channel == key.channel.value, c.channel_order_id == key.channel_order_id)
                .order_by(c.labeled_at, c.reviewer_id))
        with self._guard(), self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(stmt)]

    def _pages(self, base: sa.Select[Any]) -> Iterator[sa.Row[Any]]:
        """Keyset pagination in read order: short read transactions, no cursor held open."""
        order = self._ORDER
        after: tuple[Any, ...] | None = None
        while True:
            stmt = base.order_by(*order).limit(_PAGE)
            if after is not None:
                stmt = stmt.where(sa.tuple_(*order) > sa.tuple_(
                    *(sa.literal(v, type_=col.type) for v, col in zip(after, order, strict=True))))
            with self._guard(), self._engine.connect() as conn:
                rows = conn.execute(stmt).all()
            yield from rows
            if len(rows) < _PAGE:
                return
            m = rows[-1]._mapping
            after = (m["labeled_at"], m["channel"], m["channel_order_id"], m["reviewer_id"])

    def iter_records(self, *, since: datetime | None = None, until: datetime | None = None,
                     ) -> Iterator[LabelRecord]:
        """Every label version with ``since <= labeled_at <= until`` (bounds optional), in read order."""
        base = sa.select(LABELS)
        first, last = _aware(since, field="since"), _aware(until, field="until")
        if first is not None:
            base = base.where(LABELS.c.labeled_at >= first)
        if last is not None:
            base = base.where(LABELS.c.labeled_at <= last)
        for row in self._pages(base):
            yield _record(row)

    def iter_labels(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[Label]:
        """Every label version known by ``until`` (``labeled_at <= until``), oldest first.

        All versions, relabels included: label-derived features count each fact at its
        own time. Ordered by ``(labeled_at, channel, channel_order_id, reviewer_id)``.
        ``since`` (inclusive) skips older labels, e.g. those beyond every window.
        """
        for record in self.iter_records(since=since, until=until):
            yield record.label

    def current(self, *, as_of: datetime | None = None) -> dict[OrderKey, Label]:
        """Per order, its newest label with ``labeled_at <= as_of`` (the newest of all when ``None``).

        This is what training joins: only verdicts known by the cutoff. When two
        reviewers labelled one order at the same instant, the greater reviewer id wins.
        """
        return current_labels(self.iter_labels(until=as_of))

    def count(self) -> int:
        """Number of stored label versions (relabels counted)."""
        with self._guard(), self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(LABELS)).scalar_one())

    def verdict_counts(self, *, as_of: datetime | None = None) -> dict[Verdict, int]:
        """Orders per current verdict (see :meth:`current`); verdicts no order has are absent."""
        counts: dict[Verdict, int] = {}
        for label in self.current(as_of=as_of).values():
            counts[label.verdict] = counts.get(label.verdict, 0) + 1
        return counts


def precedence(label: Label) -> tuple[datetime, str]:
    """Which of an order's labels is in force: the newest ``labeled_at``; at one instant the
    greater reviewer id, so the answer never depends on storage or file order."""
    return label.labeled_at, label.reviewer_id


def current_labels(labels: Iterable[Label], *, as_of: datetime | None = None) -> dict[OrderKey, Label]:
    """Per order, the label in force at ``as_of`` (of all when None) by :func:`precedence`.

    The one rule for "current verdict": the label log, training targets and rule tuning use it.

    >>> from orderguard.schema import Channel
    >>> k, t = OrderKey(Channel.JD, "1"), datetime(2024, 11, 1, tzinfo=UTC)
    >>> ls = [Label(k, Verdict.FALSE_POSITIVE, t + timedelta(days=2), "a"), Label(k, Verdict.CONFIRMED_FRAUD, t, "b")]
    >>> current_labels(ls)[k].verdict.value, current_labels(ls, as_of=t + timedelta(days=1))[k].verdict.value
    ('false_positive', 'confirmed_fraud')
    """
    out: dict[OrderKey, Label] = {}
    for label in labels:
        if as_of is not None and label.labeled_at > as_of:
            continue
        previous = out.get(label.key)
        if previous is None or precedence(label) > precedence(previous):
            out[label.key] = label
    return out


def _row(label: Label, *, source: str, recorded_at: datetime) -> dict[str, Any]:
    return {"channel": label.key.channel.value, "channel_order_id": label.key.channel_order_id,
            "verdict": label.verdict.value, "labeled_at": label.labeled_at, "reviewer_id": label.reviewer_id,
            "note": label.note, "source": source, "recorded_at": recorded_at}


def _as_error(problems: Sequence[LabelProblem], *, batch: bool) -> OrderGuardError:
    """The error ``add`` raises: the first problem, positioned when the call held several labels."""
    first = problems[0]
    if not batch:
        return first.error
    more = f" (and {len(problems) - 1} more refused labels)" if len(problems) > 1 else ""
    error = type(first.error)(f"label {first.index}: {first.error.message}{more}",
                              field=f"labels.{first.index}.{first.error.field}")
    return error

