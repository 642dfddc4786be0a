"""Tmall / Taobao adapter, modelled on the TOP trade API.

Documents:

* order: the ``trade`` object of ``taobao.trade.fullinfo.get`` (also pushed by the
  TMC message ``taobao_trade_TradeChanged`` consumers that re-fetch the trade):
  ``tid``, ``status``, ``created`` / ``modified`` / ``pay_time`` as Beijing-time
  ``"YYYY-MM-DD HH:MM:SS"``, money as yuan strings (``total_fee``, ``payment``,
  ``post_fee``, ``discount_fee``) except ``coupon_fee`` (红包抵扣), which TOP gives in
  fen; ``receiver_state`` / ``receiver_city`` / ``receiver_district`` /
  ``receiver_address``; sub-orders in ``orders.order[]`` with ``oid``, ``num_iid``,
  ``sku_id``, ``price`` (unit list price), ``num``, ``total_fee`` (line amount after
  line discounts), ``payment`` (what the buyer paid for the line; the unit price
  charged is ``payment`` / ``num``, else ``total_fee`` / ``num``), ``refund_status`` and
  the waybill ``invoice_no``.
* after-sale: the ``refund`` object of ``taobao.refund.get`` (``refund_id``, ``tid``,
  ``oid``, ``status``, ``refund_fee`` in yuan, ``created`` / ``modified``,
  ``reason`` — the label the buyer picked — and ``desc``, the buyer's own words).
  Detected by the presence of ``refund_id``.

Privacy (TOP since 2021): ``receiver_name`` / ``receiver_mobile`` come masked
(``张**``, ``138****8000``) and the stable receiver identity is ``oaid``; the adapter
hashes ``oaid`` as the phone's encrypted token. The buyer is ``buyer_open_uid``
(``buyer_nick`` is masked). The shop is identified by ``seller_nick``.

Sub-order ``sku`` in the refund document is taken as ``"<sku_id>|<properties>"``; only
the part before ``|`` is used.

Status mapping rationale (trade ``status``):

* ``TRADE_NO_CREATE_PAY``, ``WAIT_BUYER_PAY``, ``PAY_PENDING`` (card payment being
  confirmed), ``WAIT_PRE_AUTH_CONFIRM`` (0-yuan pre-authorisation) → created: nothing
  paid yet;
* ``PAID_FORBID_CONSIGN`` (拼团中: paid, shipping forbidden until the group forms) →
  awaiting_group;
* ``WAIT_SELLER_SEND_GOODS`` → paid; ``SELLER_CONSIGNED_PART`` and
  ``WAIT_BUYER_CONFIRM_GOODS`` → shipped (something is on its way);
* ``TRADE_BUYER_SIGNED`` (cash-on-delivery signed) → delivered;
  ``TRADE_FINISHED`` → completed;
* ``TRADE_CLOSED`` (closed after a full refund of a paid trade) → refunded;
  ``TRADE_CLOSED_BY_TAOBAO`` (closed before payment) → cancelled.

Refund ``status``: ``WAIT_SELLER_AGREE``, ``WAIT_BUYER_RETURN_GOODS``,
``WAIT_SELLER_CONFIRM_GOODS`` → refund_requested (the claim is open);
``SELLER_REFUSE_BUYER`` → refund_rejected; ``SUCCESS`` → refunded; ``CLOSED`` (buyer
withdrew or it timed out) → closed.

Webhook signing (``SIGNING``), as TOP signs every call (the "签名算法" of TOP's API
调用方法, quoted in https://blog.csdn.net/weixin_46124208/article/details/130508075), with
the body appended as Qimen (奇门, TOP's gateway for pushes to ISVs) appends it
(https://cnblogs.com/darling331/p/14695063.html): query parameters ``app_key``,
``timestamp`` (``yyyy-MM-dd HH:mm:ss``, Beijing time), ``sign_method`` (``md5``, ``hmac``
or ``hmac-sha256``) and ``sign``. Every parameter but ``sign`` that has a value, sorted by
name, is concatenated as name + value, then the raw body is appended; ``sign`` is the
upper-case hex HMAC-SHA256 (``hmac``: HMAC-MD5) of that string keyed with the app secret,
or for ``md5`` the MD5 of secret + string + secret. The body is signed because a push
carries its data there, not in parameters: unsigned, it could be swapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from orderguard.ingest.channels.base import unknown_fields, validate
from orderguard.ingest.channels.kit import (
    Count,
    DocumentAdapter,
    Fen,
    Stamp,
    Text,
    Yuan,
    classify_reason,
    first_text,
    frozen,
    has_key,
    make_event,
    positive,
    receiver_hash,
    unit_price,
)
from orderguard.ingest.channels.signing import (
    HMAC_MD5_UPPER,
    HMAC_SHA256_UPPER,
    MD5_WRAPPED_UPPER,
    PushField,
    SignedParts,
    TimeFormat,
    WebhookSigning,
    concat_sorted,
)
from orderguard.ingest.normalize import (
    ParseContext,
    fen,
    map_status,
    parse_optional_time,
    parse_time,
    phone_from,
    yuan_to_fen,
)
from orderguard.schema import (
    Address,
    Amounts,
    Channel,
    EventKind,
    OrderDetails,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Party,
    Refund,
)

CHANNEL = Channel.TMALL

ORDER_STATUS_CODES = frozen({
    "TRADE_NO_CREATE_PAY": OrderStatus.CREATED,
    "WAIT_BUYER_PAY": OrderStatus.CREATED,
    "PAY_PENDING": OrderStatus.CREATED,
    "WAIT_PRE_AUTH_CONFIRM": OrderStatus.CREATED,
    "PAID_FORBID_CONSIGN": OrderStatus.AWAITING_GROUP,
    "WAIT_SELLER_SEND_GOODS": OrderStatus.PAID,
    "SELLER_CONSIGNED_PART": OrderStatus.SHIPPED,
    "WAIT_BUYER_CONFIRM_GOODS": OrderStatus.SHIPPED,
    "TRADE_BUYER_SIGNED": OrderStatus.DELIVERED,
    "TRADE_FINISHED": OrderStatus.COMPLETED,
    "TRADE_CLOSED": OrderStatus.REFUNDED,
    "TRADE_CLOSED_BY_TAOBAO": OrderStatus.CANCELLED,
})

AFTER_SALE_STATUS_CODES = frozen({
    "WAIT_SELLER_AGREE": OrderStatus.REFUND_REQUESTED,
    "WAIT_BUYER_RETURN_GOODS": OrderStatus.REFUND_REQUESTED,
    "WAIT_SELLER_CONFIRM_GOODS": OrderStatus.REFUND_REQUESTED,
    "SELLER_REFUSE_BUYER": OrderStatus.REFUND_REJECTED,
    "SUCCESS": OrderStatus.REFUNDED,
    "CLOSED": OrderStatus.CLOSED,
})

REQUIRED_FIELDS: tuple[str, ...] = (
    "tid",
    "status",
    "seller_nick",
    "buyer_open_uid",
    "created",
    "modified",
    "total_fee",
    "payment",
    "orders",
    "orders.order",
    "orders.order.0.oid",
    "orders.order.0.num_iid",
    "orders.order.0.title",
    "orders.order.0.price",
    "orders.order.0.num",
    "orders.order.0.total_fee",
)


class TmallSubOrder(BaseModel):
    """One element of ``trade.orders.order[]``."""

    model_config = ConfigDict(extra="allow")

    oid: Text
    num_iid: Text
    sku_id: Text | None = None
    outer_sku_id: str | None = None
    title: str
    price: Yuan
    num: Count
    total_fee: Yuan
    payment: Yuan | None = None
    refund_status: str | None = None
    status: str | None = None
    invoice_no: str | None = None
    logistics_company: str | None = None


class TmallSubOrders(BaseModel):
    """TOP wraps list fields in an object: ``"orders": {"order": [...]}``."""

    model_config = ConfigDict(extra="allow")

    order: list[TmallSubOrder]


class TmallTrade(BaseModel):
    """The ``trade`` of ``taobao.trade.fullinfo.get``."""

    model_config = ConfigDict(extra="allow")

    tid: Text
    status: Text
    seller_nick: str
    buyer_open_uid: str
    buyer_nick: str | None = None
    created: Stamp
    modified: Stamp
    pay_time: Stamp | None = None
    consign_time: Stamp | None = None
    end_time: Stamp | None = None
    total_fee: Yuan
    payment: Yuan
    post_fee: Yuan = "0.00"
    discount_fee: Yuan = "0.00"
    coupon_fee: Fen = 0
    receiver_name: str | None = None
    receiver_mobile: str | None = None
    receiver_state: str | None = None
    receiver_city: str | None = None
    receiver_district: str | None = None
    receiver_town: str | None = None
    receiver_address: str | None = None
    oaid: str | None = None
    buyer_message: str | None = None
    orders: TmallSubOrders


class TmallRefund(BaseModel):
    """The ``refund`` of ``taobao.refund.get``."""

    model_config = ConfigDict(extra="allow")

    refund_id: Text
    tid: Text
    oid: Text | None = None
    status: Text
    buyer_open_uid: str | None = None
    created: Stamp
    modified: Stamp
    refund_fee: Yuan
    reason: str | None = None
    desc: str | None = None
    sku: str | None = None
    num_iid: Text | None = None
    has_good_return: bool | None = None
    good_status: str | None = None


def parse(payload: Mapping[str, Any], *, ctx: ParseContext) -> OrderEvent:
    """Parse a TOP trade or refund document (see the module docstring)."""
    if has_key(payload, "refund_id"):
        return _parse_refund(validate(TmallRefund, payload), ctx)
    return _parse_trade(validate(TmallTrade, payload), ctx)


def _parse_trade(doc: TmallTrade, ctx: ParseContext) -> OrderEvent:
    status = map_status(ORDER_STATUS_CODES, doc.status, field="status")
    lines = []
    for i, sub in enumerate(doc.orders.order):
        path = f"orders.order.{i}"
        qty = positive(sub.num, field=f"{path}.num")
        line_total = yuan_to_fen(sub.total_fee, field=f"{path}.total_fee")
        # What the buyer paid for the line (``payment``), else its amount after line discounts.
        paid = None if sub.payment is None else yuan_to_fen(sub.payment, field=f"{path}.payment")
        lines.append(OrderLine(
            sku_id=sub.sku_id or sub.num_iid,
            qty=qty,
            unit_price_fen=unit_price(line_total if paid is None else paid, qty),
            title=sub.title,
            list_price_fen=yuan_to_fen(sub.price, field=f"{path}.price"),
        ))
    address = None
    if doc.receiver_state:
        address = Address(
            province=doc.receiver_state,
            city=doc.receiver_city or "",
            district=doc.receiver_district or "",
            detail=((doc.receiver_town or "") + (doc.receiver_address or "")).strip(),
            receiver_name_hash=receiver_hash(ctx.hasher, token=None, name=doc.receiver_name),
        )
    details = OrderDetails(
        shop_id=doc.seller_nick,
        created_at=parse_time(doc.created, field="created"),
        buyer=Party(
            account_id=doc.buyer_open_uid,
            phone=phone_from(doc.receiver_mobile, hasher=ctx.hasher, encrypted_token=doc.oaid),
        ),
        lines=tuple(lines),
        amounts=Amounts(
            goods_fen=yuan_to_fen(doc.total_fee, field="total_fee"),
            paid_fen=yuan_to_fen(doc.payment, field="payment"),
            shipping_fen=yuan_to_fen(doc.post_fee, field="post_fee"),
            discount_fen=yuan_to_fen(doc.discount_fee, field="discount_fee"),
            coupon_fen=fen(doc.coupon_fee, field="coupon_fee"),
        ),
        address=address,
        paid_at=parse_optional_time(doc.pay_time, field="pay_time"),
        buyer_message=doc.buyer_message or "",
        tracking_no=first_text(sub.invoice_no for sub in doc.orders.order),
    )
    return make_event(
        channel=CHANNEL, order_id=doc.tid, kind=EventKind.ORDER, status=status, channel_status=doc.status,
        event_time=parse_time(doc.modified, field="modified"), ctx=ctx, raw=unknown_fields(doc),
        details=details,
    )


def _parse_refund(doc: TmallRefund, ctx: ParseContext) -> OrderEvent:
    status = map_status(AFTER_SALE_STATUS_CODES, doc.status, field="status")
    sku_id = doc.sku.split("|", 1)[0].strip() if doc.sku else None
    refund = Refund(
        refund_id=doc.refund_id,
        reason=classify_reason(doc.reason),
        amount_fen=yuan_to_fen(doc.refund_fee, field="refund_fee"),
        requested_at=parse_time(doc.created, field="created"),
        reason_text=doc.desc or doc.reason or "",
        sku_id=sku_id or None,
    )
    return make_event(
        channel=CHANNEL, order_id=doc.tid, kind=EventKind.AFTER_SALE, status=status,
        channel_status=doc.status, event_time=parse_time(doc.modified, field="modified"), ctx=ctx,
        raw=unknown_fields(doc), refund=refund,
    )


def _top_message(parts: SignedParts) -> bytes:
    """TOP's signed string: every parameter but ``sign``, sorted, name + value, then the body (Qimen)."""
    return concat_sorted(parts.params) + parts.body


SIGNING = WebhookSigning(
    platform="Taobao Open Platform (TOP)",
    source="TOP 签名算法 (open.taobao.com API 调用方法, quoted in "
           "https://blog.csdn.net/weixin_46124208/article/details/130508075); body appended as Qimen does "
           "(https://cnblogs.com/darling331/p/14695063.html)",
    signature=PushField("sign", "query", "the signature, upper-case hex"),
    timestamp=PushField("timestamp", "query", "when the push was signed, `yyyy-MM-dd HH:mm:ss` Beijing time"),
    time_format=TimeFormat.BEIJING_SECONDS,
    method=PushField("sign_method", "query", "`hmac-sha256`, `hmac` or `md5`"),
    app_key=PushField("app_key", "query", "the shop's TOP app key"),
    digests={"hmac-sha256": HMAC_SHA256_UPPER, "hmac": HMAC_MD5_UPPER, "md5": MD5_WRAPPED_UPPER},
    default_method="hmac-sha256",
    signs_query=True,
    message=_top_message,
    formula="`sign` = upper-case hex HMAC-SHA256(secret, k1v1k2v2… + body) over every query parameter but "
            "`sign` that has a value, sorted by name (`hmac`: HMAC-MD5; `md5`: MD5(secret + k1v1… + body + "
            "secret)).",
    note="Any other query parameter (`atomic`) is signed too, so add it before signing.",
)


ADAPTER = DocumentAdapter(
    channel=CHANNEL,
    order_status_codes=ORDER_STATUS_CODES,
    after_sale_status_codes=AFTER_SALE_STATUS_CODES,
    required_fields=REQUIRED_FIELDS,
    order_status_field="status",
    after_sale_status_field="status",
    time_resolution=timedelta(seconds=1),
    parse_fn=lambda payload, ctx: parse(payload, ctx=ctx),
    signing=SIGNING,
)
