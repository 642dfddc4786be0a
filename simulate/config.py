"""What to simulate: the knobs of the synthetic shop, validated once.

The simulator is a pure function of this configuration: the same ``SimConfig`` always
yields byte-identical output, so a seed is enough to reproduce a data set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from orderguard.clock import SHOP_TZ
from orderguard.errors import InvalidInputError

#: The shop's local time: days, opening hours and the warehouse cut-off are Beijing time.


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Configuration of one simulated period of the shop.

    Attributes:
        seed: root of every random stream; same seed, same output.
        days: length of the period in Beijing calendar days.
        start: first Beijing calendar day of the period.
        orders_per_day: typical number of orders created on an ordinary day (all
            channels, abuse included); weekdays and noise move it by a few percent.
        promo_day: offset (0-based, from ``start``) of the promotion day, e.g. 11.11,
            or ``None`` for a period without one. The default is 2024-11-11.
        promo_multiplier: order volume of the promotion day relative to an ordinary day.
        abnormal_share: target share of orders that belong to a ring, burst or episode
            (``simulate.abuse``); the realised share is within a fraction of a percent of it
            when the period holds a few thousand orders.
        account_abuse_share: target share of orders of the account-level abuse
            (``simulate.account_abuse``), on top of ``abnormal_share``.

    >>> SimConfig(days=7, promo_day=3).end_at - SimConfig(days=7, promo_day=3).start_at
    datetime.timedelta(days=7)
    """

    seed: int = 20241111
    days: int = 90
    start: date = date(2024, 9, 1)
    orders_per_day: int = 500
    promo_day: int | None = 71
    promo_multiplier: float = 10.0
    abnormal_share: float = 0.065
    account_abuse_share: float = 0.009

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str, object]] = [
            ("seed", 0 <= self.seed < 2**63, "an integer in [0, 2**63)", self.seed),
            ("days", 1 <= self.days <= 730, "between 1 and 730", self.days),
            ("orders_per_day", 10 <= self.orders_per_day <= 200_000, "between 10 and 200000",
             self.orders_per_day),
            ("promo_multiplier", 1.0 <= self.promo_multiplier <= 50.0, "between 1 and 50",
             self.promo_multiplier),
            ("abnormal_share", 0.0 <= self.abnormal_share <= 0.5, "between 0 and 0.5",
             self.abnormal_share),
            ("account_abuse_share", 0.0 <= self.account_abuse_share <= 0.5 - self.abnormal_share,
             "between 0 and 0.5 minus abnormal_share", self.account_abuse_share),
        ]
        if self.promo_day is not None:
            checks.append(("promo_day", 0 <= self.promo_day < self.days,
                           f"None or a day offset in [0, {self.days})", self.promo_day))
        for field, ok, constraint, value in checks:
            if not ok:
                raise InvalidInputError.must(field, constraint, value)

    @classmethod
    def for_period(cls, *, seed: int, days: int, start: date = date(2024, 9, 1), orders_per_day: int = 500,
                   ) -> SimConfig:
        """A config whose promotion day is 11.11 when the period covers it, else the middle day.

        >>> SimConfig.for_period(seed=1, days=90).promo_day, SimConfig.for_period(seed=1, days=7).promo_day
        (71, 3)
        """
        offset = (date(start.year, 11, 11) - start).days
        promo_day = offset if 0 <= offset < days else days // 2
        return cls(seed=seed, days=days, start=start, orders_per_day=orders_per_day, promo_day=promo_day)

    @property
    def start_at(self) -> datetime:
        """Beginning of the period: Beijing midnight of ``start``, in UTC."""
        return datetime.combine(self.start, time(0), tzinfo=SHOP_TZ).astimezone(UTC)

    @property
    def end_at(self) -> datetime:
        """End of the period (exclusive), UTC: events after it are not yet known."""
        return self.start_at + timedelta(days=self.days)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the manifest (dates as ISO strings)."""
        return {
            "seed": self.seed,
            "days": self.days,
            "start": self.start.isoformat(),
            "orders_per_day": self.orders_per_day,
            "promo_day": self.promo_day,
            "promo_multiplier": self.promo_multiplier,
            "abnormal_share": self.abnormal_share,
            "account_abuse_share": self.account_abuse_share,
        }
