"""Render a :class:`PlainEvent` as a Douyin shop (抖店) document.

Order events become ``shop_order_detail`` of ``order.orderDetail``, after-sale events
the data of ``afterSale.Detail`` (see ``orderguard.ingest.channels.douyin``). Epoch
seconds, fen, integer status codes; phone, receiver name, address detail and id card
as Doudian-style ciphertexts (``$…$`` for phones, ``#…#`` otherwise; HMAC stand-ins)
next to their masked forms.
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
    mask_name,
    mask_phone,
    require_refund,
    status_code,
    token,
)
from simulate.plain import PlainEvent

ORDER_CODES = MappingProxyType({
    OrderStatus.CREATED: "1",
    OrderStatus.PAID: "2",
    OrderStatus.SHIPPED: "3",
    OrderStatus.CANCELLED: "4",
    OrderStatus.COMPLETED: "5",
})

AFTER_SALE_CODES = MappingProxyType({
    OrderStatus.REFUND_REQUESTED: "6",
    OrderStatus.REFUND_REJECTED: "27",
    OrderStatus.REFUNDED: "12",
    OrderStatus.CLOSED: "28",
})

_STATUS_DESC = MappingProxyType({"1": "待支付", "2": "备货中", "3": "已发货", "4": "已取消", "5": "已完成"})


def _order(event: PlainEvent, secret: bytes) -> dict[str, Any]:
    code = status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES)
    amounts = event.amounts
    doc: dict[str, Any] = {
        "order_id": event.order_id,
        "shop_id": event.shop_id,
        "order_status": int(code),
        "order_status_desc": _STATUS_DESC[code],
        "main_status": int(code),
        "doudian_open_id": event.buyer.account_id,
        "create_time": epoch_s(event.created_at),
        "update_time": epoch_s(event.update_time),
        "pay_time": epoch_s(event.paid_at) if event.paid_at is not None else 0,
        "order_amount": amounts.goods_fen,
        "pay_amount": amounts.paid_fen,
        "post_amount": amounts.shipping_fen,
        "promotion_amount": amounts.discount_fen + amounts.coupon_fen,
        "buyer_words": event.buyer_message,
        "seller_words": "",
        "logistics_info": (
            [{"tracking_no": event.tracking_no, "company": "shunfeng", "company_name": "顺丰速运"}]
            if event.tracking_no else []
        ),
        "sku_order_list": [
            {
                "order_id": f"{event.order_id}{i + 1}",
                "parent_order_id": event.order_id,
                "product_id": line.sku_id,
                "product_name": line.title,
                "sku_id": line.sku_id,
                "out_sku_id": "",
                "item_num": line.qty,
                "origin_amount": line.unit_price_fen * line.qty,
                "goods_price": line.list_price_fen if line.list_price_fen is not None else line.unit_price_fen,
                "pay_amount": line.unit_price_fen * line.qty,
                "order_status": int(code),
            }
            for i, line in enumerate(event.lines)
        ],
    }
    if event.buyer.phone:
        doc["encrypt_post_tel"] = f"${token(secret, 'douyin-tel', event.buyer.phone)}$"
        doc["mask_post_tel"] = mask_phone(event.buyer.phone)
    if event.address is not None:
        a = event.address
        doc["encrypt_post_receiver"] = f"#{token(secret, 'douyin-name', a.receiver_name)}#"
        doc["mask_post_receiver"] = mask_name(a.receiver_name)
        doc["post_addr"] = {
            "province": {"id": "", "name": a.province},
            "city": {"id": "", "name": a.city},
            "town": {"id": "", "name": a.district},
            "street": {"id": "", "name": ""},
            "detail": a.detail,
            "encrypt_detail": f"#{token(secret, 'douyin-addr', a.detail)}#",
        }
    if event.buyer.id_card:
        card = event.buyer.id_card
        doc["user_id_info"] = {
            "id_card_no": f"{card[:4]}**********{card[-4:]}",
            "encrypt_id_card_no": f"#{token(secret, 'douyin-id', card)}#",
        }
    return doc


def _after_sale(event: PlainEvent) -> dict[str, Any]:
    refund = require_refund(event)
    code = status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES)
    related = [
        {"sku_order_id": f"{event.order_id}{i + 1}", "product_id": line.sku_id, "sku_id": line.sku_id,
         "item_quantity": line.qty}
        for i, line in enumerate(event.lines) if line.sku_id == refund.sku_id
    ]
    return {
        "process_info": {
            "after_sale_info": {
                "after_sale_id": refund.refund_id,
                "after_sale_status": int(code),
                "after_sale_type": 1 if refund.reason is RefundReason.NOT_RECEIVED else 0,
                "refund_amount": refund.amount_fen,
                "apply_time": epoch_s(refund.requested_at),
                "update_time": epoch_s(event.update_time),
                "reason": REASON_LABELS[refund.reason],
                "reason_remark": refund.reason_text,
            },
        },
        "order_info": {"shop_order_id": event.order_id, "related_order_info": related},
    }


def encode(event: PlainEvent, *, secret: bytes) -> dict[str, Any]:
    """The Doudian order (order events) or after-sale detail (after-sale events)."""
    if event.kind is EventKind.AFTER_SALE:
        return _after_sale(event)
    return _order(event, secret)


ENCODER = ChannelEncoder(
    channel=Channel.DOUYIN,
    encode_fn=lambda event, secret: encode(event, secret=secret),
    order_codes=ORDER_CODES,
    after_sale_codes=AFTER_SALE_CODES,
    max_lines=None,
    time_resolution=timedelta(seconds=1),
)
