"""The review queue: flagged orders nobody has decided yet, and who is working which.

An order is in the queue when its newest score record (the highest order version
scored) says ``review`` or ``hold`` — or ``verify`` and its check failed, timed out or was
not reported within ``settings.desk.verify_timeout`` (``orderguard.verifications``) — and
no reviewer has given a final verdict (``confirmed_fraud`` or ``false_positive``) since
the moment that score judged (the order's creation, or its refund claim: a claim after a
verdict is a new question); an order marked ``needs_investigation`` stays, tagged.
Sorted by score (highest first), then by waiting time (longest first): the riskiest
order first, and of equal risk the one waiting longest.

Claims (table ``desk_claims``) keep two reviewers off one order: opening a case claims
it for ``settings.desk.claim_for`` (15 minutes); another reviewer sees it as taken and skips it, and a claim
that lapses (an abandoned tab) frees the order. Claiming is one conditional write, so two
reviewers opening the same case at once cannot both get it.

Only the last ``settings.desk.window`` of score records is read (default 30 days): the queue is about
orders still to ship, and it keeps the page's query bounded however long the log is.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from orderguard.ingest.orderlog import DESK_CLAIMS, LABELS, SCORE_RECORDS, VERIFICATIONS
from orderguard.schema import OrderKey, Verdict
from scoring.policy import Decision

#: The decisions a reviewer works (a verify order only when its check failed or never answered).
QUEUED = (Decision.REVIEW, Decision.HOLD)
READ = (*QUEUED, Decision.VERIFY)
#: Verdicts that take an order out of the queue.
FINAL = frozenset({Verdict.CONFIRMED_FRAUD, Verdict.FALSE_POSITIVE})


@dataclass(frozen=True, slots=True)
class Filters:
    """What the reviewer narrowed the queue to (empty = everything)."""

    channel: str = ""
    decision: str = ""
    rule: str = ""
    pattern: str = ""
    day: str = ""  # YYYY-MM-DD, Beijing time, of the order's creation

    def matches(self, item: QueueItem, patterns: Mapping[str, str]) -> bool:
        """Whether ``item`` passes every filter (``patterns`` maps rule code → pattern)."""
        codes = item.rule_codes
        return ((not self.channel or item.key.channel.value == self.channel)
                and (not self.decision or item.record.decision.value == self.decision)
                and (not self.rule or self.rule in codes)
                and (not self.pattern or any(patterns.get(c) == self.pattern for c in codes))
                and (not self.day or item.day == self.day))

    def without(self, name: str) -> Filters:
        """These filters with ``name`` cleared (for the counts beside that filter's choices)."""
        return replace(self, **{name: ""})


#: The queue's filters, by name (query parameters of the desk's pages).
FILTER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Filters))


@dataclass(frozen=True, slots=True)
class Flagged:
    """What the queue shows of a flagged order's score record (read without its feature vector: the queue reads
    every flagged record of the window, and the vectors are most of their weight)."""

    order_key: OrderKey
    event_version: int
    event_time: datetime
    scored_at: datetime
    score: float
    decision: Decision
    rule_codes: tuple[str, ...]
    reasons_zh: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One order waiting for a verdict."""

    record: Flagged
    claimed_by: str | None
    investigating: bool
    day: str
    verification: str | None = None  # a verify order's check: failed, timed_out, or no_answer (none reported)

    @property
    def key(self) -> OrderKey:
        return self.record.order_key

    @property
    def rule_codes(self) -> tuple[str, ...]:
        return self.record.rule_codes

    def waiting(self, now: datetime) -> timedelta:
        """How long the order has waited since it was scored."""
        return max(now - self.record.scored_at, timedelta(0))


@dataclass(frozen=True, slots=True)
class Queue:
    """The queue as a reviewer sees it: the matching items, and how many each filter choice would show."""

    items: list[QueueItem]
    total: int
    counts: Mapping[str, Counter[str]] = field(default_factory=dict)


#: Rows re-read below each watermark: on PostgreSQL a lower id may commit after a higher one was read.
OVERLAP_IDS = 1_000


class FlaggedLog:
    """The flagged score records and the newest label of each order, mirrored in memory and topped up.

    Score records and labels are append-only and numbered (``id``), so each look reads only
    the rows added since the last one (plus a small overlap: concurrent inserts may commit
    out of id order), instead of every flagged record of the window with its feature
    vector. The first look reads the window. Thread-safe; one per process
    (``Services.flagged``); reading a row twice changes nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset(None)

    def _reset(self, since: datetime | None) -> None:
        self._since = since
        self._record_id = 0
        self._label_id = 0
        self._newest_version: dict[str, int] = {}
        self._flagged: dict[str, Flagged] = {}
        self._labels: dict[str, tuple[datetime, Verdict]] = {}
        self._verification_id = 0
        self._verifications: dict[str, tuple[datetime, str]] = {}

    def refresh(self, engine: Engine, *, since: datetime) -> None:
        """Read what was added since the last look (the whole window from ``since`` at the first)."""
        c, lc, vc = SCORE_RECORDS.c, LABELS.c, VERIFICATIONS.c
        with self._lock, engine.connect() as conn:
            first = self._since is None or since < self._since
            versions = sa.select(c.id, c.order_key, c.event_version)
            flagged = sa.select(c.order_key, c.event_version, c.event_time, c.scored_at, c.score, c.decision,
                                c.record["hits"].label("hits"), c.record["reasons"].label("reasons")).where(
                c.decision.in_([d.value for d in READ]))
            labels = sa.select(lc.id, lc.channel, lc.channel_order_id, lc.labeled_at, lc.verdict)
            checks = sa.select(vc.id, vc.order_key, vc.outcome, vc.verified_at)
            if first:  # or a wider window than before: read it afresh
                self._reset(since)
                versions, flagged = versions.where(c.event_time >= since), flagged.where(c.event_time >= since)
                labels = labels.where(lc.labeled_at >= since)
                checks = checks.where(vc.verified_at >= since)
            else:
                versions = versions.where(c.id > self._record_id - OVERLAP_IDS)
                flagged = flagged.where(c.id > self._record_id - OVERLAP_IDS)
                labels = labels.where(lc.id > self._label_id - OVERLAP_IDS)
                checks = checks.where(vc.id > self._verification_id - OVERLAP_IDS)
            for row in conn.execute(versions):
                self._record_id = max(self._record_id, row.id)
                if row.event_version > self._newest_version.get(row.order_key, -1):
                    self._newest_version[row.order_key] = row.event_version
            for record in conn.execute(flagged):
                known = self._flagged.get(record.order_key)
                if known is None or record.event_version > known.event_version:
                    self._flagged[record.order_key] = Flagged(
                        OrderKey.parse(record.order_key), record.event_version, record.event_time, record.scored_at,
                        record.score, Decision(record.decision), tuple(hit["code"] for hit in record.hits or ()),
                        tuple(reason.get("text_zh", "") for reason in (record.reasons or ())[:3]))
            for label in conn.execute(labels.order_by(lc.labeled_at, lc.id)):
                self._label_id = max(self._label_id, label.id)
                key = f"{label.channel}:{label.channel_order_id}"
                known_label = self._labels.get(key)
                if known_label is None or label.labeled_at >= known_label[0]:
                    self._labels[key] = (label.labeled_at, Verdict(label.verdict))
            for check in conn.execute(checks.order_by(vc.verified_at, vc.id)):
                self._verification_id = max(self._verification_id, check.id)
                known_check = self._verifications.get(check.order_key)
                if known_check is None or check.verified_at >= known_check[0]:
                    self._verifications[check.order_key] = (check.verified_at, check.outcome)

    def candidates(self, since: datetime) -> list[tuple[Flagged, tuple[datetime, Verdict] | None, str | None]]:
        """Flagged records of the window that are their order's newest scored version, with its newest label and
        newest verification outcome (reported after the record's decision moment)."""
        with self._lock:
            found = []
            for key, f in self._flagged.items():
                if f.event_time < since or self._newest_version.get(key, f.event_version) > f.event_version:
                    continue
                check = self._verifications.get(key)
                found.append((f, self._labels.get(key), check[1] if check and check[0] >= f.event_time else None))
            return found


def _verification_state(record: Flagged, outcome: str | None, *, now: datetime,
                        verify_timeout: timedelta) -> str | None:
    """Why a verify order is queued (failed, timed_out, no_answer), or ``None`` when it is not."""
    if outcome in ("failed", "timed_out"):
        return outcome
    if outcome is None and now - record.event_time >= verify_timeout:
        return "no_answer"
    return None


def load_queue(engine: Engine, flagged: FlaggedLog, *, now: datetime, window: timedelta, filters: Filters,
               patterns: Mapping[str, str], day_of: Callable[[datetime], str],
               verify_timeout: timedelta = timedelta(minutes=30)) -> Queue:
    """The queue at ``now`` under ``filters``, with counts per choice of each filter."""
    since = now - window
    flagged.refresh(engine, since=since)
    with engine.connect() as conn:
        claims = {r.order_key: r.reviewer for r in conn.execute(
            sa.select(DESK_CLAIMS.c.order_key, DESK_CLAIMS.c.reviewer).where(DESK_CLAIMS.c.expires_at > now))}
    items = []
    for record, label, outcome in flagged.candidates(since):
        key = str(record.order_key)
        verification = None
        if record.decision is Decision.VERIFY:
            verification = _verification_state(record, outcome, now=now, verify_timeout=verify_timeout)
            if verification is None:
                continue  # passed, or still within its time to answer
        if label is not None and label[0] >= record.event_time and label[1] in FINAL:
            continue
        investigating = label is not None and label[1] is Verdict.NEEDS_INVESTIGATION
        items.append(QueueItem(record, claims.get(key), investigating, day_of(record.event_time), verification))
    items.sort(key=lambda i: (-i.record.score, i.record.scored_at))
    matching = [i for i in items if filters.matches(i, patterns)]
    counts: dict[str, Counter[str]] = {}
    for name, value_of in (("channel", lambda i: [i.key.channel.value]),
                           ("decision", lambda i: [i.record.decision.value]),
                           ("rule", lambda i: list(i.rule_codes)),
                           ("pattern", lambda i: sorted({patterns[c] for c in i.rule_codes if c in patterns})),
                           ("day", lambda i: [i.day])):
        others = filters.without(name)
        counts[name] = Counter(v for i in items if others.matches(i, patterns) for v in value_of(i))
    return Queue(matching, len(items), counts)


def claim(engine: Engine, key: OrderKey, reviewer: str, *, now: datetime, hold_for: timedelta) -> str:
    """Claim ``key`` for ``reviewer`` for ``hold_for`` (or renew their claim); returns who holds it now.

    One conditional write: a free or lapsed claim is taken, a live claim of another
    reviewer is left alone, so two reviewers opening one case at once cannot both get it.
    """
    c = DESK_CLAIMS.c
    values = {"reviewer": reviewer, "claimed_at": now, "expires_at": now + hold_for}
    with engine.begin() as conn:
        taken = conn.execute(DESK_CLAIMS.update().where(
            c.order_key == str(key), sa.or_(c.reviewer == reviewer, c.expires_at <= now)).values(**values)).rowcount
        if not taken:
            try:
                with conn.begin_nested():
                    conn.execute(DESK_CLAIMS.insert().values(order_key=str(key), **values))
            except sa_exc.IntegrityError:
                pass  # another reviewer holds a live claim
        holder = conn.execute(sa.select(c.reviewer).where(c.order_key == str(key))).scalar_one()
    return str(holder)


def holder(engine: Engine, key: OrderKey, *, now: datetime) -> str | None:
    """Who holds a live claim on ``key``, if anyone."""
    c = DESK_CLAIMS.c
    with engine.connect() as conn:
        found = conn.execute(sa.select(c.reviewer).where(c.order_key == str(key), c.expires_at > now)).scalar()
    return None if found is None else str(found)


def release(engine: Engine, key: OrderKey, reviewer: str) -> None:
    """Drop ``reviewer``'s claim on ``key`` (after their verdict)."""
    c = DESK_CLAIMS.c
    with engine.begin() as conn:
        conn.execute(DESK_CLAIMS.delete().where(c.order_key == str(key), c.reviewer == reviewer))

