"""WeChat Channels shop (视频号小店) adapter, modelled on the ``channels/ec`` API.

Documents:

* order: the ``order`` object of ``order/get``: ``order_id``, ``status`` (integer),
  ``openid`` (the buyer), epoch-second ``create_time`` / ``update_time``,
  ``order_detail.product_infos[]`` (``product_id``, ``sku_id``, ``title``, ``sku_cnt``,
  ``sale_price`` — unit selling price in fen —, ``real_price`` — what the buyer paid
  for the line, so the unit price charged is ``real_price`` / ``sku_cnt`` —,
  ``market_price``), ``order_detail.price_info``
  (fen: ``product_price`` goods, ``order_price`` paid, ``freight``,
  ``discounted_price``), ``order_detail.pay_info.pay_time``,
  ``order_detail.delivery_info.address_info`` (``user_name``, ``province_name``,
  ``city_name``, ``county_name``, ``detail_info``, ``tel_number`` — masked when the
  platform hides the number —, ``virtual_order_tel_number`` for virtual goods and
  ``hash_code``, the platform's stable identity of this receiver within the shop),
  ``delivery_product_info[].waybill_id``, ``order_detail.coupon_info.user_coupon_id``
  and ``order_detail.ext_info.customer_notes``.
* after-sale: the ``after_sale_order`` of ``aftersale/getaftersaleorder``:
  ``after_sale_order_id``, ``order_id``, ``status`` (string enum), ``refund_info.amount``
  (fen), ``product_info.sku_id``, epoch-second ``create_time`` / ``update_time``,
  ``reason`` (enum) with ``reason_text`` and the buyer's ``details.desc``. Detected by
  ``after_sale_order_id``.

The API response carries no shop field (the shop is the app whose token fetched it):
the ingest edge adds the shop's ``appid`` to the document; it is optional here and
the shop id is empty without it.

The phone: ``hash_code`` is used as the encrypted token (stable per receiver within
the shop); the masked ``tel_number`` gives the prefix. ``user_name`` is clear and
hashed.

Status mapping rationale (order ``status``): 10 待付款 → created; 12 礼物待收下 (a paid
gift waiting for the receiver to accept) and 20 待发货 → paid; 13 凑单买 voucher
waiting for the group to fill → awaiting_group; 21 部分发货 and 30 待收货 → shipped;
100 完成 → completed; 200 (cancelled after every item was refunded) → refunded;
250 (cancelled unpaid or by timeout) → cancelled.

After-sale ``status``: ``MERCHANT_PROCESSING``, ``USER_WAIT_RETURN``,
``MERCHANT_WAIT_RECEIPT``, ``MERCHANT_OVERDUE_REFUND``, ``PLATFORM_REFUNDING``,
``PLATFORM_REFUND_FAIL`` (to be retried), ``USER_WAIT_CONFIRM``,
``USER_WAIT_CONFIRM_UPDATE``, ``USER_WAIT_HANDLE_MERCHANT_AFTER_SALE`` →
refund_requested; ``MERCHANT_REJECT_REFUND``, ``MERCHANT_REJECT_RETURN`` →
refund_rejected; ``MERCHANT_REFUND_SUCCESS``, ``MERCHANT_RETURN_SUCCESS`` → refunded;
``USER_CANCELD`` (sic), ``RETURN_CLOSED``, ``MERCHANT_REFUND_RETRY_FAIL``,
``MERCHANT_FAIL`` → closed.

Reasons: ``INCORRECT_SELECTION`` (拍错) and ``NO_LONGER_NEED`` (不想要了) are no-reason
returns; any other ``reason`` is classified from ``reason_text``.

Webhook signing (``SIGNING``), as WeChat signs the pushes of its message-encryption mode
(消息加解密 ``msg_signature``, the official WXBizMsgCrypt samples, e.g.
https://www.rubydoc.info/gems/wechat-callback/Wechat/Callback/MessageSignature; their
published vector — token ``QDG6eK``, timestamp ``1409659589``, nonce ``263014780`` — is the
contract suite's known answer): query parameters ``timestamp`` (unix seconds), ``nonce``
and ``msg_signature`` = lower-case hex SHA-1 of the token (the shop's webhook secret), the
timestamp, the nonce and the message, sorted as strings and concatenated. WeChat signs
the encrypted ``Encrypt`` text; orderguard takes pushes in clear, so the raw body is the
signed message.
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
    make_event,
    positive,
    receiver_hash,
    unit_price,
)
from orderguard.ingest.channels.signing import (
    SHA1_HEX,
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
    RefundReason,
)

CHANNEL = Channel.WECHAT

ORDER_STATUS_CODES = frozen({
    "10": OrderStatus.CREATED,
    "12": OrderStatus.PAID,
    "13": OrderStatus.AWAITING_GROUP,
    "20": OrderStatus.PAID,
    "21": OrderStatus.SHIPPED,
    "30": OrderStatus.SHIPPED,
    "100": OrderStatus.COMPLETED,
    "200": OrderStatus.REFUNDED,
    "250": OrderStatus.CANCELLED,
})

AFTER_SALE_STATUS_CODES = frozen({
    "MERCHANT_PROCESSING": OrderStatus.REFUND_REQUESTED,
    "USER_WAIT_RETURN": OrderStatus.REFUND_REQUESTED,
    "MERCHANT_WAIT_RECEIPT": OrderStatus.REFUND_REQUESTED,
    "MERCHANT_OVERDUE_REFUND": OrderStatus.REFUND_REQUESTED,
    "PLATFORM_REFUNDING": OrderStatus.REFUND_REQUESTED,
    "PLATFORM_REFUND_FAIL": OrderStatus.REFUND_REQUESTED,
    "USER_WAIT_CONFIRM": OrderStatus.REFUND_REQUESTED,
    "USER_WAIT_CONFIRM_UPDATE": OrderStatus.REFUND_REQUESTED,
    "USER_WAIT_HANDLE_MERCHANT_AFTER_SALE": OrderStatus.REFUND_REQUESTED,
    "MERCHANT_REJECT_REFUND": OrderStatus.REFUND_REJECTED,
    "MERCHANT_REJECT_RETURN": OrderStatus.REFUND_REJECTED,
    "MERCHANT_REFUND_SUCCESS": OrderStatus.REFUNDED,
    "MERCHANT_RETURN_SUCCESS": OrderStatus.REFUNDED,
    "USER_CANCELD": OrderStatus.CLOSED,
    "RETURN_CLOSED": OrderStatus.CLOSED,
    "MERCHANT_REFUND_RETRY_FAIL": OrderStatus.CLOSED,
    "MERCHANT_FAIL": OrderStatus.CLOSED,
})

#: ``reason`` enum values that mean a no-reason return.
NO_REASON_CODES = frozenset({"INCORRECT_SELECTION", "NO_LONGER_NEED"})

REQUIRED_FIELDS: tuple[str, ...] = (
    "order_id",
    "status",
    "openid",
    "create_time",
    "update_time",
    "order_detail",
    "order_detail.product_infos",
    "order_detail.product_infos.0.sku_id",
    "order_detail.product_infos.0.title",
    "order_detail.product_infos.0.sku_cnt",
    "order_detail.product_infos.0.sale_price",
    "order_detail.price_info",
    "order_detail.price_info.product_price",
    "order_detail.price_info.order_price",
)


class WxProduct(BaseModel):
    """One element of ``order_detail.product_infos``."""

    model_config = ConfigDict(extra="allow")

    product_id: Text | None = None
    sku_id: Text
    title: str
    sku_cnt: Count
    sale_price: Fen
    market_price: Fen | None = None
    real_price: Fen | None = None
    sku_code: str | None = None


class WxPriceInfo(BaseModel):
    """``order_detail.price_info`` (fen)."""

    model_config = ConfigDict(extra="allow")

    product_price: Fen
    order_price: Fen
    freight: Fen = 0
    discounted_price: Fen = 0
    is_discounted: bool | None = None


class WxPayInfo(BaseModel):
    """``order_detail.pay_info``."""

    model_config = ConfigDict(extra="allow")

    pay_time: Stamp | None = None
    prepay_time: Stamp | None = None
    transaction_id: str | None = None


class WxAddressInfo(BaseModel):
    """``order_detail.delivery_info.address_info``."""

    model_config = ConfigDict(extra="allow")

    user_name: str | None = None
    postal_code: str | None = None
    province_name: str | None = None
    city_name: str | None = None
    county_name: str | None = None
    detail_info: str | None = None
    house_number: str | None = None
    tel_number: str | None = None
    virtual_order_tel_number: str | None = None
    use_tel_number: Count | None = None
    hash_code: str | None = None


class WxDeliveryProduct(BaseModel):
    """One element of ``delivery_info.delivery_product_info``."""

    model_config = ConfigDict(extra="allow")

    waybill_id: str | None = None
    delivery_id: str | None = None


class WxDeliveryInfo(BaseModel):
    """``order_detail.delivery_info``."""

    model_config = ConfigDict(extra="allow")

    address_info: WxAddressInfo | None = None
    delivery_product_info: list[WxDeliveryProduct] = Field(default_factory=list)
    ship_done_time: Stamp | None = None
    deliver_method: Count | None = None


class WxCouponInfo(BaseModel):
    """``order_detail.coupon_info``."""

    model_config = ConfigDict(extra="allow")

    user_coupon_id: Text | None = None


class WxExtInfo(BaseModel):
    """``order_detail.ext_info``."""

    model_config = ConfigDict(extra="allow")

    customer_notes: str | None = None
    merchant_notes: str | None = None


class WxOrderDetail(BaseModel):
    """``order.order_detail``."""

    model_config = ConfigDict(extra="allow")

    product_infos: list[WxProduct]
    price_info: WxPriceInfo
    pay_info: WxPayInfo | None = None
    delivery_info: WxDeliveryInfo | None = None
    coupon_info: WxCouponInfo | None = None
    ext_info: WxExtInfo | None = None


class WxOrder(BaseModel):
    """The ``order`` of ``order/get``."""

    model_config = ConfigDict(extra="allow")

    order_id: Text
    status: Text
    openid: str
    unionid: str | None = None
    appid: str | None = None
    create_time: Stamp
    update_time: Stamp
    order_detail: WxOrderDetail


class WxAfterSaleProduct(BaseModel):
    """``after_sale_order.product_info``."""

    model_config = ConfigDict(extra="allow")

    product_id: Text | None = None
    sku_id: Text | None = None
    count: Count | None = None


class WxRefundInfo(BaseModel):
    """``after_sale_order.refund_info`` (fen)."""

    model_config = ConfigDict(extra="allow")

    amount: Fen


class WxAfterSaleDetails(BaseModel):
    """``after_sale_order.details``: what the buyer wrote."""

    model_config = ConfigDict(extra="allow")

    desc: str | None = None
    receive_product: bool | None = None


class WxAfterSale(BaseModel):
    """The ``after_sale_order`` of ``aftersale/getaftersaleorder``."""

    model_config = ConfigDict(extra="allow")

    after_sale_order_id: Text
    order_id: Text
    status: Text
    openid: str | None = None
    product_info: WxAfterSaleProduct | None = None
    refund_info: WxRefundInfo
    details: WxAfterSaleDetails | None = None
    reason: str | None = None
    reason_text: str | None = None
    type: str | None = None
    create_time: Stamp
    update_time: Stamp


def parse(payload: Mapping[str, Any], *, ctx: ParseContext) -> OrderEvent:
    """Parse a Channels-shop order or after-sale document (see the module docstring)."""
    if has_key(payload, "after_sale_order_id"):
        return _parse_after_sale(validate(WxAfterSale, payload), ctx)
    return _parse_order(validate(WxOrder, payload), ctx)


def _charged(product: WxProduct, index: int) -> int:
    """Unit price actually charged: ``real_price`` (line total paid) / count, else ``sale_price``."""
    path = f"order_detail.product_infos.{index}"
    sale = fen(product.sale_price, field=f"{path}.sale_price")
    if product.real_price is None:
        return sale
    return unit_price(fen(product.real_price, field=f"{path}.real_price"), max(product.sku_cnt, 1))


def _parse_order(doc: WxOrder, ctx: ParseContext) -> OrderEvent:
    status = map_status(ORDER_STATUS_CODES, doc.status, field="status")
    detail = doc.order_detail
    lines = tuple(
        OrderLine(
            sku_id=p.sku_id,
            qty=positive(p.sku_cnt, field=f"order_detail.product_infos.{i}.sku_cnt"),
            unit_price_fen=_charged(p, i),
            title=p.title,
            list_price_fen=None if p.market_price is None else fen(
                p.market_price, field=f"order_detail.product_infos.{i}.market_price"),
        )
        for i, p in enumerate(detail.product_infos)
    )
    price = detail.price_info
    delivery = detail.delivery_info
    info = delivery.address_info if delivery is not None else None
    phone = None
    address = None
    if info is not None:
        phone = phone_from(info.tel_number or info.virtual_order_tel_number, hasher=ctx.hasher,
                           encrypted_token=info.hash_code)
        if info.province_name:
            address = Address(
                province=info.province_name,
                city=info.city_name or "",
                district=info.county_name or "",
                detail=((info.detail_info or "") + (info.house_number or "")).strip(),
                receiver_name_hash=receiver_hash(ctx.hasher, token=None, name=info.user_name),
            )
    pay_time = detail.pay_info.pay_time if detail.pay_info is not None else None
    coupon = detail.coupon_info.user_coupon_id if detail.coupon_info is not None else None
    details = OrderDetails(
        shop_id=doc.appid or "",
        created_at=parse_time(doc.create_time, field="create_time"),
        buyer=Party(account_id=doc.openid, phone=phone),
        lines=lines,
        amounts=Amounts(
            goods_fen=fen(price.product_price, field="order_detail.price_info.product_price"),
            paid_fen=fen(price.order_price, field="order_detail.price_info.order_price"),
            shipping_fen=fen(price.freight, field="order_detail.price_info.freight"),
            discount_fen=fen(price.discounted_price, field="order_detail.price_info.discounted_price"),
        ),
        address=address,
        paid_at=parse_optional_time(pay_time, field="order_detail.pay_info.pay_time"),
        coupon_ids=(coupon,) if coupon else (),
        buyer_message=(detail.ext_info.customer_notes or "") if detail.ext_info is not None else "",
        tracking_no=first_text(p.waybill_id for p in delivery.delivery_product_info) if delivery else None,
    )
    return make_event(
        channel=CHANNEL, order_id=doc.order_id, kind=EventKind.ORDER, status=status, channel_status=doc.status,
        event_time=parse_time(doc.update_time, field="update_time"), ctx=ctx, raw=unknown_fields(doc),
        details=details,
    )


def _parse_after_sale(doc: WxAfterSale, ctx: ParseContext) -> OrderEvent:
    status = map_status(AFTER_SALE_STATUS_CODES, doc.status, field="status")
    reason = RefundReason.NO_REASON if doc.reason in NO_REASON_CODES else classify_reason(doc.reason_text)
    buyer_words = doc.details.desc if doc.details is not None else None
    refund = Refund(
        refund_id=doc.after_sale_order_id,
        reason=reason,
        amount_fen=fen(doc.refund_info.amount, field="refund_info.amount"),
        requested_at=parse_time(doc.create_time, field="create_time"),
        reason_text=buyer_words or doc.reason_text or "",
        sku_id=doc.product_info.sku_id if doc.product_info is not None else None,
    )
    return make_event(
        channel=CHANNEL, order_id=doc.order_id, kind=EventKind.AFTER_SALE, status=status, channel_status=doc.status,
        event_time=parse_time(doc.update_time, field="update_time"), ctx=ctx, raw=unknown_fields(doc),
        refund=refund,
    )


def _wechat_message(parts: SignedParts) -> bytes:
    """WeChat's signed string: token, timestamp, nonce and message, sorted and concatenated."""
    return b"".join(sorted([parts.secret, parts.timestamp.encode(), parts.nonce.encode(), parts.body]))


SIGNING = WebhookSigning(
    platform="WeChat (msg_signature)",
    source="WeChat 消息加解密 msg_signature = sha1(sort(token, timestamp, nonce, msg)) "
           "(https://www.rubydoc.info/gems/wechat-callback/Wechat/Callback/MessageSignature)",
    signature=PushField("msg_signature", "query", "the signature, lower-case hex"),
    timestamp=PushField("timestamp", "query", "when the push was signed, unix seconds"),
    time_format=TimeFormat.UNIX_SECONDS,
    nonce=PushField("nonce", "query", "a random string"),
    digests={"sha1": SHA1_HEX},
    default_method="sha1",
    message=_wechat_message,
    formula="`msg_signature` = lower-case hex SHA-1 of the secret (WeChat's token), `timestamp`, `nonce` and the "
            "raw body, sorted and concatenated.",
    note="WeChat signs the encrypted `Encrypt` text; orderguard takes pushes in clear, so the body is signed.",
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
