"""Fulfilment steps of the simulated shop, the faults injected into them, and their ground truth.

A channel only says paid, shipped, delivered. The shop's own systems report what happens
in between (``orderguard.fulfilment``): the payment gateway's callback, the ERP's
acknowledgement, the stock lock, the warehouse's waybill and out-scan, the carrier's
tracking nodes and delivery, the buyer's complaints. This module derives those reports
from each order's :class:`~simulate.lifecycle.Timeline` with the timing of a shop that
works (every default deadline of the order-health checks, :data:`DEADLINES`, is met with
room to spare), breaks some orders the way shops break around a promotion, and lists
every check an order-health monitor should fail, per order, with the moment its deadline
counts from.

It runs in two phases because some faults change what the channel reports too:

* :func:`inject_faults` works on the numbered orders before their channel events are
  rendered: a lost payment callback leaves the order paid and never shipped, a warehouse
  backlog moves the ship time, a carrier outage moves deliveries, a sloppy address or a
  mistyped phone is what the buyer entered, a duplicate is a second real order.
* :func:`derive` turns every order, faulty or not, into its steps and evaluates the checks
  over exactly what a monitor would see (steps and channel events before the period's
  end), so the truth holds the injected faults *and* every naturally occurring one (a
  promotion backlog that misses the 48 h ship promise, a pick-up address without a street,
  a price glitch, a "not received" claim on a delivered parcel …) and nothing else.

Every part draws from its own stream (``fulfilment/…``, one per order for the steps), so
the channel payloads of the orders no fault touches stay byte-identical to a run without
faults, and one order's steps do not depend on any other order.
"""

from __future__ import annotations

import bisect
import functools
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from orderguard.clock import SHOP_TZ
from orderguard.enrich import address_defects, phone_problem
from orderguard.fulfilment import FulfilmentEvent, StepKind, parse_event
from orderguard.schema import Address, Channel, OrderKey, Phone, RefundReason
from simulate import geo
from simulate.config import SimConfig
from simulate.lifecycle import Fulfilment, Payment, Timeline, schedule
from simulate.orders import SimOrder, price
from simulate.rand import chance, digits, substream, uniform_delay
from simulate.truth import OpsIssue, Pattern

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


class CheckId(StrEnum):
    """The order-health checks the truth is written against (the monitor's default set)."""

    PAYMENT_CALLBACK = "payment_callback"
    ERP_SYNC = "erp_sync"
    INVENTORY_LOCK = "inventory_lock"
    OUT_SCAN = "out_scan"
    SHIP_PROMISE = "ship_promise"
    TRACKING_SILENT = "tracking_silent"
    FALSE_DELIVERY = "false_delivery"
    ADDRESS_INCOMPLETE = "address_incomplete"
    PHONE_INVALID = "phone_invalid"
    PRICE_BOUNDS = "price_bounds"
    DUPLICATE_ORDER = "duplicate_order"
    PRESALE_BALANCE = "presale_balance"


#: How long after its anchor each check's expected step may come. The checks of facts
#: (address, phone, price, duplicate), ``false_delivery`` and ``presale_balance`` (whose
#: deadline is the deposit's own ``due_at``) fire at their anchor: zero.
DEADLINES: Final[Mapping[CheckId, timedelta]] = MappingProxyType({
    CheckId.PAYMENT_CALLBACK: timedelta(minutes=10),
    CheckId.ERP_SYNC: timedelta(minutes=15),
    CheckId.INVENTORY_LOCK: timedelta(minutes=30),
    CheckId.OUT_SCAN: timedelta(hours=4),
    CheckId.SHIP_PROMISE: timedelta(hours=48),
    CheckId.TRACKING_SILENT: timedelta(hours=24),
    CheckId.FALSE_DELIVERY: timedelta(0),
    CheckId.ADDRESS_INCOMPLETE: timedelta(0),
    CheckId.PHONE_INVALID: timedelta(0),
    CheckId.PRICE_BOUNDS: timedelta(0),
    CheckId.DUPLICATE_ORDER: timedelta(0),
    CheckId.PRESALE_BALANCE: timedelta(0),
})
#: ``price_bounds``: paid below this share of the list total, or reductions above that share of the goods.
MIN_PAID_SHARE: Final = 0.3
MAX_DISCOUNT_SHARE: Final = 0.7
#: ``duplicate_order``: how far apart the same buyer's same cart is a duplicate.
DUPLICATE_WITHIN: Final = timedelta(minutes=10)
#: A presale's balance is due this long after its deposit.
BALANCE_WINDOW: Final = timedelta(hours=48)


class Fault(StrEnum):
    """Why an order fails a check: the injected faults first, then the naturally occurring ones."""

    # injected
    LOST_PAYMENT_CALLBACK = "lost_payment_callback"
    WAREHOUSE_BACKLOG = "warehouse_backlog"
    CARRIER_OUTAGE = "carrier_outage"
    INCOMPLETE_ADDRESS = "incomplete_address"  # also natural (pick-up points written without a street)
    INVALID_PHONE = "invalid_phone"
    DUPLICATE_ORDER = "duplicate_order"  # also natural (an honest buyer ordering the same cart again)
    FALSE_DELIVERY_COMPLAINT = "false_delivery_complaint"
    PRESALE_NO_BALANCE = "presale_no_balance"
    # natural
    LATE_SHIPMENT = "late_shipment"  # the warehouse's own slips and promotion backlog past the ship promise
    STUCK_UNSHIPPED = "stuck_unshipped"  # the life cycle's grey state: paid, never shipped
    LOGISTICS_SILENT = "logistics_silent"  # the life cycle's grey state: the carrier stops reporting
    PRICE_OUT_OF_BOUNDS = "price_out_of_bounds"  # price glitches, stacked coupons
    NOT_RECEIVED_CLAIM = "not_received_claim"  # a channel refund claim "not received" on a delivered parcel
    UNEXPLAINED = "unexplained"  # a failed check no known cause accounts for (never expected)


#: The faults :func:`inject_faults` plants (the others only occur naturally).
INJECTED: Final = frozenset({
    Fault.LOST_PAYMENT_CALLBACK, Fault.WAREHOUSE_BACKLOG, Fault.CARRIER_OUTAGE, Fault.INCOMPLETE_ADDRESS,
    Fault.INVALID_PHONE, Fault.DUPLICATE_ORDER, Fault.FALSE_DELIVERY_COMPLAINT, Fault.PRESALE_NO_BALANCE,
})
TRUTH_COLUMNS: Final = ("order_key", "fault", "check", "anchor_at")


@dataclass(frozen=True, slots=True)
class FulfilmentTruthRow:
    """One check one order should fail.

    Attributes:
        order_key: ``"<channel>:<order_id>"``, as in ``ground_truth.csv``.
        fault: what caused it.
        check: the check that must fail.
        anchor_at: when the deadline starts counting (UTC): the check's anchor step (paid,
            ``erp_sync``, ``waybill_printed``, the last ``out_scan`` / ``tracking`` before the
            silence), the order's creation for the checks of facts, the complaint for
            ``false_delivery``, and for ``presale_balance`` the deposit's ``due_at`` itself,
            with deadline zero. The check is due at ``anchor_at + DEADLINES[check]``; rows
            are only listed when that moment is before the period's end (later, nothing is
            overdue yet).
    """

    order_key: str
    fault: Fault
    check: CheckId
    anchor_at: datetime

    @property
    def due_at(self) -> datetime:
        """When the monitor can first know: the anchor plus the check's deadline."""
        return self.anchor_at + DEADLINES[self.check]


@dataclass(frozen=True, slots=True)
class Numbered:
    """An order with its channel order id and the waybill number its parcel gets (if it ships)."""

    order: SimOrder
    order_id: str
    waybill: str

    @property
    def key(self) -> str:
        """``"<channel>:<order_id>"``."""
        return str(OrderKey(self.order.plan.channel, self.order_id))


@dataclass(frozen=True, slots=True)
class Injection:
    """What :func:`inject_faults` planted in one order (also the honest presale's deposit).

    Attributes:
        fault: the injected fault, ``None`` for an honest presale order.
        waybill_at: a backlogged parcel's waybill time (printed before the warehouse stalled).
        complaint_at: when the buyer complains "not received" about a delivered parcel.
        deposit_at: a presale's deposit time (the balance is due :data:`BALANCE_WINDOW` later).
    """

    fault: Fault | None = None
    waybill_at: datetime | None = None
    complaint_at: datetime | None = None
    deposit_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Outage:
    """A carrier that reports nothing between ``start`` and ``end`` (UTC)."""

    carrier: str
    start: datetime
    end: datetime

    def silences(self, carrier: str, at: datetime) -> bool:
        """Whether a node of ``carrier`` at ``at`` falls into the outage."""
        return carrier == self.carrier and self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The orders after :func:`inject_faults`, in numbering order, and what was planted.

    Attributes:
        orders: every order, faults applied (same positions and ids as the input).
        injections: position in ``orders`` → what was planted there.
        outage: the carrier outage, if the period has a promotion day.
        altered: positions whose channel events a fault changed (injected faults that
            change the order, and deliveries the outage moved).
    """

    orders: tuple[Numbered, ...]
    injections: Mapping[int, Injection]
    outage: Outage | None
    altered: frozenset[int]


# --- sizing ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Rate:
    """Share of the eligible orders a fault hits: on the promotion day (at least ``minimum``), on other days."""

    promo: float
    ordinary: float = 0.0
    minimum: int = 2


#: How often each fault is planted among the orders eligible for it. The promotion day is
#: where shops break (volume tenfold, temporary staff, carriers at capacity); ordinary days
#: see the odd lost callback, sloppy address, double click or missing parcel.
RATES: Final[Mapping[Fault, _Rate]] = MappingProxyType({
    Fault.LOST_PAYMENT_CALLBACK: _Rate(0.003, 0.0005),
    Fault.DUPLICATE_ORDER: _Rate(0.004, 0.001),
    Fault.WAREHOUSE_BACKLOG: _Rate(0.04, 0.0, minimum=3),
    Fault.FALSE_DELIVERY_COMPLAINT: _Rate(0.003, 0.0005),
    Fault.INCOMPLETE_ADDRESS: _Rate(0.005, 0.001),
    Fault.INVALID_PHONE: _Rate(0.01, 0.002),
    Fault.PRESALE_NO_BALANCE: _Rate(0.1, 0.0),
})
#: Share of the promotion day's paid Tmall / JD orders that are presales paying their balance.
PRESALE_SHARE: Final = 0.08
_PRESALE_CHANNELS: Final = (Channel.TMALL, Channel.JD)
#: Carriers an outage may hit (the volume carriers; JD Logistics and SF run their own networks).
_OUTAGE_CARRIERS: Final = ("zto", "yto", "yunda")
_HONEST: Final = frozenset({Pattern.NORMAL, Pattern.PROMOTION_SPIKE})
_BAD_PHONE_SEGMENTS: Final = ("100", "101", "106", "120", "121", "123", "125")


def carrier_of(waybill: str) -> str:
    """The carrier code of a waybill number as ``simulate.numbering.tracking_no`` draws them.

    >>> [carrier_of(w) for w in ("JDVA01234567890", "SF1234567890123", "YT1234567890123", "431234567890123",
    ...                          "712345678901234")]
    ['jd', 'sf', 'yto', 'yunda', 'zto']
    """
    for prefix, carrier in (("JDVA", "jd"), ("SF", "sf"), ("YT", "yto"), ("43", "yunda")):
        if waybill.startswith(prefix):
            return carrier
    return "zto"


def _promo_window(config: SimConfig) -> tuple[datetime, datetime] | None:
    if config.promo_day is None:
        return None
    start = config.start_at + timedelta(days=config.promo_day)
    return start, start + timedelta(days=1)


def _plain_paid(order: SimOrder) -> bool:
    """An honest, paid, single-shot order with nothing else planned: the victims of time faults."""
    script = order.plan.script
    return (order.plan.pattern in _HONEST and script.payment is Payment.PAID and not script.group_buy
            and script.fulfilment is Fulfilment.NORMAL and script.refund is None)


def _choose(fault: Fault, seed: int, promo: list[int], ordinary: list[int]) -> list[int]:
    """Positions ``fault`` hits: its rate of each pool, at least its minimum on the promotion day."""
    rate = RATES[fault]
    rng = substream(seed, f"fulfilment/{fault.value}")
    want_promo = min(len(promo), max(rate.minimum, round(len(promo) * rate.promo))) if promo else 0
    want_ordinary = min(len(ordinary), round(len(ordinary) * rate.ordinary))
    return sorted(rng.sample(promo, want_promo) + rng.sample(ordinary, want_ordinary))


def _split(config: SimConfig, items: Sequence[Numbered], eligible: Callable[[int, SimOrder], bool],
           ) -> tuple[list[int], list[int]]:
    """Eligible positions created on the promotion day, and on the other days."""
    window = _promo_window(config)
    promo: list[int] = []
    ordinary: list[int] = []
    for i, item in enumerate(items):
        if eligible(i, item.order):
            created = item.order.plan.created_at
            (promo if window and window[0] <= created < window[1] else ordinary).append(i)
    return promo, ordinary


def _shift(timeline: Timeline, since: datetime, delta: timedelta) -> Timeline:
    """Every step at or after ``since`` moved by ``delta`` (the order's life goes on from there)."""
    def moved(at: datetime | None) -> datetime | None:
        return at + delta if at is not None and at >= since else at

    return replace(timeline, shipped=moved(timeline.shipped), delivered=moved(timeline.delivered),
                   completed=moved(timeline.completed), refund_requested=moved(timeline.refund_requested),
                   refund_resolved=moved(timeline.refund_resolved))


def _local_day(at: datetime) -> date:
    return at.astimezone(SHOP_TZ).date()


# --- phase 1: faults that change the orders -------------------------------------------------------------

def inject_faults(config: SimConfig, orders: Sequence[Numbered]) -> FaultPlan:
    """Plant the faults in ``orders`` (numbered, in numbering order); deterministic in ``config.seed``.

    Each order gets at most one planted fault (the carrier outage hits whatever parcels
    its carrier holds). Victims are honest orders (background or the promotion's rush), so
    a fault never hides inside an abuse pattern's signal.
    """
    items = list(orders)
    injections: dict[int, Injection] = {}
    used: set[int] = set()
    altered: set[int] = set()
    seed, end = config.seed, config.end_at

    def free(i: int) -> bool:
        return i not in used

    # lost payment callback: the OMS never hears of the payment, so nothing downstream happens
    promo, ordinary = _split(config, items, lambda i, o: free(i) and _plain_paid(o))
    for i in _choose(Fault.LOST_PAYMENT_CALLBACK, seed, promo, ordinary):
        order = items[i].order
        script = replace(order.plan.script, fulfilment=Fulfilment.STUCK_UNSHIPPED)
        timeline = Timeline(order.timeline.created, paid=order.timeline.paid)
        items[i] = replace(items[i], order=SimOrder(replace(order.plan, script=script), timeline))
        injections[i] = Injection(Fault.LOST_PAYMENT_CALLBACK)
        used.add(i)
        altered.add(i)

    # duplicates before the time faults: the repeat gets a life cycle of its own
    for a, b in _duplicate_pairs(config, items, used):
        items[b] = _as_duplicate(config, items[a], items[b], substream(seed, f"fulfilment/duplicate/{b}"))
        injections[b] = Injection(Fault.DUPLICATE_ORDER)
        used.update((a, b))
        altered.add(b)

    window = _promo_window(config)
    if window is not None:  # a backlog is the promotion day's trouble
        promo, _ = _split(config, items, lambda i, o: free(i) and _plain_paid(o) and o.timeline.shipped is not None
                          and o.timeline.shipped < end)
        rng = substream(seed, "fulfilment/backlog-times")
        for i in _choose(Fault.WAREHOUSE_BACKLOG, seed, promo, []):
            order = items[i].order
            timeline = order.timeline
            assert timeline.paid is not None and timeline.shipped is not None
            shipped = timeline.shipped
            earliest = timeline.paid + 20 * _MINUTE  # after the stock lock
            printed = max(earliest, shipped - uniform_delay(rng, 40 * _MINUTE, timedelta(hours=3, minutes=30)))
            printed = min(printed, shipped - _MINUTE)
            out_scan = printed + uniform_delay(rng, 5 * _HOUR, 30 * _HOUR)
            items[i] = replace(items[i], order=replace(order, timeline=_shift(timeline, shipped, out_scan - shipped)))
            injections[i] = Injection(Fault.WAREHOUSE_BACKLOG, waybill_at=printed)
            used.add(i)
            altered.add(i)

    outage = carrier_outage(config)
    if outage is not None:  # parcels due during the outage arrive after it, whatever their order's story
        rng = substream(seed, "fulfilment/outage-deliveries")
        for i, item in enumerate(items):
            timeline = item.order.timeline
            delivered = timeline.delivered
            if delivered is None or not outage.silences(carrier_of(item.waybill), delivered):
                continue
            after = _daytime(outage.end + uniform_delay(rng, 40 * _MINUTE, 5 * _HOUR), rng)
            items[i] = replace(item, order=replace(item.order, timeline=_shift(timeline, delivered, after - delivered)))
            altered.add(i)

    # false delivery: planted after the outage, so the complaint follows the delivery the buyer was told of
    promo, ordinary = _split(config, items, lambda i, o: free(i) and _plain_paid(o) and _complaint_room(end, o))
    rng = substream(seed, "fulfilment/complaint-times")
    for i in _choose(Fault.FALSE_DELIVERY_COMPLAINT, seed, promo, ordinary):
        timeline = items[i].order.timeline
        assert timeline.delivered is not None
        latest = min(timeline.delivered + timedelta(hours=72), end - _MINUTE, (timeline.completed or end) - _MINUTE)
        complaint = timeline.delivered + uniform_delay(rng, 30 * _MINUTE, latest - timeline.delivered)
        injections[i] = Injection(Fault.FALSE_DELIVERY_COMPLAINT, complaint_at=complaint)
        used.add(i)

    promo, ordinary = _split(config, items, lambda i, o: free(i) and o.plan.pattern in _HONEST
                             and not _address_defects(o))
    rng = substream(seed, "fulfilment/address-text")
    for i in _choose(Fault.INCOMPLETE_ADDRESS, seed, promo, ordinary):
        plan = items[i].order.plan
        address = replace(plan.address, detail=sloppy_detail(rng))
        items[i] = replace(items[i], order=replace(items[i].order, plan=replace(plan, address=address)))
        injections[i] = Injection(Fault.INCOMPLETE_ADDRESS)
        used.add(i)
        altered.add(i)

    promo, ordinary = _split(config, items, lambda i, o: free(i) and o.plan.pattern in _HONEST
                             and o.plan.channel is Channel.SITE and bool(o.plan.buyer.phone))
    rng = substream(seed, "fulfilment/phone-digits")
    for i in _choose(Fault.INVALID_PHONE, seed, promo, ordinary):
        plan = items[i].order.plan
        buyer = replace(plan.buyer, phone=rng.choice(_BAD_PHONE_SEGMENTS) + digits(rng, 8))
        items[i] = replace(items[i], order=replace(items[i].order, plan=replace(plan, buyer=buyer)))
        injections[i] = Injection(Fault.INVALID_PHONE)
        used.add(i)
        altered.add(i)

    if window is not None:
        _presales(config, items, injections, used, altered, window)
    return FaultPlan(tuple(items), MappingProxyType(injections), outage, frozenset(altered))


def _complaint_room(end: datetime, order: SimOrder) -> bool:
    """Delivered early enough that a complaint fits before ``end`` (the period's) and any confirmation."""
    timeline = order.timeline
    if timeline.delivered is None:
        return False
    latest = min(end, timeline.completed or end) - _MINUTE
    return latest - timeline.delivered >= _HOUR


def carrier_outage(config: SimConfig) -> Outage | None:
    """One volume carrier goes dark for 30-40 h from a night hour of the day after the promotion."""
    window = _promo_window(config)
    if window is None:
        return None
    rng = substream(config.seed, "fulfilment/outage")
    carrier = rng.choice(_OUTAGE_CARRIERS)
    start = window[1] + uniform_delay(rng, timedelta(0), 8 * _HOUR)
    return Outage(carrier, start, start + uniform_delay(rng, 30 * _HOUR, 40 * _HOUR))


def _daytime(at: datetime, rng: random.Random) -> datetime:
    """``at`` if couriers deliver then (08:00-21:00 Beijing), else the next morning."""
    local = at.astimezone(SHOP_TZ)
    if 8 <= local.hour < 21:
        return at
    day = local.date() if local.hour < 8 else local.date() + timedelta(days=1)
    morning = datetime.combine(day, time(8), tzinfo=SHOP_TZ).astimezone(UTC)
    return morning + uniform_delay(rng, 10 * _MINUTE, 3 * _HOUR)


def sloppy_detail(rng: random.Random) -> str:
    """A street detail a courier cannot find: no street, no house number, or neither.

    >>> import random
    >>> from orderguard.schema import Address
    >>> all(address_defects(Address("浙江省", "杭州市", "西湖区", sloppy_detail(random.Random(s))))
    ...     for s in range(50))
    True
    """
    shape = rng.randrange(4)
    if shape == 0:
        text = f"{geo.community(rng)}东门"
    elif shape == 1:
        text = f"{geo.road(rng)}附近 到了打电话"
    elif shape == 2:
        text = f"{geo.community(rng)}{rng.randint(1, 32)}幢{rng.randint(1, 4)}单元{rng.randint(101, 3304)}室"
    else:
        text = f"{geo.road(rng)}{geo.community(rng)}对面"
    return text


def _address_defects(order: SimOrder) -> tuple[str, ...]:
    return _detail_defects(order.plan.address.detail)


@functools.lru_cache(maxsize=65536)
def _detail_defects(detail: str) -> tuple[str, ...]:
    """``address_defects`` of a clear street detail (province, city and district do not enter it)."""
    return address_defects(Address("", "", "", detail))


def _cart(order: SimOrder) -> tuple[tuple[str, int], ...]:
    qty: Counter[str] = Counter()
    for line in order.plan.lines:
        qty[line.sku_id] += line.qty
    return tuple(sorted(qty.items()))


def _duplicate_pairs(config: SimConfig, items: Sequence[Numbered], used: set[int]) -> list[tuple[int, int]]:
    """(first, second) positions: the second, created 1-8 minutes after the first on its channel and day, becomes
    the same buyer's same cart again."""
    rng = substream(config.seed, "fulfilment/duplicate-pairs")
    by_channel: dict[Channel, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_channel[item.order.plan.channel].append(i)
    times = {c: [items[i].order.plan.created_at for i in pos] for c, pos in by_channel.items()}
    promo, ordinary = _split(config, items, lambda i, o: i not in used and o.plan.pattern in _HONEST
                             and o.plan.script.payment is Payment.PAID and not o.plan.script.group_buy)
    rate = RATES[Fault.DUPLICATE_ORDER]
    pairs: list[tuple[int, int]] = []
    taken = set(used)
    for pool, share, minimum in ((promo, rate.promo, rate.minimum), (ordinary, rate.ordinary, 0)):
        want = max(minimum, round(len(pool) * share)) if pool else 0
        found = 0
        for a in rng.sample(pool, len(pool)):
            if found >= want:
                break
            if a in taken:
                continue
            first = items[a].order
            channel = first.plan.channel
            positions, created = by_channel[channel], times[channel]
            lo = bisect.bisect_left(created, first.plan.created_at + _MINUTE)
            hi = bisect.bisect_right(created, first.plan.created_at + 8 * _MINUTE)
            options = [b for b in positions[lo:hi] if b not in taken and _can_repeat(config, first, items[b].order)]
            if not options:
                continue
            b = rng.choice(options)
            pairs.append((a, b))
            taken.update((a, b))
            found += 1
    return sorted(pairs, key=lambda p: p[1])


def _promo_on(config: SimConfig, at: datetime) -> bool:
    window = _promo_window(config)
    return window is not None and window[0] <= at < window[1]


def _can_repeat(config: SimConfig, first: SimOrder, second: SimOrder) -> bool:
    """Whether ``second`` may be rewritten as ``first``'s cart again without touching any other order's data.

    The waybill of ``second`` was drawn for its amount (SF above 1000 yuan), so the repeat
    must stay on the same side of that line; a partial refund sized on the old amount
    must not exceed the new one.
    """
    plan = second.plan
    if plan.pattern not in _HONEST or _local_day(plan.created_at) != _local_day(first.plan.created_at):
        return False
    if plan.script.refund is not None and plan.script.refund.amount_fen is not None:
        return False
    amounts = price(first.plan.lines, channel=plan.channel, promo=_promo_on(config, plan.created_at), coupon=None)
    return (amounts.paid_fen >= 100_000) == (plan.amounts.paid_fen >= 100_000)


def _as_duplicate(config: SimConfig, first: Numbered, second: Numbered, rng: random.Random) -> Numbered:
    """``second`` re-placed by ``first``'s buyer with ``first``'s cart (its coupon is spent), same id and time."""
    a, b = first.order.plan, second.order.plan
    amounts = price(a.lines, channel=b.channel, promo=_promo_on(config, b.created_at), coupon=None)
    plan = replace(b, buyer=a.buyer, lines=a.lines, amounts=amounts, address=a.address, client=a.client,
                   transit_days=a.transit_days, coupon_ids=(), buyer_message=a.buyer_message)
    backlog = rng.randint(0, 2) if _promo_on(config, b.created_at) else 0
    timeline = schedule(b.script, channel=b.channel, created_at=b.created_at, transit_days=a.transit_days, rng=rng,
                        backlog_days=backlog)
    return replace(second, order=SimOrder(plan, timeline))


def _deposit_at(rng: random.Random, config: SimConfig, promo_start: datetime, order: SimOrder) -> datetime:
    """A presale deposit, paid in the days before the promotion (never before the period), in time for the
    balance (at the order's payment, or its creation if it is never paid) to be due after it."""
    timeline = order.timeline
    balance = timeline.paid or timeline.created
    low = max(config.start_at, balance - BALANCE_WINDOW + 2 * _HOUR)
    high = min(promo_start - 10 * _MINUTE, timeline.created - _MINUTE)
    if high < low:
        high = max(low, timeline.created - timedelta(seconds=1))
    low = min(low, timeline.created)
    return low + uniform_delay(rng, timedelta(0), max(timedelta(0), high - low))


def _presales(config: SimConfig, items: list[Numbered], injections: dict[int, Injection], used: set[int],
              altered: set[int], window: tuple[datetime, datetime]) -> None:
    """Promotion-day presales on Tmall and JD: deposits paid before the day, balances on it, some never paid.

    A presale whose balance never comes is an order left unpaid on the channel; the
    platform closes it once the balance deadline has passed (not at the usual unpaid
    timeout), so the order is still open when the deadline is missed.
    """
    def presale_day(o: SimOrder) -> bool:
        return (o.plan.channel in _PRESALE_CHANNELS and o.plan.pattern in _HONEST
                and window[0] <= o.plan.created_at < window[1])

    seed = config.seed
    promo, _ = _split(config, items, lambda i, o: i not in used and presale_day(o)
                      and o.plan.script.payment is Payment.UNPAID_CLOSED)
    rng = substream(seed, "fulfilment/presale-deposits")
    for i in _choose(Fault.PRESALE_NO_BALANCE, seed, promo, []):
        order = items[i].order
        deposit = _deposit_at(rng, config, window[0], order)
        due = deposit + BALANCE_WINDOW
        closed = max(due, order.timeline.created + timedelta(seconds=1)) + uniform_delay(rng, _MINUTE, 30 * _MINUTE)
        items[i] = replace(items[i], order=replace(order, timeline=Timeline(order.timeline.created, closed=closed)))
        injections[i] = Injection(Fault.PRESALE_NO_BALANCE, deposit_at=deposit)
        used.add(i)
        altered.add(i)
    honest_rng = substream(seed, "fulfilment/presale-honest")
    for i, item in enumerate(items):
        order = item.order
        if (i in used or not presale_day(order) or order.plan.script.payment is not Payment.PAID
                or order.plan.script.group_buy or order.timeline.paid is None):
            continue
        if chance(honest_rng, PRESALE_SHARE):
            injections[i] = Injection(None, deposit_at=_deposit_at(honest_rng, config, window[0], order))
            used.add(i)


# --- phase 2: steps and truth --------------------------------------------------------------------------

class _Step(NamedTuple):
    """One report before it is worded (a tuple: an order has a dozen and a period hundreds of thousands)."""

    kind: StepKind
    at: datetime
    source: str
    carrier: str = ""
    waybill: str = ""
    node: str = ""
    reason: str = ""
    due_at: datetime | None = None


_KIND_RANK: Final = MappingProxyType({k: i for i, k in enumerate(StepKind)})
_CHANNEL_RANK: Final = MappingProxyType({c: i for i, c in enumerate(Channel)})
#: Refund reasons a buyer also raises with customer service (a "no reason" return is no complaint).
_COMPLAINT_REASONS: Final = frozenset({RefundReason.DAMAGED, RefundReason.WRONG_ITEM, RefundReason.NOT_RECEIVED})


def _seconds(rng: random.Random, low: int, high: int) -> timedelta:
    """A delay uniform in ``[low, high]`` whole seconds (the hot path's ``uniform_delay``).

    >>> _seconds(random.Random(1), 5, 5)
    datetime.timedelta(seconds=5)
    """
    return timedelta(seconds=low + int(rng.random() * (high - low + 1)))


def _pay_source(rng: random.Random, channel: Channel) -> str:
    """The payment gateway: Alipay on Tmall, WeChat Pay in the mini-program and on JD, either elsewhere."""
    either = rng.choice(("alipay", "wechatpay"))  # drawn always: the stream does not depend on the channel
    if channel is Channel.TMALL:
        return "alipay"
    if channel in (Channel.WECHAT, Channel.JD):
        return "wechatpay"
    return either


def _order_steps(item: Numbered, injection: Injection | None, *, outage: Outage | None, seed: int) -> list[_Step]:
    """Every step the shop's systems report about one order, oldest first, period end not applied."""
    timeline, plan = item.order.timeline, item.order.plan
    rng = substream(seed, f"fulfilment/steps/{item.key}")
    pay = _pay_source(rng, plan.channel)
    out: list[_Step] = []
    deposit = injection.deposit_at if injection is not None else None
    if deposit is not None:
        out.append(_Step(StepKind.DEPOSIT_PAID, deposit, pay, due_at=deposit + BALANCE_WINDOW))
    if timeline.paid is None:
        return out
    if injection is not None and injection.fault is Fault.LOST_PAYMENT_CALLBACK:
        return out
    if deposit is not None:
        out.append(_Step(StepKind.BALANCE_PAID, timeline.paid, pay))
    callback = timeline.paid + _seconds(rng, 2, 180)
    erp = callback + _seconds(rng, 10, 300)
    lock = erp + _seconds(rng, 5, 600)
    out += [_Step(StepKind.PAYMENT_CALLBACK, callback, pay), _Step(StepKind.ERP_SYNC, erp, "erp"),
            _Step(StepKind.INVENTORY_LOCK, lock, "erp")]
    printed_before = _seconds(rng, 40 * 60, 210 * 60)
    shipped = timeline.shipped
    if shipped is None:
        return out
    carrier, waybill = carrier_of(item.waybill), item.waybill
    if injection is not None and injection.waybill_at is not None:
        printed = injection.waybill_at
    else:
        earliest = max(lock, timeline.grouped or timeline.paid) + _MINUTE
        printed = min(max(earliest, shipped - printed_before), shipped - timedelta(seconds=30))
    out += [_Step(StepKind.WAYBILL_PRINTED, printed, "wms", carrier, waybill),
            _Step(StepKind.OUT_SCAN, shipped, "wms", carrier, waybill)]
    silent = plan.script.fulfilment is Fulfilment.LOGISTICS_SILENT
    for at, node in _nodes(rng, shipped, timeline.delivered, silent=silent, city=plan.address.city,
                           carrier=carrier, outage=outage):
        out.append(_Step(StepKind.TRACKING, at, carrier, carrier, waybill, node))
    if timeline.delivered is not None:
        out.append(_Step(StepKind.DELIVERED, timeline.delivered, carrier, carrier, waybill, "已签收"))
    claim = plan.script.refund
    if (claim is not None and claim.reason in _COMPLAINT_REASONS and timeline.refund_requested is not None
            and timeline.refund_requested > shipped):
        out.append(_Step(StepKind.COMPLAINT, timeline.refund_requested, "customer_service",
                         reason=claim.reason.value))
    if injection is not None and injection.complaint_at is not None:
        out.append(_Step(StepKind.COMPLAINT, injection.complaint_at, "customer_service",
                         reason=RefundReason.NOT_RECEIVED.value))
    out.sort(key=lambda s: (s.at, _KIND_RANK[s.kind]))
    return out


def _nodes(rng: random.Random, shipped: datetime, delivered: datetime | None, *, silent: bool, city: str, carrier: str,
           outage: Outage | None) -> list[tuple[datetime, str]]:
    """The carrier's tracking nodes: picked up soon after the out-scan, then every 3-12 h until delivery.

    A silent parcel gets up to two nodes and then nothing. During an outage of its
    carrier a parcel gets no node; one comes soon after the outage ends if it is still
    on its way.
    """
    hub = f"到达{city.removesuffix('市')}转运中心"
    times = [shipped + _seconds(rng, 5 * 60, 3600)]
    if delivered is not None and times[0] >= delivered:
        return []
    if silent:
        for _ in range(rng.randint(0, 2)):
            times.append(times[-1] + _seconds(rng, 3 * 3600, 12 * 3600))
    elif delivered is not None:
        while True:
            step = times[-1] + _seconds(rng, 3 * 3600, 12 * 3600)
            if step >= delivered - 20 * _MINUTE:
                break
            times.append(step)
    nodes: list[tuple[datetime, str]] = []
    for n, at in enumerate(times):
        if n == 0:
            label = "已揽收"
        elif delivered is not None and delivered - at <= 8 * _HOUR:
            label = "派送中"
        elif delivered is not None and delivered - at <= 30 * _HOUR:
            label = hub
        else:
            label = "运输中"
        nodes.append((at, label))
    if outage is not None and outage.carrier == carrier:
        resume = outage.end + _seconds(rng, 10 * 60, 90 * 60)
        nodes = [(at, label) for at, label in nodes if not outage.silences(carrier, at)]
        if delivered is not None and shipped < outage.end < delivered and resume < delivered - 5 * _MINUTE:
            nodes.append((resume, "运输中"))
            nodes.sort()
    return nodes


def _wire(channel: Channel, order_id: str, steps: Iterable[_Step]) -> list[dict[str, Any]]:
    """Steps as the reports the systems send (``orderguard.fulfilment.FIELDS``), times in shop time.

    Event ids are the sender's and deterministic: ``<source>-<order id>-<kind>-<n>``, ``n``
    counting that kind's reports of the order from 1.
    """
    seen: Counter[StepKind] = Counter()
    out: list[dict[str, Any]] = []
    for step in steps:
        seen[step.kind] += 1
        item: dict[str, Any] = {"channel": channel.value, "order_id": order_id, "kind": step.kind.value,
                                "event_id": f"{step.source}-{order_id}-{step.kind.value}-{seen[step.kind]}",
                                "time": _iso(step.at), "source": step.source}
        if step.carrier:
            item["carrier"], item["waybill"] = step.carrier, step.waybill
        if step.node:
            item["node"] = step.node
        if step.reason:
            item["reason"] = step.reason
        if step.due_at is not None:
            item["due_at"] = _iso(step.due_at)
        out.append(item)
    return out


#: Beijing time as a fixed offset (no daylight saving since 1991): formats far faster than the zone.
_BEIJING: Final = timezone(timedelta(hours=8))


def _iso(at: datetime) -> str:
    """Shop time with its offset, as the shop's systems stamp reports.

    >>> _iso(datetime(2024, 11, 11, 2, 0, tzinfo=UTC))
    '2024-11-11T10:00:00+08:00'
    """
    return at.astimezone(_BEIJING).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class _Seen:
    """One order as a monitor sees it by the period's end."""

    item: Numbered
    steps: tuple[_Step, ...]


def derive(config: SimConfig, plan: FaultPlan) -> tuple[list[dict[str, Any]], list[FulfilmentTruthRow]]:
    """The fulfilment reports of every order (before the period's end, sorted by time) and the truth.

    Returns:
        The reports in wire form (each accepted by ``orderguard.fulfilment.parse_event``),
        and one :class:`FulfilmentTruthRow` per (order, failing check), sorted by
        ``(anchor_at, order_key, check)``.
    """
    keyed: list[tuple[tuple[datetime, int, str, int, str], dict[str, Any]]] = []
    truth: list[FulfilmentTruthRow] = []
    duplicates = _duplicates(plan.orders)
    end = config.end_at
    for i, item in enumerate(plan.orders):
        injection = plan.injections.get(i)
        steps = tuple(s for s in _order_steps(item, injection, outage=plan.outage, seed=config.seed) if s.at < end)
        channel = item.order.plan.channel
        for step, event in zip(steps, _wire(channel, item.order_id, steps), strict=True):
            keyed.append(((step.at, _CHANNEL_RANK[channel], item.order_id, _KIND_RANK[step.kind], event["event_id"]),
                          event))
        seen = _Seen(item, steps)
        for check, anchor in _failed_checks(end, seen, duplicate=i in duplicates):
            fault = _cause(check, injection, item, anchor, plan.outage)
            truth.append(FulfilmentTruthRow(item.key, fault, check, anchor))
    keyed.sort(key=lambda pair: pair[0])
    truth.sort(key=lambda r: (r.anchor_at, r.order_key, r.check.value))
    return [event for _, event in keyed], truth


def _duplicates(items: Sequence[Numbered]) -> set[int]:
    """Positions of orders repeating the same buyer's same cart on the same channel: another order created at
    most :data:`DUPLICATE_WITHIN` before (at the same second, each is the other's repeat: nothing tells which came
    first) and neither cancelled nor closed by then."""
    groups: dict[tuple[Channel, str], list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[(item.order.plan.channel, item.order.plan.buyer.account_id)].append(i)
    found: set[int] = set()
    for positions in groups.values():
        if len(positions) < 2:
            continue
        ordered = sorted(positions, key=lambda p: (items[p].order.plan.created_at, p))
        for b in ordered:
            later = items[b].order
            created, cart = later.plan.created_at, _cart(later)
            for a in ordered:
                earlier = items[a].order
                gap = created - earlier.plan.created_at
                if a == b or not timedelta(0) <= gap <= DUPLICATE_WITHIN or _cart(earlier) != cart:
                    continue
                ended = [t for t in (earlier.timeline.cancelled, earlier.timeline.closed) if t is not None]
                if not any(t <= created for t in ended):
                    found.add(b)
                    break
    return found


def price_out_of_bounds(order: SimOrder) -> bool:
    """The ``price_bounds`` check on what the channel's document says.

    Paid below :data:`MIN_PAID_SHARE` of the list total, or discount plus coupon above
    :data:`MAX_DISCOUNT_SHARE` of the goods. The list total is the sum of tag price × qty
    where the channel's document carries tag prices (JD's does not: there it is the
    goods amount).
    """
    plan = order.plan
    a = plan.amounts
    if plan.channel is Channel.JD:
        listed = a.goods_fen
    else:
        listed = sum((line.list_price_fen if line.list_price_fen is not None else line.unit_price_fen) * line.qty
                     for line in plan.lines)
    return a.paid_fen < MIN_PAID_SHARE * listed or a.discount_fen + a.coupon_fen > MAX_DISCOUNT_SHARE * a.goods_fen


def phone_invalid(order: SimOrder) -> bool:
    """The ``phone_invalid`` check on what the channel reveals: the clear number on the own site, the three
    leading digits of the masked number elsewhere."""
    phone = order.plan.buyer.phone
    if not phone:
        return False
    number = "".join(ch for ch in phone if ch.isdigit())
    return _prefix_invalid(number[:7] if order.plan.channel is Channel.SITE else number[:3])


@functools.lru_cache(maxsize=65536)
def _prefix_invalid(prefix: str) -> bool:
    return phone_problem(Phone(hash="", prefix=prefix)) is not None


def _ship_exempt(timeline: Timeline) -> bool:
    """Orders that owe no shipment: cancelled, closed (unpaid, failed group), refunded before shipping."""
    if timeline.cancelled is not None or timeline.closed is not None:
        return True
    requested = timeline.refund_requested
    return requested is not None and (timeline.shipped is None or requested < timeline.shipped)


def _failed_checks(end: datetime, seen: _Seen, *, duplicate: bool) -> list[tuple[CheckId, datetime]]:
    """The checks one order fails by ``end`` (the period's end), each with its anchor (see
    :class:`FulfilmentTruthRow`)."""
    order = seen.item.order
    timeline = order.timeline
    at: dict[StepKind, list[datetime]] = defaultdict(list)
    for step in seen.steps:
        at[step.kind].append(step.at)
    out: list[tuple[CheckId, datetime]] = []
    created = timeline.created
    if _address_defects(order):
        out.append((CheckId.ADDRESS_INCOMPLETE, created))
    if phone_invalid(order):
        out.append((CheckId.PHONE_INVALID, created))
    if price_out_of_bounds(order):
        out.append((CheckId.PRICE_BOUNDS, created))
    if duplicate:
        out.append((CheckId.DUPLICATE_ORDER, created))

    def missing(check: CheckId, anchor: datetime, expect: StepKind) -> None:
        due = anchor + DEADLINES[check]
        if due < end and not any(anchor <= t <= due for t in at[expect]):
            out.append((check, anchor))

    paid = timeline.paid
    if paid is not None:
        missing(CheckId.PAYMENT_CALLBACK, paid, StepKind.PAYMENT_CALLBACK)
        missing(CheckId.ERP_SYNC, paid, StepKind.ERP_SYNC)
    if at[StepKind.ERP_SYNC]:
        missing(CheckId.INVENTORY_LOCK, at[StepKind.ERP_SYNC][0], StepKind.INVENTORY_LOCK)
    if at[StepKind.WAYBILL_PRINTED]:
        missing(CheckId.OUT_SCAN, at[StepKind.WAYBILL_PRINTED][0], StepKind.OUT_SCAN)
    if paid is not None and not _ship_exempt(timeline):
        missing(CheckId.SHIP_PROMISE, paid, StepKind.OUT_SCAN)
    silence = _first_silence(seen.steps, end)
    if silence is not None:
        out.append((CheckId.TRACKING_SILENT, silence))
    if at[StepKind.DELIVERED]:
        first_delivered = min(at[StepKind.DELIVERED])
        complaints = [s.at for s in seen.steps if s.kind is StepKind.COMPLAINT
                      and s.reason == RefundReason.NOT_RECEIVED.value and s.at >= first_delivered]
        if complaints:
            out.append((CheckId.FALSE_DELIVERY, min(complaints)))
    for deposit in (s for s in seen.steps if s.kind is StepKind.DEPOSIT_PAID):
        due = deposit.due_at
        if due is not None and due < end and not any(t <= due for t in at[StepKind.BALANCE_PAID]):
            out.append((CheckId.PRESALE_BALANCE, due))
    return out


def _first_silence(steps: Sequence[_Step], end: datetime) -> datetime | None:
    """The first out-scan / tracking node followed by no tracking node or delivery for more than 24 h."""
    deadline = DEADLINES[CheckId.TRACKING_SILENT]
    carrier = [s for s in steps if s.kind in (StepKind.OUT_SCAN, StepKind.TRACKING, StepKind.DELIVERED)]
    for n, step in enumerate(carrier):
        if step.kind is StepKind.DELIVERED:
            return None
        following = next((s.at for s in carrier[n + 1:] if s.kind is not StepKind.OUT_SCAN and s.at > step.at), end)
        if following - step.at > deadline and step.at + deadline < end:
            return step.at
    return None


def _cause(check: CheckId, injection: Injection | None, item: Numbered, anchor: datetime,
           outage: Outage | None) -> Fault:
    """What explains a failed check: the planted fault where it does, else the natural cause."""
    planted = injection.fault if injection is not None else None
    ops = item.order.plan.ops_issue
    if check in (CheckId.PAYMENT_CALLBACK, CheckId.ERP_SYNC):
        return Fault.LOST_PAYMENT_CALLBACK if planted is Fault.LOST_PAYMENT_CALLBACK else Fault.UNEXPLAINED
    if check is CheckId.OUT_SCAN:
        return Fault.WAREHOUSE_BACKLOG if planted is Fault.WAREHOUSE_BACKLOG else Fault.UNEXPLAINED
    if check is CheckId.SHIP_PROMISE:
        if planted in (Fault.LOST_PAYMENT_CALLBACK, Fault.WAREHOUSE_BACKLOG):
            return planted
        return Fault.STUCK_UNSHIPPED if ops is OpsIssue.STUCK_UNSHIPPED else Fault.LATE_SHIPMENT
    if check is CheckId.TRACKING_SILENT:
        if ops is OpsIssue.LOGISTICS_SILENT:
            return Fault.LOGISTICS_SILENT
        deadline = DEADLINES[check]
        if (outage is not None and carrier_of(item.waybill) == outage.carrier and anchor < outage.end
                and anchor + deadline > outage.start):
            return Fault.CARRIER_OUTAGE
        return Fault.UNEXPLAINED
    if check is CheckId.FALSE_DELIVERY:
        return Fault.FALSE_DELIVERY_COMPLAINT if planted is Fault.FALSE_DELIVERY_COMPLAINT else Fault.NOT_RECEIVED_CLAIM
    natural = {CheckId.ADDRESS_INCOMPLETE: Fault.INCOMPLETE_ADDRESS, CheckId.PHONE_INVALID: Fault.INVALID_PHONE,
               CheckId.PRICE_BOUNDS: Fault.PRICE_OUT_OF_BOUNDS, CheckId.DUPLICATE_ORDER: Fault.DUPLICATE_ORDER,
               CheckId.PRESALE_BALANCE: Fault.PRESALE_NO_BALANCE}
    return natural.get(check, Fault.UNEXPLAINED)


def parsed(events: Iterable[Mapping[str, Any]], *, received_at: datetime) -> list[FulfilmentEvent]:
    """Reports in wire form as ``orderguard.fulfilment`` parses them (what ``POST /v1/fulfilment`` would store).

    >>> from datetime import UTC
    >>> e = {"channel": "site", "order_id": "PH1", "kind": "out_scan", "event_id": "wms-PH1-out_scan-1",
    ...      "time": "2024-11-11T18:00:00+08:00", "source": "wms"}
    >>> parsed([e], received_at=datetime(2024, 11, 12, tzinfo=UTC))[0].event_time.isoformat()
    '2024-11-11T10:00:00+00:00'
    """
    return [parse_event(dict(event), received_at=received_at) for event in events]
