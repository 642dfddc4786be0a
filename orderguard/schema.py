"""Frozen domain types shared by every package.

One unified order model for all channels. Channel adapters turn a channel-native
payload into an :class:`OrderEvent`; the order log keeps every event and derives the
current :class:`Order` from them (see ``orderguard.ingest.orderlog``).

Conventions (DESIGN.md §4):
* money is an integer in minor units (fen, 1/100 CNY), never a float;
* datetimes are tz-aware UTC; channel local times (Asia/Shanghai) are converted by
  the adapter;
* personal data arrives already hashed (HMAC, see ``orderguard.ingest.normalize``):
  the domain never holds a clear phone number, id-card number or WiFi BSSID.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    """Sales channels with an ingest adapter."""

    TMALL = "tmall"  # Tmall / Taobao (TOP trade API)
    JD = "jd"  # JD POP open platform
    DOUYIN = "douyin"  # Douyin shop (抖店)
    KUAISHOU = "kuaishou"  # Kuaishou shop (快手小店)
    WECHAT = "wechat"  # WeChat Channels shop (视频号小店)
    SITE = "site"  # own site / mini-program, generic JSON


class OrderStatus(StrEnum):
    """The one status model: order life cycle plus after-sale.

    ``AWAITING_GROUP`` is a paid group-buy order whose group has not formed yet
    (Douyin 待成团, Kuaishou/WeChat equivalents): it must not be mistaken for an
    order that is paid but stuck unshipped.
    """

    CREATED = "created"
    AWAITING_GROUP = "awaiting_group"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUND_REQUESTED = "refund_requested"
    REFUNDED = "refunded"
    REFUND_REJECTED = "refund_rejected"
    CLOSED = "closed"


#: Position of each status in the life cycle; used only to break ties between two
#: events of one order stamped with the same millisecond (the later stage wins).
LIFECYCLE_RANK: Mapping[OrderStatus, int] = {s: i for i, s in enumerate(OrderStatus)}


class RefundReason(StrEnum):
    """Why the buyer asked for a refund, normalised across channels."""

    DAMAGED = "damaged"
    NOT_RECEIVED = "not_received"
    WRONG_ITEM = "wrong_item"
    NO_REASON = "no_reason"  # 7-day no-reason return (七天无理由)
    OTHER = "other"


class EventKind(StrEnum):
    """Which kind of channel document produced an event."""

    ORDER = "order"  # the order document: full snapshot of buyer, address, lines, amounts
    AFTER_SALE = "after_sale"  # a refund / return document: status and refund details only


class Verdict(StrEnum):
    """A reviewer's label for an order."""

    CONFIRMED_FRAUD = "confirmed_fraud"
    FALSE_POSITIVE = "false_positive"
    NEEDS_INVESTIGATION = "needs_investigation"


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone number as far as the channel reveals it.

    Attributes:
        hash: HMAC of the clear number, or of the channel's stable encrypted token when
            the number is encrypted (then it only matches within that channel).
        prefix: the leading digits known in clear (3 for a masked ``138****1234``,
            7 or more for a clear number); enough for the operator segment, and with 7
            digits for the home region.
        masked: display form for reviewers, e.g. ``138****1234``.
    """

    hash: str
    prefix: str | None = None
    masked: str | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """The buyer.

    Attributes:
        account_id: the channel's buyer identity (open uid, pin, open id …), prefixed
            by nothing: it is unique only within its channel.
        phone: contact / receiver phone when the channel gives one.
        id_card_hash: HMAC of the real-name id-card number (cross-border, some
            marketplaces); the same person across shops and channels.
        member_level: shop membership level (0 = none), used by VIP allow lists.
        registered_at: when the account was created, if the channel says.
    """

    account_id: str
    phone: Phone | None = None
    id_card_hash: str | None = None
    member_level: int | None = None
    registered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Address:
    """Delivery address, split the way every Chinese channel splits it.

    Province, city and district stay in clear (regions, not people). The street detail
    is personal: ingest (``orderguard.ingest.protect``) keeps only a masked display form
    in ``detail``, the keyed hash of the whole normalised address in ``key`` (what
    features and deny lists match), the pick-up / temporary keyword found in the
    clear detail (驿站, 代收点 ...) in ``pickup``, because that keyword matters for risk,
    and what the clear detail lacks for a courier (no street, no house number) in
    ``defects``, because order health must see it after the detail is masked.
    An address with ``key`` unset was not stored by ingest (a test, a simulation): its
    ``detail`` is then the clear text.
    """

    province: str
    city: str
    district: str
    detail: str
    receiver_name_hash: str | None = None
    key: str | None = None
    pickup: str | None = None
    defects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One SKU on an order; ``unit_price_fen`` is the price actually charged per unit."""

    sku_id: str
    qty: int
    unit_price_fen: int
    title: str = ""
    list_price_fen: int | None = None


@dataclass(frozen=True, slots=True)
class Amounts:
    """Order-level money, all in fen. ``paid_fen`` is what the buyer paid."""

    goods_fen: int
    paid_fen: int
    shipping_fen: int = 0
    discount_fen: int = 0
    coupon_fen: int = 0


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the channel tells about the buyer's device and network.

    ``wifi_hash`` is the HMAC of the WiFi BSSID; only own-site / mini-program orders
    usually carry device and WiFi data. Ingest stores ``device_id`` and ``ip`` as keyed
    hashes too (``orderguard.ingest.protect``): features only compare them. ``ip_prefix``
    is the keyed hash of the IP's network (/24 for IPv4, /48 for IPv6), derived at ingest
    beside the IP hash because the range cannot be recovered from the IP's hash later;
    ``None`` without an IP, for an IP that does not parse and on orders stored before it existed.
    """

    device_id: str | None = None
    ip: str | None = None
    wifi_hash: str | None = None
    user_agent: str | None = None
    ip_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    """An after-sale request: what the buyer claims and for how much."""

    refund_id: str
    reason: RefundReason
    amount_fen: int
    requested_at: datetime
    reason_text: str = ""
    sku_id: str | None = None


#: Value of one source attribute (``OrderDetails.attributes``).
AttributeValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class OrderDetails:
    """Everything an order document says about the order besides its status.

    ``attributes`` are the source's own fields the unified model has no place for (a
    payment-risk score, a card type, an email domain, an upstream counter), sent under
    the payload's top-level ``attributes`` object by any channel
    (``orderguard.ingest.attributes``). They mean nothing to the order model itself;
    a feature set gives them a type and a meaning by declaring them
    (``features.specs.Declarations``).
    """

    shop_id: str
    created_at: datetime
    buyer: Party
    lines: tuple[OrderLine, ...]
    amounts: Amounts
    address: Address | None = None
    paid_at: datetime | None = None
    coupon_ids: tuple[str, ...] = ()
    buyer_message: str = ""
    client: ClientInfo | None = None
    tracking_no: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True, order=True)
class OrderKey:
    """Identity of an order across the system: channel plus the channel's order id.

    >>> str(OrderKey(Channel.JD, "2301"))
    'jd:2301'
    >>> OrderKey.parse("jd:2301") == OrderKey(Channel.JD, "2301")
    True
    """

    channel: Channel
    channel_order_id: str

    def __str__(self) -> str:
        return f"{self.channel.value}:{self.channel_order_id}"

    @classmethod
    def parse(cls, text: str) -> OrderKey:
        channel, sep, order_id = text.partition(":")
        if not sep or not order_id:
            raise ValueError(f"order key must look like '<channel>:<id>'; got {text!r}")
        return cls(Channel(channel), order_id)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One change of one order, as one channel document reported it.

    Identity is ``(channel, channel_order_id, event_version)``: the same key arriving
    twice is a no-op. ``event_version`` grows with the channel's update time
    (``normalize.event_version``), so the highest version is the newest state and an
    older version arriving late never overwrites it.

    Attributes:
        event_time: the channel's time of the change, UTC. Everything downstream orders
            by ``(event_time, order key)``.
        received_at: when orderguard received it; stored, never used for ordering.
        channel_status: the channel's own status code, verbatim, for audit.
        details: the order snapshot (``EventKind.ORDER`` events only).
        refund: the after-sale claim (``EventKind.AFTER_SALE`` events, or order
            documents that embed one).
        raw: payload fields the adapter does not model, kept verbatim.
    """

    key: OrderKey
    event_version: int
    event_time: datetime
    received_at: datetime
    kind: EventKind
    status: OrderStatus
    channel_status: str
    details: OrderDetails | None = None
    refund: Refund | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.event_time.tzinfo is None or self.received_at.tzinfo is None:
            raise ValueError("event_time and received_at must be tz-aware UTC")
        if self.kind is EventKind.ORDER and self.details is None:
            raise ValueError("an order event must carry details")


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One step of an order's status timeline."""

    status: OrderStatus
    at: datetime
    event_version: int
    channel_status: str


@dataclass(frozen=True, slots=True)
class Order:
    """The current state of one order, derived from all its events.

    ``details`` comes from the newest order document, ``refund`` from the newest event
    that carries one and ``status`` from the newest event of any kind.
    ``first_seen_at`` is the event time of the oldest event (normally creation).
    """

    key: OrderKey
    status: OrderStatus
    details: OrderDetails
    event_version: int
    updated_at: datetime
    timeline: tuple[StatusChange, ...]
    refund: Refund | None = None

    @property
    def event_time(self) -> datetime:
        """Alias used by feature code: the time of the newest change."""
        return self.updated_at


@dataclass(frozen=True, slots=True)
class Label:
    """A reviewer's verdict on an order, a fact with its own time (``labeled_at``)."""

    key: OrderKey
    verdict: Verdict
    labeled_at: datetime
    reviewer_id: str
    note: str = ""
