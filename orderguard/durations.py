"""Durations written as people write them in config: ``90s``, ``5m``, ``48h``, ``30d``, ``2w``.

One parser for settings and feature windows alike (``features.windows.Duration`` keeps
the text because it is part of feature names).
"""

from __future__ import annotations

import re
from datetime import timedelta

from orderguard.errors import ConfigError

US_PER_S = 1_000_000
UNITS_US = {"s": US_PER_S, "m": 60 * US_PER_S, "h": 3600 * US_PER_S, "d": 86400 * US_PER_S,
            "w": 7 * 86400 * US_PER_S}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: object, *, field: str = "window") -> tuple[int, str]:
    """``<integer><unit>`` → (microseconds, normalised text); zero or malformed is a ``ConfigError``.

    >>> parse_duration(" 48H ")
    (172800000000, '48h')
    >>> parse_duration("0m")
    Traceback (most recent call last):
    ...
    orderguard.errors.ConfigError: `window` must be a positive duration like 5m, 48h or 30d; got '0m'
    """
    match = _DURATION.match(text.lower()) if isinstance(text, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise ConfigError.must(field, "a positive duration like 5m, 48h or 30d", text)
    amount, unit = int(match.group(1)), match.group(2)
    return amount * UNITS_US[unit], f"{amount}{unit}"


def to_timedelta(text: str, *, field: str = "duration") -> timedelta:
    """Parse straight to a :class:`timedelta`.

    >>> to_timedelta("90s")
    datetime.timedelta(seconds=90)
    """
    return timedelta(microseconds=parse_duration(text, field=field)[0])
