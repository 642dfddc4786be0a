"""Turn a timed order into the clear-text events its channel would send.

Each step of the timeline becomes one :class:`PlainEvent`, a full snapshot as of that
step (``paid_at`` only once paid, ``tracking_no`` only once shipped). Steps after the
end of the period are not rendered: the shop does not know them yet, so orders still in
flight at the end look exactly like that.
"""

from __future__ import annotations

from datetime import datetime

from orderguard.schema import EventKind
from simulate.catalog import SHOP_IDS
from simulate.lifecycle import steps
from simulate.orders import SimOrder
from simulate.plain import PlainEvent, PlainRefund


def render(order: SimOrder, *, order_id: str, refund_id: str, tracking_no: str | None,
           until: datetime) -> list[PlainEvent]:
    """The events of ``order`` with update time before ``until`` (UTC), oldest first."""
    plan, timeline = order.plan, order.timeline
    refund = None
    if timeline.refund_requested is not None and plan.script.refund is not None:
        claim = plan.script.refund
        refund = PlainRefund(
            refund_id=refund_id, reason=claim.reason,
            amount_fen=claim.amount_fen if claim.amount_fen is not None else plan.amounts.paid_fen,
            requested_at=timeline.refund_requested, reason_text=claim.reason_text,
            sku_id=plan.lines[0].sku_id if plan.lines else None)
    events = []
    for step in steps(timeline, group_buy=plan.script.group_buy):
        if step.at >= until:
            break
        paid = timeline.paid is not None and step.at >= timeline.paid
        shipped = timeline.shipped is not None and step.at >= timeline.shipped
        events.append(PlainEvent(
            channel=plan.channel, order_id=order_id, shop_id=plan.shop_id or SHOP_IDS[plan.channel], kind=step.kind,
            status=step.status, update_time=step.at, created_at=plan.created_at, buyer=plan.buyer,
            lines=plan.lines, amounts=plan.amounts, address=plan.address,
            paid_at=timeline.paid if paid else None, coupon_ids=plan.coupon_ids,
            buyer_message=plan.buyer_message, client=plan.client,
            tracking_no=tracking_no if shipped else None,
            refund=refund if step.kind is EventKind.AFTER_SALE else None))
    return events
