"""Own site / mini-program adapter: the shop's own clean JSON, versioned explicitly.

Unlike the marketplaces, the shop's own front ends see the buyer's device and
network, so this document is the richest: device id, IP, WiFi BSSID, user agent, the
clear phone number, the real-name id card, membership level and account registration
time, and the coupons used. Times are ISO-8601 with an offset (the site stamps
``+08:00``, milliseconds); money is integer fen. The backend stamps an explicit
integer ``version`` that grows with every change of the order, so it is used as the
event version as is (no derivation from the update time).

Order document::

    {"type": "order", "version": 42, "order_id": "S1", "shop_id": "site-main",
     "status": "paid", "created_at": "2024-11-11T08:00:00.000+08:00",
     "updated_at": "...", "paid_at": "..." | null,
     "user": {"user_id", "phone", "id_card", "member_level", "registered_at"},
     "client": {"device_id", "ip", "wifi_bssid", "user_agent"},
     "address": {"province", "city", "district", "detail", "receiver_name"},
     "items": [{"sku_id", "title", "qty", "unit_price_fen", "list_price_fen"}],
     "amounts": {"goods_fen", "paid_fen", "shipping_fen", "discount_fen", "coupon_fen"},
     "coupon_ids": [...], "buyer_message": "", "tracking_no": null}

After-sale document::

    {"type": "after_sale", "version": 43, "order_id": "S1", "refund_id": "R1",
     "status": "pending", "reason": "damaged", "reason_text": "...",
     "amount_fen": 1990, "sku_id": "SKU-1" | null,
     "requested_at": "...", "updated_at": "..."}

Status codes (the site's own): ``pending_payment`` → created, ``group_pending`` →
awaiting_group, ``paid``, ``shipped``, ``delivered``, ``completed``, ``cancelled``,
``closed`` → themselves, ``refunding`` → refund_requested, ``refund_rejected`` and
``refunded`` → themselves: the site's order document can state every unified status.
After-sale ``status``: ``pending``, ``approved`` (refund agreed, not yet paid back),
``returning`` → refund_requested; ``refunded`` → refunded; ``rejected`` →
refund_rejected; ``withdrawn`` → closed. ``reason`` uses the unified codes directly.

Webhook signing (``SIGNING``): the shop's own front ends sign as GitHub and Stripe sign
their webhooks: header ``X-Orderguard-Timestamp`` (unix seconds) and
``X-Orderguard-Signature: sha256=<lower-case hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``;
the ``sha256=`` prefix names the method, so another can be added without a new header.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orderguard.errors import InvalidInputError
from orderguard.ingest.channels.base import unknown_fields, validate
from orderguard.ingest.channels.kit import (
    Count,
    DocumentAdapter,
    Fen,
    Stamp,
    Text,
    frozen,
    hashed,
    make_event,
    positive,
    receiver_hash,
)
from orderguard.ingest.channels.signing import (
    HMAC_SHA256_HEX,
    PushField,
    SignedParts,
    TimeFormat,
    WebhookSigning,
)
from orderguard.ingest.normalize import (
    ParseContext,
    fen,
    id_card_from,
    map_status,
    parse_optional_time,
    parse_time,
    phone_from,
)
from orderguard.schema import (
    Address,
    Amounts,
    Channel,
    ClientInfo,
    EventKind,
    OrderDetails,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Party,
    Refund,
    RefundReason,
)

CHANNEL = Channel.SITE

ORDER_STATUS_CODES = frozen({
    "pending_payment": OrderStatus.CREATED,
    "group_pending": OrderStatus.AWAITING_GROUP,
    "paid": OrderStatus.PAID,
    "shipped": OrderStatus.SHIPPED,
    "delivered": OrderStatus.DELIVERED,
    "completed": OrderStatus.COMPLETED,
    "cancelled": OrderStatus.CANCELLED,
    "closed": OrderStatus.CLOSED,
    "refunding": OrderStatus.REFUND_REQUESTED,
    "refund_rejected": OrderStatus.REFUND_REJECTED,
    "refunded": OrderStatus.REFUNDED,
})

AFTER_SALE_STATUS_CODES = frozen({
    "pending": OrderStatus.REFUND_REQUESTED,
    "approved": OrderStatus.REFUND_REQUESTED,
    "returning": OrderStatus.REFUND_REQUESTED,
    "refunded": OrderStatus.REFUNDED,
    "rejected": OrderStatus.REFUND_REJECTED,
    "withdrawn": OrderStatus.CLOSED,
})

REQUIRED_FIELDS: tuple[str, ...] = (
    "type",
    "version",
    "order_id",
    "shop_id",
    "status",
    "created_at",
    "updated_at",
    "user",
    "user.user_id",
    "items",
    "items.0.sku_id",
    "items.0.qty",
    "items.0.unit_price_fen",
    "amounts",
    "amounts.goods_fen",
    "amounts.paid_fen",
)


class SiteUser(BaseModel):
    """The buyer's account, in clear (the shop owns this data)."""

    model_config = ConfigDict(extra="allow")

    user_id: Text
    phone: str | None = None
    id_card: str | None = None
    member_level: Count | None = None
    registered_at: Stamp | None = None


class SiteClient(BaseModel):
    """Device and network the order was placed from."""

    model_config = ConfigDict(extra="allow")

    device_id: str | None = None
    ip: str | None = None
    wifi_bssid: str | None = None
    user_agent: str | None = None


class SiteAddress(BaseModel):
    """Delivery address in clear."""

    model_config = ConfigDict(extra="allow")

    province: str
    city: str
    district: str = ""
    detail: str = ""
    receiver_name: str | None = None


class SiteItem(BaseModel):
    """One order line."""

    model_config = ConfigDict(extra="allow")

    sku_id: Text
    title: str = ""
    qty: Count
    unit_price_fen: Fen
    list_price_fen: Fen | None = None


class SiteAmounts(BaseModel):
    """Order-level money, fen."""

    model_config = ConfigDict(extra="allow")

    goods_fen: Fen
    paid_fen: Fen
    shipping_fen: Fen = 0
    discount_fen: Fen = 0
    coupon_fen: Fen = 0


class SiteOrder(BaseModel):
    """The site's order document."""

    model_config = ConfigDict(extra="allow")

    type: Literal["order"]
    version: Count
    order_id: Text
    shop_id: Text
    status: Text
    created_at: Stamp
    updated_at: Stamp
    paid_at: Stamp | None = None
    user: SiteUser
    client: SiteClient | None = None
    address: SiteAddress | None = None
    items: list[SiteItem]
    amounts: SiteAmounts
    coupon_ids: list[Text] = Field(default_factory=list)
    buyer_message: str = ""
    tracking_no: str | None = None


class SiteAfterSale(BaseModel):
    """The site's after-sale (refund) document."""

    model_config = ConfigDict(extra="allow")

    type: Literal["after_sale"]
    version: Count
    order_id: Text
    refund_id: Text
    status: Text
    reason: RefundReason
    reason_text: str = ""
    amount_fen: Fen
    sku_id: Text | None = None
    requested_at: Stamp
    updated_at: Stamp


def parse(payload: Mapping[str, Any], *, ctx: ParseContext) -> OrderEvent:
    """Parse a site order or after-sale document (see the module docstring)."""
    if isinstance(payload, Mapping) and payload.get("type") == "after_sale":
        return _parse_after_sale(validate(SiteAfterSale, payload), ctx)
    return _parse_order(validate(SiteOrder, payload), ctx)


def _version(value: int) -> int:
    if value < 1:
        raise InvalidInputError.must("version", "a positive integer", value)
    return value


def _parse_order(doc: SiteOrder, ctx: ParseContext) -> OrderEvent:
    status = map_status(ORDER_STATUS_CODES, doc.status, field="status")
    lines = tuple(
        OrderLine(
            sku_id=item.sku_id,
            qty=positive(item.qty, field=f"items.{i}.qty"),
            unit_price_fen=fen(item.unit_price_fen, field=f"items.{i}.unit_price_fen"),
            title=item.title,
            list_price_fen=None if item.list_price_fen is None else fen(item.list_price_fen,
                                                                         field=f"items.{i}.list_price_fen"),
        )
        for i, item in enumerate(doc.items)
    )
    user = doc.user
    buyer = Party(
        account_id=user.user_id,
        phone=phone_from(user.phone, hasher=ctx.hasher, field="user.phone"),
        id_card_hash=id_card_from(user.id_card, hasher=ctx.hasher, field="user.id_card"),
        member_level=user.member_level,
        registered_at=parse_optional_time(user.registered_at, field="user.registered_at"),
    )
    client = None
    if doc.client is not None:
        client = ClientInfo(
            device_id=doc.client.device_id or None,
            ip=doc.client.ip or None,
            wifi_hash=hashed(ctx.hasher, "wifi", doc.client.wifi_bssid),
            user_agent=doc.client.user_agent or None,
        )
    address = None
    if doc.address is not None:
        address = Address(
            province=doc.address.province,
            city=doc.address.city,
            district=doc.address.district,
            detail=doc.address.detail,
            receiver_name_hash=receiver_hash(ctx.hasher, token=None, name=doc.address.receiver_name),
        )
    amounts = doc.amounts
    details = OrderDetails(
        shop_id=doc.shop_id,
        created_at=parse_time(doc.created_at, field="created_at"),
        buyer=buyer,
        lines=lines,
        amounts=Amounts(
            goods_fen=fen(amounts.goods_fen, field="amounts.goods_fen"),
            paid_fen=fen(amounts.paid_fen, field="amounts.paid_fen"),
            shipping_fen=fen(amounts.shipping_fen, field="amounts.shipping_fen"),
            discount_fen=fen(amounts.discount_fen, field="amounts.discount_fen"),
            coupon_fen=fen(amounts.coupon_fen, field="amounts.coupon_fen"),
        ),
        address=address,
        paid_at=parse_optional_time(doc.paid_at, field="paid_at"),
        coupon_ids=tuple(doc.coupon_ids),
        buyer_message=doc.buyer_message,
        client=client,
        tracking_no=doc.tracking_no or None,
    )
    return make_event(
        channel=CHANNEL, order_id=doc.order_id, kind=EventKind.ORDER, status=status, channel_status=doc.status,
        event_time=parse_time(doc.updated_at, field="updated_at"), ctx=ctx, raw=unknown_fields(doc),
        details=details, version=_version(doc.version),
    )


def _parse_after_sale(doc: SiteAfterSale, ctx: ParseContext) -> OrderEvent:
    status = map_status(AFTER_SALE_STATUS_CODES, doc.status, field="status")
    refund = Refund(
        refund_id=doc.refund_id,
        reason=doc.reason,
        amount_fen=fen(doc.amount_fen, field="amount_fen"),
        requested_at=parse_time(doc.requested_at, field="requested_at"),
        reason_text=doc.reason_text,
        sku_id=doc.sku_id,
    )
    return make_event(
        channel=CHANNEL, order_id=doc.order_id, kind=EventKind.AFTER_SALE, status=status, channel_status=doc.status,
        event_time=parse_time(doc.updated_at, field="updated_at"), ctx=ctx, raw=unknown_fields(doc),
        refund=refund, version=_version(doc.version),
    )


def _site_message(parts: SignedParts) -> bytes:
    """The own site's signed string: ``<timestamp>.<raw body>``."""
    return parts.timestamp.encode() + b"." + parts.body


SIGNING = WebhookSigning(
    platform="own site / mini-program",
    source="orderguard's own scheme, shaped like GitHub's and Stripe's webhook signatures",
    signature=PushField("X-Orderguard-Signature", "header", "`sha256=` + the signature, lower-case hex"),
    timestamp=PushField("X-Orderguard-Timestamp", "header", "when the push was signed, unix seconds"),
    time_format=TimeFormat.UNIX_SECONDS,
    prefixed=True,
    digests={"sha256": HMAC_SHA256_HEX},
    default_method="sha256",
    message=_site_message,
    formula="`X-Orderguard-Signature` = `sha256=` + lower-case hex HMAC-SHA256(secret, timestamp + \".\" + body).",
)


ADAPTER = DocumentAdapter(
    channel=CHANNEL,
    order_status_codes=ORDER_STATUS_CODES,
    after_sale_status_codes=AFTER_SALE_STATUS_CODES,
    required_fields=REQUIRED_FIELDS,
    order_status_field="status",
    after_sale_status_field="status",
    time_resolution=timedelta(milliseconds=1),
    parse_fn=lambda payload, ctx: parse(payload, ctx=ctx),
    signing=SIGNING,
)
