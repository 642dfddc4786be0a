"""The shadow candidate against the live pack, on the orders both judged and the labels that came since.

While a shadow candidate runs (``scoring.pack_store``), every score record carries the
candidate's decision beside the served one (``scoring.records.ShadowOutcome``). This
compares the two sides over a window:

* per decision, how many orders each side put there and how many per day;
* at each flag threshold (verify, review, hold: an order is flagged at or above it), on the
  orders labelled since the shadow started: precision (confirmed fraud among flagged
  decided labels), recall (of the confirmed fraud) and false-positive rate (of the labels
  saying false positive); ``needs_investigation`` counts in neither;
* money at risk caught: the paid amount of confirmed-fraud orders at review or above;
* the live x shadow decision matrix, and the labelled orders whose decision would change.

Records whose candidate failed (``error``) are counted apart and compared on neither side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from orderguard.errors import NotFoundError
from orderguard.ingest.orderlog import SCORE_RECORDS, OrderLog
from orderguard.labels import LabelLog
from orderguard.schema import OrderKey, Verdict
from scoring.pack_store import PackStore, StoredPack
from scoring.policy import Decision, decision_rank

DECISIONS = (Decision.APPROVE, Decision.VERIFY, Decision.REVIEW, Decision.HOLD)
THRESHOLDS = (Decision.VERIFY, Decision.REVIEW, Decision.HOLD)


@dataclass(frozen=True, slots=True)
class Compared:
    """One order both sides judged; ``verdict`` is its label since the shadow started (None: unlabelled)."""

    order_key: OrderKey
    live: Decision
    shadow: Decision
    verdict: Verdict | None = None
    paid_fen: int = 0


@dataclass(frozen=True, slots=True)
class Quality:
    """One side at one flag threshold, on the decided labels (None: nothing to divide by)."""

    threshold: Decision
    flagged: int
    precision: float | None
    recall: float | None
    false_positive_rate: float | None


@dataclass(frozen=True, slots=True)
class Side:
    """Everything the report says of one side (live or shadow)."""

    decisions: dict[str, int]
    per_day: dict[str, float]
    quality: tuple[Quality, ...]
    money_caught_fen: int


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """The comparison (see the module docstring)."""

    shadow: str
    live_versions: tuple[str, ...]
    start: datetime
    end: datetime
    orders: int
    labelled: int
    errors: int
    live: Side
    candidate: Side
    matrix: dict[str, dict[str, int]]
    changed: tuple[Compared, ...]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def side(decisions: Sequence[Decision], labelled: Sequence[tuple[Decision, Verdict, int]], days: float) -> Side:
    """One side's figures from its decisions (all compared orders) and its labelled ones (decision, verdict, paid).

    >>> s = side([Decision.HOLD, Decision.APPROVE], [(Decision.HOLD, Verdict.CONFIRMED_FRAUD, 500)], days=2)
    >>> s.decisions["hold"], s.per_day["hold"], s.quality[1].precision, s.quality[1].recall, s.money_caught_fen
    (1, 0.5, 1.0, 1.0, 500)
    """
    counts = {d.value: sum(1 for x in decisions if x is d) for d in DECISIONS}
    frauds = sum(1 for _, v, _ in labelled if v is Verdict.CONFIRMED_FRAUD)
    honest = sum(1 for _, v, _ in labelled if v is Verdict.FALSE_POSITIVE)
    quality = []
    for threshold in THRESHOLDS:
        flagged = [v for d, v, _ in labelled if decision_rank(d) >= decision_rank(threshold)]
        caught = sum(1 for v in flagged if v is Verdict.CONFIRMED_FRAUD)
        wrong = sum(1 for v in flagged if v is Verdict.FALSE_POSITIVE)
        quality.append(Quality(threshold, len(flagged), _ratio(caught, caught + wrong), _ratio(caught, frauds),
                               _ratio(wrong, honest)))
    money = sum(paid for d, v, paid in labelled
                if v is Verdict.CONFIRMED_FRAUD and decision_rank(d) >= decision_rank(Decision.REVIEW))
    return Side(counts, {k: n / days for k, n in counts.items()}, tuple(quality), money)


def compare(rows: Sequence[Compared], *, shadow: str, live_versions: Sequence[str], start: datetime, end: datetime,
            errors: int = 0) -> ShadowReport:
    """The report over ``rows`` (orders both sides judged in ``[start, end)``)."""
    days = max((end - start).total_seconds() / 86400, 1e-9)
    labelled = [r for r in rows if r.verdict is not None]
    matrix = {a.value: {b.value: 0 for b in DECISIONS} for a in DECISIONS}
    for r in rows:
        matrix[r.live.value][r.shadow.value] += 1
    return ShadowReport(
        shadow=shadow, live_versions=tuple(live_versions), start=start, end=end, orders=len(rows),
        labelled=len(labelled), errors=errors,
        live=side([r.live for r in rows], [(r.live, r.verdict, r.paid_fen) for r in labelled if r.verdict], days),
        candidate=side([r.shadow for r in rows], [(r.shadow, r.verdict, r.paid_fen) for r in labelled if r.verdict],
                       days),
        matrix=matrix, changed=tuple(r for r in labelled if r.live is not r.shadow))


def pick_shadow(store: PackStore, version: int | None) -> StoredPack:
    """The shadow run to report on: ``version``, else the one running, else the newest that ran."""
    if version is not None:
        pack = store.get(version)
        if pack.role != "shadow":
            raise NotFoundError(f"`--version` must name a shadow candidate; v{version} is {pack.role}",
                                field="version")
        return pack
    running = store.state().shadow
    if running is not None:
        return running
    for pack in store.history():
        if pack.role == "shadow":
            return pack
    raise NotFoundError("no shadow candidate has run yet: set one with `orderguard rules shadow FILE`",
                        field="version")


def shadow_report(log: OrderLog, store: PackStore, *, now: datetime, version: int | None = None,
                  since: datetime | None = None, until: datetime | None = None) -> ShadowReport:
    """Load the records the shadow ``version`` judged in ``[since, until)`` (default: since it started, until
    ``now``), the labels given since it started and the paid amounts of labelled orders, and compare."""
    pack = pick_shadow(store, version)
    start = max(since, pack.applied_at) if since is not None else pack.applied_at
    end = until or now
    c = SCORE_RECORDS.c
    query = (sa.select(c.order_key, c.decision, c.shadow_decision, c.rules_version)
             .where(c.shadow_version == pack.label, c.scored_at >= start, c.scored_at < end)
             .order_by(c.scored_at, c.id))
    with log.engine.connect() as conn:
        found = conn.execute(query).all()
    labels = {k: lb.verdict for k, lb in LabelLog(log.engine).current().items() if lb.labeled_at >= pack.applied_at}
    rows: list[Compared] = []
    errors = 0
    live_versions: dict[str, None] = {}
    for order_key, decision, shadow_decision, rules_version in found:
        if shadow_decision is None:
            errors += 1
            continue
        key = OrderKey.parse(order_key)
        verdict = labels.get(key)
        paid = _paid(log, key) if verdict is not None else 0
        rows.append(Compared(key, Decision(decision), Decision(shadow_decision), verdict, paid))
        live_versions.setdefault(rules_version or "unversioned")
    return compare(rows, shadow=pack.label, live_versions=list(live_versions), start=start, end=end, errors=errors)


def _paid(log: OrderLog, key: OrderKey) -> int:
    order = log.get(key)
    return order.details.amounts.paid_fen if order is not None else 0


def report_json(report: ShadowReport) -> dict[str, object]:
    """The report as plain JSON (``--json``)."""
    def side_json(s: Side) -> dict[str, object]:
        return {"decisions": s.decisions, "per_day": s.per_day, "money_caught_fen": s.money_caught_fen,
                "quality": [{"threshold": q.threshold.value, "flagged": q.flagged, "precision": q.precision,
                             "recall": q.recall, "false_positive_rate": q.false_positive_rate} for q in s.quality]}

    return {"shadow": report.shadow, "live_versions": list(report.live_versions),
            "start": report.start.isoformat(), "end": report.end.isoformat(), "orders": report.orders,
            "labelled": report.labelled, "errors": report.errors, "live": side_json(report.live),
            "candidate": side_json(report.candidate), "matrix": report.matrix,
            "changed": [{"order_key": str(r.order_key), "verdict": r.verdict.value if r.verdict else None,
                         "live": r.live.value, "shadow": r.shadow.value, "paid_fen": r.paid_fen}
                        for r in report.changed]}


def labelled_changes(report: ShadowReport) -> Mapping[str, int]:
    """How many labelled orders would move up (stricter) or down (looser) under the candidate."""
    up = sum(1 for r in report.changed if decision_rank(r.shadow) > decision_rank(r.live))
    return {"stricter": up, "looser": len(report.changed) - up}
