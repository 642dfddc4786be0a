"""Render a :class:`PlainEvent` as a JD POP document.

Order events become the ``orderInfo`` of ``jingdong.pop.order.enGet``, after-sale
events a refund application (``RefundApplyVo``) — see
``orderguard.ingest.channels.jd``. Beijing-time strings, yuan strings (the refund sum
in fen), the receiver's mobile and name as stable ciphertexts (HMAC stand-ins) with
the masked ``desen_mobile``; ``fullAddress`` repeats the region names before the
street, as JD does.
"""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType
from typing import Any

from orderguard.schema import Channel, EventKind, OrderStatus
from simulate.channels.common import (
    REASON_LABELS,
    ChannelEncoder,
    local_text,
    mask_phone,
    require_refund,
    status_code,
    token,
    yuan,
)
from simulate.plain import PlainEvent

ORDER_CODES = MappingProxyType({
    OrderStatus.CREATED: "NOT_PAY",
    OrderStatus.PAID: "WAIT_SELLER_STOCK_OUT",
    OrderStatus.SHIPPED: "WAIT_GOODS_RECEIVE_CONFIRM",
    OrderStatus.DELIVERED: "RECEIPTS_CONFIRM",
    OrderStatus.COMPLETED: "FINISHED_L",
    OrderStatus.CANCELLED: "TRADE_CANCELED",
    OrderStatus.REFUND_REQUESTED: "LOCKED",
})

AFTER_SALE_CODES = MappingProxyType({
    OrderStatus.REFUND_REQUESTED: "0",
    OrderStatus.REFUND_REJECTED: "2",
    OrderStatus.REFUNDED: "3",
    OrderStatus.CLOSED: "11",
})

_STATE_REMARKS = MappingProxyType({
    "NOT_PAY": "未付款",
    "WAIT_SELLER_STOCK_OUT": "等待出库",
    "WAIT_GOODS_RECEIVE_CONFIRM": "等待确认收货",
    "RECEIPTS_CONFIRM": "收款确认",
    "FINISHED_L": "完成",
    "TRADE_CANCELED": "取消",
    "LOCKED": "已锁定",
})


def _order(event: PlainEvent, secret: bytes) -> dict[str, Any]:
    code = status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES)
    amounts = event.amounts
    doc: dict[str, Any] = {
        "orderId": event.order_id,
        "venderId": event.shop_id,
        "orderType": "22",
        "payType": "4-在线支付",
        "orderState": code,
        "orderStateRemark": _STATE_REMARKS[code],
        "open_id_buyer": event.buyer.account_id,
        "orderTotalPrice": yuan(amounts.goods_fen),
        "orderSellerPrice": yuan(max(0, amounts.goods_fen - amounts.discount_fen)),
        "orderPayment": yuan(amounts.paid_fen),
        "freightPrice": yuan(amounts.shipping_fen),
        "sellerDiscount": yuan(amounts.discount_fen),
        "orderStartTime": local_text(event.created_at),
        "modified": local_text(event.update_time),
        "orderRemark": event.buyer_message,
        "waybill": event.tracking_no or "",
        "itemInfoList": [
            {
                "skuId": line.sku_id,
                "outerSkuId": "",
                "skuName": line.title,
                "jdPrice": yuan(line.unit_price_fen),
                "itemTotal": str(line.qty),
                "wareId": line.sku_id,
                "giftPoint": "0",
            }
            for line in event.lines
        ],
        "couponDetailList": (
            [{"skuId": None, "couponType": "41-东券优惠", "couponPrice": yuan(amounts.coupon_fen)}]
            if amounts.coupon_fen else []
        ),
    }
    if event.paid_at is not None:
        doc["paymentConfirmTime"] = local_text(event.paid_at)
    consignee: dict[str, Any] = {}
    if event.buyer.phone:
        cipher = token(secret, "jd-mobile", event.buyer.phone)
        consignee.update({"mobile": cipher, "telephone": cipher, "desen_mobile": mask_phone(event.buyer.phone)})
    if event.address is not None:
        a = event.address
        consignee.update({
            "fullname": token(secret, "jd-name", a.receiver_name),
            "fullAddress": f"{a.province}{a.city}{a.district}{a.detail}",
            "province": a.province,
            "city": a.city,
            "county": a.district,
            "town": "",
        })
    if consignee:
        doc["consigneeInfo"] = consignee
    return doc


def _refund(event: PlainEvent) -> dict[str, Any]:
    refund = require_refund(event)
    doc: dict[str, Any] = {
        "id": refund.refund_id,
        "orderId": event.order_id,
        "buyerId": event.buyer.account_id,
        "status": int(status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES)),
        "applyRefundSum": refund.amount_fen,
        "applyTime": local_text(refund.requested_at),
        "reason": REASON_LABELS[refund.reason],
        "questionDesc": refund.reason_text,
        "skuId": refund.sku_id,
    }
    # Before the first review JD has no checkTime; the apply time is then the last change.
    if local_text(event.update_time) != doc["applyTime"]:
        doc["checkTime"] = local_text(event.update_time)
    return doc


def encode(event: PlainEvent, *, secret: bytes) -> dict[str, Any]:
    """The JD order (order events) or refund application (after-sale events)."""
    if event.kind is EventKind.AFTER_SALE:
        return _refund(event)
    return _order(event, secret)


ENCODER = ChannelEncoder(
    channel=Channel.JD,
    encode_fn=lambda event, secret: encode(event, secret=secret),
    order_codes=ORDER_CODES,
    after_sale_codes=AFTER_SALE_CODES,
    max_lines=None,
    time_resolution=timedelta(seconds=1),
)
