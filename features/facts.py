"""Facts: what features aggregate, derived from orders and labels by one function.

An order is not aggregated directly. It is turned into *facts*, each with its own
event time and identity, and every feature counts, sums or distinct-counts facts of
one kind for one entity in a window (``features.windows``):

* ``order`` - one per order, at ``details.created_at``;
* ``line`` - one per order line, at ``details.created_at`` (SKU-level features);
* ``refund`` - the order's refund claim, at ``refund.requested_at``, with the reason
  and whether the parcel had been delivered before the claim (from the timeline);
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

Entity keys: ``user`` is ``channel:account_id`` (ids are unique only per channel),
``shop`` is ``channel:shop_id``, ``address`` a hash of the normalised full address,
``phone``/``id_card``/``wifi`` the PII hashes the adapters computed, ``sku`` the
channel's SKU id, and the pairs ``device_sku``/``user_sku``/``address_sku`` join the
two keys with ``|``. ``sku`` and the pairs exist on line facts (and on refund facts that
name a SKU): an order has as many of them as it has distinct SKUs.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from features.windows import to_us
from orderguard.schema import Address, Channel, Label, Order, OrderStatus, RefundReason, Verdict

#: Value of one fact attribute. ``None`` means unknown (skipped by numeric aggregates).
AttrValue = int | float | str | bool | None


class FactKind(StrEnum):
    """The kinds of facts features aggregate."""

    ORDER = "order"
    LINE = "line"
    REFUND = "refund"
    LABEL = "label"


class Entity(StrEnum):
    """What a feature is grouped by."""

    ORDER = "order"
    USER = "user"
    DEVICE = "device"
    IP = "ip"
    WIFI = "wifi"
    ADDRESS = "address"
    PHONE = "phone"
    ID_CARD = "id_card"
    SHOP = "shop"
    SKU = "sku"
    DEVICE_SKU = "device_sku"
    USER_SKU = "user_sku"
    ADDRESS_SKU = "address_sku"


class AttrType(StrEnum):
    """Type of a fact attribute, deciding which aggregations and filters apply."""

    NUMBER = "number"  # int or float; summed, averaged, compared
    CATEGORY = "category"  # a string; compared for (in)equality or membership
    FLAG = "flag"  # a bool; filtered on, or aggregated as 0/1


#: Entities that take one value per order (or none).
ORDER_ENTITIES: tuple[Entity, ...] = (
    Entity.ORDER, Entity.USER, Entity.DEVICE, Entity.IP, Entity.WIFI, Entity.ADDRESS, Entity.PHONE,
    Entity.ID_CARD, Entity.SHOP,
)
#: Entities with one value per order line: an order has as many keys as distinct SKUs.
LINE_ENTITIES: tuple[Entity, ...] = (Entity.SKU, Entity.DEVICE_SKU, Entity.USER_SKU, Entity.ADDRESS_SKU)
MULTI_VALUED: frozenset[Entity] = frozenset(LINE_ENTITIES)

#: Which entities each kind of fact carries.
ENTITIES_BY_KIND: Mapping[FactKind, frozenset[Entity]] = MappingProxyType({
    FactKind.ORDER: frozenset(ORDER_ENTITIES),
    FactKind.LINE: frozenset(ORDER_ENTITIES + LINE_ENTITIES),
    FactKind.REFUND: frozenset(ORDER_ENTITIES + LINE_ENTITIES),
    FactKind.LABEL: frozenset(ORDER_ENTITIES),
})

_N, _C, _F = AttrType.NUMBER, AttrType.CATEGORY, AttrType.FLAG
#: The attributes of each kind of fact: the fields features may aggregate or filter on.
ATTRIBUTES: Mapping[FactKind, Mapping[str, AttrType]] = MappingProxyType({
    FactKind.ORDER: MappingProxyType({
        "channel": _C, "province": _C, "city": _C, "paid_fen": _N, "goods_fen": _N, "discount_fen": _N,
        "coupon_fen": _N, "shipping_fen": _N, "units": _N, "line_count": _N, "coupons": _N,
        "has_coupon": _F, "account_age_days": _N, "member_level": _N,
    }),
    FactKind.LINE: MappingProxyType({
        "channel": _C, "sku": _C, "units": _N, "unit_price_fen": _N, "line_fen": _N, "list_price_fen": _N,
    }),
    FactKind.REFUND: MappingProxyType({
        "channel": _C, "sku": _C, "reason": _C, "refund_fen": _N, "delivered_before_claim": _F,
        "claim_hours": _N,
    }),
    FactKind.LABEL: MappingProxyType({"channel": _C, "verdict": _C}),
})

#: Closed vocabularies of categorical attributes; filters naming other values are config errors.
CATEGORY_VALUES: Mapping[str, frozenset[str]] = MappingProxyType({
    "channel": frozenset(Channel),
    "reason": frozenset(RefundReason),
    "verdict": frozenset(Verdict),
})

#: ``count``/``time_since`` fields: the plural of the fact kind they count.
COUNT_FIELDS: Mapping[str, FactKind] = MappingProxyType({
    "orders": FactKind.ORDER, "lines": FactKind.LINE, "refunds": FactKind.REFUND, "labels": FactKind.LABEL,
})

#: ``distinct`` fields: the plural of the entity whose distinct values are counted.
DISTINCT_FIELDS: Mapping[str, Entity] = MappingProxyType({
    "orders": Entity.ORDER, "users": Entity.USER, "devices": Entity.DEVICE, "ips": Entity.IP,
    "wifis": Entity.WIFI, "addresses": Entity.ADDRESS, "phones": Entity.PHONE, "id_cards": Entity.ID_CARD,
    "shops": Entity.SHOP, "skus": Entity.SKU,
})

_DELIVERED = frozenset({OrderStatus.DELIVERED, OrderStatus.COMPLETED})
_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing that happened, at one event time, to a set of entities.

    Attributes:
        kind: what kind of fact it is.
        ts: event time in microseconds since the epoch (``features.windows.to_us``).
        fact_id: unique among all facts (order key plus a suffix).
        entities: the entity keys this fact belongs to; an entity the fact has no value
            for is absent.
        attrs: the attributes of its kind (``ATTRIBUTES[kind]``); unknown values are ``None``.
    """

    kind: FactKind
    ts: int
    fact_id: str
    entities: Mapping[Entity, str]
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


_SPACE_PUNCT = re.compile(r"[\s\u3000,，.。;；:：\-_/#()（）\[\]【】]+")


def normalise_address_part(text: str) -> str:
    """NFKC, lower case, no spaces or punctuation: the form addresses are matched in.

    >>> normalise_address_part(" 幸福路１２号 3-201 ") == normalise_address_part("幸福路12号3201")
    True
    """
    return _SPACE_PUNCT.sub("", unicodedata.normalize("NFKC", text)).lower()


def address_key(address: Address) -> str:
    """Stable short key of a delivery address (not a PII hash: the detail is kept in clear anyway).

    >>> a = Address("浙江省", "杭州市", "西湖区", "文三路 100 号")
    >>> address_key(a) == address_key(Address("浙江省", "杭州市", "西湖区", "文三路100号"))
    True
    >>> len(address_key(a))
    24
    """
    parts = (address.province, address.city, address.district, address.detail)
    text = "|".join(normalise_address_part(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _order_entities(order: Order) -> dict[Entity, str]:
    details = order.details
    channel = order.key.channel.value
    keys: dict[Entity, str] = {Entity.ORDER: str(order.key), Entity.SHOP: f"{channel}:{details.shop_id}"}
    if details.buyer.account_id:
        keys[Entity.USER] = f"{channel}:{details.buyer.account_id}"
    client = details.client
    if client is not None:
        if client.device_id:
            keys[Entity.DEVICE] = client.device_id
        if client.ip:
            keys[Entity.IP] = client.ip
        if client.wifi_hash:
            keys[Entity.WIFI] = client.wifi_hash
    if details.address is not None:
        keys[Entity.ADDRESS] = address_key(details.address)
    if details.buyer.phone is not None and details.buyer.phone.hash:
        keys[Entity.PHONE] = details.buyer.phone.hash
    if details.buyer.id_card_hash:
        keys[Entity.ID_CARD] = details.buyer.id_card_hash
    return keys


def _with_sku(base: Mapping[Entity, str], sku: str | None) -> dict[Entity, str]:
    keys = dict(base)
    if not sku:
        return keys
    keys[Entity.SKU] = sku
    for pair, entity in ((Entity.DEVICE_SKU, Entity.DEVICE), (Entity.USER_SKU, Entity.USER),
                         (Entity.ADDRESS_SKU, Entity.ADDRESS)):
        if entity in base:
            keys[pair] = f"{base[entity]}|{sku}"
    return keys


def entity_keys(order: Order) -> dict[Entity, tuple[str, ...]]:
    """Every entity key of an order: one per single-valued entity, one per distinct SKU for the rest.

    This is what an online lookup for the order reads; an entity the order has no value
    for is absent.
    """
    base = _order_entities(order)
    keys: dict[Entity, tuple[str, ...]] = {e: (k,) for e, k in base.items()}
    multi: dict[Entity, list[str]] = {}
    for line in order.details.lines:
        for entity, key in _with_sku(base, line.sku_id).items():
            if entity in MULTI_VALUED and key not in multi.setdefault(entity, []):
                multi[entity].append(key)
    keys.update({e: tuple(v) for e, v in multi.items()})
    return keys


def _delivered_before(order: Order, claim_us: int) -> bool:
    return any(step.status in _DELIVERED and to_us(step.at) <= claim_us for step in order.timeline)


def order_facts(order: Order) -> FactGroup:
    """The order, line and refund facts of an order's current state, as one versioned group."""
    details = order.details
    created = to_us(details.created_at)
    channel = order.key.channel.value
    key = str(order.key)
    base = _order_entities(order)
    amounts = details.amounts
    registered = details.buyer.registered_at
    address = details.address
    facts: list[Fact] = [Fact(FactKind.ORDER, created, key, base, {
        "channel": channel,
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
    })]
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


def label_facts(label: Label, order: Order) -> FactGroup:
    """The label fact of a reviewer verdict on ``order``, at ``labeled_at``.

    The fact carries the labelled order's entity values (as of the given version of
    the order), so "confirmed frauds on this device" is a plain count of label facts by
    device with ``verdict == confirmed_fraud``.
    """
    if label.key != order.key:
        raise ValueError(f"label is for {label.key}, order is {order.key}")
    group = label_group_id(label)
    fact = Fact(FactKind.LABEL, to_us(label.labeled_at), group, _order_entities(order),
                {"channel": order.key.channel.value, "verdict": label.verdict.value})
    return FactGroup(group, 0, (fact,))
