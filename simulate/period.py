"""The simulated period: how many orders each day gets, and at what hour.

Volumes follow the week (weekends a little busier), a lull in the two days before the
promotion (buyers wait for it), the promotion day itself (``promo_multiplier``, with
its midnight and 20:00 rushes) and a tail the day after. Times of day follow the
Beijing-time shopping curve: quiet at night, busy late morning and late evening.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulate.config import SimConfig
from simulate.rand import Weighted

#: Relative orders per Beijing hour on an ordinary day (00:00 ... 23:00).
_HOURS = (0.9, 0.5, 0.3, 0.2, 0.15, 0.2, 0.4, 0.8, 1.5, 2.2, 2.8, 2.8, 2.4, 2.6, 2.7, 2.6, 2.5, 2.4,
          2.5, 3.0, 3.8, 4.3, 4.0, 2.5)
#: The promotion day: the midnight opening and the 20:00 final rush dominate.
_PROMO_HOURS = (16.0, 8.0, 2.0, 0.6, 0.3, 0.3, 0.5, 0.9, 1.6, 2.2, 2.6, 2.6, 2.4, 2.5, 2.5, 2.5, 2.5, 2.6,
                2.9, 3.5, 9.0, 7.0, 5.5, 4.0)
_WEEKDAY = (0.96, 0.95, 0.97, 0.99, 1.02, 1.06, 1.05)  # Monday ... Sunday


@dataclass(frozen=True, slots=True)
class Day:
    """One Beijing calendar day of the period.

    Attributes:
        start: Beijing midnight, in UTC.
        target: orders created this day across all channels, abuse included.
    """

    index: int
    start: datetime
    target: int
    promo: bool

    @property
    def end(self) -> datetime:
        """Next Beijing midnight, UTC (exclusive)."""
        return self.start + timedelta(days=1)


def day_factor(index: int, *, weekday: int, promo_day: int | None, multiplier: float) -> float:
    """Volume of a day relative to ``orders_per_day``, before noise.

    >>> day_factor(5, weekday=0, promo_day=5, multiplier=10.0)
    10.0
    >>> day_factor(4, weekday=0, promo_day=5, multiplier=10.0) < day_factor(3, weekday=0, promo_day=5,
    ...                                                                     multiplier=10.0)
    True
    """
    if promo_day is not None and index == promo_day:
        return multiplier
    factor = _WEEKDAY[weekday]
    if promo_day is not None:
        if 1 <= promo_day - index <= 2:
            factor *= 0.88 if promo_day - index == 2 else 0.8
        elif index - promo_day == 1:
            factor *= 1.3
    return factor


def plan_days(config: SimConfig, rng: random.Random) -> tuple[Day, ...]:
    """The days of the period with their order targets (a few percent of noise)."""
    days = []
    for index in range(config.days):
        weekday = (config.start + timedelta(days=index)).weekday()
        factor = day_factor(index, weekday=weekday, promo_day=config.promo_day,
                            multiplier=config.promo_multiplier)
        noise = min(1.12, max(0.88, rng.gauss(1.0, 0.04)))
        target = max(1, round(config.orders_per_day * factor * noise))
        days.append(Day(index, config.start_at + timedelta(days=index), target,
                        config.promo_day is not None and index == config.promo_day))
    return tuple(days)


class TimeOfDay:
    """Draws order times within a day along the Beijing shopping curve."""

    def __init__(self) -> None:
        self._ordinary = Weighted.of(list(enumerate(_HOURS)))
        self._promo = Weighted.of(list(enumerate(_PROMO_HOURS)))

    def draw(self, rng: random.Random, day: Day) -> datetime:
        """A whole-second time on ``day``, UTC."""
        hour = (self._promo if day.promo else self._ordinary).draw(rng)
        return day.start + timedelta(seconds=hour * 3600 + rng.randrange(3600))

    def working_hours(self, rng: random.Random, day: Day) -> datetime:
        """A time between 09:30 and 18:00 Beijing (office purchases)."""
        return day.start + timedelta(seconds=rng.randint(9 * 3600 + 1800, 18 * 3600))
