"""The review queue: flagged orders nobody has decided yet, and who is working which.

An order is in the queue when its newest score record (the highest order version
scored) says ``review`` or ``hold`` and no reviewer has given a final verdict
(``confirmed_fraud`` or ``false_positive``) since the moment that score judged (the
order's creation, or its refund claim: a claim after a verdict is a new question); an order marked
``needs_investigation`` stays, tagged. Sorted by score (highest first), then by waiting
time (longest first): the riskiest order first, and of equal risk the one waiting longest.

Claims (table ``desk_claims``) keep two reviewers off one order: opening a case claims
it for ``settings.desk.claim_for`` (15 minutes); another reviewer sees it as taken and skips it, and a claim
that lapses (an abandoned tab) frees the order. Claiming is one conditional write, so two
reviewers opening the same case at once cannot both get it.

Only the last ``settings.desk.window`` of score records is read (default 30 days): the queue is about
orders still to ship, and it keeps the page's query bounded however long the log is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from orderguard.ingest.orderlog import DESK_CLAIMS, LABELS, SCORE_RECORDS
from orderguard.schema import Channel, OrderKey, Verdict
from scoring.policy import Decision
from scoring.records import ScoreRecord, record_from_row

#: The decisions a reviewer works.
QUEUED = (Decision.REVIEW, Decision.HOLD)
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
        return Filters(**{**{f: getattr(self, f) for f in ("channel", "decision", "rule", "pattern", "day")},
                          name: ""})


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One order waiting for a verdict."""

    record: ScoreRecord
    claimed_by: str | None
    investigating: bool
    day: str

    @property
    def key(self) -> OrderKey:
        return self.record.order_key

    @property
    def rule_codes(self) -> tuple[str, ...]:
        return tuple(hit.code for hit in self.record.hits)

    def waiting(self, now: datetime) -> timedelta:
        """How long the order has waited since it was scored."""
        return max(now - self.record.scored_at, timedelta(0))


@dataclass(frozen=True, slots=True)
class Queue:
    """The queue as a reviewer sees it: the matching items, and how many each filter choice would show."""

    items: list[QueueItem]
    total: int
    counts: Mapping[str, Counter[str]] = field(default_factory=dict)


def _final_labels_since(conn: sa.Connection, since: datetime) -> dict[str, tuple[datetime, Verdict]]:
    """Per order key, its newest label given since ``since`` (final or not)."""
    c = LABELS.c
    rows = conn.execute(sa.select(c.channel, c.channel_order_id, c.labeled_at, c.verdict)
                        .where(c.labeled_at >= since).order_by(c.labeled_at)).all()
    return {f"{r.channel}:{r.channel_order_id}": (r.labeled_at, Verdict(r.verdict)) for r in rows}


def load_queue(engine: Engine, *, now: datetime, window: timedelta, filters: Filters,
               patterns: Mapping[str, str], day_of: Callable[[datetime], str]) -> Queue:
    """The queue at ``now`` under ``filters``, with counts per choice of each filter."""
    since = now - window
    c = SCORE_RECORDS.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(SCORE_RECORDS).where(c.decision.in_([d.value for d in QUEUED]),
                                                           c.event_time >= since)
                            .order_by(c.order_key, c.event_version)).all()
        labels = _final_labels_since(conn, since)
        claims = {r.order_key: r.reviewer for r in conn.execute(
            sa.select(DESK_CLAIMS.c.order_key, DESK_CLAIMS.c.reviewer).where(DESK_CLAIMS.c.expires_at > now))}
        newest_versions = dict(conn.execute(
            sa.select(c.order_key, sa.func.max(c.event_version)).where(c.event_time >= since)
            .group_by(c.order_key)).all())
    newest: dict[str, ScoreRecord] = {}
    for row in rows:
        newest[row.order_key] = record_from_row(row)
    items = []
    for key, record in newest.items():
        if newest_versions.get(key, record.event_version) > record.event_version:
            continue  # a newer version of the order was scored and is no longer flagged
        label = labels.get(key)
        if label is not None and label[0] >= record.event_time and label[1] in FINAL:
            continue
        investigating = label is not None and label[1] is Verdict.NEEDS_INVESTIGATION
        items.append(QueueItem(record, claims.get(key), investigating, day_of(record.event_time)))
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


def channels() -> Sequence[str]:
    """Every channel, for the filter's choices."""
    return [c.value for c in Channel]
