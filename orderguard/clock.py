"""The only source of "now".

Pure code takes time as an argument; code at the edges (API handlers, CLI, the
order-health monitor) asks an injected ``Clock``, so tests can freeze or step time
instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time as a tz-aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that only moves when told to; for tests and deterministic replays.

    >>> c = FixedClock(datetime(2024, 1, 1, tzinfo=UTC))
    >>> c.advance(seconds=90).isoformat()
    '2024-01-01T00:01:30+00:00'
    """

    current: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))

    def __post_init__(self) -> None:
        if self.current.tzinfo is None:
            raise ValueError("FixedClock needs a tz-aware datetime")

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        """Move forward by ``timedelta(**delta)`` and return the new time."""
        self.current = self.current + timedelta(**delta)
        return self.current
