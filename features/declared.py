"""Declared attributes and entities: a feature set's own vocabulary beyond the shop's.

The shop's feature set speaks of devices, WiFi, addresses and coupons. A data scientist
who brings years of history from another system brings its own columns (a card type, a
payment-risk score, an email domain) and its own identities (a card, an email, a billing
region). Ingest keeps those columns as the order's *source attributes*
(``OrderDetails.attributes``, ``orderguard.ingest.attributes``), untyped; a feature set
gives them a type and a meaning by declaring them::

    declare:
      attributes:
        - {name: amount_usd, type: number, unit: USD}
        - {name: card_type, type: category, values: [debit, credit, charge]}
        - {name: upstream_flag, type: flag, source: flag_v2, missing: false}
      entities:
        - {name: card, of: [card1, card2], pii: true}
        - {name: email_domain, of: [p_email]}

A declared **attribute** becomes an attribute of order facts: windowed aggregates sum,
average or filter on it (``{entity: card, field: amount_usd, agg: mean, window: 7d}``),
``attributes: [amount_usd]`` serves it as a model input (``order_amount_usd``), and rules
cite those features by name. Its value is read from the source attribute ``source``
(the name by default) and coerced to its type; a value that is absent or cannot be read
as the type takes the ``missing`` policy (missing by default). A categorical attribute
used as a model input needs its ``values``: the input is the value's position in that
list (any other value is ``len(values)``), a code the trees can split on.

A declared **entity** is a key made of one or more parts - source attributes (declared
or not), attributes of the order fact (``province``, ``channel``...) or the order's own
entity keys (``user``, ``device``...) - joined with ``|``; an order missing any part has
no key. ``pii: true`` stores the key only as a digest, so a card number in an attribute
never becomes a readable key of the online store. Every fact of an order carries its
declared entities (order, line, refund and label facts alike), so "orders on this card
in 24 h", "distinct cards of this account" (``field: cards``, the entity's ``plural``)
and "confirmed frauds on this card" are the same specs as for a device.

Both engines take facts from ``features.facts.order_facts``, which reads the
declarations from here: the online/batch parity holds for declared features as for the
shop's.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict

from features.facts import (
    ATTRIBUTES,
    CATEGORY_VALUES,
    COUNT_FIELDS,
    DISTINCT_FIELDS,
    ENTITIES_BY_KIND,
    ORDER_ATTRIBUTES,
    ORDER_ENTITIES,
    AttrType,
    AttrValue,
    Entity,
    FactKind,
)
from orderguard.errors import ConfigError
from orderguard.schema import AttributeValue

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
#: Most parts one declared entity's key may have.
MAX_KEY_PARTS = 4
_TRUE = frozenset({"1", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "f"})


class EntityName(str):
    """The name of a declared entity, usable where an :class:`~features.facts.Entity` member is.

    Both are strings (the keys of ``Fact.entities``) with a ``value``, so the engines and
    the stores treat a declared entity exactly as a built-in one.

    >>> EntityName("card").value, EntityName("card") == "card"
    ('card', True)
    """

    __slots__ = ()

    @property
    def value(self) -> str:
        """The name itself (what ``Entity.value`` is for a built-in entity)."""
        return str(self)


#: A built-in or a declared entity.
EntityRef = Entity | EntityName


@dataclass(frozen=True, slots=True)
class DeclaredAttribute:
    """One declared order attribute (see the module docstring).

    Attributes:
        name: snake_case; the fact attribute's name (and ``order_{name}`` as a model input).
        type: number, category or flag.
        source: the source attribute it is read from (``OrderDetails.attributes``).
        unit: what a number is counted in, for people reading the features (``USD``, ``s``).
        missing: the value when the source is absent or unreadable; ``None`` = missing.
        values: a category's known values, in code order (needed to serve it as an input).
    """

    name: str
    type: AttrType
    source: str
    unit: str | None = None
    missing: AttrValue = None
    values: tuple[str, ...] | None = None

    def read(self, attributes: Mapping[str, AttributeValue]) -> AttrValue:
        """The attribute's value on an order with these source attributes (coerced; policy when missing).

        >>> DeclaredAttribute("amt", AttrType.NUMBER, "amt").read({"amt": "1,234.5"})
        1234.5
        >>> DeclaredAttribute("vip", AttrType.FLAG, "vip", missing=False).read({"vip": "maybe"})
        False
        >>> DeclaredAttribute("card", AttrType.CATEGORY, "card").read({"card": 12.0})
        '12'
        """
        raw = attributes.get(self.source)
        value = None if raw is None else _coerce(raw, self.type)
        return self.missing if value is None else value

    def code(self, value: AttrValue) -> float:
        """The model input of a value: numbers and flags as floats, a category its position in ``values``.

        >>> DeclaredAttribute("t", AttrType.CATEGORY, "t", values=("a", "b")).code("b")
        1.0
        >>> DeclaredAttribute("t", AttrType.CATEGORY, "t", values=("a", "b")).code("zz")
        2.0
        """
        if value is None:
            return math.nan
        if self.type is AttrType.CATEGORY:
            known = self.values or ()
            text = str(value)
            return float(known.index(text)) if text in known else float(len(known))
        return float(value)

    def to_data(self) -> dict[str, Any]:
        """The YAML/dict form."""
        data: dict[str, Any] = {"name": self.name, "type": self.type.value}
        if self.source != self.name:
            data["source"] = self.source
        if self.unit is not None:
            data["unit"] = self.unit
        if self.missing is not None:
            data["missing"] = self.missing
        if self.values is not None:
            data["values"] = list(self.values)
        return data


def _coerce(raw: AttributeValue, attr_type: AttrType) -> AttrValue:
    if attr_type is AttrType.NUMBER:
        if isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, int | float):
            return float(raw) if math.isfinite(raw) else None
        try:
            number = float(raw.replace(",", "").strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if attr_type is AttrType.FLAG:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int | float):
            return bool(raw) if raw in (0, 1) else None
        text = raw.strip().lower()
        return True if text in _TRUE else (False if text in _FALSE else None)
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


@dataclass(frozen=True, slots=True)
class DeclaredEntity:
    """One declared entity: a key made of parts of the order (see the module docstring).

    Attributes:
        name: snake_case; what specs group by (``entity: card``).
        parts: source attributes, order-fact attributes or built-in entity names.
        pii: keep only a digest of the key.
        plural: the ``distinct`` field counting it (``cards``).
        label_zh: how a reason names it in Chinese (``同一银行卡``); defaults to the name.
        label_en: how a reason names it in English (``this card``); defaults to ``this {name}``.
    """

    name: str
    parts: tuple[str, ...]
    pii: bool = False
    plural: str = ""
    label_zh: str = ""
    label_en: str = ""

    @property
    def ref(self) -> EntityName:
        """The name, as an entity."""
        return EntityName(self.name)

    def key(self, parts: Mapping[str, object]) -> str | None:
        """The key of an order whose part values are ``parts``; ``None`` when a part is missing.

        >>> DeclaredEntity("card", ("card1", "card2")).key({"card1": "4111", "card2": 12})
        '4111|12'
        >>> DeclaredEntity("card", ("card1", "card2")).key({"card1": "4111"}) is None
        True
        >>> len(DeclaredEntity("card", ("card1",), pii=True).key({"card1": "4111"}) or "")
        32
        """
        values: list[str] = []
        for part in self.parts:
            value = parts.get(part)
            if value is None or value == "":
                return None
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            values.append(str(value))
        text = "|".join(values)
        if self.pii:
            return hashlib.blake2b(f"{self.name}:{text}".encode(), digest_size=16).hexdigest()
        return text

    def to_data(self) -> dict[str, Any]:
        """The YAML/dict form."""
        data: dict[str, Any] = {"name": self.name, "of": list(self.parts)}
        if self.pii:
            data["pii"] = True
        if self.plural != f"{self.name}s":
            data["plural"] = self.plural
        if self.label_zh or self.label_en:
            data["label"] = {"zh": self.label_zh, "en": self.label_en}
        return data


@dataclass(frozen=True, slots=True)
class Declarations:
    """A feature set's declared attributes and entities; empty for the shop's set.

    Falsy when empty, so the fact producers skip the work for a set that declares nothing.
    """

    attributes: tuple[DeclaredAttribute, ...] = ()
    entities: tuple[DeclaredEntity, ...] = ()
    _catalog: Catalog | None = field(default=None, init=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.attributes or self.entities)

    def attribute_values(self, source: Mapping[str, AttributeValue]) -> dict[str, AttrValue]:
        """The declared attributes of an order with these source attributes."""
        return {a.name: a.read(source) for a in self.attributes}

    def entity_keys(self, base: Mapping[str, str], attrs: Mapping[str, AttrValue],
                    source: Mapping[str, AttributeValue]) -> dict[str, str]:
        """Keys of the declared entities, from the order's entity keys, fact attributes and source attributes."""
        if not self.entities:
            return {}
        parts: dict[str, object] = {**source, **attrs, **base}
        keys: dict[str, str] = {}
        for entity in self.entities:
            key = entity.key(parts)
            if key is not None:
                keys[entity.name] = key
        return keys

    @property
    def catalog(self) -> Catalog:
        """The vocabulary specs are checked against: the shop's plus these declarations."""
        if self._catalog is None:
            object.__setattr__(self, "_catalog", Catalog.of(self))
        assert self._catalog is not None
        return self._catalog

    def to_data(self) -> dict[str, Any]:
        """The YAML/dict form (``declare:``)."""
        data: dict[str, Any] = {}
        if self.attributes:
            data["attributes"] = [a.to_data() for a in self.attributes]
        if self.entities:
            data["entities"] = [e.to_data() for e in self.entities]
        return data


@dataclass(frozen=True, slots=True)
class Catalog:
    """What specs may name: attributes per kind of fact, entities, ``distinct`` fields, category values.

    ``BASE_CATALOG`` is the shop's (the tables of ``features.facts``); a feature set with
    declarations checks its specs against ``Declarations.catalog``.
    """

    attributes: Mapping[FactKind, Mapping[str, AttrType]]
    order_attributes: Mapping[str, AttrType]
    entities: Mapping[str, EntityRef]
    entities_by_kind: Mapping[FactKind, frozenset[str]]
    distinct_fields: Mapping[str, EntityRef]
    category_values: Mapping[str, frozenset[str]]
    declared: Mapping[str, DeclaredAttribute]
    declared_entities: Mapping[str, DeclaredEntity]

    @classmethod
    def of(cls, declarations: Declarations) -> Catalog:
        """The shop's vocabulary extended by ``declarations`` (which were checked when built)."""
        added = {a.name: a.type for a in declarations.attributes}
        refs = {e.name: e.ref for e in declarations.entities}
        attributes = {kind: MappingProxyType({**attrs, **(added if kind is FactKind.ORDER else {})})
                      for kind, attrs in ATTRIBUTES.items()}
        values = {a.name: frozenset(a.values) for a in declarations.attributes if a.values}
        return cls(
            attributes=MappingProxyType(attributes),
            order_attributes=MappingProxyType({**ORDER_ATTRIBUTES, **added}),
            entities=MappingProxyType({**{e.value: e for e in Entity}, **refs}),
            entities_by_kind=MappingProxyType({kind: frozenset({e.value for e in ents} | set(refs))
                                               for kind, ents in ENTITIES_BY_KIND.items()}),
            distinct_fields=MappingProxyType({**DISTINCT_FIELDS,
                                              **{e.plural: e.ref for e in declarations.entities}}),
            category_values=MappingProxyType({**CATEGORY_VALUES, **values}),
            declared=MappingProxyType({a.name: a for a in declarations.attributes}),
            declared_entities=MappingProxyType({e.name: e for e in declarations.entities}),
        )


# ----------------------------------------------------------------------------- loading


class DeclaredAttributeModel(BaseModel):
    """YAML form of one declared attribute."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    source: str | None = None
    unit: str | None = None
    missing: str | float | bool | None = None
    values: list[str] | None = None
    description: str | None = None


class EntityLabelModel(BaseModel):
    """How reasons name a declared entity."""

    model_config = ConfigDict(extra="forbid")

    zh: str = ""
    en: str = ""


class DeclaredEntityModel(BaseModel):
    """YAML form of one declared entity."""

    model_config = ConfigDict(extra="forbid")

    name: str
    of: list[str]
    pii: bool = False
    plural: str | None = None
    label: EntityLabelModel | None = None
    description: str | None = None


class DeclareModel(BaseModel):
    """YAML form of ``declare:``."""

    model_config = ConfigDict(extra="forbid")

    attributes: list[DeclaredAttributeModel] = []
    entities: list[DeclaredEntityModel] = []


def _must(path: str, constraint: str, value: object) -> ConfigError:
    return ConfigError.must(path, constraint, value)


def _taken_names() -> set[str]:
    taken = {a for attrs in ATTRIBUTES.values() for a in attrs} | set(ORDER_ATTRIBUTES)
    return taken | {e.value for e in Entity} | set(COUNT_FIELDS) | set(DISTINCT_FIELDS)


def _attribute(model: DeclaredAttributeModel, *, path: str, taken: set[str]) -> DeclaredAttribute:
    if not _NAME.match(model.name):
        raise _must(f"{path}.name", "snake_case of at most 48 characters (a-z, 0-9, _)", model.name)
    if model.name in taken:
        raise _must(f"{path}.name", "a name no built-in attribute, entity or field has, nor another declaration",
                    model.name)
    try:
        attr_type = AttrType(model.type)
    except ValueError as e:
        raise _must(f"{path}.type", "one of " + ", ".join(t.value for t in AttrType), model.type) from e
    source = model.source if model.source is not None else model.name
    if not _NAME.match(source):
        raise _must(f"{path}.source", "a source attribute name (snake_case, as ingest keeps them)", source)
    missing: AttrValue = None
    if model.missing is not None:
        missing = _coerce(model.missing, attr_type)
        if missing is None:
            raise _must(f"{path}.missing", f"a value of type {attr_type.value}", model.missing)
    values: tuple[str, ...] | None = None
    if model.values is not None:
        if attr_type is not AttrType.CATEGORY:
            raise _must(f"{path}.values", "given only for a category", model.values)
        if not model.values or len(set(model.values)) != len(model.values):
            raise _must(f"{path}.values", "a non-empty list of distinct values", model.values)
        values = tuple(model.values)
    return DeclaredAttribute(model.name, attr_type, source, model.unit, missing, values)


def _entity(model: DeclaredEntityModel, *, path: str, taken: set[str], parts_known: set[str]) -> DeclaredEntity:
    if not _NAME.match(model.name):
        raise _must(f"{path}.name", "snake_case of at most 48 characters (a-z, 0-9, _)", model.name)
    if model.name in taken:
        raise _must(f"{path}.name", "a name no built-in attribute, entity or field has, nor another declaration",
                    model.name)
    if not 1 <= len(model.of) <= MAX_KEY_PARTS or len(set(model.of)) != len(model.of):
        raise _must(f"{path}.of", f"a list of 1 to {MAX_KEY_PARTS} distinct parts", model.of)
    for i, part in enumerate(model.of):
        if not _NAME.match(part):
            raise _must(f"{path}.of[{i}]", "a source attribute, an order attribute or an entity (snake_case)",
                        part)
        if part in taken and part not in parts_known:
            raise _must(f"{path}.of[{i}]", "a source attribute, an order attribute or an order-level entity",
                        part)
    plural = model.plural if model.plural is not None else f"{model.name}s"
    if not _NAME.match(plural) or plural in taken:
        raise _must(f"{path}.plural", "a snake_case name no built-in field or declaration has", plural)
    label = model.label or EntityLabelModel()
    return DeclaredEntity(model.name, tuple(model.of), model.pii, plural, label.zh, label.en)


def declarations_from(model: DeclareModel | None, *, path: str = "declare") -> Declarations:
    """Validate a ``declare:`` section; every problem is a ``ConfigError`` naming its field."""
    if model is None:
        return Declarations()
    taken = _taken_names()
    attributes: list[DeclaredAttribute] = []
    for i, attr_model in enumerate(model.attributes):
        attribute = _attribute(attr_model, path=f"{path}.attributes[{i}]", taken=taken)
        taken.add(attribute.name)
        attributes.append(attribute)
    # parts: order-level entities and order-fact attributes (not line/refund/label ones), declared attributes,
    # and any other source attribute name (not known in advance: ingest keeps what the source sends)
    parts_known = ({e.value for e in ORDER_ENTITIES} | set(ATTRIBUTES[FactKind.ORDER])
                   | {a.name for a in attributes})
    entities: list[DeclaredEntity] = []
    for i, entity_model in enumerate(model.entities):
        entity = _entity(entity_model, path=f"{path}.entities[{i}]", taken=taken, parts_known=parts_known)
        taken.update({entity.name, entity.plural})
        entities.append(entity)
    return Declarations(tuple(attributes), tuple(entities))


#: The shop's vocabulary, with nothing declared.
BASE_CATALOG: Catalog = Declarations().catalog
