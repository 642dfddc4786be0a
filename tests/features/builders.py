"""Small builders of domain orders and labels for the feature tests.

Orders are built directly as :class:`orderguard.schema.Order` (the feature engines'
input), with the entity values a test cares about spelled out and the rest defaulted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from features.windows import to_us
from orderguard.schema import (
    Address,
    Amounts,
    Channel,
    ClientInfo,
    Label,
    Order,
    OrderDetails,
    OrderKey,
    OrderLine,
    OrderStatus,
    Party,
    Phone,
    Refund,
    RefundReason,
    StatusChange,
    Verdict,
)

T0 = datetime(2024, 11, 11, 8, 0, tzinfo=UTC)


def at(**delta: float) -> datetime:
    """``T0`` plus a timedelta, e.g. ``at(minutes=5)``."""
    return T0 + timedelta(**delta)


def make_order(order_id: str = "o1", *, created_at: datetime = T0, channel: Channel = Channel.SITE,
               account: str | None = "u1", device: str | None = "d1", ip: str | None = None,
               wifi: str | None = None, phone: str | None = None, id_card: str | None = None,
               address: tuple[str, str, str, str] | None = ("浙江省", "杭州市", "西湖区", "文三路1号"),
               lines: Sequence[tuple[str, int, int]] = (("sku1", 1, 1990),), coupon_fen: int = 0,
               coupon_ids: tuple[str, ...] = (), registered_at: datetime | None = None,
               shop: str = "shop1", version: int = 1, status: OrderStatus = OrderStatus.PAID) -> Order:
    """An order with the given entity values; ``lines`` are ``(sku, qty, unit_price_fen)``."""
    order_lines = tuple(OrderLine(sku, qty, price) for sku, qty, price in lines)
    goods = sum(line.qty * line.unit_price_fen for line in order_lines)
    client = ClientInfo(device_id=device, ip=ip, wifi_hash=wifi) if device or ip or wifi else None
    details = OrderDetails(
        shop_id=shop, created_at=created_at,
        buyer=Party(account_id=account or "", phone=Phone(phone) if phone else None, id_card_hash=id_card,
                    registered_at=registered_at),
        lines=order_lines,
        amounts=Amounts(goods_fen=goods, paid_fen=goods - coupon_fen, coupon_fen=coupon_fen),
        address=Address(*address) if address is not None else None,
        coupon_ids=coupon_ids, client=client)
    return Order(key=OrderKey(channel, order_id), status=status, details=details, event_version=version,
                 updated_at=created_at, timeline=(StatusChange(status, created_at, version, status.value),))


def delivered(order: Order, *, when: datetime, version: int | None = None) -> Order:
    """A newer version of ``order`` in which the parcel was delivered at ``when``."""
    v = version if version is not None else order.event_version + 1
    step = StatusChange(OrderStatus.DELIVERED, when, v, "delivered")
    return replace(order, status=OrderStatus.DELIVERED, event_version=v, updated_at=when,
                   timeline=(*order.timeline, step))


def refunded(order: Order, *, when: datetime, reason: RefundReason = RefundReason.DAMAGED,
             refund_id: str = "r1", amount_fen: int = 1000, sku: str | None = None,
             version: int | None = None) -> Order:
    """A newer version of ``order`` carrying a refund claim made at ``when``."""
    v = version if version is not None else order.event_version + 1
    step = StatusChange(OrderStatus.REFUND_REQUESTED, when, v, "refund")
    refund = Refund(refund_id=refund_id, reason=reason, amount_fen=amount_fen, requested_at=when, sku_id=sku)
    return replace(order, status=OrderStatus.REFUND_REQUESTED, event_version=v, updated_at=when,
                   timeline=(*order.timeline, step), refund=refund)


def make_label(order: Order, *, when: datetime, verdict: Verdict = Verdict.CONFIRMED_FRAUD,
               reviewer: str = "rev1") -> Label:
    """A reviewer's verdict on ``order`` at ``when``."""
    return Label(key=order.key, verdict=verdict, labeled_at=when, reviewer_id=reviewer)


def us(when: datetime) -> int:
    """Event time in microseconds (shorthand for tests)."""
    return to_us(when)
