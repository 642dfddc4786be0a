"""Building blocks shared by the channel adapters.

Every adapter module does the same four things: declare pydantic models of the
channel's own documents, keep total status tables, turn one validated document into
one :class:`~orderguard.schema.OrderEvent`, and publish a :class:`DocumentAdapter`.
This module holds the parts that are the same for all of them:

* scalar field types (:data:`Text`, :data:`Yuan`, :data:`Fen`, :data:`Count`,
  :data:`Stamp`) that accept exactly the JSON shapes the platforms send (ids as
  numbers *or* strings, quantities as digit strings …) and report a wrong type at the
  field itself. Plain ``str | int`` unions are avoided on purpose: pydantic appends
  the union member to an error's location (``created.str``), which would no longer
  name the payload field;
* :class:`DocumentAdapter`, the concrete object behind ``ADAPTERS``: the protocol of
  ``base.ChannelAdapter`` plus what the contract suite needs to probe any channel
  without knowing it (required fields, where the status lives, time resolution);
* small pure helpers: refund-reason classification from the platforms' reason texts,
  address-prefix stripping, half-up unit prices, optional hashing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints

from orderguard.errors import InvalidInputError
from orderguard.ingest.channels.signing import WebhookSigning
from orderguard.ingest.normalize import ParseContext, PiiHasher, event_version
from orderguard.schema import Channel, EventKind, OrderDetails, OrderEvent, OrderKey, OrderStatus, Refund, RefundReason

# --------------------------------------------------------------------------- field types


def _text(value: object) -> object:
    """Ids and codes: platforms send them as JSON strings or numbers; keep them as text."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a string or an integer")
    return str(value)


def _decimal_text(value: object) -> object:
    """Yuan amounts: ``"19.90"``, ``19.9`` or ``19``; converted to fen by the adapter."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be an amount in yuan (string or number)")
    return str(value)


def _integer(value: object) -> object:
    """Integers sent as JSON numbers or digit strings (``"2"``); never booleans or floats."""
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError("must be an integer")


def _stamp(value: object) -> object:
    """Timestamps: ``"YYYY-MM-DD HH:MM:SS"``, ISO-8601, epoch seconds or milliseconds."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a time string or an epoch number")
    return str(value)


#: A digit string as ``_integer`` reads it; only the JSON schema of :data:`Fen` and :data:`Count` uses it.
_DigitString = Annotated[str, StringConstraints(pattern=r"^\s*-?[0-9]+\s*$")]

# ``json_schema_input_type`` makes the models' JSON schemas (published in the service's
# OpenAPI document) describe the JSON the validators accept, not the Python type they produce.

#: An id or status code; JSON string or integer, kept as text.
Text = Annotated[str, BeforeValidator(_text, json_schema_input_type=str | int)]
#: An amount in yuan as text, converted with ``normalize.yuan_to_fen``.
Yuan = Annotated[str, BeforeValidator(_decimal_text, json_schema_input_type=str | float)]
#: An amount already in fen (integer or digit string); sign checked by ``normalize.fen``.
Fen = Annotated[int, BeforeValidator(_integer, json_schema_input_type=int | _DigitString)]
#: A count (quantity, version); integer or digit string.
Count = Annotated[int, BeforeValidator(_integer, json_schema_input_type=int | _DigitString)]
#: A timestamp as text, converted with ``normalize.parse_time``.
Stamp = Annotated[str, BeforeValidator(_stamp, json_schema_input_type=str | int)]


def frozen(table: Mapping[str, OrderStatus]) -> Mapping[str, OrderStatus]:
    """An immutable copy of a status table (module constants must not be mutable)."""
    return MappingProxyType(dict(table))


# --------------------------------------------------------------------------- adapter object


@dataclass(frozen=True, slots=True)
class DocumentAdapter:
    """One channel's adapter: satisfies ``base.ChannelAdapter`` and describes itself.

    Attributes:
        channel: the channel parsed.
        order_status_codes: every documented order-document status code → status.
        after_sale_status_codes: every documented after-sale status code → status.
        required_fields: dotted paths of the order document's required fields.
        order_status_field: dotted path of the status code in the order document.
        after_sale_status_field: dotted path of the status in the after-sale document.
        time_resolution: finest unit of the channel's timestamps (1 s or 1 ms); event
            times survive a round trip only to this resolution.
        parse_fn: the module's ``parse``.
        signing: how the channel's platform signs its pushes (``signing.WebhookSigning``).
    """

    channel: Channel
    order_status_codes: Mapping[str, OrderStatus]
    after_sale_status_codes: Mapping[str, OrderStatus]
    required_fields: tuple[str, ...]
    order_status_field: str
    after_sale_status_field: str
    time_resolution: timedelta
    parse_fn: Callable[[Mapping[str, Any], ParseContext], OrderEvent]
    signing: WebhookSigning

    def parse(self, payload: Mapping[str, Any], *, ctx: ParseContext) -> OrderEvent:
        """Parse one channel document (order or after-sale) into an :class:`OrderEvent`."""
        return self.parse_fn(payload, ctx)


def has_key(payload: object, key: str) -> bool:
    """Whether ``payload`` is an object carrying ``key`` (document-type detection)."""
    return isinstance(payload, Mapping) and key in payload


def make_event(
    *,
    channel: Channel,
    order_id: str,
    kind: EventKind,
    status: OrderStatus,
    channel_status: str,
    event_time: datetime,
    ctx: ParseContext,
    raw: Mapping[str, Any],
    details: OrderDetails | None = None,
    refund: Refund | None = None,
    version: int | None = None,
) -> OrderEvent:
    """Assemble the event; the version derives from the update time unless given."""
    if version is None:
        version = event_version(event_time, kind=kind, status=status)
    return OrderEvent(
        key=OrderKey(channel, order_id),
        event_version=version,
        event_time=event_time,
        received_at=ctx.received_at,
        kind=kind,
        status=status,
        channel_status=channel_status,
        details=details,
        refund=refund,
        raw=dict(raw),
    )


# --------------------------------------------------------------------------- pure helpers

#: Keywords of the platforms' refund reason texts, checked in this order.
_REASON_KEYWORDS: tuple[tuple[RefundReason, tuple[str, ...]], ...] = (
    (RefundReason.NO_REASON, ("无理由", "不想要", "拍错", "多拍", "不喜欢", "no reason")),
    (RefundReason.NOT_RECEIVED, ("未收到", "没收到", "未到货", "没有收到", "not received")),
    (RefundReason.WRONG_ITEM, ("错发", "发错", "漏发", "少件", "少发", "wrong item")),
    (RefundReason.DAMAGED, ("破损", "损坏", "压坏", "碎了", "damaged")),
)


def classify_reason(text: str | None) -> RefundReason:
    """Normalise a platform's refund reason text.

    Marketplaces give the reason as a label picked by the buyer (Taobao ``reason``,
    Douyin ``reason`` …); the labels differ slightly per platform but share their key
    words, so matching words is more robust than matching whole labels.

    >>> classify_reason("七天无理由退换货"), classify_reason("收到商品破损")
    (<RefundReason.NO_REASON: 'no_reason'>, <RefundReason.DAMAGED: 'damaged'>)
    >>> classify_reason("商家发错货"), classify_reason("未收到货"), classify_reason("其他")
    (<RefundReason.WRONG_ITEM: 'wrong_item'>, <RefundReason.NOT_RECEIVED: 'not_received'>, \
<RefundReason.OTHER: 'other'>)
    """
    if not text:
        return RefundReason.OTHER
    lowered = text.lower()
    for reason, words in _REASON_KEYWORDS:
        if any(word in lowered for word in words):
            return reason
    return RefundReason.OTHER


def strip_region(full: str, parts: Iterable[str | None]) -> str:
    """Remove leading region names from a full address, leaving the street detail.

    JD's ``fullAddress`` repeats province, city and county before the street.

    >>> strip_region("浙江杭州市西湖区文三路 1 号", ["浙江", "杭州市", "西湖区"])
    '文三路 1 号'
    >>> strip_region("文三路 1 号", ["浙江"])
    '文三路 1 号'
    """
    rest = full
    for part in parts:
        if part and rest.startswith(part):
            rest = rest[len(part):]
    return rest.strip()


def unit_price(total_fen: int, qty: int) -> int:
    """Per-unit price in fen from a line total, half-up on the fen.

    >>> unit_price(2997, 3), unit_price(1000, 3), unit_price(1001, 2)
    (999, 333, 501)
    """
    if qty < 1:
        raise InvalidInputError.must("qty", "a positive integer", qty)
    return (2 * total_fen + qty) // (2 * qty)  # exact for any size (a Decimal quotient has 28 digits)


def positive(value: int, *, field: str) -> int:
    """A quantity that must be at least 1, or an error naming the field."""
    if value < 1:
        raise InvalidInputError.must(field, "a positive integer", value)
    return value


def hashed(hasher: PiiHasher, kind: str, value: str | None) -> str | None:
    """HMAC of a personal identifier, or ``None`` when the channel did not give it."""
    if value is None or not value.strip():
        return None
    return hasher.hash(kind, value)


def receiver_hash(hasher: PiiHasher, *, token: str | None, name: str | None) -> str | None:
    """Receiver identity: the channel's encrypted name token if any, else the (masked) name.

    A token is stable per person within the channel; a masked name (``张**``) is weak
    but still separates receivers; both are hashed under different namespaces so they
    never collide.
    """
    return hashed(hasher, "receiver-token", token) or hashed(hasher, "receiver", name)


def first_text(values: Iterable[str | None]) -> str | None:
    """The first non-empty string, or ``None``.

    >>> first_text([None, "", "SF1"])
    'SF1'
    """
    for value in values:
        if value:
            return value
    return None
