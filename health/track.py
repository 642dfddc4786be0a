"""One order's timeline across systems: the channel's statuses and every fulfilment step, folded as they come.

The sweeper keeps one :class:`Track` per order in flight. It holds only what the checks
read (first time of each channel status, the times of each step, the order document's
facts the checks need), so a promotion day of orders fits in memory, and it is updated
per event in any arrival order: the channel's status is the newest by event time (ties
by the later life-cycle stage, as the order log decides), the order document the one
with the highest event version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from orderguard.enrich import address_defects, phone_problem
from orderguard.fulfilment import FulfilmentEvent, StepKind
from orderguard.schema import LIFECYCLE_RANK, EventKind, OrderDetails, OrderEvent, OrderKey, OrderStatus, RefundReason

#: Statuses after which nothing more is owed: no check applies to the order any more.
FINISHED = frozenset({OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.CLOSED, OrderStatus.REFUNDED})
#: Reasons of a channel's after-sale claim or a complaint that mean "never arrived".
NOT_RECEIVED = RefundReason.NOT_RECEIVED.value
_STEPS = {k.value: k for k in StepKind}
#: Statuses of an order not yet payable to fulfil (unknown: only fulfilment reports seen so far).
_NOT_YET = frozenset({None, OrderStatus.CREATED, OrderStatus.AWAITING_GROUP})


@dataclass(frozen=True, slots=True)
class Facts:
    """What the checks read of the order document (the newest one)."""

    created_at: datetime
    account: str
    cart: tuple[tuple[str, int], ...]
    paid_at: datetime | None
    address_defects: tuple[str, ...] | None  # None: the channel sent no address
    phone_problem: str | None
    paid_fen: int
    list_fen: int
    goods_fen: int
    discount_fen: int

    @classmethod
    def of(cls, details: OrderDetails) -> Facts:
        lines = details.lines
        cart = tuple(sorted((line.sku_id, line.qty) for line in lines))
        list_fen = sum((line.list_price_fen or line.unit_price_fen) * line.qty for line in lines)
        amounts = details.amounts
        return cls(created_at=details.created_at, account=details.buyer.account_id, cart=cart,
                   paid_at=details.paid_at,
                   address_defects=None if details.address is None else address_defects(details.address),
                   phone_problem=phone_problem(details.buyer.phone),
                   paid_fen=amounts.paid_fen - amounts.shipping_fen, list_fen=list_fen or amounts.goods_fen,
                   goods_fen=amounts.goods_fen, discount_fen=amounts.discount_fen + amounts.coupon_fen)


@dataclass(slots=True)
class Track:
    """The folded timeline of one order, and what the sweeper last concluded about it.

    Attributes:
        status_times: first event time of each channel status the order reached.
        steps: event times of each fulfilment step kind, sorted.
        due_at: a step's own deadline (a presale deposit's balance due time), by kind.
        complaint_at: first "not received" claim (channel after-sale or complaint step).
        duplicate_of: the earlier order this one repeats (same buyer and cart, minutes apart).
        open: the checks failing at the last sweep, with their due time.
    """

    key: OrderKey
    text: str
    status: OrderStatus | None = None
    status_at: tuple[datetime, int] | None = None
    version: int = -1
    facts: Facts | None = None
    status_times: dict[OrderStatus, datetime] = field(default_factory=dict)
    steps: dict[StepKind, list[datetime]] = field(default_factory=dict)
    due_at: dict[StepKind, datetime] = field(default_factory=dict)
    complaint_at: datetime | None = None
    duplicate_of: str | None = None
    open: dict[str, datetime] = field(default_factory=dict)
    score: float = 100.0
    tier: str = "ok"
    counted: bool = False
    scheduled: datetime | None = None
    last_event_at: datetime | None = None

    def add_order_event(self, event: OrderEvent) -> bool:
        """Fold a channel event in; ``True`` when the order document (its facts) changed."""
        self._seen(event.event_time)
        first = self.status_times.get(event.status)
        if first is None or event.event_time < first:
            self.status_times[event.status] = event.event_time
        rank = (event.event_time, LIFECYCLE_RANK[event.status])
        if self.status_at is None or rank >= (self.status_at[0], LIFECYCLE_RANK[self.status or event.status]):
            self.status, self.status_at = event.status, (event.event_time, event.event_version)
        refund = event.refund
        if refund is not None and refund.reason.value == NOT_RECEIVED:
            self._complaint(refund.requested_at)
        if event.kind is EventKind.ORDER and event.details is not None and event.event_version > self.version:
            self.version = event.event_version
            self.facts = Facts.of(event.details)
            return True
        return False

    def add_step(self, step: FulfilmentEvent) -> None:
        """Fold a fulfilment report in (a repeat of the same time is harmless)."""
        self._seen(step.event_time)
        times = self.steps.setdefault(step.kind, [])
        if step.event_time not in times:  # a report read twice (the feed re-reads a margin) changes nothing
            times.append(step.event_time)
            times.sort()
        if step.due_at is not None:
            self.due_at[step.kind] = step.due_at
        if step.kind is StepKind.COMPLAINT and step.reason == NOT_RECEIVED:
            self._complaint(step.event_time)

    def _complaint(self, at: datetime) -> None:
        if self.complaint_at is None or at < self.complaint_at:
            self.complaint_at = at

    def _seen(self, at: datetime) -> None:
        if self.last_event_at is None or at > self.last_event_at:
            self.last_event_at = at

    @property
    def paid_at(self) -> datetime | None:
        """When the buyer paid, as the channel reports it (the document's pay time; the first ``paid`` event
        without one), once the order is payable to fulfil: a group buy's clock starts when its group forms,
        but counts from the payment then, as the channel's ship promise does."""
        reached = OrderStatus.PAID in self.status_times or self.status not in _NOT_YET
        if not reached:
            return None
        if self.facts is not None and self.facts.paid_at is not None:
            return self.facts.paid_at
        return self.status_times.get(OrderStatus.PAID)

    @property
    def finished(self) -> bool:
        """Nothing more is owed: completed, cancelled, closed or refunded."""
        return self.status in FINISHED

    @property
    def halted(self) -> bool:
        """Fulfilment is not expected: finished, or a refund asked before the parcel left."""
        if self.finished:
            return True
        return self.status is OrderStatus.REFUND_REQUESTED and not self.shipped

    @property
    def shipped(self) -> bool:
        """The parcel left the warehouse (out-scan reported or the channel says shipped)."""
        return StepKind.OUT_SCAN in self.steps or OrderStatus.SHIPPED in self.status_times

    def due_of(self, name: str) -> datetime | None:
        """The deadline a step named in a check reported for itself (a presale deposit's ``due_at``)."""
        kind = _STEPS.get(name)
        return None if kind is None else self.due_at.get(kind)

    def times_of(self, name: str) -> list[datetime]:
        """Event times of a step kind or channel status named in a check (``paid``, ``shipped``, ``delivered``
        and the step kinds); ``delivered`` is both the carrier's step and the channel's status."""
        out: list[datetime] = []
        if name == "paid":
            paid = self.paid_at
            return [paid] if paid is not None else []
        if name in ("shipped", "delivered"):
            at = self.status_times.get(OrderStatus(name))
            if at is not None:
                out.append(at)
        kind = _STEPS.get(name)
        if kind is not None:
            out.extend(self.steps.get(kind, ()))
        return out
