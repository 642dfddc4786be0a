"""Douyin shop (抖店) adapter, modelled on the Doudian open platform.

Documents:

* order: ``shop_order_detail`` of ``order.orderDetail``: ``order_id``, ``shop_id``,
  ``order_status`` (integer), ``doudian_open_id`` (the buyer), epoch-second
  ``create_time`` / ``update_time`` / ``pay_time`` (0 until paid), amounts in fen
  (``order_amount`` goods, ``pay_amount`` paid, ``post_amount`` shipping,
  ``promotion_amount`` all promotions together), ``buyer_words``, the receiver as
  ``encrypt_post_tel`` / ``encrypt_post_receiver`` ciphertexts plus their masked forms
  ``mask_post_tel`` / ``mask_post_receiver``, ``post_addr`` with ``province`` /
  ``city`` / ``town`` (the district level) / ``street`` objects of ``{id, name}`` and
  ``detail``, the real-name ``user_id_info`` (``encrypt_id_card_no``) of cross-border
  orders, ``logistics_info[].tracking_no`` and ``sku_order_list[]`` (``sku_id``,
  ``product_name``, ``item_num``, ``origin_amount`` = 现价 × 件数, ``pay_amount`` =
  what the buyer paid for the sub-order, ``goods_price`` = unit list price); the unit
  price charged is ``pay_amount`` / ``item_num`` (``origin_amount`` without it).
* after-sale: the data of ``afterSale.Detail``: ``process_info.after_sale_info``
  (``after_sale_id``, ``after_sale_status``, ``refund_amount`` in fen, epoch-second
  ``apply_time`` / ``update_time``, ``reason`` — the label — and ``reason_remark``, the
  buyer's words) and ``order_info`` (``shop_order_id``, ``related_order_info[].sku_id``).
  Detected by ``process_info``.

Phones and names are hashed from their ciphertexts (stable per value within
Doudian); the masked phone gives the 3-digit prefix.

Status mapping rationale (``order_status``): 1 待确认/待支付 and 103 部分支付 →
created; 105 已支付 and 2 备货中 → paid; 101 部分发货 and 3 已发货 → shipped;
5 已完成 → completed; 4 已取消 → cancelled. Doudian documents no separate code for a
group-buy order waiting for its group (待成团) in ``order.orderDetail`` that we could
confirm, so none is mapped: such a code arriving is an ``UnknownStatusError`` to be
mapped deliberately, never a silent guess.

``after_sale_status``: 6 售后申请, 7 售后退货中, 11 售后已发货 (exchange sent), 13
换货/补寄 waiting for the buyer → refund_requested; 27 拒绝售后申请 and 29 退货后拒绝退款
→ refund_rejected; 12 售后成功, 51 订单取消成功 (refund before shipping) and 53 逆向交易
已完成 → refunded; 14 换货/补寄 received (resolved without money back) and 28 售后失败
(withdrawn or expired) → closed.

Webhook signing (``SIGNING``), as Doudian signs its message pushes (消息推送; the
``callback`` check of the Doudian SDK https://github.com/minibear2021/doudian,
``doudian/core.py``): headers ``app-id`` (the app key), ``event-sign`` and ``sign-method``
(``md5``, assumed when absent, or ``hmac-sha256``). ``event-sign`` is the lower-case hex
MD5 of app key + body + app secret, or for ``hmac-sha256`` the HMAC-SHA256 of that string
keyed with the app secret. Doudian's string carries no time, so a captured push would
verify forever: orderguard adds the header ``event-timestamp`` (unix seconds) and signs
app key + timestamp + body + app secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orderguard.ingest.channels.base import unknown_fields, validate
from orderguard.ingest.channels.kit import (
    Count,
    DocumentAdapter,
    Fen,
    Stamp,
    Text,
    classify_reason,
    first_text,
    frozen,
    has_key,
    hashed,
    make_event,
    positive,
    receiver_hash,
    unit_price,
)
from orderguard.ingest.channels.signing import (
    HMAC_SHA256_HEX,
    MD5_HEX,
    PushField,
    SignedParts,
    TimeFormat,
    WebhookSigning,
)
from orderguard.ingest.normalize import ParseContext, fen, map_status, parse_optional_time, parse_time, phone_from
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

CHANNEL = Channel.DOUYIN

ORDER_STATUS_CODES = frozen({
    "1": OrderStatus.CREATED,
    "103": OrderStatus.CREATED,
    "105": OrderStatus.PAID,
    "2": OrderStatus.PAID,
    "101": OrderStatus.SHIPPED,
    "3": OrderStatus.SHIPPED,
    "4": OrderStatus.CANCELLED,
    "5": OrderStatus.COMPLETED,
})

AFTER_SALE_STATUS_CODES = frozen({
    "6": OrderStatus.REFUND_REQUESTED,
    "7": OrderStatus.REFUND_REQUESTED,
    "11": OrderStatus.REFUND_REQUESTED,
    "13": OrderStatus.REFUND_REQUESTED,
    "27": OrderStatus.REFUND_REJECTED,
    "29": OrderStatus.REFUND_REJECTED,
    "12": OrderStatus.REFUNDED,
    "51": OrderStatus.REFUNDED,
    "53": OrderStatus.REFUNDED,
    "14": OrderStatus.CLOSED,
    "28": OrderStatus.CLOSED,
})

REQUIRED_FIELDS: tuple[str, ...] = (
    "order_id",
    "shop_id",
    "order_status",
    "doudian_open_id",
    "create_time",
    "update_time",
    "order_amount",
    "pay_amount",
    "sku_order_list",
    "sku_order_list.0.sku_id",
    "sku_order_list.0.product_name",
    "sku_order_list.0.item_num",
    "sku_order_list.0.origin_amount",
)


class DouyinArea(BaseModel):
    """``{"id": ..., "name": ...}`` of one address level."""

    model_config = ConfigDict(extra="allow")

    id: Text | None = None
    name: str = ""


class DouyinPostAddr(BaseModel):
    """``post_addr``: four address levels plus the (masked) street detail."""

    model_config = ConfigDict(extra="allow")

    province: DouyinArea
    city: DouyinArea
    town: DouyinArea | None = None
    street: DouyinArea | None = None
    detail: str = ""
    encrypt_detail: str | None = None


class DouyinUserIdInfo(BaseModel):
    """``user_id_info``: real-name data of cross-border orders, encrypted."""

    model_config = ConfigDict(extra="allow")

    id_card_no: str | None = None
    encrypt_id_card_no: str | None = None
    id_card_name: str | None = None
    encrypt_id_card_name: str | None = None


class DouyinLogistics(BaseModel):
    """One element of ``logistics_info``."""

    model_config = ConfigDict(extra="allow")

    tracking_no: str | None = None
    company: str | None = None
    company_name: str | None = None
    ship_time: Stamp | None = None


class DouyinSkuOrder(BaseModel):
    """One element of ``sku_order_list`` (a sub-order, one SKU)."""

    model_config = ConfigDict(extra="allow")

    order_id: Text | None = None
    parent_order_id: Text | None = None
    product_id: Text | None = None
    product_name: str
    sku_id: Text
    out_sku_id: str | None = None
    item_num: Count
    origin_amount: Fen
    goods_price: Fen | None = None
    pay_amount: Fen | None = None


class DouyinOrder(BaseModel):
    """``shop_order_detail`` of ``order.orderDetail``."""

    model_config = ConfigDict(extra="allow")

    order_id: Text
    shop_id: Text
    order_status: Text
    order_status_desc: str | None = None
    doudian_open_id: str
    create_time: Stamp
    update_time: Stamp
    pay_time: Stamp | None = None
    order_amount: Fen
    pay_amount: Fen
    post_amount: Fen = 0
    promotion_amount: Fen = 0
    buyer_words: str | None = None
    encrypt_post_tel: str | None = None
    mask_post_tel: str | None = None
    encrypt_post_receiver: str | None = None
    mask_post_receiver: str | None = None
    post_addr: DouyinPostAddr | None = None
    user_id_info: DouyinUserIdInfo | None = None
    logistics_info: list[DouyinLogistics] = Field(default_factory=list)
    sku_order_list: list[DouyinSkuOrder]


class DouyinAfterSaleInfo(BaseModel):
    """``process_info.after_sale_info``."""

    model_config = ConfigDict(extra="allow")

    after_sale_id: Text
    after_sale_status: Text
    after_sale_type: Count | None = None
    refund_amount: Fen
    apply_time: Stamp
    update_time: Stamp
    reason: str | None = None
    reason_code: Count | None = None
    reason_remark: str | None = None


class DouyinProcessInfo(BaseModel):
    """``process_info`` of ``afterSale.Detail``."""

    model_config = ConfigDict(extra="allow")

    after_sale_info: DouyinAfterSaleInfo


class DouyinRelatedOrder(BaseModel):
    """One element of ``order_info.related_order_info``."""

    model_config = ConfigDict(extra="allow")

    sku_order_id: Text | None = None
    product_id: Text | None = None
    sku_id: Text | None = None
    item_quantity: Count | None = None


class DouyinAfterSaleOrderInfo(BaseModel):
    """``order_info`` of ``afterSale.Detail``."""

    model_config = ConfigDict(extra="allow")

    shop_order_id: Text
    related_order_info: list[DouyinRelatedOrder] = Field(default_factory=list)


class DouyinAfterSale(BaseModel):
    """The data of ``afterSale.Detail``."""

    model_config = ConfigDict(extra="allow")

    process_info: DouyinProcessInfo
    order_info: DouyinAfterSaleOrderInfo


def parse(payload: Mapping[str, Any], *, ctx: ParseContext) -> OrderEvent:
    """Parse a Doudian order or after-sale document (see the module docstring)."""
    if has_key(payload, "process_info"):
        return _parse_after_sale(validate(DouyinAfterSale, payload), ctx)
    return _parse_order(validate(DouyinOrder, payload), ctx)


def _parse_order(doc: DouyinOrder, ctx: ParseContext) -> OrderEvent:
    status = map_status(ORDER_STATUS_CODES, doc.order_status, field="order_status")
    lines = []
    for i, sku in enumerate(doc.sku_order_list):
        path = f"sku_order_list.{i}"
        qty = positive(sku.item_num, field=f"{path}.item_num")
        # What the buyer paid for the sub-order, else its amount at the current price.
        origin = fen(sku.origin_amount, field=f"{path}.origin_amount")
        charged = origin if sku.pay_amount is None else fen(sku.pay_amount, field=f"{path}.pay_amount")
        lines.append(OrderLine(
            sku_id=sku.sku_id,
            qty=qty,
            unit_price_fen=unit_price(charged, qty),
            title=sku.product_name,
            list_price_fen=None if sku.goods_price is None else fen(sku.goods_price, field=f"{path}.goods_price"),
        ))
    address = None
    if doc.post_addr is not None:
        addr = doc.post_addr
        street = addr.street.name if addr.street is not None else ""
        address = Address(
            province=addr.province.name,
            city=addr.city.name,
            district=addr.town.name if addr.town is not None else "",
            detail=(street + addr.detail).strip(),
            receiver_name_hash=receiver_hash(ctx.hasher, token=doc.encrypt_post_receiver,
                                             name=doc.mask_post_receiver),
        )
    id_info = doc.user_id_info
    details = OrderDetails(
        shop_id=doc.shop_id,
        created_at=parse_time(doc.create_time, field="create_time"),
        buyer=Party(
            account_id=doc.doudian_open_id,
            phone=phone_from(doc.mask_post_tel, hasher=ctx.hasher, encrypted_token=doc.encrypt_post_tel),
            id_card_hash=hashed(ctx.hasher, "id_card-token", id_info.encrypt_id_card_no) if id_info else None,
        ),
        lines=tuple(lines),
        amounts=Amounts(
            goods_fen=fen(doc.order_amount, field="order_amount"),
            paid_fen=fen(doc.pay_amount, field="pay_amount"),
            shipping_fen=fen(doc.post_amount, field="post_amount"),
            discount_fen=fen(doc.promotion_amount, field="promotion_amount"),
        ),
        address=address,
        paid_at=parse_optional_time(doc.pay_time, field="pay_time"),
        buyer_message=doc.buyer_words or "",
        tracking_no=first_text(log.tracking_no for log in doc.logistics_info),
    )
    return make_event(
        channel=CHANNEL, order_id=doc.order_id, kind=EventKind.ORDER, status=status,
        channel_status=doc.order_status, event_time=parse_time(doc.update_time, field="update_time"), ctx=ctx,
        raw=unknown_fields(doc), details=details,
    )


def _parse_after_sale(doc: DouyinAfterSale, ctx: ParseContext) -> OrderEvent:
    info = doc.process_info.after_sale_info
    path = "process_info.after_sale_info"
    status = map_status(AFTER_SALE_STATUS_CODES, info.after_sale_status, field=f"{path}.after_sale_status")
    refund = Refund(
        refund_id=info.after_sale_id,
        reason=classify_reason(info.reason),
        amount_fen=fen(info.refund_amount, field=f"{path}.refund_amount"),
        requested_at=parse_time(info.apply_time, field=f"{path}.apply_time"),
        reason_text=info.reason_remark or info.reason or "",
        sku_id=first_text(o.sku_id for o in doc.order_info.related_order_info),
    )
    return make_event(
        channel=CHANNEL, order_id=doc.order_info.shop_order_id, kind=EventKind.AFTER_SALE, status=status,
        channel_status=info.after_sale_status, event_time=parse_time(info.update_time, field=f"{path}.update_time"),
        ctx=ctx, raw=unknown_fields(doc), refund=refund,
    )


def _doudian_message(parts: SignedParts) -> bytes:
    """Doudian's signed string with the push time added: app key + timestamp + body + secret."""
    return parts.app_key.encode() + parts.timestamp.encode() + parts.body + parts.secret


SIGNING = WebhookSigning(
    platform="Doudian (抖店) message push",
    source="the Doudian SDK's push check, https://github.com/minibear2021/doudian (doudian/core.py, callback)",
    signature=PushField("event-sign", "header", "the signature, lower-case hex"),
    timestamp=PushField("event-timestamp", "header", "when the push was signed, unix seconds (added by orderguard)"),
    time_format=TimeFormat.UNIX_SECONDS,
    method=PushField("sign-method", "header", "`md5` (assumed when absent) or `hmac-sha256`"),
    implicit_method="md5",
    app_key=PushField("app-id", "header", "the shop's Doudian app key"),
    digests={"md5": MD5_HEX, "hmac-sha256": HMAC_SHA256_HEX},
    default_method="hmac-sha256",
    message=_doudian_message,
    formula="`event-sign` = lower-case hex MD5(app-id + event-timestamp + body + secret) (`hmac-sha256`: "
            "HMAC-SHA256 keyed with the secret over the same string).",
    note="Doudian signs app key + body + secret; orderguard adds `event-timestamp` to the signed string so that "
         "a captured push cannot be replayed later.",
)


ADAPTER = DocumentAdapter(
    channel=CHANNEL,
    order_status_codes=ORDER_STATUS_CODES,
    after_sale_status_codes=AFTER_SALE_STATUS_CODES,
    required_fields=REQUIRED_FIELDS,
    order_status_field="order_status",
    after_sale_status_field="process_info.after_sale_info.after_sale_status",
    time_resolution=timedelta(seconds=1),
    parse_fn=lambda payload, ctx: parse(payload, ctx=ctx),
    signing=SIGNING,
)
