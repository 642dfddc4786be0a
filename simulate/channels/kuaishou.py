"""Render a :class:`PlainEvent` as a Kuaishou shop (快手小店) document.

Order events become the data of ``open.order.detail``, after-sale events the data of
``open.seller.order.refund.detail`` (see ``orderguard.ingest.channels.kuaishou``).
Epoch milliseconds, fen, integer status codes; encrypted (HMAC stand-in) and
desensitised phone and consignee.

A Kuaishou order carries exactly one SKU and no order-level goods total (goods =
``price`` × ``num``), so events with several lines, or whose goods total is not that
product, cannot be rendered faithfully and are refused with ``ValueError``. All
reductions go to ``discountFee``.
"""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType
from typing import Any

from orderguard.schema import Channel, EventKind, OrderStatus, RefundReason
from simulate.channels.common import (
    REASON_LABELS,
    ChannelEncoder,
    epoch_ms,
    mask_name,
    mask_phone,
    require_refund,
    status_code,
    token,
)
from simulate.plain import PlainEvent

ORDER_CODES = MappingProxyType({
    OrderStatus.CREATED: "10",
    OrderStatus.PAID: "30",
    OrderStatus.SHIPPED: "40",
    OrderStatus.DELIVERED: "50",
    OrderStatus.COMPLETED: "70",
    OrderStatus.CANCELLED: "80",
})

AFTER_SALE_CODES = MappingProxyType({
    OrderStatus.REFUND_REQUESTED: "10",
    OrderStatus.REFUNDED: "60",
    OrderStatus.REFUND_REJECTED: "70",
})


def _order(event: PlainEvent, secret: bytes) -> dict[str, Any]:
    code = status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES)
    if len(event.lines) != 1:
        raise ValueError(f"a kuaishou order carries exactly one SKU line; got {len(event.lines)}")
    line = event.lines[0]
    amounts = event.amounts
    if amounts.goods_fen != line.unit_price_fen * line.qty:
        raise ValueError("kuaishou has no order-level goods total: goods_fen must equal price × num "
                         f"({line.unit_price_fen} × {line.qty}); got {amounts.goods_fen}")
    base: dict[str, Any] = {
        "oid": event.order_id,
        "status": int(code),
        "buyerOpenId": event.buyer.account_id,
        "buyerNick": "",
        "sellerOpenId": event.shop_id,
        "createTime": epoch_ms(event.created_at),
        "updateTime": epoch_ms(event.update_time),
        "payTime": epoch_ms(event.paid_at) if event.paid_at is not None else 0,
        "totalFee": amounts.paid_fen,
        "expressFee": amounts.shipping_fen,
        "discountFee": amounts.discount_fen + amounts.coupon_fen,
        "remark": event.buyer_message,
        "payType": 1,
    }
    doc: dict[str, Any] = {
        "orderBaseInfo": base,
        "orderItemInfo": {
            "skuId": line.sku_id,
            "relSkuId": "",
            "skuDesc": "",
            "itemId": line.sku_id,
            "itemTitle": line.title,
            "num": line.qty,
            "price": line.unit_price_fen,
            "originalPrice": line.list_price_fen if line.list_price_fen is not None else line.unit_price_fen,
        },
        "orderLogisticsInfo": [{"expressNo": event.tracking_no, "expressCode": 4}] if event.tracking_no else [],
    }
    address: dict[str, Any] = {}
    if event.buyer.phone:
        address.update({
            "mobile": "",
            "encryptedMobile": token(secret, "ks-mobile", event.buyer.phone),
            "desensitiseMobile": mask_phone(event.buyer.phone),
        })
    if event.address is not None:
        a = event.address
        address.update({
            "consignee": "",
            "encryptedConsignee": token(secret, "ks-consignee", a.receiver_name),
            "desensitiseConsignee": mask_name(a.receiver_name),
            "province": a.province,
            "city": a.city,
            "district": a.district,
            "town": "",
            "address": "",
            "encryptedAddress": token(secret, "ks-address", a.detail),
            "desensitiseAddress": a.detail,
        })
    if address:
        doc["orderAddress"] = address
    return doc


def _refund(event: PlainEvent) -> dict[str, Any]:
    refund = require_refund(event)
    return {
        "refundId": refund.refund_id,
        "oid": event.order_id,
        "skuId": refund.sku_id,
        "status": int(status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES)),
        "refundFee": refund.amount_fen,
        "refundReasonDesc": REASON_LABELS[refund.reason],
        "refundDesc": refund.reason_text,
        "refundType": 2 if refund.reason is RefundReason.NOT_RECEIVED else 1,
        "buyerOpenId": event.buyer.account_id,
        "createTime": epoch_ms(refund.requested_at),
        "submitTime": epoch_ms(refund.requested_at),
        "updateTime": epoch_ms(event.update_time),
    }


def encode(event: PlainEvent, *, secret: bytes) -> dict[str, Any]:
    """The Kuaishou order (order events) or refund detail (after-sale events)."""
    if event.kind is EventKind.AFTER_SALE:
        return _refund(event)
    return _order(event, secret)


ENCODER = ChannelEncoder(
    channel=Channel.KUAISHOU,
    encode_fn=lambda event, secret: encode(event, secret=secret),
    order_codes=ORDER_CODES,
    after_sale_codes=AFTER_SALE_CODES,
    max_lines=1,
    time_resolution=timedelta(milliseconds=1),
)
