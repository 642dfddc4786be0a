"""Order plans: who buys what, where to, for how much, and with which label.

An :class:`OrderPlan` is everything about an order except its id and the times of its
later steps; a :class:`SimOrder` adds the drawn :class:`~lifecycle.Timeline`. Pricing
follows the shop's rules: unit prices at the usual price (a little lower on the
promotion day), shop-wide full-reduction (满减) as ``discount_fen``, coupons as
``coupon_fen``, free shipping above a threshold.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from orderguard.schema import Amounts, Channel, OrderLine
from simulate import lifecycle
from simulate.catalog import Coupon, Sku
from simulate.plain import PlainAddress, PlainBuyer, PlainClient
from simulate.rand import Weighted, chance
from simulate.truth import OpsIssue, Pattern

_MESSAGES = ("请尽快发货，谢谢", "麻烦发中通", "送人的，不要放价格单", "猫咪挑食，可以多送点试吃装吗",
             "放门口就行", "工作日白天家里没人，请放驿站", "麻烦包装结实一点", "有赠品吗")


@dataclass(frozen=True, slots=True)
class OrderPlan:
    """An order before its id is assigned and its later steps are timed.

    Attributes:
        created_at: creation time, UTC, whole seconds.
        transit_days: express days from Hangzhou to ``address``.
        pattern / group_id: the ground truth (never rendered into a payload).
        shop_id: the storefront, when not the channel's main one (``catalog.SHOP_IDS``).
    """

    channel: Channel
    created_at: datetime
    buyer: PlainBuyer
    lines: tuple[OrderLine, ...]
    amounts: Amounts
    address: PlainAddress
    client: PlainClient
    transit_days: int
    script: lifecycle.Script
    coupon_ids: tuple[str, ...] = ()
    buyer_message: str = ""
    pattern: Pattern = Pattern.NORMAL
    group_id: str = ""
    shop_id: str = ""

    @property
    def ops_issue(self) -> OpsIssue:
        """The grey state injected by the script, if any."""
        fulfilment = self.script.fulfilment
        if self.script.payment is not lifecycle.Payment.PAID or self.script.group_fails:
            return OpsIssue.NONE
        if fulfilment is lifecycle.Fulfilment.STUCK_UNSHIPPED:
            return OpsIssue.STUCK_UNSHIPPED
        if fulfilment is lifecycle.Fulfilment.LOGISTICS_SILENT:
            return OpsIssue.LOGISTICS_SILENT
        return OpsIssue.NONE


@dataclass(frozen=True, slots=True)
class SimOrder:
    """A planned order with its drawn timeline."""

    plan: OrderPlan
    timeline: lifecycle.Timeline


def promo_price(price_fen: int) -> int:
    """The promotion-day unit price: 10 % off, rounded down to whole jiao.

    >>> promo_price(7990)
    7190
    """
    return price_fen * 9 // 10 // 10 * 10


def order_line(sku: Sku, qty: int, *, unit_price_fen: int | None = None, promo: bool = False) -> OrderLine:
    """A line of ``qty`` units of ``sku`` at its usual (or promotion, or given) price."""
    price = unit_price_fen if unit_price_fen is not None else (
        promo_price(sku.price_fen) if promo else sku.price_fen)
    return OrderLine(sku.sku_id, qty, price, sku.title, sku.list_price_fen)


def shipping_fee(channel: Channel, goods_fen: int) -> int:
    """Shipping charged to the buyer: free above the channel's threshold.

    >>> shipping_fee(Channel.SITE, 3990), shipping_fee(Channel.TMALL, 3990)
    (800, 0)
    """
    if channel in (Channel.SITE, Channel.WECHAT):
        return 0 if goods_fen >= 5900 else 800
    return 0 if goods_fen >= 2900 else 600


def shop_discount(goods_fen: int, *, promo: bool) -> int:
    """Shop-wide full reduction: 20 off every order above 299 yuan, or 50 off per 300 on the promotion day.

    >>> shop_discount(65000, promo=True), shop_discount(65000, promo=False), shop_discount(9900, promo=False)
    (10000, 2000, 0)
    """
    if promo:
        return goods_fen // 30000 * 5000
    return 2000 if goods_fen >= 29900 else 0


def price(lines: Sequence[OrderLine], *, channel: Channel, promo: bool, coupon: Coupon | None) -> Amounts:
    """Order amounts in fen; a coupon whose threshold the goods miss is not applied.

    >>> from simulate.catalog import NEW_USER_COUPON
    >>> a = price([OrderLine("X", 1, 5990)], channel=Channel.TMALL, promo=False, coupon=NEW_USER_COUPON)
    >>> (a.goods_fen, a.coupon_fen, a.paid_fen)
    (5990, 2000, 3990)
    """
    goods = sum(line.unit_price_fen * line.qty for line in lines)
    discount = shop_discount(goods, promo=promo)
    coupon_fen = coupon.value_fen if coupon is not None and goods - discount >= coupon.threshold_fen else 0
    shipping = shipping_fee(channel, goods)
    paid = max(1, goods - discount - coupon_fen + shipping)
    return Amounts(goods_fen=goods, paid_fen=paid, shipping_fen=shipping, discount_fen=discount,
                   coupon_fen=coupon_fen)


def coupon_ids(amounts: Amounts, coupon: Coupon | None) -> tuple[str, ...]:
    """The coupon ids to render: only a coupon that was actually applied."""
    return (coupon.coupon_id,) if coupon is not None and amounts.coupon_fen > 0 else ()


class BasketPicker:
    """Draws ordinary baskets: one to three SKUs by popularity, realistic quantities."""

    def __init__(self, skus: Sequence[Sku]) -> None:
        self._skus = Weighted.of([(s, s.popularity) for s in skus if s.popularity > 0])
        self._sizes = Weighted.of([(1, 0.66), (2, 0.25), (3, 0.09)])
        self._promo_sizes = Weighted.of([(1, 0.45), (2, 0.33), (3, 0.22)])

    def draw(self, rng: random.Random, *, promo: bool) -> list[tuple[Sku, int]]:
        """SKUs and quantities of one basket (distinct SKUs)."""
        size = (self._promo_sizes if promo else self._sizes).draw(rng)
        picked: list[tuple[Sku, int]] = []
        for _ in range(size):
            sku = self._skus.draw(rng)
            if any(sku is p for p, _ in picked):
                continue
            qty = 1 if sku.max_qty == 1 or not chance(rng, 0.3 if not promo else 0.45) else rng.randint(
                2, sku.max_qty)
            picked.append((sku, qty))
        return picked

    def one(self, rng: random.Random) -> Sku:
        """A single SKU by popularity."""
        return self._skus.draw(rng)


def buyer_message(rng: random.Random) -> str:
    """An occasional note to the seller (most orders have none)."""
    return rng.choice(_MESSAGES) if chance(rng, 0.06) else ""
