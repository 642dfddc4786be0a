"""Kuaishou shop (快手小店) adapter, modelled on the Kuaishou merchant open platform.

Documents:

* order: the data of ``open.order.detail``: ``orderBaseInfo`` (``oid``, ``status``,
  ``buyerOpenId``, ``sellerOpenId`` — the shop —, epoch-millisecond ``createTime`` /
  ``updateTime`` / ``payTime`` (0 until paid), fen amounts ``totalFee`` (paid),
  ``expressFee``, ``discountFee``, and ``remark``, the buyer's note), ``orderItemInfo``
  (one SKU: ``skuId``, ``itemTitle``, ``num``, ``price`` — unit price charged — and
  ``originalPrice``), ``orderAddress`` (``province`` / ``city`` / ``district`` /
  ``town``, ``address`` or ``desensitiseAddress``, ``encryptedMobile`` +
  ``desensitiseMobile``, ``encryptedConsignee`` + ``desensitiseConsignee``) and
  ``orderLogisticsInfo[].expressNo``.
* after-sale: the data of ``open.seller.order.refund.detail``: ``refundId``, ``oid``,
  ``skuId``, ``status``, ``refundFee`` (fen), ``refundReasonDesc`` (the label of the
  buyer's ``refundReason`` code), ``refundDesc`` (their words), epoch-millisecond
  ``createTime`` / ``updateTime``. Detected by ``refundId``.

Kuaishou orders carry exactly one SKU (a multi-item cart becomes several orders), and
no order-level goods total: goods = ``price`` × ``num``. ``discountFee`` covers every
reduction, coupons included, so ``coupon_fen`` is always 0 here.

Status mapping rationale (``orderBaseInfo.status``): 10 待付款 → created; 30 已付款 →
paid; 40 已发货 → shipped; 50 已签收 → delivered; 70 订单成功 → completed; 80 订单失败
(closed unpaid or cancelled) → cancelled. 0 (未知状态) is deliberately unmapped: an
unknown state must not be guessed. No group-buy waiting code is documented for
``open.order.detail``.

Refund ``status``: 10 买家仅退款申请, 11 买家退货退款申请, 20 / 21 / 22 平台介入,
30 商品回寄信息待买家更新, 40 商品回寄信息待卖家确认, 50 退款执行中 → refund_requested;
60 退款成功 → refunded; 70 退款失败 (refused or abandoned) → refund_rejected.

Webhook signing (``SIGNING``), as the Kuaishou merchant open platform signs every call
(签名规则, https://open.kwaixiaodian.com/docs/dev?pageSign=8cca5d25ba0015e5045a7ebec6383b741614263875756;
``generateSign`` of https://github.com/crywolfx/kuaishou-merchant-open-api): query
parameters ``appkey``, ``timestamp`` (unix milliseconds), ``signMethod``
(``HMAC_SHA256`` or ``MD5``) and ``sign``. Every parameter but ``sign``, sorted by name, is
joined as ``name=value`` with ``&``, then ``&signSecret=<sign secret>`` is appended;
``sign`` is the base64 HMAC-SHA256 of that string keyed with the sign secret, or for
``MD5`` its lower-case hex MD5. Kuaishou carries a call's business data in the parameter
``param``; a push's raw body takes that place, so it is signed (else it could be swapped).
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
)
from orderguard.ingest.channels.signing import (
    HMAC_SHA256_BASE64,
    MD5_HEX,
    PushField,
    SignedParts,
    TimeFormat,
    WebhookSigning,
    concat_sorted,
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

CHANNEL = Channel.KUAISHOU

ORDER_STATUS_CODES = frozen({
    "10": OrderStatus.CREATED,
    "30": OrderStatus.PAID,
    "40": OrderStatus.SHIPPED,
    "50": OrderStatus.DELIVERED,
    "70": OrderStatus.COMPLETED,
    "80": OrderStatus.CANCELLED,
})

AFTER_SALE_STATUS_CODES = frozen({
    "10": OrderStatus.REFUND_REQUESTED,
    "11": OrderStatus.REFUND_REQUESTED,
    "20": OrderStatus.REFUND_REQUESTED,
    "21": OrderStatus.REFUND_REQUESTED,
    "22": OrderStatus.REFUND_REQUESTED,
    "30": OrderStatus.REFUND_REQUESTED,
    "40": OrderStatus.REFUND_REQUESTED,
    "50": OrderStatus.REFUND_REQUESTED,
    "60": OrderStatus.REFUNDED,
    "70": OrderStatus.REFUND_REJECTED,
})

REQUIRED_FIELDS: tuple[str, ...] = (
    "orderBaseInfo",
    "orderBaseInfo.oid",
    "orderBaseInfo.status",
    "orderBaseInfo.buyerOpenId",
    "orderBaseInfo.sellerOpenId",
    "orderBaseInfo.createTime",
    "orderBaseInfo.updateTime",
    "orderBaseInfo.totalFee",
    "orderItemInfo",
    "orderItemInfo.skuId",
    "orderItemInfo.itemTitle",
    "orderItemInfo.num",
    "orderItemInfo.price",
)


class KsBaseInfo(BaseModel):
    """``orderBaseInfo``."""

    model_config = ConfigDict(extra="allow")

    oid: Text
    status: Text
    buyer_open_id: str = Field(alias="buyerOpenId")
    buyer_nick: str | None = Field(default=None, alias="buyerNick")
    seller_open_id: str = Field(alias="sellerOpenId")
    create_time: Stamp = Field(alias="createTime")
    update_time: Stamp = Field(alias="updateTime")
    pay_time: Stamp | None = Field(default=None, alias="payTime")
    send_time: Stamp | None = Field(default=None, alias="sendTime")
    total_fee: Fen = Field(alias="totalFee")
    express_fee: Fen = Field(default=0, alias="expressFee")
    discount_fee: Fen = Field(default=0, alias="discountFee")
    remark: str | None = None


class KsItemInfo(BaseModel):
    """``orderItemInfo``: the order's single SKU."""

    model_config = ConfigDict(extra="allow")

    sku_id: Text = Field(alias="skuId")
    rel_sku_id: Text | None = Field(default=None, alias="relSkuId")
    sku_desc: str | None = Field(default=None, alias="skuDesc")
    item_id: Text | None = Field(default=None, alias="itemId")
    item_title: str = Field(alias="itemTitle")
    num: Count
    price: Fen
    original_price: Fen | None = Field(default=None, alias="originalPrice")
    discount_fee: Fen | None = Field(default=None, alias="discountFee")


class KsAddress(BaseModel):
    """``orderAddress``: encrypted and desensitised receiver data."""

    model_config = ConfigDict(extra="allow")

    consignee: str | None = None
    mobile: str | None = None
    encrypted_consignee: str | None = Field(default=None, alias="encryptedConsignee")
    desensitise_consignee: str | None = Field(default=None, alias="desensitiseConsignee")
    encrypted_mobile: str | None = Field(default=None, alias="encryptedMobile")
    desensitise_mobile: str | None = Field(default=None, alias="desensitiseMobile")
    province: str | None = None
    province_code: Text | None = Field(default=None, alias="provinceCode")
    city: str | None = None
    city_code: Text | None = Field(default=None, alias="cityCode")
    district: str | None = None
    district_code: Text | None = Field(default=None, alias="districtCode")
    town: str | None = None
    address: str | None = None
    encrypted_address: str | None = Field(default=None, alias="encryptedAddress")
    desensitise_address: str | None = Field(default=None, alias="desensitiseAddress")


class KsLogistics(BaseModel):
    """One element of ``orderLogisticsInfo``."""

    model_config = ConfigDict(extra="allow")

    express_no: str | None = Field(default=None, alias="expressNo")
    express_code: Count | None = Field(default=None, alias="expressCode")


class KsOrder(BaseModel):
    """The data of ``open.order.detail``."""

    model_config = ConfigDict(extra="allow")

    order_base_info: KsBaseInfo = Field(alias="orderBaseInfo")
    order_item_info: KsItemInfo = Field(alias="orderItemInfo")
    order_address: KsAddress | None = Field(default=None, alias="orderAddress")
    order_logistics_info: list[KsLogistics] = Field(default_factory=list, alias="orderLogisticsInfo")


class KsRefund(BaseModel):
    """The data of ``open.seller.order.refund.detail``."""

    model_config = ConfigDict(extra="allow")

    refund_id: Text = Field(alias="refundId")
    oid: Text
    sku_id: Text | None = Field(default=None, alias="skuId")
    status: Text
    refund_fee: Fen = Field(alias="refundFee")
    refund_reason: Count | None = Field(default=None, alias="refundReason")
    refund_reason_desc: str | None = Field(default=None, alias="refundReasonDesc")
    refund_desc: str | None = Field(default=None, alias="refundDesc")
    refund_type: Count | None = Field(default=None, alias="refundType")
    buyer_open_id: str | None = Field(default=None, alias="buyerOpenId")
    create_time: Stamp = Field(alias="createTime")
    update_time: Stamp = Field(alias="updateTime")


def parse(payload: Mapping[str, Any], *, ctx: ParseContext) -> OrderEvent:
    """Parse a Kuaishou order or refund document (see the module docstring)."""
    if has_key(payload, "refundId"):
        return _parse_refund(validate(KsRefund, payload), ctx)
    return _parse_order(validate(KsOrder, payload), ctx)


def _parse_order(doc: KsOrder, ctx: ParseContext) -> OrderEvent:
    base = doc.order_base_info
    item = doc.order_item_info
    status = map_status(ORDER_STATUS_CODES, base.status, field="orderBaseInfo.status")
    qty = positive(item.num, field="orderItemInfo.num")
    price = fen(item.price, field="orderItemInfo.price")
    line = OrderLine(
        sku_id=item.sku_id,
        qty=qty,
        unit_price_fen=price,
        title=item.item_title,
        list_price_fen=None if item.original_price is None else fen(item.original_price,
                                                                     field="orderItemInfo.originalPrice"),
    )
    addr = doc.order_address
    phone = None
    address = None
    if addr is not None:
        phone = phone_from(addr.desensitise_mobile or addr.mobile, hasher=ctx.hasher,
                           encrypted_token=addr.encrypted_mobile)
        if addr.province:
            address = Address(
                province=addr.province,
                city=addr.city or "",
                district=addr.district or "",
                detail=((addr.town or "") + (addr.address or addr.desensitise_address or "")).strip(),
                receiver_name_hash=receiver_hash(ctx.hasher, token=addr.encrypted_consignee,
                                                 name=addr.desensitise_consignee or addr.consignee),
            )
    details = OrderDetails(
        shop_id=base.seller_open_id,
        created_at=parse_time(base.create_time, field="orderBaseInfo.createTime"),
        buyer=Party(account_id=base.buyer_open_id, phone=phone),
        lines=(line,),
        amounts=Amounts(
            goods_fen=price * qty,
            paid_fen=fen(base.total_fee, field="orderBaseInfo.totalFee"),
            shipping_fen=fen(base.express_fee, field="orderBaseInfo.expressFee"),
            discount_fen=fen(base.discount_fee, field="orderBaseInfo.discountFee"),
        ),
        address=address,
        paid_at=parse_optional_time(base.pay_time, field="orderBaseInfo.payTime"),
        buyer_message=base.remark or "",
        tracking_no=first_text(log.express_no for log in doc.order_logistics_info),
    )
    return make_event(
        channel=CHANNEL, order_id=base.oid, kind=EventKind.ORDER, status=status, channel_status=base.status,
        event_time=parse_time(base.update_time, field="orderBaseInfo.updateTime"), ctx=ctx,
        raw=unknown_fields(doc), details=details,
    )


def _parse_refund(doc: KsRefund, ctx: ParseContext) -> OrderEvent:
    status = map_status(AFTER_SALE_STATUS_CODES, doc.status, field="status")
    refund = Refund(
        refund_id=doc.refund_id,
        reason=classify_reason(doc.refund_reason_desc),
        amount_fen=fen(doc.refund_fee, field="refundFee"),
        requested_at=parse_time(doc.create_time, field="createTime"),
        reason_text=doc.refund_desc or doc.refund_reason_desc or "",
        sku_id=doc.sku_id,
    )
    return make_event(
        channel=CHANNEL, order_id=doc.oid, kind=EventKind.AFTER_SALE, status=status, channel_status=doc.status,
        event_time=parse_time(doc.update_time, field="updateTime"), ctx=ctx, raw=unknown_fields(doc),
        refund=refund,
    )


def _kuaishou_message(parts: SignedParts) -> bytes:
    """Kuaishou's signed string: ``k=v`` pairs with the body as ``param``, sorted, ``&``-joined, + signSecret."""
    pairs = concat_sorted({**parts.params, "param": parts.body}, pair=b"=", between=b"&")
    return pairs + b"&signSecret=" + parts.secret


SIGNING = WebhookSigning(
    platform="Kuaishou merchant open platform",
    source="快手开放平台 签名规则 (https://open.kwaixiaodian.com/docs/dev?"
           "pageSign=8cca5d25ba0015e5045a7ebec6383b741614263875756; generateSign of "
           "https://github.com/crywolfx/kuaishou-merchant-open-api)",
    signature=PushField("sign", "query", "the signature, base64 (`MD5`: lower-case hex)"),
    timestamp=PushField("timestamp", "query", "when the push was signed, unix milliseconds"),
    time_format=TimeFormat.UNIX_MILLIS,
    method=PushField("signMethod", "query", "`HMAC_SHA256` or `MD5`"),
    app_key=PushField("appkey", "query", "the shop's Kuaishou app key"),
    digests={"HMAC_SHA256": HMAC_SHA256_BASE64, "MD5": MD5_HEX},
    default_method="HMAC_SHA256",
    signs_query=True,
    message=_kuaishou_message,
    formula="`sign` = base64 HMAC-SHA256(secret, k1=v1&k2=v2…&signSecret=secret) over every query parameter but "
            "`sign` plus `param` = the raw body, sorted by name (`MD5`: lower-case hex MD5 of the same string).",
    note="Any other query parameter (`atomic`) is signed too, so add it before signing.",
)


ADAPTER = DocumentAdapter(
    channel=CHANNEL,
    order_status_codes=ORDER_STATUS_CODES,
    after_sale_status_codes=AFTER_SALE_STATUS_CODES,
    required_fields=REQUIRED_FIELDS,
    order_status_field="orderBaseInfo.status",
    after_sale_status_field="status",
    time_resolution=timedelta(milliseconds=1),
    parse_fn=lambda payload, ctx: parse(payload, ctx=ctx),
    signing=SIGNING,
)
