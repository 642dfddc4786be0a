"""JD POP adapter, modelled on the JD open platform order and refund APIs.

Documents:

* order: the ``orderInfo`` returned by ``jingdong.pop.order.enGet`` (the same
  ``OrderSearchInfo`` shape as ``jingdong.pop.order.enSearch``): ``orderId``,
  ``venderId`` (the shop), ``orderState``, ``open_id_buyer`` (the buyer; ``pin`` is
  encrypted and not used), yuan strings ``orderTotalPrice`` (goods), ``orderPayment``
  (paid), ``freightPrice``, ``sellerDiscount``, ``couponDetailList[].couponPrice``;
  Beijing-time strings ``orderStartTime``, ``modified``, ``paymentConfirmTime``;
  ``consigneeInfo`` (``province`` / ``city`` / ``county`` / ``town``, ``fullAddress``,
  ``fullname``, ``mobile``, ``desen_mobile``); ``itemInfoList[]`` (``skuId``,
  ``skuName``, ``jdPrice`` — the unit price charged —, ``itemTotal`` — the quantity,
  sent as a digit string); ``orderRemark`` (buyer's note); ``waybill``.
* after-sale: a refund application (``RefundApplyVo``) of
  ``jingdong.pop.afs.soa.refundapply.queryById``: ``id``, ``orderId``, ``buyerId``,
  ``status`` (integer), ``applyRefundSum`` (in fen), ``applyTime`` / ``checkTime``,
  ``reason`` (the reason the buyer picked) and ``questionDesc`` (their words).
  Detected by ``applyRefundSum``. ``checkTime`` is the last change; before the first
  review only ``applyTime`` exists.

Privacy: since JD's 2021 encryption ``consigneeInfo.mobile`` / ``telephone`` /
``fullname`` are ciphertexts, stable per value, and ``desen_mobile`` is the masked
number (``138****8000``); the adapter hashes the ciphertexts. ``fullAddress`` repeats
the region names before the street; they are stripped to get the detail.

Status mapping rationale (``orderState``):

* ``NOT_PAY`` → created;
* ``WAIT_SELLER_STOCK_OUT`` (等待出库), ``WAIT_SELLER_DELIVERY`` (cross-border, waiting
  for domestic shipping), ``WAIT_SEND_CODE`` (virtual goods awaiting their code),
  ``PAUSE`` / ``POP_ORDER_PAUSE`` (held by JD before shipping) → paid: paid, not sent;
* ``SEND_TO_DISTRIBUTION_CENER``, ``DISTRIBUTION_CENTER_RECEIVED`` (LBP / SOPL
  transfers), ``WAIT_GOODS_RECEIVE_CONFIRM`` → shipped;
* ``RECEIPTS_CONFIRM`` (收款确认, delivery done for cash-on-delivery) → delivered;
* ``FINISHED_L`` → completed; ``TRADE_CANCELED`` → cancelled;
* ``LOCKED`` (locked because the buyer applied to cancel / refund) → refund_requested.

Refund application ``status``: 0 未审核, 1 审核通过 (seller agreed, money not yet
back), 5 人工审核通过, 8 青龙拦截失败 (parcel already out: the claim goes on as a
return), 10 物流待跟进 → refund_requested; 2 审核不通过, 4 京东财务审核不通过 →
refund_rejected; 3 京东财务审核通过, 6 拦截并退款, 7 青龙拦截成功, 9 强制关单并退款,
16 拒收后退款 → refunded; 11 用户撤销 → closed.

Webhook signing (``SIGNING``), as JOS (the JD open platform) signs every call (签名算法 of
https://opendj.jd.com/staticnew/widgets/doc/venderchannel.html; the JD Union client
https://gist.github.com/socrateslee/76e91cb7beef6e0effa030b9e115333b): query parameters
``app_key``, ``timestamp`` (``yyyy-MM-dd HH:mm:ss``, Beijing time), ``sign_method``
(``md5``, JOS's one method, assumed when absent) and ``sign`` = upper-case hex MD5 of
secret + (every parameter but ``sign``, sorted by name, name + value) + secret. JOS
carries a call's business data in the parameter ``360buy_param_json``; a push's raw body
takes that place among the sorted parameters, so it is signed (else it could be swapped).
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
    Yuan,
    classify_reason,
    frozen,
    has_key,
    make_event,
    positive,
    receiver_hash,
    strip_region,
)
from orderguard.ingest.channels.signing import (
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

CHANNEL = Channel.JD

ORDER_STATUS_CODES = frozen({
    "NOT_PAY": OrderStatus.CREATED,
    "WAIT_SELLER_STOCK_OUT": OrderStatus.PAID,
    "WAIT_SELLER_DELIVERY": OrderStatus.PAID,
    "WAIT_SEND_CODE": OrderStatus.PAID,
    "PAUSE": OrderStatus.PAID,
    "POP_ORDER_PAUSE": OrderStatus.PAID,
    "SEND_TO_DISTRIBUTION_CENER": OrderStatus.SHIPPED,
    "DISTRIBUTION_CENTER_RECEIVED": OrderStatus.SHIPPED,
    "WAIT_GOODS_RECEIVE_CONFIRM": OrderStatus.SHIPPED,
    "RECEIPTS_CONFIRM": OrderStatus.DELIVERED,
    "FINISHED_L": OrderStatus.COMPLETED,
    "TRADE_CANCELED": OrderStatus.CANCELLED,
    "LOCKED": OrderStatus.REFUND_REQUESTED,
})

AFTER_SALE_STATUS_CODES = frozen({
    "0": OrderStatus.REFUND_REQUESTED,
    "1": OrderStatus.REFUND_REQUESTED,
    "2": OrderStatus.REFUND_REJECTED,
    "3": OrderStatus.REFUNDED,
    "4": OrderStatus.REFUND_REJECTED,
    "5": OrderStatus.REFUND_REQUESTED,
    "6": OrderStatus.REFUNDED,
    "7": OrderStatus.REFUNDED,
    "8": OrderStatus.REFUND_REQUESTED,
    "9": OrderStatus.REFUNDED,
    "10": OrderStatus.REFUND_REQUESTED,
    "11": OrderStatus.CLOSED,
    "16": OrderStatus.REFUNDED,
})

REQUIRED_FIELDS: tuple[str, ...] = (
    "orderId",
    "venderId",
    "orderState",
    "open_id_buyer",
    "orderTotalPrice",
    "orderPayment",
    "orderStartTime",
    "modified",
    "itemInfoList",
    "itemInfoList.0.skuId",
    "itemInfoList.0.skuName",
    "itemInfoList.0.jdPrice",
    "itemInfoList.0.itemTotal",
)


class JdConsignee(BaseModel):
    """``consigneeInfo``: receiver and address."""

    model_config = ConfigDict(extra="allow")

    fullname: str | None = None
    telephone: str | None = None
    mobile: str | None = None
    desen_mobile: str | None = None
    full_address: str | None = Field(default=None, alias="fullAddress")
    province: str | None = None
    city: str | None = None
    county: str | None = None
    town: str | None = None


class JdItem(BaseModel):
    """One element of ``itemInfoList``."""

    model_config = ConfigDict(extra="allow")

    sku_id: Text = Field(alias="skuId")
    outer_sku_id: str | None = Field(default=None, alias="outerSkuId")
    sku_name: str = Field(alias="skuName")
    jd_price: Yuan = Field(alias="jdPrice")
    item_total: Count = Field(alias="itemTotal")
    ware_id: Text | None = Field(default=None, alias="wareId")


class JdCoupon(BaseModel):
    """One element of ``couponDetailList`` (coupon discounts, yuan)."""

    model_config = ConfigDict(extra="allow")

    sku_id: Text | None = Field(default=None, alias="skuId")
    coupon_type: str | None = Field(default=None, alias="couponType")
    coupon_price: Yuan = Field(alias="couponPrice")


class JdOrder(BaseModel):
    """``orderInfo`` of ``jingdong.pop.order.enGet``."""

    model_config = ConfigDict(extra="allow")

    order_id: Text = Field(alias="orderId")
    vender_id: Text = Field(alias="venderId")
    order_state: Text = Field(alias="orderState")
    order_state_remark: str | None = Field(default=None, alias="orderStateRemark")
    open_id_buyer: str
    order_total_price: Yuan = Field(alias="orderTotalPrice")
    order_payment: Yuan = Field(alias="orderPayment")
    freight_price: Yuan = Field(default="0.00", alias="freightPrice")
    seller_discount: Yuan = Field(default="0.00", alias="sellerDiscount")
    order_start_time: Stamp = Field(alias="orderStartTime")
    modified: Stamp
    payment_confirm_time: Stamp | None = Field(default=None, alias="paymentConfirmTime")
    order_remark: str | None = Field(default=None, alias="orderRemark")
    waybill: str | None = None
    consignee_info: JdConsignee | None = Field(default=None, alias="consigneeInfo")
    item_info_list: list[JdItem] = Field(alias="itemInfoList")
    coupon_detail_list: list[JdCoupon] = Field(default_factory=list, alias="couponDetailList")


class JdRefundApply(BaseModel):
    """``RefundApplyVo`` of ``jingdong.pop.afs.soa.refundapply.queryById``."""

    model_config = ConfigDict(extra="allow")

    id: Text
    order_id: Text = Field(alias="orderId")
    buyer_id: str | None = Field(default=None, alias="buyerId")
    status: Text
    apply_refund_sum: Fen = Field(alias="applyRefundSum")
    apply_time: Stamp = Field(alias="applyTime")
    check_time: Stamp | None = Field(default=None, alias="checkTime")
    reason: str | None = None
    question_desc: str | None = Field(default=None, alias="questionDesc")
    sku_id: Text | None = Field(default=None, alias="skuId")


def parse(payload: Mapping[str, Any], *, ctx: ParseContext) -> OrderEvent:
    """Parse a JD order or refund-application document (see the module docstring)."""
    if has_key(payload, "applyRefundSum"):
        return _parse_refund(validate(JdRefundApply, payload), ctx)
    return _parse_order(validate(JdOrder, payload), ctx)


def _parse_order(doc: JdOrder, ctx: ParseContext) -> OrderEvent:
    status = map_status(ORDER_STATUS_CODES, doc.order_state, field="orderState")
    lines = tuple(
        OrderLine(
            sku_id=item.sku_id,
            qty=positive(item.item_total, field=f"itemInfoList.{i}.itemTotal"),
            unit_price_fen=yuan_to_fen(item.jd_price, field=f"itemInfoList.{i}.jdPrice"),
            title=item.sku_name,
        )
        for i, item in enumerate(doc.item_info_list)
    )
    coupon_fen = sum(
        yuan_to_fen(c.coupon_price, field=f"couponDetailList.{i}.couponPrice")
        for i, c in enumerate(doc.coupon_detail_list)
    )
    consignee = doc.consignee_info
    phone = None
    address = None
    if consignee is not None:
        phone = phone_from(consignee.desen_mobile, hasher=ctx.hasher,
                           encrypted_token=consignee.mobile or consignee.telephone)
        if consignee.province:
            address = Address(
                province=consignee.province,
                city=consignee.city or "",
                district=consignee.county or "",
                detail=strip_region(consignee.full_address or "",
                                    [consignee.province, consignee.city, consignee.county, consignee.town]),
                receiver_name_hash=receiver_hash(ctx.hasher, token=consignee.fullname, name=None),
            )
    details = OrderDetails(
        shop_id=doc.vender_id,
        created_at=parse_time(doc.order_start_time, field="orderStartTime"),
        buyer=Party(account_id=doc.open_id_buyer, phone=phone),
        lines=lines,
        amounts=Amounts(
            goods_fen=yuan_to_fen(doc.order_total_price, field="orderTotalPrice"),
            paid_fen=yuan_to_fen(doc.order_payment, field="orderPayment"),
            shipping_fen=yuan_to_fen(doc.freight_price, field="freightPrice"),
            discount_fen=yuan_to_fen(doc.seller_discount, field="sellerDiscount"),
            coupon_fen=coupon_fen,
        ),
        address=address,
        paid_at=parse_optional_time(doc.payment_confirm_time, field="paymentConfirmTime"),
        buyer_message=doc.order_remark or "",
        tracking_no=doc.waybill or None,
    )
    return make_event(
        channel=CHANNEL, order_id=doc.order_id, kind=EventKind.ORDER, status=status,
        channel_status=doc.order_state, event_time=parse_time(doc.modified, field="modified"), ctx=ctx,
        raw=unknown_fields(doc), details=details,
    )


def _parse_refund(doc: JdRefundApply, ctx: ParseContext) -> OrderEvent:
    status = map_status(AFTER_SALE_STATUS_CODES, doc.status, field="status")
    requested_at = parse_time(doc.apply_time, field="applyTime")
    changed_at = parse_optional_time(doc.check_time, field="checkTime") or requested_at
    refund = Refund(
        refund_id=doc.id,
        reason=classify_reason(doc.reason),
        amount_fen=fen(doc.apply_refund_sum, field="applyRefundSum"),
        requested_at=requested_at,
        reason_text=doc.question_desc or doc.reason or "",
        sku_id=doc.sku_id,
    )
    return make_event(
        channel=CHANNEL, order_id=doc.order_id, kind=EventKind.AFTER_SALE, status=status,
        channel_status=doc.status, event_time=changed_at, ctx=ctx, raw=unknown_fields(doc), refund=refund,
    )


def _jos_message(parts: SignedParts) -> bytes:
    """JOS's signed string: the parameters with the body as ``360buy_param_json``, sorted, name + value."""
    return concat_sorted({**parts.params, "360buy_param_json": parts.body})


SIGNING = WebhookSigning(
    platform="JD open platform (JOS)",
    source="JOS 签名算法 (https://opendj.jd.com/staticnew/widgets/doc/venderchannel.html; "
           "https://gist.github.com/socrateslee/76e91cb7beef6e0effa030b9e115333b)",
    signature=PushField("sign", "query", "the signature, upper-case hex"),
    timestamp=PushField("timestamp", "query", "when the push was signed, `yyyy-MM-dd HH:mm:ss` Beijing time"),
    time_format=TimeFormat.BEIJING_SECONDS,
    method=PushField("sign_method", "query", "`md5` (assumed when absent)"),
    implicit_method="md5",
    app_key=PushField("app_key", "query", "the shop's JOS app key"),
    digests={"md5": MD5_WRAPPED_UPPER},
    default_method="md5",
    signs_query=True,
    message=_jos_message,
    formula="`sign` = upper-case hex MD5(secret + k1v1k2v2… + secret) over every query parameter but `sign` "
            "plus `360buy_param_json` = the raw body, sorted by name.",
    note="Any other query parameter (`atomic`) is signed too, so add it before signing.",
)


ADAPTER = DocumentAdapter(
    channel=CHANNEL,
    order_status_codes=ORDER_STATUS_CODES,
    after_sale_status_codes=AFTER_SALE_STATUS_CODES,
    required_fields=REQUIRED_FIELDS,
    order_status_field="orderState",
    after_sale_status_field="status",
    time_resolution=timedelta(seconds=1),
    parse_fn=lambda payload, ctx: parse(payload, ctx=ctx),
    signing=SIGNING,
)
