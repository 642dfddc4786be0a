"""What every order generator shares: the calendar, the population, the drops, and the
helpers that turn "this account buys this basket" into a timed :class:`SimOrder`.

Ordinary orders follow the shop's base rates: ~5 % closed unpaid, ~2 % cancelled,
15 % of Douyin / Kuaishou orders are group buys, ~4 % of paid orders get an honest
refund claim, and about one in a hundred gets stuck in a grey state (paid but never
shipped, or shipped with the carrier silent).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from orderguard.schema import Channel, RefundReason
from simulate import lifecycle
from simulate.catalog import MAX_LINES, REFERENCE_ORDERS_PER_DAY, Coupon, Sku, limited_skus
from simulate.config import SimConfig
from simulate.lifecycle import Fulfilment, Payment, RefundPlan, RefundStage, Script
from simulate.orders import BasketPicker, OrderPlan, SimOrder, coupon_ids, order_line, price
from simulate.period import Day, TimeOfDay
from simulate.plain import PlainAddress, PlainBuyer, PlainClient
from simulate.population import Population
from simulate.rand import Weighted, chance
from simulate.truth import Pattern

_GROUP_BUY_CHANNELS = (Channel.DOUYIN, Channel.KUAISHOU)
_HONEST_CLAIMS = Weighted.of([
    ((RefundReason.NO_REASON, RefundStage.BEFORE_SHIPPING, "拍错了/不想要了"), 1.2),
    ((RefundReason.DAMAGED, RefundStage.AFTER_DELIVERY, "外包装破损，猫砂漏了"), 1.2),
    ((RefundReason.WRONG_ITEM, RefundStage.AFTER_DELIVERY, "发错口味了"), 0.4),
    ((RefundReason.NO_REASON, RefundStage.AFTER_DELIVERY, "七天无理由退货"), 1.4),
])


@dataclass(frozen=True, slots=True)
class Drop:
    """A release of a limited edition: ``stock`` units go on sale at ``at`` on every channel."""

    sku: Sku
    at: datetime
    stock: int


@dataclass(frozen=True, slots=True)
class World:
    """Shared, read-mostly context of one simulation run (the population grows)."""

    config: SimConfig
    days: tuple[Day, ...]
    population: Population
    clock: TimeOfDay
    baskets: BasketPicker
    drops: tuple[Drop, ...]

    def day_of(self, at: datetime) -> Day:
        """The period day that contains ``at`` (clamped to the period)."""
        index = int((at - self.config.start_at) // timedelta(days=1))
        return self.days[min(max(index, 0), len(self.days) - 1)]

    def pick_day(self, rng: random.Random, *, lead_days: int = 0, promo_weight_cap: float = 3.0) -> Day:
        """A day for an episode that needs ``lead_days`` more days to play out.

        Days are weighted by volume, the promotion day at most ``promo_weight_cap`` times
        an ordinary day: abuse rises with traffic but does not scale tenfold.
        """
        last = max(0, len(self.days) - 1 - lead_days)
        candidates = self.days[: last + 1]
        ordinary = [d.target for d in self.days if not d.promo] or [1]
        cap = promo_weight_cap * sorted(ordinary)[len(ordinary) // 2]
        weights = [min(d.target, cap) if d.promo else d.target for d in candidates]
        return rng.choices(candidates, weights=weights)[0]


def plan_drops(config: SimConfig, days: tuple[Day, ...]) -> tuple[Drop, ...]:
    """Releases of each limited SKU: a 20:00 launch early on, then every two weeks,
    plus one at the promotion's midnight opening; each releases the SKU's ``drop_stock``
    scaled by the shop's volume, so drops stay a small share of orders at any scale.

    >>> c = SimConfig(days=7, promo_day=3)
    >>> from simulate.period import plan_days
    >>> from simulate.rand import substream
    >>> len(plan_drops(c, plan_days(c, substream(1, "days"))))
    4
    """
    first = min(1, len(days) - 1)
    indices = list(range(first, len(days), 14))
    promo = next((d.index for d in days if d.promo), None)
    times = [days[i].start + timedelta(hours=20) for i in indices if i != promo]
    if promo is not None:
        times.append(days[promo].start)
    times.sort()
    drops: list[Drop] = []
    scale = config.orders_per_day / REFERENCE_ORDERS_PER_DAY
    for offset, sku in enumerate(limited_skus()):
        stock = max(3, round(sku.drop_stock * scale))
        drops.extend(Drop(sku, t + timedelta(minutes=offset), stock) for t in times)
    return tuple(sorted(drops, key=lambda d: (d.at, d.sku.sku_id)))


def ordinary_script(rng: random.Random, channel: Channel, *, paid_fen: int) -> Script:
    """The fate of an honest order, drawn from the shop's base rates."""
    roll = rng.random()
    if roll < 0.05:
        return Script(payment=Payment.UNPAID_CLOSED)
    if roll < 0.07:
        return Script(payment=Payment.CANCELLED)
    group_buy = channel in _GROUP_BUY_CHANNELS and chance(rng, 0.15)
    if group_buy and chance(rng, 0.04):
        return Script(group_buy=True, group_fails=True)
    grey = rng.random()
    if grey < 0.004:
        return Script(group_buy=group_buy, fulfilment=Fulfilment.STUCK_UNSHIPPED)
    if grey < 0.010:
        claim = (RefundPlan(RefundReason.NOT_RECEIVED, RefundStage.AFTER_SILENCE, True, "物流一直没更新，没收到货")
                 if chance(rng, 0.5) else None)
        return Script(group_buy=group_buy, fulfilment=Fulfilment.LOGISTICS_SILENT, refund=claim)
    if chance(rng, 0.042):
        reason, stage, text = _HONEST_CLAIMS.draw(rng)
        amount = None
        if reason is RefundReason.DAMAGED and chance(rng, 0.4):
            amount = max(100, paid_fen * rng.randint(20, 60) // 100)  # partial compensation
        return Script(group_buy=group_buy,
                      refund=RefundPlan(reason, stage, chance(rng, 0.93), text, amount_fen=amount))
    return Script(group_buy=group_buy)


def make_order(world: World, rng: random.Random, *, channel: Channel, created_at: datetime, buyer: PlainBuyer,
               basket: list[tuple[Sku, int]], address: PlainAddress, client: PlainClient,
               transit_days: int, coupon: Coupon | None = None, unit_prices: dict[str, int] | None = None,
               script: Script | None = None, pattern: Pattern = Pattern.NORMAL, group_id: str = "",
               message: str = "", shop_id: str = "") -> SimOrder:
    """Price a basket, decide (or take) its script and draw its timeline.

    Args:
        basket: SKUs and quantities; cut to the channel's line limit (``MAX_LINES``).
        unit_prices: per-SKU unit price overrides in fen (price glitches); otherwise the
            usual price, or the promotion price on the promotion day.
        script: the order's fate; ``None`` draws an ordinary one.
        shop_id: the storefront, when not the channel's main one.
    """
    promo = world.day_of(created_at).promo
    basket = basket[: MAX_LINES.get(channel, len(basket))]
    lines = tuple(order_line(sku, qty, promo=promo,
                             unit_price_fen=(unit_prices or {}).get(sku.sku_id)) for sku, qty in basket)
    amounts = price(lines, channel=channel, promo=promo, coupon=coupon)
    if script is None:
        script = ordinary_script(rng, channel, paid_fen=amounts.paid_fen)
    plan = OrderPlan(channel=channel, created_at=created_at.replace(microsecond=0), buyer=buyer, lines=lines,
                     amounts=amounts, address=address, client=client, transit_days=transit_days,
                     script=script, coupon_ids=coupon_ids(amounts, coupon), buyer_message=message,
                     pattern=pattern, group_id=group_id, shop_id=shop_id)
    backlog = rng.randint(0, 2) if promo else 0
    timeline = lifecycle.schedule(script, channel=channel, created_at=plan.created_at,
                                  transit_days=transit_days, rng=rng, backlog_days=backlog)
    return SimOrder(plan, timeline)
