"""Facts: what features aggregate, derived from orders and labels by one function.

An order is not aggregated directly. It is turned into *facts*, each with its own
event time and identity, and every feature counts, sums or distinct-counts facts of
one kind for one entity in a window (``features.windows``):

* ``order`` - one per order, at ``details.created_at``;
* ``line`` - one per order line, at ``details.created_at`` (SKU-level features);
* ``refund`` - the order's refund claim, at ``refund.requested_at``, with the reason
  and whether the parcel had been delivered before the claim (from the timeline);
* ``unpaid_close`` - an order cancelled or closed while its timeline never reached payment
  (abandoned, or timed out holding stock), at the cancel/close time: an order scored at
  creation sees only the closes that happened before it;
* ``label`` - a reviewer verdict, at ``labeled_at``, carrying the labelled order's
  entity values: "confirmed frauds on this device" reads labels known by ``t``, never
  labels that came later.

The facts of one order form a *group* (id = order key) versioned by
``order.event_version``: a store keeps only the newest version of a group, so applying
the same or an older version is a no-op and a newer version replaces the order's
facts wholesale (changed address, a refund claim that appeared). The order carries only
its newest refund claim, so an earlier claim it replaced stops counting. Each label is its own
group, immutable. :func:`order_facts` and :func:`label_facts` are the only producers
of facts; the batch and online engines both call them.

Only what is known when the fact happens goes into it: the order's status is *not* an
attribute (the final status of a past order is future information for its features).

Order facts also carry what a reviewer reads off the order itself: a virtual-operator
phone, a pick-up-station / temporary address, night-time (00:00-06:59) and weekend in
Beijing time, a whole-thousand amount without a buyer message, the highest and lowest
line price. The same values are the order's *attributes* (``order_attributes``), which a
feature set may carry as they are (``features.specs.AttributeSpec``), plus one that needs
reference data: ``phone_delivery_km``, the distance between the phone number's home city
and the delivery district (``orderguard.enrich.Gazetteer``). That one is an attribute
only, never a fact attribute, so facts kept in a durable store never depend on which
version of the reference data computed them.

Entity keys: ``user`` is ``channel:account_id`` (ids are unique only per channel),
``shop`` is ``channel:shop_id``, ``address`` a hash of the normalised full address,
``phone``/``id_card``/``wifi`` the PII hashes the adapters computed, ``sku`` the
channel's SKU id, and the pairs ``device_sku``/``user_sku``/``address_sku``/``user_address``
join the two keys with ``|`` (``user_address``: "has this account shipped here before").
``sku`` and the SKU pairs exist on line facts (and on refund facts that name a SKU): an
order has as many of them as it has distinct SKUs. ``user_device`` ("has this account
ordered from this device before") and ``user_cart`` (the account plus a digest of the
SKUs and quantities, ``cart_key``: "the same cart again") are single-valued like
``user_address``.

Two more reference attributes read shop configuration rather than the order alone
(``orderguard.settings.ReferenceSettings``, held by the gazetteer): ``phone_warehouse_km``,
the phone's home city to the shop's ship-from warehouse, and ``urgent_note``, a buyer
note asking for rushed shipping. Like ``phone_delivery_km`` they never enter facts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from features.windows import to_us
from orderguard.clock import SHOP_TZ
from orderguard.enrich import Gazetteer, address_text, is_virtual_phone, pickup_keyword
from orderguard.schema import (
    Address,
    Channel,
    Label,
    Order,
    OrderDetails,
    OrderLine,
    OrderStatus,
    RefundReason,
    Verdict,
)

if TYPE_CHECKING:
    from features.declared import Declarations

#: Value of one fact attribute. ``None`` means unknown (skipped by numeric aggregates).
AttrValue = int | float | str | bool | None


class FactKind(StrEnum):
    """The kinds of facts features aggregate."""

    ORDER = "order"
    LINE = "line"
    REFUND = "refund"
    UNPAID_CLOSE = "unpaid_close"
    LABEL = "label"


class Entity(StrEnum):
    """What a feature is grouped by."""

    ORDER = "order"
    USER = "user"
    DEVICE = "device"
    IP = "ip"
    IP_PREFIX = "ip_prefix"
    WIFI = "wifi"
    ADDRESS = "address"
    PHONE = "phone"
    ID_CARD = "id_card"
    SHOP = "shop"
    SKU = "sku"
    DEVICE_SKU = "device_sku"
    USER_SKU = "user_sku"
    ADDRESS_SKU = "address_sku"
    USER_ADDRESS = "user_address"
    USER_DEVICE = "user_device"
    USER_CART = "user_cart"


class AttrType(StrEnum):
    """Type of a fact attribute, deciding which aggregations and filters apply."""

    NUMBER = "number"  # int or float; summed, averaged, compared
    CATEGORY = "category"  # a string; compared for (in)equality or membership
    FLAG = "flag"  # a bool; filtered on, or aggregated as 0/1


#: Entities that take one value per order (or none).
ORDER_ENTITIES: tuple[Entity, ...] = (
    Entity.ORDER, Entity.USER, Entity.DEVICE, Entity.IP, Entity.IP_PREFIX, Entity.WIFI, Entity.ADDRESS, Entity.PHONE,
    Entity.ID_CARD, Entity.SHOP, Entity.USER_ADDRESS, Entity.USER_DEVICE, Entity.USER_CART,
)
#: The entities a buyer's device, network, address or person is known by: what the accounts of a ring share.
IDENTITY_ENTITIES: tuple[Entity, ...] = (Entity.DEVICE, Entity.WIFI, Entity.IP, Entity.ADDRESS, Entity.PHONE,
                                         Entity.ID_CARD)
#: Entities with one value per order line: an order has as many keys as distinct SKUs.
LINE_ENTITIES: tuple[Entity, ...] = (Entity.SKU, Entity.DEVICE_SKU, Entity.USER_SKU, Entity.ADDRESS_SKU)
MULTI_VALUED: frozenset[Entity] = frozenset(LINE_ENTITIES)

# The plain-string form of each entity: the keys of ``Fact.entities`` (see ``Fact`` for why).
_ORDER: Final = Entity.ORDER.value
_USER: Final = Entity.USER.value
_DEVICE: Final = Entity.DEVICE.value
_IP: Final = Entity.IP.value
_IP_PREFIX: Final = Entity.IP_PREFIX.value
_WIFI: Final = Entity.WIFI.value
_ADDRESS: Final = Entity.ADDRESS.value
_PHONE: Final = Entity.PHONE.value
_ID_CARD: Final = Entity.ID_CARD.value
_SHOP: Final = Entity.SHOP.value
_SKU: Final = Entity.SKU.value
_DEVICE_SKU: Final = Entity.DEVICE_SKU.value
_USER_SKU: Final = Entity.USER_SKU.value
_ADDRESS_SKU: Final = Entity.ADDRESS_SKU.value
_USER_ADDRESS: Final = Entity.USER_ADDRESS.value
_USER_DEVICE: Final = Entity.USER_DEVICE.value
_USER_CART: Final = Entity.USER_CART.value
_LINE_KEYS: tuple[str, ...] = tuple(e.value for e in LINE_ENTITIES)

#: Which entities each kind of fact carries.
ENTITIES_BY_KIND: Mapping[FactKind, frozenset[Entity]] = MappingProxyType({
    FactKind.ORDER: frozenset(ORDER_ENTITIES),
    FactKind.LINE: frozenset(ORDER_ENTITIES + LINE_ENTITIES),
    FactKind.REFUND: frozenset(ORDER_ENTITIES + LINE_ENTITIES),
    FactKind.UNPAID_CLOSE: frozenset(ORDER_ENTITIES),
    FactKind.LABEL: frozenset(ORDER_ENTITIES),
})

_N, _C, _F = AttrType.NUMBER, AttrType.CATEGORY, AttrType.FLAG
#: The attributes of each kind of fact: the fields features may aggregate or filter on.
ATTRIBUTES: Mapping[FactKind, Mapping[str, AttrType]] = MappingProxyType({
    FactKind.ORDER: MappingProxyType({
        "channel": _C, "province": _C, "city": _C, "paid_fen": _N, "goods_fen": _N, "discount_fen": _N,
        "coupon_fen": _N, "shipping_fen": _N, "units": _N, "line_count": _N, "coupons": _N,
        "has_coupon": _F, "account_age_days": _N, "member_level": _N,
        "max_unit_price_fen": _N, "min_unit_price_fen": _N, "virtual_phone": _F, "pickup_address": _F,
        "night": _F, "weekend": _F, "whole_thousand_no_message": _F,
    }),
    FactKind.LINE: MappingProxyType({
        "channel": _C, "sku": _C, "units": _N, "unit_price_fen": _N, "line_fen": _N, "list_price_fen": _N,
    }),
    FactKind.REFUND: MappingProxyType({
        "channel": _C, "sku": _C, "reason": _C, "refund_fen": _N, "delivered_before_claim": _F,
        "claim_hours": _N,
    }),
    FactKind.UNPAID_CLOSE: MappingProxyType({"channel": _C, "open_hours": _N}),
    FactKind.LABEL: MappingProxyType({"channel": _C, "verdict": _C}),
})

#: Order-level attributes (``order_attributes``): the order fact's attributes plus those computed
#: from reference data, which stay out of facts (see the module docstring).
ORDER_ATTRIBUTES: Mapping[str, AttrType] = MappingProxyType({
    **ATTRIBUTES[FactKind.ORDER], "phone_delivery_km": _N, "phone_warehouse_km": _N, "urgent_note": _F,
})
#: Order attributes that need a :class:`~orderguard.enrich.Gazetteer` to be computed.
REFERENCE_ATTRIBUTES: frozenset[str] = frozenset({"phone_delivery_km", "phone_warehouse_km", "urgent_note"})

#: Closed vocabularies of categorical attributes; filters naming other values are config errors.
CATEGORY_VALUES: Mapping[str, frozenset[str]] = MappingProxyType({
    "channel": frozenset(Channel),
    "reason": frozenset(RefundReason),
    "verdict": frozenset(Verdict),
})

#: ``count``/``time_since`` fields: the plural of the fact kind they count.
COUNT_FIELDS: Mapping[str, FactKind] = MappingProxyType({
    "orders": FactKind.ORDER, "lines": FactKind.LINE, "refunds": FactKind.REFUND, "labels": FactKind.LABEL,
    "unpaid_closes": FactKind.UNPAID_CLOSE,
})

#: ``distinct`` fields: the plural of the entity whose distinct values are counted.
DISTINCT_FIELDS: Mapping[str, Entity] = MappingProxyType({
    "orders": Entity.ORDER, "users": Entity.USER, "devices": Entity.DEVICE, "ips": Entity.IP,
    "wifis": Entity.WIFI, "addresses": Entity.ADDRESS, "phones": Entity.PHONE, "id_cards": Entity.ID_CARD,
    "shops": Entity.SHOP, "skus": Entity.SKU,
})

_DELIVERED = frozenset({OrderStatus.DELIVERED, OrderStatus.COMPLETED})
_SECONDS_PER_DAY = 86400.0
#: Night is 00:00-06:59 Beijing time: hours before this one.
NIGHT_ENDS_HOUR = 7
#: "Whole-thousand" amounts are multiples of 1,000 yuan, in fen.
WHOLE_THOUSAND_FEN = 100_000


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing that happened, at one event time, to a set of entities.

    Attributes:
        kind: what kind of fact it is.
        ts: event time in microseconds since the epoch (``features.windows.to_us``).
        fact_id: unique among all facts (order key plus a suffix).
        entities: the entity keys this fact belongs to, by entity (its string value,
            ``"device"``; an ``Entity`` member looks it up as well, being that string);
            an entity the fact has no value for is absent. Plain strings on both sides
            keep the mapping out of the garbage collector's reach: a store holds
            millions of these, and a dict keyed by enum members is a container the
            collector walks on every young-generation pass.
        attrs: the attributes of its kind (``ATTRIBUTES[kind]``); unknown values are ``None``.
    """

    kind: FactKind
    ts: int
    fact_id: str
    entities: Mapping[str, str]
    attrs: Mapping[str, AttrValue]


@dataclass(frozen=True, slots=True)
class FactGroup:
    """The facts that are replaced together: an order's facts, or one label.

    Attributes:
        group_id: the order key for order facts, ``<order key>/label/...`` for a label.
        version: the order's ``event_version``; a store keeps the highest version only.
        facts: the group's facts (possibly empty).
    """

    group_id: str
    version: int
    facts: tuple[Fact, ...]

    @property
    def max_ts(self) -> int:
        """Event time of the newest fact (microseconds); decides when the group is evicted."""
        return max((f.ts for f in self.facts), default=0)


def address_key(address: Address) -> str:
    """Stable short key of a delivery address: the keyed hash stored at ingest (``Address.key``).

    An address built without ingest (tests, simulations) has no stored key; it gets an
    unkeyed digest of the same normalised text (``orderguard.enrich.address_text``).

    >>> a = Address("浙江省", "杭州市", "西湖区", "文三路 100 号")
    >>> address_key(a) == address_key(Address("浙江省", "杭州市", "西湖区", "文三路100号"))
    True
    >>> len(address_key(a)), address_key(Address("浙江省", "杭州市", "西湖区", "***", key="k1"))
    (24, 'k1')
    """
    if address.key is not None:
        return address.key
    return hashlib.blake2b(address_text(address).encode(), digest_size=12).hexdigest()


def cart_key(lines: Iterable[OrderLine]) -> str:
    """What makes two orders "the same cart": the SKUs and their quantities, in any line order.

    >>> def cart(*lines: tuple[str, int]) -> str:
    ...     return cart_key(OrderLine(sku, qty, 100) for sku, qty in lines)
    >>> cart(("a", 1), ("b", 2)) == cart(("b", 2), ("a", 1)), cart(("a", 1)) == cart(("a", 2))
    (True, False)
    """
    units: dict[str, int] = {}
    for line in lines:
        units[line.sku_id] = units.get(line.sku_id, 0) + line.qty
    text = "\n".join(f"{sku}\t{qty}" for sku, qty in sorted(units.items()))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _order_entities(order: Order, *, channel: str | None = None, declared: Declarations | None = None,
                    attrs: Mapping[str, AttrValue] | None = None) -> dict[str, str]:
    details = order.details
    channel = channel if channel is not None else order.key.channel.value
    keys: dict[str, str] = {_ORDER: f"{channel}:{order.key.channel_order_id}", _SHOP: f"{channel}:{details.shop_id}"}
    if details.buyer.account_id:
        keys[_USER] = f"{channel}:{details.buyer.account_id}"
    client = details.client
    if client is not None:
        if client.device_id:
            keys[_DEVICE] = client.device_id
        if client.ip:
            keys[_IP] = client.ip
        if client.ip_prefix:
            keys[_IP_PREFIX] = client.ip_prefix
        if client.wifi_hash:
            keys[_WIFI] = client.wifi_hash
    if details.address is not None:
        keys[_ADDRESS] = address_key(details.address)
    if details.buyer.phone is not None and details.buyer.phone.hash:
        keys[_PHONE] = details.buyer.phone.hash
    if details.buyer.id_card_hash:
        keys[_ID_CARD] = details.buyer.id_card_hash
    if _USER in keys and _ADDRESS in keys:
        keys[_USER_ADDRESS] = f"{keys[_USER]}|{keys[_ADDRESS]}"
    if _USER in keys and _DEVICE in keys:
        keys[_USER_DEVICE] = f"{keys[_USER]}|{keys[_DEVICE]}"
    if _USER in keys and details.lines:
        keys[_USER_CART] = f"{keys[_USER]}|{cart_key(details.lines)}"
    if declared:
        if attrs is None:
            attrs = _order_attrs(order, details, channel=channel, declared=declared)
        keys.update(declared.entity_keys(keys, attrs, details.attributes))
    return keys


def identity_keys(order: Order) -> dict[str, str]:
    """``order``'s device, WiFi, IP, address, phone and id-card keys by entity name (absent ones left out): the
    same keys every feature groups by, so what links two orders on the review desk is what the features count."""
    keys = _order_entities(order)
    return {entity.value: keys[entity.value] for entity in IDENTITY_ENTITIES if entity.value in keys}


def _with_sku(base: Mapping[str, str], sku: str | None) -> dict[str, str]:
    keys = dict(base)
    if not sku:
        return keys
    keys[_SKU] = sku
    for pair, entity in ((_DEVICE_SKU, _DEVICE), (_USER_SKU, _USER), (_ADDRESS_SKU, _ADDRESS)):
        if entity in base:
            keys[pair] = f"{base[entity]}|{sku}"
    return keys


def entity_keys(order: Order, *, declared: Declarations | None = None) -> dict[str, tuple[str, ...]]:
    """Every entity key of an order: one per single-valued entity, one per distinct SKU for the rest.

    Keyed by entity (its string value; ``Entity`` members look keys up as well). This is
    what an online lookup for the order reads; an entity the order has no value for is
    absent. ``declared`` adds the keys of a feature set's declared entities.
    """
    base = _order_entities(order, declared=declared)
    keys: dict[str, tuple[str, ...]] = {e: (k,) for e, k in base.items()}
    multi: dict[str, list[str]] = {}
    for line in order.details.lines:
        for entity, key in _with_sku(base, line.sku_id).items():
            if entity in _LINE_KEYS and key not in multi.setdefault(entity, []):
                multi[entity].append(key)
    keys.update({e: tuple(v) for e, v in multi.items()})
    return keys


def group_keys(group: FactGroup) -> dict[str, tuple[str, ...]]:
    """The entity keys of the order whose facts ``group`` holds: ``entity_keys`` without re-deriving them.

    Reads the order fact and the line facts (what ``entity_keys`` reads from the order),
    so an engine that has just built an order's facts looks the order up without
    hashing its address again. A group without an order fact (a label) has no keys.
    """
    keys: dict[str, tuple[str, ...]] = {}
    multi: dict[str, list[str]] = {}
    for fact in group.facts:
        if fact.kind is FactKind.ORDER:
            keys.update((e, (k,)) for e, k in fact.entities.items())
        elif fact.kind is FactKind.LINE:
            entities = fact.entities
            for entity in _LINE_KEYS:
                key = entities.get(entity)
                if key is not None and key not in multi.setdefault(entity, []):
                    multi[entity].append(key)
    keys.update({e: tuple(v) for e, v in multi.items() if v})
    return keys


def beijing_flags(at: datetime) -> tuple[bool, bool]:
    """``(night, weekend)``: 00:00-06:59, and Saturday or Sunday, in Beijing time (the day buyers live in).

    >>> from datetime import UTC
    >>> [beijing_flags(datetime(2024, 11, 10, h, 59, tzinfo=UTC))[0] for h in (15, 16, 22, 23)]
    [False, True, True, False]
    >>> saturday, monday = datetime(2024, 11, 8, 16, 0, tzinfo=UTC), datetime(2024, 11, 10, 16, 0, tzinfo=UTC)
    >>> beijing_flags(saturday), beijing_flags(monday)
    ((True, True), (True, False))
    """
    local = at.astimezone(SHOP_TZ)
    return local.hour < NIGHT_ENDS_HOUR, local.weekday() >= 5


def is_whole_thousand_without_message(paid_fen: int, buyer_message: str) -> bool:
    """A positive multiple of 1,000 yuan paid with no buyer message (cash-out and test-card orders look so).

    >>> is_whole_thousand_without_message(200_000, ""), is_whole_thousand_without_message(200_000, "请尽快发货")
    (True, False)
    >>> is_whole_thousand_without_message(199_900, ""), is_whole_thousand_without_message(0, "")
    (False, False)
    """
    return paid_fen > 0 and paid_fen % WHOLE_THOUSAND_FEN == 0 and not buyer_message.strip()


def _order_attrs(order: Order, details: OrderDetails, *, channel: str | None = None,
                 declared: Declarations | None = None) -> dict[str, AttrValue]:
    """The order fact's attributes (``ATTRIBUTES[ORDER]``), in that order, then the declared ones."""
    amounts = details.amounts
    registered = details.buyer.registered_at
    address = details.address
    phone = details.buyer.phone
    prices = [line.unit_price_fen for line in details.lines]
    night, weekend = beijing_flags(details.created_at)
    attrs: dict[str, AttrValue] = {
        "channel": channel if channel is not None else order.key.channel.value,
        "province": address.province if address is not None else None,
        "city": address.city if address is not None else None,
        "paid_fen": amounts.paid_fen,
        "goods_fen": amounts.goods_fen,
        "discount_fen": amounts.discount_fen,
        "coupon_fen": amounts.coupon_fen,
        "shipping_fen": amounts.shipping_fen,
        "units": sum(line.qty for line in details.lines),
        "line_count": len(details.lines),
        "coupons": len(details.coupon_ids),
        "has_coupon": bool(details.coupon_ids) or amounts.coupon_fen > 0,
        "account_age_days": ((details.created_at - registered).total_seconds() / _SECONDS_PER_DAY
                             if registered is not None else None),
        "member_level": details.buyer.member_level,
        "max_unit_price_fen": max(prices) if prices else None,
        "min_unit_price_fen": min(prices) if prices else None,
        # unknown without a phone, or when the channel reveals none of its digits
        "virtual_phone": is_virtual_phone(phone) if phone is not None and phone.prefix else None,
        "pickup_address": pickup_keyword(address) is not None if address is not None else None,
        "night": night,
        "weekend": weekend,
        "whole_thousand_no_message": is_whole_thousand_without_message(amounts.paid_fen, details.buyer_message),
    }
    if declared:
        attrs.update(declared.attribute_values(details.attributes))
    return attrs


def reference_attributes(order: Order, *, gazetteer: Gazetteer | None) -> dict[str, AttrValue]:
    """The order attributes computed from reference data (``REFERENCE_ATTRIBUTES``).

    ``phone_delivery_km``: great-circle km between the phone number's home city and the
    delivery district; ``phone_warehouse_km``: between the phone's home city and the
    shop's ship-from warehouse (``orderguard.settings.ReferenceSettings``); ``None`` when
    a place is unknown (a masked phone reveals only 3 digits). ``urgent_note``: the buyer
    note asks for rushed shipping (the settings' keywords). All ``None`` without a gazetteer.
    """
    details = order.details
    if gazetteer is None:
        return {"phone_delivery_km": None, "phone_warehouse_km": None, "urgent_note": None}
    phone = details.buyer.phone
    return {"phone_delivery_km": gazetteer.phone_to_delivery_km(phone, details.address),
            "phone_warehouse_km": gazetteer.phone_to_warehouse_km(phone, details.shop_id),
            "urgent_note": gazetteer.urgent_keyword(details.buyer_message) is not None}


def reference_inputs(order: Order) -> tuple[str | None, str, str, str] | None:
    """Everything ``reference_attributes`` reads from an order: a cache key for its result.

    The phone's known digits (``None`` without a phone), the delivery region (province,
    city and district joined; empty without an address), the shop and the buyer note.
    Keep in step with ``reference_attributes``. (Never ``None``: the shop and the note
    always count; the optional type is what engines cache by.)
    """
    details = order.details
    phone, address = details.buyer.phone, details.address
    region = f"{address.province}|{address.city}|{address.district}" if address is not None else ""
    return phone.prefix if phone is not None else None, region, details.shop_id, details.buyer_message


def order_attributes(order: Order, *, gazetteer: Gazetteer | None = None,
                     declared: Declarations | None = None) -> dict[str, AttrValue]:
    """The order-level attributes (``ORDER_ATTRIBUTES``, plus declared ones) of an order's current state.

    The order fact's attributes plus the reference-data ones (``reference_attributes``).
    Both engines take order attributes from these two functions.
    """
    return {**_order_attrs(order, order.details, declared=declared),
            **reference_attributes(order, gazetteer=gazetteer)}


def _delivered_before(order: Order, claim_us: int) -> bool:
    return any(step.status in _DELIVERED and to_us(step.at) <= claim_us for step in order.timeline)


#: Statuses only a paid order reaches: an order that passed any of them was not closed unpaid.
_PAID_OR_LATER = frozenset({OrderStatus.AWAITING_GROUP, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED,
                            OrderStatus.COMPLETED, OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED,
                            OrderStatus.REFUND_REJECTED})
_CLOSING = frozenset({OrderStatus.CANCELLED, OrderStatus.CLOSED})


def unpaid_close_us(order: Order) -> int | None:
    """When ``order`` was cancelled or closed without ever being paid (microseconds), else ``None``.

    The first closing step counts: a channel that sends "cancelled" and then "closed" closed it once.
    """
    if order.details.paid_at is not None or any(step.status in _PAID_OR_LATER for step in order.timeline):
        return None
    closes = [to_us(step.at) for step in order.timeline if step.status in _CLOSING]
    return min(closes) if closes else None


def order_facts(order: Order, declared: Declarations | None = None) -> FactGroup:
    """The order, line and refund facts of an order's current state, as one versioned group.

    ``declared`` (a feature set's ``features.declared.Declarations``) adds its attributes
    to the order fact and its entities to every fact.
    """
    details = order.details
    created = to_us(details.created_at)
    channel = order.key.channel.value
    key = f"{channel}:{order.key.channel_order_id}"  # str(order.key)
    attrs = _order_attrs(order, details, channel=channel, declared=declared)
    base = _order_entities(order, channel=channel, declared=declared, attrs=attrs)
    facts: list[Fact] = [Fact(FactKind.ORDER, created, key, base, attrs)]
    for i, line in enumerate(details.lines):
        facts.append(Fact(FactKind.LINE, created, f"{key}/line/{i}", _with_sku(base, line.sku_id), {
            "channel": channel,
            "sku": line.sku_id,
            "units": line.qty,
            "unit_price_fen": line.unit_price_fen,
            "line_fen": line.qty * line.unit_price_fen,
            "list_price_fen": line.list_price_fen,
        }))
    refund = order.refund
    if refund is not None:
        claimed = to_us(refund.requested_at)
        facts.append(Fact(FactKind.REFUND, claimed, f"{key}/refund/{refund.refund_id}",
                          _with_sku(base, refund.sku_id), {
            "channel": channel,
            "sku": refund.sku_id,
            "reason": refund.reason.value,
            "refund_fen": refund.amount_fen,
            "delivered_before_claim": _delivered_before(order, claimed),
            "claim_hours": (claimed - created) / 3.6e9,
        }))
    closed = unpaid_close_us(order)
    if closed is not None:
        facts.append(Fact(FactKind.UNPAID_CLOSE, closed, f"{key}/unpaid_close", base, {
            "channel": channel, "open_hours": (closed - created) / 3.6e9}))
    return FactGroup(key, order.event_version, tuple(facts))


def label_group_id(label: Label) -> str:
    """Identity of a label: order key, label time and reviewer (a label never changes).

    >>> from datetime import UTC, datetime
    >>> from orderguard.schema import OrderKey
    >>> label_group_id(Label(OrderKey(Channel.JD, "9"), Verdict.CONFIRMED_FRAUD,
    ...                      datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC), "r1"))
    'jd:9/label/2000000/r1'
    """
    return f"{label.key}/label/{to_us(label.labeled_at)}/{label.reviewer_id}"


def label_facts(label: Label, order: Order, declared: Declarations | None = None) -> FactGroup:
    """The label fact of a reviewer verdict on ``order``, at ``labeled_at``.

    The fact carries the labelled order's entity values (as of the given version of
    the order), so "confirmed frauds on this device" is a plain count of label facts by
    device with ``verdict == confirmed_fraud``.
    """
    if label.key != order.key:
        raise ValueError(f"label is for {label.key}, order is {order.key}")
    group = label_group_id(label)
    fact = Fact(FactKind.LABEL, to_us(label.labeled_at), group, _order_entities(order, declared=declared),
                {"channel": order.key.channel.value, "verdict": label.verdict.value})
    return FactGroup(group, 0, (fact,))
