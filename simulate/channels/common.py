"""Rendering helpers shared by the channel encoders.

Encoders are the inverse of the ingest adapters: they turn a clear-text
:class:`~simulate.plain.PlainEvent` into what the platform would send.
Everything here is pure and deterministic, so the same simulated world always
renders to the same payloads:

* times in each platform's own format (Beijing-time strings, epoch seconds, epoch
  milliseconds, ISO-8601 with ``+08:00``), truncated to the platform's resolution;
* money in yuan strings or integer fen;
* personal data masked as the platforms mask it, plus a deterministic stand-in for
  their ciphertexts: an HMAC of the clear value under the simulator's secret, so the
  same phone always yields the same "encrypted" token, as a real platform's stable
  encryption does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from orderguard.clock import SHOP_TZ
from orderguard.schema import Channel, EventKind, OrderStatus, RefundReason
from simulate.plain import PlainEvent, PlainRefund

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The reason label a buyer picks on the marketplaces, per unified reason. Each label
#: carries the words the adapters classify by, so reasons survive a round trip.
REASON_LABELS: Mapping[RefundReason, str] = MappingProxyType({
    RefundReason.DAMAGED: "收到商品破损",
    RefundReason.NOT_RECEIVED: "未收到货",
    RefundReason.WRONG_ITEM: "商家发错货",
    RefundReason.NO_REASON: "七天无理由退换货",
    RefundReason.OTHER: "其他",
})


def local_text(moment: datetime) -> str:
    """UTC → Beijing-time ``"YYYY-MM-DD HH:MM:SS"`` (sub-seconds dropped).

    >>> local_text(datetime(2024, 11, 11, 0, 0, 0, 999999, tzinfo=UTC))
    '2024-11-11 08:00:00'
    """
    return moment.astimezone(SHOP_TZ).strftime("%Y-%m-%d %H:%M:%S")


def epoch_s(moment: datetime) -> int:
    """Epoch seconds, floored (exact integer arithmetic, no float rounding).

    >>> epoch_s(datetime(2024, 11, 11, 0, 0, 0, 999999, tzinfo=UTC))
    1731283200
    """
    return (moment - _EPOCH) // timedelta(seconds=1)


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds, floored.

    >>> epoch_ms(datetime(2024, 11, 11, 0, 0, 0, 123999, tzinfo=UTC))
    1731283200123
    """
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso_local_ms(moment: datetime) -> str:
    """ISO-8601 in Beijing time with milliseconds, as the shop's own backend writes it.

    >>> iso_local_ms(datetime(2024, 11, 11, 0, 0, 0, 123999, tzinfo=UTC))
    '2024-11-11T08:00:00.123+08:00'
    """
    return moment.astimezone(SHOP_TZ).isoformat(timespec="milliseconds")


def yuan(amount_fen: int) -> str:
    """Fen → the platforms' two-decimal yuan string.

    >>> yuan(1990), yuan(5), yuan(0)
    ('19.90', '0.05', '0.00')
    """
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def mask_phone(phone: str) -> str:
    """Mask a mobile number the way the marketplaces show it.

    >>> mask_phone("13800138000")
    '138****8000'
    """
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return f"{digits[:3]}****{digits[-4:]}"


def mask_name(name: str) -> str:
    """Keep the family name, star the rest.

    >>> mask_name("张小明"), mask_name("李")
    ('张**', '李*')
    """
    return name[:1] + "*" * max(1, len(name) - 1)


def token(secret: bytes, kind: str, value: str) -> str:
    """Deterministic stand-in for a platform ciphertext of ``value``.

    >>> token(b"s", "phone", "13800138000") == token(b"s", "phone", "13800138000")
    True
    >>> token(b"s", "phone", "13800138000") == token(b"t", "phone", "13800138000")
    False
    """
    mac = hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def require_refund(event: PlainEvent) -> PlainRefund:
    """An after-sale event must carry its refund claim."""
    if event.refund is None:
        raise ValueError(f"{event.channel.value} after-sale event {event.order_id!r} has no refund")
    return event.refund


@dataclass(frozen=True, slots=True)
class ChannelEncoder:
    """One channel's encoder and what it can express.

    Attributes:
        channel: the channel rendered.
        encode_fn: renders one event; raises ``ValueError`` for an event the channel
            cannot express (a status without a code, too many lines …).
        order_codes: the representative order-document code of every status the
            channel's order document can state.
        after_sale_codes: the same for the after-sale document.
        max_lines: most SKU lines one order may carry (``None``: no limit).
        time_resolution: finest unit of the channel's timestamps; times are truncated.
    """

    channel: Channel
    encode_fn: Callable[[PlainEvent, bytes], dict[str, Any]]
    order_codes: Mapping[OrderStatus, str]
    after_sale_codes: Mapping[OrderStatus, str]
    max_lines: int | None
    time_resolution: timedelta

    def __call__(self, event: PlainEvent, *, secret: bytes) -> dict[str, Any]:
        if event.channel is not self.channel:
            raise ValueError(f"{self.channel.value} encoder got a {event.channel.value} event")
        if self.max_lines is not None and len(event.lines) > self.max_lines:
            raise ValueError(f"{self.channel.value} orders carry at most {self.max_lines} SKU line(s); "
                             f"got {len(event.lines)}")
        return self.encode_fn(event, secret)

    def statuses(self, kind: EventKind) -> frozenset[OrderStatus]:
        """The unified statuses this channel can render for a document kind."""
        codes = self.order_codes if kind is EventKind.ORDER else self.after_sale_codes
        return frozenset(codes)

    def code(self, event: PlainEvent) -> str:
        """The channel status code of the event, or ``ValueError`` if it has none."""
        return status_code(event, order_codes=self.order_codes, after_sale_codes=self.after_sale_codes)


def status_code(event: PlainEvent, *, order_codes: Mapping[OrderStatus, str],
                after_sale_codes: Mapping[OrderStatus, str]) -> str:
    """The representative channel code of the event's status for its document kind."""
    codes = order_codes if event.kind is EventKind.ORDER else after_sale_codes
    try:
        return codes[event.status]
    except KeyError as e:
        raise ValueError(f"{event.channel.value} {event.kind.value} documents cannot state status "
                         f"{event.status.value!r}; they can state {sorted(codes)}") from e
