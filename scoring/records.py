"""Score records: every served decision with the evidence it was made on.

A :class:`ScoreRecord` keeps the served feature vector, the rule hits, the model
version and the settings hash, so a decision can be explained to a reviewer months
later and training/serving skew can be audited (recompute the batch features for the
same order and compare). Records live beside the order log (same database, table
``score_records``, migration 0002) and are keyed by ``(order key, event_version)``:
the first record of an order version wins, which makes scoring retry-safe.

Each record names the rule pack version that judged it (``rules_version``, e.g.
``v3:1f2e3d4c``, see ``scoring.pack_store``) and, while a shadow candidate runs, what the
candidate would have decided on the same features (:class:`ShadowOutcome`): the shadow
report compares the two on the labels that arrive later.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from orderguard.ingest.orderlog import SCORE_RECORDS, connection_guard, redacted
from orderguard.schema import OrderKey
from scoring.policy import Decision, Reason, RiskLevel
from scoring.rules import RuleHit


@dataclass(frozen=True, slots=True)
class ShadowOutcome:
    """What the shadow candidate made of the order: never served, kept for the comparison.

    ``error`` instead of a verdict when the candidate failed on this order (the served
    answer is unaffected; the report counts such orders apart).
    """

    version: str
    score: float | None
    decision: Decision | None
    codes: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """One served decision, typed as the scorer made it; JSON only in the ``score_records`` row.

    Attributes:
        features: the served feature vector (NaN = missing).
        hits: the fired rules, in pack order, with the values that made them fire.
        reasons: the reasons shown to the caller, strongest first (rules and model).
        latency_ms: server-side time to score, features to decision.
        degraded: scored while the online feature store was unavailable: rules only, on the
            order's own attributes without history.
        rules_version: the rule pack version that judged the order (None: before packs were versioned).
        released: a VIP release capped the decision (``policy.vip_release``; the score is unchanged).
        shadow: the shadow candidate's verdict, when one ran.
    """

    order_key: OrderKey
    event_version: int
    event_time: datetime
    scored_at: datetime
    score: float
    risk_level: RiskLevel
    decision: Decision
    rules_only: bool
    model_version: str | None
    settings_hash: str
    feature_set_hash: str
    latency_ms: float
    allow_listed: bool = False
    released: bool = False
    features: Mapping[str, float] = field(default_factory=dict)
    hits: tuple[RuleHit, ...] = ()
    reasons: tuple[Reason, ...] = ()
    degraded: bool = False
    rules_version: str | None = None
    shadow: ShadowOutcome | None = None


def _nan_to_none(values: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}


def _none_to_nan(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: (math.nan if v is None else float(v)) for k, v in values.items()}


def _hit_json(hit: RuleHit) -> dict[str, Any]:
    return {"code": hit.code, "points": hit.points, "reason_zh": hit.reason_zh, "reason_en": hit.reason_en,
            "values": _nan_to_none(hit.values), "hard": hit.hard}


def _hit(body: Mapping[str, Any]) -> RuleHit:
    return RuleHit(code=body["code"], points=float(body["points"]), reason_zh=body.get("reason_zh", ""),
                   reason_en=body.get("reason_en", ""), values=_none_to_nan(body.get("values", {})),
                   hard=bool(body.get("hard", False)))


def _reason_json(reason: Reason) -> dict[str, Any]:
    return {"code": reason.code, "weight": reason.weight, "text_zh": reason.text_zh, "text_en": reason.text_en,
            "source": reason.source}


def _reason(body: Mapping[str, Any]) -> Reason:
    return Reason(code=body["code"], weight=float(body["weight"]), text_zh=body.get("text_zh", ""),
                  text_en=body.get("text_en", ""), source=body.get("source", "rule"))


def _shadow_json(shadow: ShadowOutcome) -> dict[str, Any]:
    return {"version": shadow.version, "score": shadow.score,
            "decision": shadow.decision.value if shadow.decision is not None else None, "codes": list(shadow.codes),
            "error": shadow.error}


def _shadow(body: Mapping[str, Any] | None) -> ShadowOutcome | None:
    if not body:
        return None
    return ShadowOutcome(version=body["version"], score=body.get("score"),
                         decision=Decision(body["decision"]) if body.get("decision") else None,
                         codes=tuple(body.get("codes", ())), error=body.get("error"))


def _row(record: ScoreRecord) -> dict[str, Any]:
    shadow = record.shadow
    body: dict[str, Any] = {
        "features": _nan_to_none(record.features), "hits": [_hit_json(h) for h in record.hits],
        "reasons": [_reason_json(r) for r in record.reasons], "allow_listed": record.allow_listed,
        "released": record.released, "degraded": record.degraded}
    if shadow is not None:
        body["shadow"] = _shadow_json(shadow)
    return {
        "order_key": str(record.order_key), "event_version": record.event_version,
        "event_time": record.event_time, "scored_at": record.scored_at, "score": record.score,
        "risk_level": record.risk_level.value, "decision": record.decision.value, "rules_only": record.rules_only,
        "model_version": record.model_version, "settings_hash": record.settings_hash,
        "feature_set_hash": record.feature_set_hash, "latency_ms": record.latency_ms, "record": body,
        "rules_version": record.rules_version,
        "shadow_version": shadow.version if shadow is not None else None,
        "shadow_score": shadow.score if shadow is not None else None,
        "shadow_decision": shadow.decision.value if shadow is not None and shadow.decision is not None else None,
    }


def record_from_row(row: sa.Row[Any]) -> ScoreRecord:
    """A stored row as the typed record (for queries beyond this store's own, e.g. the review queue)."""
    m = row._mapping
    body = m["record"]
    return ScoreRecord(
        order_key=OrderKey.parse(m["order_key"]), event_version=int(m["event_version"]),
        event_time=m["event_time"], scored_at=m["scored_at"], score=float(m["score"]),
        risk_level=RiskLevel(m["risk_level"]), decision=Decision(m["decision"]), rules_only=bool(m["rules_only"]),
        model_version=m["model_version"], settings_hash=m["settings_hash"],
        feature_set_hash=m["feature_set_hash"], latency_ms=float(m["latency_ms"]),
        allow_listed=bool(body.get("allow_listed", False)), released=bool(body.get("released", False)),
        features=_none_to_nan(body["features"]),
        hits=tuple(map(_hit, body["hits"])), reasons=tuple(map(_reason, body["reasons"])),
        degraded=bool(body.get("degraded", False)), rules_version=m.get("rules_version"),
        shadow=_shadow(body.get("shadow")))


def _first_per_version(records: Sequence[ScoreRecord]) -> dict[tuple[str, int], ScoreRecord]:
    """The first record given for each ``(order key, event version)``: the one a store keeps."""
    first: dict[tuple[str, int], ScoreRecord] = {}
    for record in records:
        first.setdefault((str(record.order_key), record.event_version), record)
    return first


#: The score route's statements, built once: SQLAlchemy's construction of a statement costs more than the
#: statement itself on SQLite (the score route stores records hundreds of times a second). A record goes in
#: only where its order version has none (``ON CONFLICT DO NOTHING``), and the statement names the versions
#: it stored: one statement per batch, where a read of the versions present followed by the insert took two
#: (each a wait for the interpreter lock on the writer thread of a busy service: ``serving.group_commit``).
_INSERT_NEW = {
    name: insert(SCORE_RECORDS).on_conflict_do_nothing(index_elements=["order_key", "event_version"])
    .returning(SCORE_RECORDS.c.order_key, SCORE_RECORDS.c.event_version)
    for name, insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))}


class ScoreLog:
    """Store of :class:`ScoreRecord` s on the order log's engine (tables made by its migrations)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert_new = _INSERT_NEW[engine.dialect.name]

    def _guard(self) -> AbstractContextManager[None]:
        # a lost database is a 503 the order system retries, as for the order log: the score route
        # answers only once its record is stored, so this outage now reaches the caller
        return connection_guard("score records", redacted(self._engine.url))

    def get(self, key: OrderKey, event_version: int) -> ScoreRecord | None:
        """The record of one order version, if it was scored."""
        query = sa.select(SCORE_RECORDS).where(SCORE_RECORDS.c.order_key == str(key),
                                               SCORE_RECORDS.c.event_version == event_version)
        with self._guard(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return record_from_row(row) if row is not None else None

    def put(self, record: ScoreRecord) -> ScoreRecord:
        """Store ``record`` unless that order version has one already; return the stored one."""
        return self.put_all([record])[0]

    def put_all(self, records: Sequence[ScoreRecord]) -> list[ScoreRecord]:
        """Store each record unless its order version has one already, in one transaction; return the stored
        record of each version (the first given, or the one already there), in no particular order.

        The score route's group commit (``serving.group_commit``): one transaction for all the
        requests in flight, one statement when every version is new. A version stored already
        (a retry, or another process in between: the insert skips it, it does not fail) is
        read back, since that record is what every later call replays.
        """
        if not records:
            return []
        c = SCORE_RECORDS.c
        with self._guard(), self._engine.begin() as conn:
            wanted, present = self._insert_fresh(conn, records)
            kept = {} if not present else {  # a retry's version: read the record every later call replays
                ident: record_from_row(row) for row in conn.execute(
                    sa.select(SCORE_RECORDS).where(c.order_key.in_({k for k, _ in present})))
                if (ident := (row.order_key, row.event_version)) in present}
        return [kept.get(ident, r) for ident, r in wanted.items()]

    def put_many(self, records: Sequence[ScoreRecord]) -> int:
        """Store the records whose order versions have none yet, in one transaction; how many were stored.

        For back-filling many decisions at once (``serving.backscore``): one round trip per
        batch instead of one per record.
        """
        if not records:
            return 0
        with self._guard(), self._engine.begin() as conn:
            wanted, present = self._insert_fresh(conn, records)
        return len(wanted) - len(present)

    def _insert_fresh(self, conn: Connection, records: Sequence[ScoreRecord]
                      ) -> tuple[dict[tuple[str, int], ScoreRecord], set[tuple[str, int]]]:
        """Insert the first record of each order version that has none stored; return each version's first
        record and the versions that were stored already (those the insert did not name)."""
        wanted = _first_per_version(records)
        # in key order: two PostgreSQL transactions inserting the same versions then wait on each other's rows in
        # one order, where given orders could each hold a row the other waits on (a deadlock, found by a test)
        stored = conn.execute(self._insert_new, [_row(wanted[ident]) for ident in sorted(wanted)])
        return wanted, set(wanted).difference((row.order_key, row.event_version) for row in stored)

    def latest(self, key: OrderKey) -> ScoreRecord | None:
        """The newest record of an order (highest event version)."""
        query = (sa.select(SCORE_RECORDS).where(SCORE_RECORDS.c.order_key == str(key))
                 .order_by(SCORE_RECORDS.c.event_version.desc()).limit(1))
        with self._guard(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return record_from_row(row) if row is not None else None

    def latest_many(self, keys: Sequence[OrderKey], *, chunk: int = 500) -> dict[OrderKey, ScoreRecord]:
        """The newest record of each of ``keys`` (orders never scored are absent), ``chunk`` keys per query."""
        found: dict[OrderKey, ScoreRecord] = {}
        c = SCORE_RECORDS.c
        with self._guard(), self._engine.connect() as conn:
            for start in range(0, len(keys), chunk):
                names = [str(k) for k in keys[start:start + chunk]]
                for row in conn.execute(sa.select(SCORE_RECORDS).where(c.order_key.in_(names))
                                        .order_by(c.order_key, c.event_version)):
                    record = record_from_row(row)
                    found[record.order_key] = record
        return found

    def iter_records(self, *, decisions: tuple[Decision, ...] = (), limit: int | None = None) -> Iterator[ScoreRecord]:
        """Records by event time (newest first), optionally only some decisions."""
        query = sa.select(SCORE_RECORDS).order_by(SCORE_RECORDS.c.event_time.desc(), SCORE_RECORDS.c.id.desc())
        if decisions:
            query = query.where(SCORE_RECORDS.c.decision.in_(decisions))
        if limit is not None:
            query = query.limit(limit)
        with self._guard(), self._engine.connect() as conn:
            for row in conn.execute(query):
                yield record_from_row(row)

    def count(self) -> int:
        """Number of stored records."""
        with self._guard(), self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(SCORE_RECORDS)).scalar_one())
