"""What the sweeper found, kept in the order-log database: findings per order and check, a snapshot per sweep.

The dashboard, the API and every service process read these tables, not a sweeper's
memory: a page served by one worker shows what the sweeper of another found, and a
finding's first-flagged time survives a restart (the evidence that an order was caught
in time). Writes are idempotent (upserts keyed by order and check, snapshots by time),
so a sweep retried after a database hiccup records nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from health.sweeper import SweepResult
from orderguard.dbkeys import pairs_in
from orderguard.ingest.orderlog import HEALTH_FINDINGS, HEALTH_SNAPSHOTS, connection_guard, redacted
from orderguard.schema import OrderKey

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """One finding as stored: open while ``resolved_at`` is ``None``."""

    order_key: str
    check_id: str
    channel: str
    stage: str
    component: str
    due_at: datetime
    flagged_at: datetime
    resolved_at: datetime | None
    detail: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The shop's health after one sweep."""

    taken_at: datetime
    overall: float
    orders: int
    summary: Mapping[str, Any]


def _finding(row: Any) -> StoredFinding:
    return StoredFinding(row.order_key, row.check_id, row.channel, row.stage, row.component, row.due_at,
                         row.flagged_at, row.resolved_at, row.detail)


class HealthStore:
    """Findings and snapshots on the order log's engine (tables made by its migrations)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._where = redacted(engine.url)
        self._dialect = engine.dialect.name

    def _guard(self) -> AbstractContextManager[None]:
        return connection_guard("order log", self._where)

    def _insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table) if self._dialect == "postgresql" else sqlite.insert(table)

    def record(self, result: SweepResult) -> None:
        """Store one sweep: findings opened (a re-opened one starts again), findings resolved, the snapshot."""
        f = HEALTH_FINDINGS.c
        with self._guard(), self._engine.begin() as conn:
            if result.opened:
                rows = [{"order_key": x.order_key, "check_id": x.check_id, "channel": x.channel, "stage": x.stage,
                         "component": x.component, "due_at": x.due_at, "flagged_at": x.flagged_at,
                         "resolved_at": None, "detail": x.detail[:500]} for x in result.opened]
                stmt = self._insert(HEALTH_FINDINGS)
                still_open = f.resolved_at.is_(None)  # a restarted sweeper re-opens what was open: keep its times
                stmt = stmt.on_conflict_do_update(
                    index_elements=[f.order_key, f.check_id],
                    set_={"flagged_at": sa.case((still_open, f.flagged_at), else_=stmt.excluded.flagged_at),
                          "due_at": sa.case((still_open, f.due_at), else_=stmt.excluded.due_at),
                          **{name: stmt.excluded[name] for name in ("resolved_at", "detail", "stage", "component")}})
                for start in range(0, len(rows), _CHUNK):
                    conn.execute(stmt, rows[start:start + _CHUNK])
            self._resolve(conn, result.resolved, result.as_of)
            snap = self._insert(HEALTH_SNAPSHOTS)
            values = {"taken_at": result.as_of, "overall": result.overall, "orders": result.orders,
                      "summary": result.summary()}
            conn.execute(snap.on_conflict_do_update(
                index_elements=[HEALTH_SNAPSHOTS.c.taken_at],
                set_={k: snap.excluded[k] for k in ("overall", "orders", "summary")}), [values])

    def _resolve(self, conn: Connection, resolved: tuple[tuple[str, str], ...], at: datetime) -> None:
        f = HEALTH_FINDINGS.c
        for start in range(0, len(resolved), _CHUNK):
            chunk = list(resolved[start:start + _CHUNK])
            conn.execute(HEALTH_FINDINGS.update()
                         .where(pairs_in(f.check_id, f.order_key, [(check, key) for key, check in chunk]),
                                f.resolved_at.is_(None))
                         .values(resolved_at=at))

    def reconcile(self, open_now: set[tuple[str, str]], at: datetime) -> int:
        """Resolve, at ``at``, every stored open finding not in ``open_now`` (``(order key, check id)``): what a
        sweeper that just started (warm) no longer finds failing was resolved while nobody swept. How many."""
        f = HEALTH_FINDINGS.c
        with self._guard(), self._engine.connect() as conn:
            stored = {(r[0], r[1]) for r in conn.execute(sa.select(f.order_key, f.check_id)
                                                         .where(f.resolved_at.is_(None)))}
        gone = tuple(sorted(stored - open_now))
        if gone:
            with self._guard(), self._engine.begin() as conn:
                self._resolve(conn, gone, at)
        return len(gone)

    def open_findings(self, *, limit: int = 100, channel: str | None = None, stage: str | None = None,
                      ) -> list[StoredFinding]:
        """Open findings, the longest overdue first."""
        f = HEALTH_FINDINGS.c
        stmt = sa.select(HEALTH_FINDINGS).where(f.resolved_at.is_(None))
        if channel:
            stmt = stmt.where(f.channel == channel)
        if stage:
            stmt = stmt.where(f.stage == stage)
        with self._guard(), self._engine.connect() as conn:
            rows = conn.execute(stmt.order_by(f.due_at, f.order_key, f.check_id).limit(limit)).all()
        return [_finding(r) for r in rows]

    def findings_of(self, key: OrderKey) -> list[StoredFinding]:
        """Every finding of one order, open and resolved, by due time."""
        f = HEALTH_FINDINGS.c
        stmt = sa.select(HEALTH_FINDINGS).where(f.order_key == str(key)).order_by(f.due_at, f.check_id)
        with self._guard(), self._engine.connect() as conn:
            return [_finding(r) for r in conn.execute(stmt).all()]

    def count_open(self) -> int:
        """How many findings are open."""
        f = HEALTH_FINDINGS.c
        with self._guard(), self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(f.resolved_at.is_(None))).scalar_one())

    def latest(self) -> Snapshot | None:
        """The newest snapshot."""
        s = HEALTH_SNAPSHOTS.c
        with self._guard(), self._engine.connect() as conn:
            row = conn.execute(sa.select(HEALTH_SNAPSHOTS).order_by(s.taken_at.desc()).limit(1)).first()
        return None if row is None else Snapshot(row.taken_at, row.overall, row.orders, _json(row.summary))

    def history(self, *, start: datetime, end: datetime | None = None, points: int = 288) -> list[tuple[datetime,
                                                                                                          float]]:
        """``(taken_at, overall)`` from ``start`` (to ``end``), thinned to about ``points`` evenly spread."""
        s = HEALTH_SNAPSHOTS.c
        stmt = sa.select(s.taken_at, s.overall).where(s.taken_at >= start)
        if end is not None:
            stmt = stmt.where(s.taken_at <= end)
        with self._guard(), self._engine.connect() as conn:
            rows = [(r[0], float(r[1])) for r in conn.execute(stmt.order_by(s.taken_at)).all()]
        step = max(1, len(rows) // max(1, points))
        thinned = rows[::step]
        if rows and thinned[-1] != rows[-1]:
            thinned.append(rows[-1])
        return thinned

    def prune(self, before: datetime) -> int:
        """Forget snapshots older than ``before`` (the chart shows days, not months); how many."""
        with self._guard(), self._engine.begin() as conn:
            return int(conn.execute(HEALTH_SNAPSHOTS.delete().where(HEALTH_SNAPSHOTS.c.taken_at < before)).rowcount)


def _json(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    import json
    loaded = json.loads(value)
    return loaded if isinstance(loaded, Mapping) else {}
