"""The only source of "now", the shop's time zone, and the parsing of times users type.

Pure code takes time as an argument; code at the edges (API handlers, CLI, the
order-health monitor) asks an injected ``Clock``, so tests can freeze or step time
instead of sleeping (``tests.factories.FixedClock``).

Everything stored is tz-aware UTC. People think in the shop's calendar (Beijing time:
the channels stamp it, days start at Beijing midnight), so one rule holds for every
time a user types (CLI options, label files): **a time without an offset is shop time**,
a date alone is shop midnight, an explicit offset (``Z``, ``+00:00``) is honoured.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

from orderguard.errors import InvalidInputError

SHOP_TZ = ZoneInfo("Asia/Shanghai")
"""The shop's time zone: channel local times, calendar days, opening hours."""

NAIVE_IS_SHOP_TIME = "a time without an offset is Beijing time; a date alone is Beijing midnight"
"""The rule in words, for ``--help`` texts and error messages."""


def shop_day(moment: datetime) -> date:
    """The shop's calendar date of an aware moment."""
    return moment.astimezone(SHOP_TZ).date()


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is read as shop time.

    >>> as_utc(datetime(2024, 11, 11, 8, 0)).isoformat()
    '2024-11-11T00:00:00+00:00'
    """
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=SHOP_TZ)).astimezone(UTC)


def parse_moment(text: str, *, field: str) -> datetime:
    """A user-typed ISO date or time as aware UTC (naive = shop time, a date = shop midnight).

    >>> parse_moment("2024-11-11", field="cutoff").isoformat()
    '2024-11-10T16:00:00+00:00'
    >>> parse_moment("2024-11-11T10:00Z", field="cutoff").isoformat()
    '2024-11-11T10:00:00+00:00'

    Raises:
        InvalidInputError: naming ``field`` when the text is neither.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            return as_utc(datetime.combine(date.fromisoformat(value), time(0)))
        return as_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError) as e:
        raise InvalidInputError(f"`{field}` must be an ISO date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM[+08:00]); "
                                f"got {text[:40]!r}", field=field) from e


def parse_day(text: str, *, field: str) -> date:
    """A user-typed calendar date ``YYYY-MM-DD``.

    Raises:
        InvalidInputError: naming ``field``.
    """
    try:
        return date.fromisoformat(text.strip())
    except ValueError as e:
        raise InvalidInputError(f"`{field}` must be a date YYYY-MM-DD; got {text[:40]!r}", field=field) from e


class Clock(Protocol):
    """Anything that tells the current time as a tz-aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
