"""Seeded random streams and small sampling helpers.

Every part of the simulator draws from its own named stream derived from the root
seed, so adding draws to one part (say, a new abuse pattern) does not shift the
numbers every other part sees, and nothing touches the global ``random`` state.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")


def substream(seed: int, name: str) -> random.Random:
    """An independent ``random.Random`` for the part of the simulator called ``name``.

    >>> substream(7, "orders").random() == substream(7, "orders").random()
    True
    >>> substream(7, "orders").random() == substream(7, "refunds").random()
    False
    """
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True, slots=True)
class Weighted(Generic[T]):
    """A fixed weighted choice, cumulative weights computed once (hot loops draw a lot).

    >>> w = Weighted.of([("a", 0.0), ("b", 1.0)])
    >>> w.draw(random.Random(1))
    'b'
    """

    items: tuple[T, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[T, float]]) -> Weighted[T]:
        """Build from ``(item, weight)`` pairs; weights need not sum to one."""
        if not pairs or any(w < 0 for _, w in pairs) or sum(w for _, w in pairs) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return cls(tuple(i for i, _ in pairs), tuple(accumulate(w for _, w in pairs)))

    def draw(self, rng: random.Random) -> T:
        """One item, with probability proportional to its weight."""
        return rng.choices(self.items, cum_weights=self.cum_weights)[0]


def lognormal_delay(rng: random.Random, *, median: timedelta, sigma: float,
                    floor: timedelta = timedelta(seconds=1), cap: timedelta | None = None) -> timedelta:
    """A right-skewed waiting time: most near ``median``, a long tail of slow ones.

    Human delays (paying, confirming receipt, filing a claim) look like this. The result
    is rounded to whole seconds, the resolution channels stamp, and clipped to
    ``[floor, cap]``.

    >>> d = lognormal_delay(random.Random(3), median=timedelta(minutes=2), sigma=0.0)
    >>> d
    datetime.timedelta(seconds=120)
    """
    seconds = median.total_seconds() * math.exp(rng.gauss(0.0, sigma)) if sigma > 0 else median.total_seconds()
    delay = timedelta(seconds=round(max(seconds, floor.total_seconds())))
    if cap is not None and delay > cap:
        delay = cap
    return delay


def uniform_delay(rng: random.Random, low: timedelta, high: timedelta) -> timedelta:
    """A delay uniform in ``[low, high]``, whole seconds.

    >>> uniform_delay(random.Random(0), timedelta(minutes=5), timedelta(minutes=5))
    datetime.timedelta(seconds=300)
    """
    lo, hi = int(low.total_seconds()), int(high.total_seconds())
    return timedelta(seconds=rng.randint(lo, max(lo, hi)))


def chance(rng: random.Random, probability: float) -> bool:
    """True with the given probability (one draw, always consumed for stability)."""
    return rng.random() < probability


def digits(rng: random.Random, count: int) -> str:
    """``count`` random decimal digits, leading zeros allowed.

    >>> len(digits(random.Random(0), 8))
    8
    """
    return f"{rng.randrange(10**count):0{count}d}"
