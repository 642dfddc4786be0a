"""Render a :class:`PlainEvent` as a Tmall / Taobao TOP document.

Order events become the ``trade`` of ``taobao.trade.fullinfo.get``, after-sale events
the ``refund`` of ``taobao.refund.get`` (see ``orderguard.ingest.channels.tmall``).
Beijing-time ``"YYYY-MM-DD HH:MM:SS"`` strings, yuan strings, ``coupon_fee`` in fen;
the receiver's phone masked (``138****8000``) and name masked (``张**``), with ``oaid``
as the stable encrypted receiver token (HMAC of the phone).
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
    mask_name,
    mask_phone,
    require_refund,
    status_code,
    token,
    yuan,
)
from simulate.plain import PlainEvent

ORDER_CODES = MappingProxyType({
    OrderStatus.CREATED: "WAIT_BUYER_PAY",
    OrderStatus.AWAITING_GROUP: "PAID_FORBID_CONSIGN",
    OrderStatus.PAID: "WAIT_SELLER_SEND_GOODS",
    OrderStatus.SHIPPED: "WAIT_BUYER_CONFIRM_GOODS",
    OrderStatus.DELIVERED: "TRADE_BUYER_SIGNED",
    OrderStatus.COMPLETED: "TRADE_FINISHED",
    OrderStatus.CANCELLED: "TRADE_CLOSED_BY_TAOBAO",
    OrderStatus.REFUNDED: "TRADE_CLOSED",
})

AFTER_SALE_CODES = MappingProxyType({
    OrderStatus.REFUND_REQUESTED: "WAIT_SELLER_AGREE",
    OrderStatus.REFUND_REJECTED: "SELLER_REFUSE_BUYER",
    OrderStatus.REFUNDED: "SUCCESS",
    OrderStatus.CLOSED: "CLOSED",
})


def _oid(event: PlainEvent, index: int) -> str:
    return f"{event.order_id}{index + 1:02d}"


def _trade(event: PlainEvent, secret: bytes) -> dict[str, Any]:
    code = status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES)
    orders = [
        {
            "oid": _oid(event, i),
            "num_iid": line.sku_id,
            "sku_id": line.sku_id,
            "outer_sku_id": "",
            "title": line.title,
            "price": yuan(line.list_price_fen if line.list_price_fen is not None else line.unit_price_fen),
            "num": line.qty,
            "total_fee": yuan(line.unit_price_fen * line.qty),
            "payment": yuan(line.unit_price_fen * line.qty),
            "refund_status": "NO_REFUND",
            "status": code,
            **({"invoice_no": event.tracking_no, "logistics_company": "顺丰速运"} if event.tracking_no else {}),
        }
        for i, line in enumerate(event.lines)
    ]
    amounts = event.amounts
    trade: dict[str, Any] = {
        "tid": event.order_id,
        "tid_str": event.order_id,
        "status": code,
        "type": "fixed",
        "seller_nick": event.shop_id,
        "buyer_open_uid": event.buyer.account_id,
        "created": local_text(event.created_at),
        "modified": local_text(event.update_time),
        "total_fee": yuan(amounts.goods_fen),
        "payment": yuan(amounts.paid_fen),
        "post_fee": yuan(amounts.shipping_fen),
        "discount_fee": yuan(amounts.discount_fen),
        "coupon_fee": amounts.coupon_fen,
        "buyer_message": event.buyer_message,
        "orders": {"order": orders},
    }
    if event.paid_at is not None:
        trade["pay_time"] = local_text(event.paid_at)
    if event.buyer.phone:
        trade["receiver_mobile"] = mask_phone(event.buyer.phone)
        trade["oaid"] = token(secret, "tmall-oaid", event.buyer.phone)
    if event.address is not None:
        trade.update({
            "receiver_name": mask_name(event.address.receiver_name),
            "receiver_state": event.address.province,
            "receiver_city": event.address.city,
            "receiver_district": event.address.district,
            "receiver_address": event.address.detail,
            "receiver_country": "",
        })
    return trade


def _refund(event: PlainEvent) -> dict[str, Any]:
    refund = require_refund(event)
    index = next((i for i, line in enumerate(event.lines) if line.sku_id == refund.sku_id), 0)
    doc: dict[str, Any] = {
        "refund_id": refund.refund_id,
        "tid": event.order_id,
        "oid": _oid(event, index),
        "status": status_code(event, order_codes=ORDER_CODES, after_sale_codes=AFTER_SALE_CODES),
        "buyer_open_uid": event.buyer.account_id,
        "seller_nick": event.shop_id,
        "created": local_text(refund.requested_at),
        "modified": local_text(event.update_time),
        "refund_fee": yuan(refund.amount_fen),
        "total_fee": yuan(event.amounts.goods_fen),
        "payment": yuan(event.amounts.paid_fen),
        "reason": REASON_LABELS[refund.reason],
        "desc": refund.reason_text,
        "has_good_return": False,
        "refund_phase": "onsale",
    }
    if refund.sku_id is not None:
        doc["sku"] = f"{refund.sku_id}|颜色分类:默认"
    return doc


def encode(event: PlainEvent, *, secret: bytes) -> dict[str, Any]:
    """The TOP trade (order events) or refund (after-sale events) for ``event``."""
    if event.kind is EventKind.AFTER_SALE:
        return _refund(event)
    return _trade(event, secret)


ENCODER = ChannelEncoder(
    channel=Channel.TMALL,
    encode_fn=lambda event, secret: encode(event, secret=secret),
    order_codes=ORDER_CODES,
    after_sale_codes=AFTER_SALE_CODES,
    max_lines=None,
    time_resolution=timedelta(seconds=1),
)
