"""Render a :class:`PlainEvent` as the shop's own site / mini-program JSON.

The shape is documented in ``orderguard.ingest.channels.site``. The site sees
everything in clear (phone, id card, WiFi BSSID, device) and stamps an explicit
``version``; the simulator stamps it with ``normalize.event_version`` of the rendered
(millisecond) update time, which grows with every change as the site's own does.
"""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType
from typing import Any

from orderguard.ingest.normalize import event_version, parse_time
from orderguard.schema import Channel, EventKind, OrderStatus
from simulate.channels.common import ChannelEncoder, iso_local_ms, require_refund, status_code
from simulate.plain import PlainEvent

ORDER_CODES = MappingProxyType({
    OrderStatus.CREATED: "pending_payment",
    OrderStatus.AWAITING_GROUP: "group_pending",
    OrderStatus.PAID: "paid",
    OrderStatus.SHIPPED: "shipped",
    OrderStatus.DELIVERED: "delivered",
    OrderStatus.COMPLETED: "completed",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.CLOSED: "closed",
    OrderStatus.REFUND_REQUESTED: "refunding",
    OrderStatus.REFUND_REJECTED: "refund_rejected",
    OrderStatus.REFUNDED: "refunded",
})

AFTER_SALE_CODES = MappingProxyType({
    OrderStatus.REFUND_REQUESTED: "pending",
    OrderStatus.REFUNDED: "refunded",
    OrderStatus.REFUND_REJECTED: "rejected",
    OrderStatus.CLOSED: "withdrawn",
})


def _version(event: PlainEvent, updated_at: str) -> int:
    return event_version(parse_time(updated_at, field="updated_at"), kind=event.kind, status=event.status)


def _order(event: PlainEvent) -> dict[str, Any]:
    updated_at = iso_local_ms(event.update_time)
    buyer = event.buyer
    doc: dict[str, Any] = {
        "type": "order",
        "version": _version(event, updated_at),
        "order_id": event.order_id,
        "shop_id": event.shop_id,
        "status": status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES),
        "created_at": iso_local_ms(event.created_at),
        "updated_at": updated_at,
        "paid_at": iso_local_ms(event.paid_at) if event.paid_at is not None else None,
        "user": {
            "user_id": buyer.account_id,
            "phone": buyer.phone,
            "id_card": buyer.id_card,
            "member_level": buyer.member_level,
            "registered_at": iso_local_ms(buyer.registered_at) if buyer.registered_at is not None else None,
        },
        "items": [
            {"sku_id": line.sku_id, "title": line.title, "qty": line.qty,
             "unit_price_fen": line.unit_price_fen, "list_price_fen": line.list_price_fen}
            for line in event.lines
        ],
        "amounts": {
            "goods_fen": event.amounts.goods_fen,
            "paid_fen": event.amounts.paid_fen,
            "shipping_fen": event.amounts.shipping_fen,
            "discount_fen": event.amounts.discount_fen,
            "coupon_fen": event.amounts.coupon_fen,
        },
        "coupon_ids": list(event.coupon_ids),
        "buyer_message": event.buyer_message,
        "tracking_no": event.tracking_no,
    }
    if event.client is not None:
        c = event.client
        doc["client"] = {"device_id": c.device_id, "ip": c.ip, "wifi_bssid": c.wifi_bssid,
                         "user_agent": c.user_agent}
    if event.address is not None:
        a = event.address
        doc["address"] = {"province": a.province, "city": a.city, "district": a.district, "detail": a.detail,
                          "receiver_name": a.receiver_name}
    return doc


def _after_sale(event: PlainEvent) -> dict[str, Any]:
    refund = require_refund(event)
    updated_at = iso_local_ms(event.update_time)
    return {
        "type": "after_sale",
        "version": _version(event, updated_at),
        "order_id": event.order_id,
        "refund_id": refund.refund_id,
        "status": status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES),
        "reason": refund.reason.value,
        "reason_text": refund.reason_text,
        "amount_fen": refund.amount_fen,
        "sku_id": refund.sku_id,
        "requested_at": iso_local_ms(refund.requested_at),
        "updated_at": updated_at,
    }


def encode(event: PlainEvent, *, secret: bytes) -> dict[str, Any]:
    """The site order (order events) or after-sale (after-sale events) document.

    ``secret`` is unused: the site keeps personal data in clear.
    """
    del secret
    if event.kind is EventKind.AFTER_SALE:
        return _after_sale(event)
    return _order(event)


ENCODER = ChannelEncoder(
    channel=Channel.SITE,
    encode_fn=lambda event, secret: encode(event, secret=secret),
    order_codes=ORDER_CODES,
    after_sale_codes=AFTER_SALE_CODES,
    max_lines=None,
    time_resolution=timedelta(milliseconds=1),
)
