"""Channel-neutral, clear-text events the simulator produces.

The simulator knows the clear phone numbers, id cards and BSSIDs of its synthetic
buyers; channel encoders (``simulate.channels``) turn a :class:`PlainEvent`
into that channel's native payload, masking / encrypting exactly as the platform does.
Ingest then hashes what the payload reveals, as it would for a real shop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orderguard.schema import Amounts, Channel, EventKind, OrderLine, OrderStatus, RefundReason


@dataclass(frozen=True, slots=True)
class PlainBuyer:
    """A buyer account on one channel, with clear personal data."""

    account_id: str
    phone: str | None = None
    id_card: str | None = None
    member_level: int = 0
    registered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlainAddress:
    """A delivery address in clear."""

    province: str
    city: str
    district: str
    detail: str
    receiver_name: str


@dataclass(frozen=True, slots=True)
class PlainClient:
    """Device and network of the buyer (own site / mini-program mostly)."""

    device_id: str | None = None
    ip: str | None = None
    wifi_bssid: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class PlainRefund:
    """A refund claim."""

    refund_id: str
    reason: RefundReason
    amount_fen: int
    requested_at: datetime
    reason_text: str = ""
    sku_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlainEvent:
    """One order or after-sale document to be rendered in a channel's format.

    ``update_time`` is the channel's modification time (UTC); encoders render it in the
    channel's own time format. For ``EventKind.AFTER_SALE`` only ``refund``, ``status``
    and the ids are rendered; the order fields are still filled for convenience.
    """

    channel: Channel
    order_id: str
    shop_id: str
    kind: EventKind
    status: OrderStatus
    update_time: datetime
    created_at: datetime
    buyer: PlainBuyer
    lines: tuple[OrderLine, ...]
    amounts: Amounts
    address: PlainAddress | None = None
    paid_at: datetime | None = None
    coupon_ids: tuple[str, ...] = ()
    buyer_message: str = ""
    client: PlainClient | None = None
    tracking_no: str | None = None
    refund: PlainRefund | None = None
