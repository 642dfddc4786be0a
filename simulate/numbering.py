"""Order ids, refund ids and tracking numbers in each platform's shape.

Ids are derived from a per-channel sequence number (orders numbered by creation time)
through a bijection, so they are unique by construction, look random where the
platform's do (Tmall, Douyin, Kuaishou, WeChat) and grow where the platform's grow (JD,
the own site).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final

from orderguard.clock import SHOP_TZ
from orderguard.schema import Channel
from simulate.rand import digits

#: ``(prefix, digits, multiplier)`` of the scrambled ids; multipliers are coprime to 10.
_SCRAMBLED: Final = MappingProxyType({
    Channel.TMALL: ("4", 18, 618_033_988_749_894_847),
    Channel.DOUYIN: ("69", 17, 31_415_926_535_897_931),
    Channel.KUAISHOU: ("24", 14, 27_182_818_284_593),
    Channel.WECHAT: ("37", 17, 14_142_135_623_730_951),
})


def scramble(n: int, *, width: int, multiplier: int, offset: int) -> int:
    """A bijection of ``[0, 10**width)``: distinct ``n`` give distinct results.

    >>> len({scramble(i, width=3, multiplier=7, offset=5) for i in range(1000)})
    1000
    """
    modulus: int = 10**width
    return (n * multiplier + offset) % modulus


@dataclass(frozen=True, slots=True)
class Numbering:
    """Seeded id formats for one run."""

    offsets: MappingProxyType[Channel, int]

    @classmethod
    def seeded(cls, rng: random.Random) -> Numbering:
        """Offsets drawn from ``rng``: another seed gives other ids."""
        return cls(MappingProxyType({c: rng.randrange(10**18) for c in Channel}))

    def order_id(self, channel: Channel, seq: int, *, created_at: datetime) -> str:
        """The id of the ``seq``-th order (0-based, by creation time) of ``channel``.

        >>> n = Numbering(MappingProxyType({c: 0 for c in Channel}))
        >>> from datetime import UTC
        >>> n.order_id(Channel.SITE, 7, created_at=datetime(2024, 9, 1, tzinfo=UTC))
        'PH20240901000007'
        >>> len(n.order_id(Channel.TMALL, 7, created_at=datetime(2024, 9, 1, tzinfo=UTC)))
        19
        """
        offset = self.offsets[channel]
        if channel in _SCRAMBLED:
            prefix, width, multiplier = _SCRAMBLED[channel]
            number = scramble(seq, width=width, multiplier=multiplier, offset=offset)
            return f"{prefix}{number:0{width}d}"
        if channel is Channel.JD:
            return str(300_000_000_000 + offset % 10**10 + seq * 37 + (seq * 7919 + offset) % 37)
        return f"PH{created_at.astimezone(SHOP_TZ):%Y%m%d}{seq:06d}"


def refund_id(channel: Channel, order_id: str) -> str:
    """The after-sale id of an order's (single) refund claim.

    >>> refund_id(Channel.JD, "300000000123")
    'AS300000000123'
    """
    return f"{'RF' if channel is not Channel.JD else 'AS'}{order_id}"


def tracking_no(rng: random.Random, channel: Channel, *, paid_fen: int) -> str:
    """A waybill number of the carrier the warehouse would use.

    JD orders go with JD Logistics, parcels worth over 1000 yuan with SF Express,
    the rest with ZTO, YTO or Yunda.
    """
    if channel is Channel.JD:
        return "JDVA" + digits(rng, 11)
    if paid_fen >= 100_000:
        return "SF" + digits(rng, 13)
    carrier = rng.random()
    if carrier < 0.5:
        return "7" + digits(rng, 14)
    if carrier < 0.8:
        return "YT" + digits(rng, 13)
    return "43" + digits(rng, 13)
