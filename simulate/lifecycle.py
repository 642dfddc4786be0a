"""An order's life: which statuses it passes through and when.

A :class:`Script` says what will happen (paid or not, group buy, grey state, refund
claim); :func:`schedule` draws when, with delays that follow how the shop works:
buyers pay within minutes, the Hangzhou warehouse ships what was paid before its
16:00 cut-off the same evening, parcels arrive in ``transit_days`` during the day,
buyers confirm receipt or the platform auto-confirms after 7-10 days.

Statuses only move forward in ``orderguard.schema.LIFECYCLE_RANK`` order and every step
is at least one second after the previous one, so an order's events have strictly
increasing update times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType

from orderguard.clock import SHOP_TZ
from orderguard.schema import Channel, EventKind, OrderStatus, RefundReason
from simulate.rand import chance, lognormal_delay, uniform_delay

_SECOND = timedelta(seconds=1)

#: How long an unpaid order stays open before the platform closes it.
UNPAID_TIMEOUT = MappingProxyType({
    Channel.TMALL: timedelta(hours=24), Channel.JD: timedelta(hours=24), Channel.DOUYIN: timedelta(minutes=30),
    Channel.KUAISHOU: timedelta(minutes=30), Channel.WECHAT: timedelta(minutes=30),
    Channel.SITE: timedelta(minutes=30),
})
#: Days after delivery when the platform confirms receipt on the buyer's behalf.
_AUTO_CONFIRM_DAYS = MappingProxyType({
    Channel.TMALL: 10, Channel.JD: 7, Channel.DOUYIN: 7, Channel.KUAISHOU: 7, Channel.WECHAT: 7,
    Channel.SITE: 7,
})
_CUTOFF_HOUR = 16
_PICKUP_HOUR = 17


class Payment(StrEnum):
    """What the buyer does after creating the order."""

    PAID = "paid"
    UNPAID_CLOSED = "unpaid_closed"  # never paid; the platform closes it at the timeout
    CANCELLED = "cancelled"  # buyer cancels before paying


class Fulfilment(StrEnum):
    """How shipping goes; the last two are the grey states an ops monitor must catch."""

    NORMAL = "normal"
    STUCK_UNSHIPPED = "stuck_unshipped"
    LOGISTICS_SILENT = "logistics_silent"


class RefundStage(StrEnum):
    """When in the life cycle the buyer files the claim."""

    BEFORE_SHIPPING = "before_shipping"  # changed mind, paid but not shipped
    AFTER_DELIVERY = "after_delivery"  # damaged, wrong item, no-reason, "not received"
    AFTER_SILENCE = "after_silence"  # logistics silent for days: not received


@dataclass(frozen=True, slots=True)
class RefundPlan:
    """A refund claim the order will get.

    Attributes:
        amount_fen: claimed amount; ``None`` means the whole paid amount.
        at: claim time fixed by the caller (coordinated abuse); ``None`` means drawn.
    """

    reason: RefundReason
    stage: RefundStage
    approve: bool
    reason_text: str = ""
    amount_fen: int | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Script:
    """What happens to an order, decided before any time is drawn.

    Attributes:
        pay_within: fixed payment delay (bots pay in seconds); ``None`` means drawn.
        group_buy: a Douyin / Kuaishou group-buy order (待成团 after payment).
        group_fails: the group never forms and the order is closed and refunded.
    """

    payment: Payment = Payment.PAID
    group_buy: bool = False
    group_fails: bool = False
    fulfilment: Fulfilment = Fulfilment.NORMAL
    refund: RefundPlan | None = None
    pay_within: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """When each step of one order happens (UTC); ``None`` for steps that never happen.

    ``grouped`` is when a group-buy's group forms (awaiting_group -> paid).
    """

    created: datetime
    paid: datetime | None = None
    grouped: datetime | None = None
    closed: datetime | None = None
    cancelled: datetime | None = None
    shipped: datetime | None = None
    delivered: datetime | None = None
    completed: datetime | None = None
    refund_requested: datetime | None = None
    refund_resolved: datetime | None = None
    refund_approved: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """One event-to-be of an order: its status, document kind and time."""

    status: OrderStatus
    kind: EventKind
    at: datetime


def _local_at(day: datetime, hour: int, minute: int = 0) -> datetime:
    """``day``'s Beijing date at ``hour:minute`` local, returned in the tz of ``day``."""
    local = day.astimezone(SHOP_TZ)
    return datetime.combine(local.date(), time(hour, minute), tzinfo=SHOP_TZ).astimezone(day.tzinfo)


def ship_time(rng: random.Random, ready: datetime, *, backlog_days: int = 0) -> datetime:
    """When the warehouse hands an order to the carrier.

    Orders ready before the 16:00 Beijing cut-off leave with the 17:00-19:30 pick-up the
    same day, later ones the next day; ``backlog_days`` delays everything after a
    promotion; a few orders slip one more day.

    >>> from datetime import UTC
    >>> t = ship_time(random.Random(0), datetime(2024, 11, 4, 1, 0, tzinfo=UTC))  # 09:00 Beijing
    >>> t.astimezone(SHOP_TZ).date().isoformat(), 17 <= t.astimezone(SHOP_TZ).hour <= 19
    ('2024-11-04', True)
    """
    local = ready.astimezone(SHOP_TZ)
    days = 0 if local.hour < _CUTOFF_HOUR else 1
    days += backlog_days + (1 if chance(rng, 0.04) else 0)
    pickup = _local_at(ready + timedelta(days=days), _PICKUP_HOUR)
    return max(pickup + uniform_delay(rng, timedelta(0), timedelta(minutes=150)), ready + _SECOND)


def delivery_time(rng: random.Random, shipped: datetime, *, transit_days: int) -> datetime:
    """When the carrier reports the parcel delivered: ``transit_days`` later, in daytime."""
    jitter = rng.choice((-1, 0, 0, 0, 1)) if transit_days > 1 else 0
    day = shipped + timedelta(days=max(1, transit_days + jitter))
    at = _local_at(day, rng.randint(8, 19), rng.randint(0, 59)) + timedelta(seconds=rng.randint(0, 59))
    return max(at, shipped + timedelta(hours=10))


def schedule(script: Script, *, channel: Channel, created_at: datetime, transit_days: int,
             rng: random.Random, backlog_days: int = 0) -> Timeline:
    """Draw the times of every step ``script`` implies for an order created at ``created_at``.

    Args:
        script: what happens.
        channel: decides the unpaid timeout and the auto-confirm delay.
        created_at: creation time, UTC.
        transit_days: express days from Hangzhou to the delivery city.
        rng: the stream to draw from.
        backlog_days: extra warehouse delay (promotion backlog).

    >>> from datetime import UTC
    >>> t0 = datetime(2024, 9, 3, 2, 0, tzinfo=UTC)
    >>> tl = schedule(Script(), channel=Channel.TMALL, created_at=t0, transit_days=1, rng=random.Random(5))
    >>> t0 < tl.paid < tl.shipped < tl.delivered < tl.completed
    True
    """
    if script.payment is Payment.UNPAID_CLOSED:
        return Timeline(created_at, closed=created_at + UNPAID_TIMEOUT[channel])
    if script.payment is Payment.CANCELLED:
        return Timeline(created_at, cancelled=created_at + uniform_delay(
            rng, timedelta(minutes=1), timedelta(minutes=25)))
    pay_delay = script.pay_within if script.pay_within is not None else lognormal_delay(
        rng, median=timedelta(seconds=50), sigma=1.1, floor=timedelta(seconds=5), cap=timedelta(hours=6))
    paid = created_at + max(pay_delay, _SECOND)
    timeline = Timeline(created_at, paid=paid)
    ready = paid
    if script.group_buy:
        if script.group_fails:
            return replace(timeline, closed=paid + timedelta(hours=24))
        grouped = paid + lognormal_delay(rng, median=timedelta(minutes=25), sigma=1.3,
                                         floor=timedelta(seconds=20), cap=timedelta(hours=23))
        timeline = replace(timeline, grouped=grouped)
        ready = grouped
    refund = script.refund
    if refund is not None and refund.stage is RefundStage.BEFORE_SHIPPING:
        requested = refund.at or ready + lognormal_delay(rng, median=timedelta(hours=2), sigma=0.8,
                                                         cap=timedelta(hours=20))
        resolved = requested + uniform_delay(rng, timedelta(minutes=2), timedelta(hours=3))
        return replace(timeline, refund_requested=requested, refund_resolved=resolved, refund_approved=True)
    if script.fulfilment is Fulfilment.STUCK_UNSHIPPED:
        return timeline
    shipped = ship_time(rng, ready, backlog_days=backlog_days)
    timeline = replace(timeline, shipped=shipped)
    if script.fulfilment is Fulfilment.LOGISTICS_SILENT:
        if refund is not None:
            requested = refund.at or shipped + uniform_delay(rng, timedelta(days=5), timedelta(days=9))
            timeline = _with_claim(timeline, requested, rng=rng, approve=refund.approve)
        return timeline
    delivered = delivery_time(rng, shipped, transit_days=transit_days)
    timeline = replace(timeline, delivered=delivered)
    if refund is not None:
        requested = refund.at or delivered + lognormal_delay(
            rng, median=timedelta(hours=20), sigma=0.9, floor=timedelta(minutes=10), cap=timedelta(days=6))
        return _with_claim(timeline, requested, rng=rng, approve=refund.approve)
    if chance(rng, 0.45):
        completed = delivered + lognormal_delay(rng, median=timedelta(hours=20), sigma=1.0,
                                                floor=timedelta(minutes=5), cap=timedelta(days=5))
    else:
        completed = delivered + timedelta(days=_AUTO_CONFIRM_DAYS[channel], seconds=rng.randint(0, 3600))
    return replace(timeline, completed=completed)


def with_claim(timeline: Timeline, requested: datetime, *, rng: random.Random, approve: bool) -> Timeline:
    """Replace the refund claim of ``timeline`` with one filed at ``requested``.

    Used by coordinated abuse, whose claims are timed against each other rather than
    against each parcel. A claim is never earlier than one second after the parcel's
    last logistics step.
    """
    base = replace(timeline, completed=None)
    return _with_claim(base, requested, rng=rng, approve=approve)


def _with_claim(timeline: Timeline, requested: datetime, *, rng: random.Random, approve: bool) -> Timeline:
    last = timeline.delivered or timeline.shipped or timeline.grouped or timeline.paid or timeline.created
    requested = max(requested, last + _SECOND)
    wait = (uniform_delay(rng, timedelta(hours=2), timedelta(hours=40)) if approve
            else uniform_delay(rng, timedelta(hours=12), timedelta(hours=70)))
    return replace(timeline, refund_requested=requested, refund_resolved=requested + wait,
                   refund_approved=approve)


def steps(timeline: Timeline, *, group_buy: bool) -> list[Step]:
    """The events an order's timeline produces, oldest first.

    >>> from datetime import UTC
    >>> t0 = datetime(2024, 9, 3, tzinfo=UTC)
    >>> [s.status.value for s in steps(Timeline(t0, closed=t0 + timedelta(minutes=30)), group_buy=False)]
    ['created', 'closed']
    """
    order, sale = EventKind.ORDER, EventKind.AFTER_SALE
    out = [Step(OrderStatus.CREATED, order, timeline.created)]
    if timeline.paid is not None:
        out.append(Step(OrderStatus.AWAITING_GROUP if group_buy else OrderStatus.PAID, order, timeline.paid))
    if timeline.grouped is not None:
        out.append(Step(OrderStatus.PAID, order, timeline.grouped))
    for status, at in ((OrderStatus.SHIPPED, timeline.shipped), (OrderStatus.DELIVERED, timeline.delivered),
                       (OrderStatus.COMPLETED, timeline.completed)):
        if at is not None:
            out.append(Step(status, order, at))
    if timeline.refund_requested is not None:
        out.append(Step(OrderStatus.REFUND_REQUESTED, sale, timeline.refund_requested))
        if timeline.refund_resolved is not None:
            resolved = OrderStatus.REFUNDED if timeline.refund_approved else OrderStatus.REFUND_REJECTED
            out.append(Step(resolved, sale, timeline.refund_resolved))
    if timeline.cancelled is not None:
        out.append(Step(OrderStatus.CANCELLED, order, timeline.cancelled))
    if timeline.closed is not None:
        out.append(Step(OrderStatus.CLOSED, order, timeline.closed))
    return out
