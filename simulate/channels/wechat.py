"""Render a :class:`PlainEvent` as a WeChat Channels shop (视频号小店) document.

Order events become the ``order`` of ``order/get``, after-sale events the
``after_sale_order`` of ``aftersale/getaftersaleorder`` (see
``orderguard.ingest.channels.wechat``). Epoch seconds, fen; the receiver's number is
hidden behind a masked ``tel_number`` with the platform's per-receiver ``hash_code``
(HMAC stand-in); the receiver name stays clear as on the platform; the shop's
``appid`` is added the way the ingest edge adds it.
"""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType
from typing import Any

from orderguard.schema import Channel, EventKind, OrderStatus, RefundReason
from simulate.channels.common import (
    REASON_LABELS,
    ChannelEncoder,
    epoch_s,
    mask_phone,
    require_refund,
    status_code,
    token,
)
from simulate.plain import PlainEvent

ORDER_CODES = MappingProxyType({
    OrderStatus.CREATED: "10",
    OrderStatus.AWAITING_GROUP: "13",
    OrderStatus.PAID: "20",
    OrderStatus.SHIPPED: "30",
    OrderStatus.COMPLETED: "100",
    OrderStatus.REFUNDED: "200",
    OrderStatus.CANCELLED: "250",
})

AFTER_SALE_CODES = MappingProxyType({
    OrderStatus.REFUND_REQUESTED: "MERCHANT_PROCESSING",
    OrderStatus.REFUND_REJECTED: "MERCHANT_REJECT_REFUND",
    OrderStatus.REFUNDED: "MERCHANT_REFUND_SUCCESS",
    OrderStatus.CLOSED: "USER_CANCELD",
})


def _order(event: PlainEvent, secret: bytes) -> dict[str, Any]:
    code = status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES)
    amounts = event.amounts
    reduction = amounts.discount_fen + amounts.coupon_fen
    detail: dict[str, Any] = {
        "product_infos": [
            {
                "product_id": line.sku_id,
                "sku_id": line.sku_id,
                "title": line.title,
                "sku_cnt": line.qty,
                "sale_price": line.unit_price_fen,
                "market_price": line.list_price_fen if line.list_price_fen is not None else line.unit_price_fen,
                "real_price": line.unit_price_fen * line.qty,
                "sku_code": "",
                "on_aftersale_sku_cnt": 0,
                "finish_aftersale_sku_cnt": 0,
            }
            for line in event.lines
        ],
        "price_info": {
            "product_price": amounts.goods_fen,
            "order_price": amounts.paid_fen,
            "freight": amounts.shipping_fen,
            "discounted_price": reduction,
            "is_discounted": reduction > 0,
        },
        "pay_info": {"prepay_time": epoch_s(event.created_at),
                     **({"pay_time": epoch_s(event.paid_at)} if event.paid_at is not None else {})},
        "ext_info": {"customer_notes": event.buyer_message, "merchant_notes": ""},
    }
    delivery: dict[str, Any] = {"deliver_method": 0, "delivery_product_info": []}
    if event.tracking_no:
        delivery["delivery_product_info"] = [{"waybill_id": event.tracking_no, "delivery_id": "SF"}]
    address: dict[str, Any] = {}
    if event.buyer.phone:
        address.update({
            "tel_number": mask_phone(event.buyer.phone),
            "use_tel_number": 1,
            "hash_code": token(secret, "wechat-hash-code", event.buyer.phone),
        })
    if event.address is not None:
        a = event.address
        address.update({
            "user_name": a.receiver_name,
            "postal_code": "",
            "province_name": a.province,
            "city_name": a.city,
            "county_name": a.district,
            "detail_info": a.detail,
            "national_code": "",
            "house_number": "",
        })
    if address:
        delivery["address_info"] = address
    detail["delivery_info"] = delivery
    if event.coupon_ids:
        detail["coupon_info"] = {"user_coupon_id": event.coupon_ids[0]}
    return {
        "order_id": event.order_id,
        "status": int(code),
        "create_time": epoch_s(event.created_at),
        "update_time": epoch_s(event.update_time),
        "openid": event.buyer.account_id,
        "unionid": "",
        "appid": event.shop_id,
        "order_detail": detail,
        "aftersale_detail": {"aftersale_order_list": [], "on_aftersale_order_cnt": 0},
    }


def _after_sale(event: PlainEvent) -> dict[str, Any]:
    refund = require_refund(event)
    qty = next((line.qty for line in event.lines if line.sku_id == refund.sku_id), 1)
    return {
        "after_sale_order_id": refund.refund_id,
        "order_id": event.order_id,
        "status": status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES),
        "openid": event.buyer.account_id,
        "product_info": {"product_id": refund.sku_id, "sku_id": refund.sku_id, "count": qty},
        "refund_info": {"amount": refund.amount_fen},
        "details": {"desc": refund.reason_text,
                    "receive_product": refund.reason is not RefundReason.NOT_RECEIVED,
                    "media_id_list": []},
        "reason": "NO_LONGER_NEED" if refund.reason is RefundReason.NO_REASON else "OTHERS",
        "reason_text": REASON_LABELS[refund.reason],
        "type": "REFUND",
        "create_time": epoch_s(refund.requested_at),
        "update_time": epoch_s(event.update_time),
    }


def encode(event: PlainEvent, *, secret: bytes) -> dict[str, Any]:
    """The Channels-shop order (order events) or after-sale order (after-sale events)."""
    if event.kind is EventKind.AFTER_SALE:
        return _after_sale(event)
    return _order(event, secret)


ENCODER = ChannelEncoder(
    channel=Channel.WECHAT,
    encode_fn=lambda event, secret: encode(event, secret=secret),
    order_codes=ORDER_CODES,
    after_sale_codes=AFTER_SALE_CODES,
    max_lines=None,
    time_resolution=timedelta(seconds=1),
)
