"""Outcomes of the step-up checks of ``verify`` orders, as the order system reports them.

A ``verify`` decision asks the order system to check the buyer (an SMS code, a call)
before shipping. Its outcome decides what happens next: ``passed`` ends the matter,
``failed`` (and no outcome at all within ``settings.desk.verify_timeout``) sends the
order to the review desk. Outcomes are appended, never changed; the newest counts.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orderguard.ingest.orderlog import VERIFICATIONS, connection_guard, redacted
from orderguard.schema import OrderKey


class Outcome(StrEnum):
    """What the check came to."""

    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"  # the buyer never answered


@dataclass(frozen=True, slots=True)
class Verification:
    """One reported outcome."""

    order_key: OrderKey
    outcome: Outcome
    method: str
    verified_at: datetime


class VerificationLog:
    """Append-only store of outcomes on the order log's engine (table made by its migrations)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._where = redacted(engine.url)

    def _guard(self) -> AbstractContextManager[None]:
        return connection_guard("verifications", self._where)

    def add(self, verification: Verification, *, recorded_at: datetime) -> None:
        """Record an outcome."""
        with self._guard(), self._engine.begin() as conn:
            conn.execute(VERIFICATIONS.insert().values(
                order_key=str(verification.order_key), outcome=verification.outcome.value,
                method=verification.method, verified_at=verification.verified_at, recorded_at=recorded_at))

    def latest(self, key: OrderKey) -> Verification | None:
        """The newest outcome of an order, if any was reported."""
        c = VERIFICATIONS.c
        with self._guard(), self._engine.connect() as conn:
            row = conn.execute(sa.select(VERIFICATIONS).where(c.order_key == str(key))
                               .order_by(c.verified_at.desc(), c.id.desc()).limit(1)).first()
        return None if row is None else Verification(OrderKey.parse(row.order_key), Outcome(row.outcome), row.method,
                                                     row.verified_at)
