"""Feature specifications: the one definition of every feature.

A feature is data, never code: ``FeatureSpec(entity, field, agg, window, filter)``
plus an optional delay (``offset``), a ``qualifier`` that names the filter, and the
kind of facts it reads (``facts``, normally implied by the field). Both engines
(``features.batch``, ``features.online``) interpret a list of specs; adding a feature is
adding a spec.

Names are derived, never chosen::

    {agg}_{field}[_{qualifier}]_by_{entity}_{window}[_lag{offset}]

e.g. ``count_orders_by_device_5m``, ``distinct_users_by_wifi_48h``,
``count_refunds_damaged_or_lost_by_user_30d``.

Fields:

* ``count`` and ``time_since`` take the plural of a fact kind: ``orders``, ``lines``,
  ``refunds``, ``labels``.
* ``distinct`` takes the plural of an entity: ``users``, ``devices``, ``ips``, ``wifis``,
  ``addresses``, ``phones``, ``id_cards``, ``shops``, ``skus``, ``orders``.
* ``sum``, ``mean``, ``min``, ``max``, ``std`` take a numeric or flag attribute of a
  fact kind (``features.facts.ATTRIBUTES``), e.g. ``paid_fen``, ``units``.

When ``facts`` is not given, the spec reads the first kind in the order
order, line, refund, label that has the field, carries the entity and has every
filtered attribute; ``sum`` of ``units`` by ``user_sku`` therefore reads line facts.

Besides windowed aggregates, a feature set carries two more kinds of features, also as
data, so the online and batch engines still share one definition:

* **attributes** of the order being scored (``AttributeSpec``), read from
  ``features.facts.order_attributes``: ``virtual_phone``, ``pickup_address``,
  ``phone_delivery_km``, ``night``... named ``order_{attribute}``
  (``order_virtual_phone``); flags are 1/0, an unknown value is missing (NaN);
* **derived** features (``DerivedSpec``): one of a few expressions over features
  declared before them, named after the expression: ``ratio_{a}_to_{b}``,
  ``is_zero_{a}``, ``is_missing_{a}``, ``all_{a}_and_{b}`` (see ``DerivedOp``).

A feature set may also **declare** attributes and entities of its own, read from the
source attributes ingest keeps (``features.declared``), and name the features a model
must treat as **monotone**: more is never less risky (``monotone``; the model fit reads
it, and it stays out of the set's hash).

YAML::

    declare: {attributes: [{name: amount_usd, type: number}], entities: [{name: card, of: [card1]}]}
    features: [{entity: device, field: orders, agg: count, window: 5m}, ...]
    attributes: [virtual_phone, night]
    derived: [{op: is_missing, of: [time_since_orders_by_user_90d]}]
    monotone: [count_orders_by_device_5m]

``extends: shop`` starts from the shop's set (``features/shop.yaml``): the file's own
features, attributes, derived features and monotone names come after the shop's.

Every problem is a :class:`~orderguard.errors.ConfigError` at load time naming the
offending field, e.g. ``features[3].window``, ``attributes[0]`` or ``derived[1].of``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import field as dataclass_field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from features.declared import (
    BASE_CATALOG,
    Catalog,
    Declarations,
    DeclareModel,
    EntityName,
    EntityRef,
    declarations_from,
)
from features.facts import (
    COUNT_FIELDS,
    MULTI_VALUED,
    REFERENCE_ATTRIBUTES,
    AttrType,
    AttrValue,
    Entity,
    FactKind,
)
from features.operators import MEMBERSHIP_OPS, ORDERING_OPS, Op, matches
from features.windows import Duration, Window
from orderguard.errors import ConfigError


class Agg(StrEnum):
    """How the facts in a window are aggregated.

    Values over an empty window: ``count``, ``sum`` and ``distinct`` are 0; ``mean``,
    ``min``, ``max``, ``std`` and ``time_since`` are missing (NaN). ``std`` is the
    population standard deviation; ``time_since`` is the number of seconds from the
    query time back to the newest matching fact strictly before it.
    """

    COUNT = "count"
    SUM = "sum"
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    STD = "std"
    DISTINCT = "distinct"
    TIME_SINCE = "time_since"


#: Aggregations over a numeric (or flag) attribute.
NUMERIC_AGGS: frozenset[Agg] = frozenset({Agg.SUM, Agg.MEAN, Agg.MIN, Agg.MAX, Agg.STD})
#: Aggregations whose value over an empty window is 0 rather than missing.
ZERO_WHEN_EMPTY: frozenset[Agg] = frozenset({Agg.COUNT, Agg.SUM, Agg.DISTINCT})


_OPS_BY_TYPE: Mapping[AttrType, frozenset[Op]] = {
    AttrType.CATEGORY: frozenset(Op) - ORDERING_OPS,
    AttrType.FLAG: frozenset(Op) - ORDERING_OPS - MEMBERSHIP_OPS,
    AttrType.NUMBER: frozenset(Op),
}
#: A missing value.
NAN = float("nan")
_QUALIFIER = re.compile(r"^[a-z][a-z0-9_]*$")

#: Scalar value in a filter condition.
Scalar = str | bool | int | float


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter condition ``attr <op> value``; a spec's conditions are ANDed.

    Attributes:
        attr: an attribute of the spec's fact kind.
        op: the comparison.
        value: a scalar, or a tuple of scalars for ``in`` / ``not_in``.
    """

    attr: str
    op: Op
    value: Scalar | tuple[Scalar, ...]

    def matches(self, actual: object) -> bool:
        """Whether an attribute value satisfies the condition (unknown values never do).

        >>> Condition("reason", Op.IN, ("damaged", "not_received")).matches("damaged")
        True
        >>> Condition("paid_fen", Op.GE, 100).matches(None)
        False
        """
        return matches(self.op, actual, self.value)

    def to_data(self) -> Any:
        """The condition's value in YAML form (a list for ``in`` / ``not_in``)."""
        return list(self.value) if isinstance(self.value, tuple) else self.value


def _err(path: str, constraint: str, value: object) -> ConfigError:
    return ConfigError.must(path, constraint, value)


def _choice(path: str, options: Iterable[str], value: object) -> ConfigError:
    return _err(path, "one of " + ", ".join(sorted(options)), value)


def parse_filter(data: Mapping[str, Any], *, path: str = "filter") -> tuple[Condition, ...]:
    """Filter as data → conditions: a list means ``in``, a scalar ``eq``, a mapping explicit ops.

    >>> parse_filter({"reason": ["damaged", "not_received"], "paid_fen": {"ge": 100}})
    (Condition(attr='paid_fen', op=<Op.GE: 'ge'>, value=100), Condition(attr='reason', op=<Op.IN: 'in'>, \
value=('damaged', 'not_received')))
    """
    if not isinstance(data, Mapping):
        raise _err(path, "a mapping of attribute to value, list or {op: value}", data)
    conditions: list[Condition] = []
    for attr, raw in data.items():
        where = f"{path}.{attr}"
        pairs: list[tuple[Op, Any]]
        if isinstance(raw, Mapping):
            if not raw:
                raise _err(where, "a value, a list or {op: value}", raw)
            pairs = []
            for op_text, value in raw.items():
                if op_text not in set(Op):
                    raise _choice(f"{where}.{op_text}", Op, op_text)
                pairs.append((Op(op_text), value))
        elif isinstance(raw, list | tuple):
            pairs = [(Op.IN, raw)]
        else:
            pairs = [(Op.EQ, raw)]
        for op, value in pairs:
            conditions.append(Condition(str(attr), op, _condition_value(op, value, path=where)))
    return tuple(sorted(conditions, key=lambda c: (c.attr, c.op.value)))


def _condition_value(op: Op, value: Any, *, path: str) -> Scalar | tuple[Scalar, ...]:
    if op in MEMBERSHIP_OPS:
        if not isinstance(value, list | tuple) or not value:
            raise _err(path, f"a non-empty list for `{op.value}`", value)
        items = [_scalar(v, path=path) for v in value]
        return tuple(sorted(set(items), key=lambda v: (type(v).__name__, v)))
    return _scalar(value, path=path)


def _scalar(value: Any, *, path: str) -> Scalar:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    raise _err(path, "a string, a boolean or a finite number", value)


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """The one definition of one feature.

    Attributes:
        entity: what the feature is grouped by.
        field: what is counted or aggregated (see the module docstring).
        agg: the aggregation.
        window: the window length ``w``: facts in ``(t - offset - w, t - offset]``.
        filter: conditions the facts must meet (ANDed); empty means all facts of the kind.
        offset: delay ``o`` of the window, for features that must not see the recent past.
        qualifier: short snake_case word(s) naming the filter in the feature name;
            required when there is a filter, so a name never hides one.
        facts: the kind of facts read; ``None`` resolves to the implied kind.
        catalog: what the spec may name (``features.declared``): the shop's vocabulary,
            or a feature set's with its declared attributes and entities.

    >>> FeatureSpec(Entity.WIFI, "users", Agg.DISTINCT, Duration.parse("48h")).name
    'distinct_users_by_wifi_48h'
    >>> FeatureSpec(Entity.DEVICE, "paid", Agg.SUM, Duration.parse("1h"))
    Traceback (most recent call last):
    ...
    orderguard.errors.ConfigError: `field` must be a numeric or flag attribute of some fact kind; got 'paid'
    """

    entity: EntityRef
    field: str
    agg: Agg
    window: Duration
    filter: tuple[Condition, ...] = ()
    offset: Duration | None = None
    qualifier: str | None = None
    facts: FactKind | None = None
    catalog: Catalog = dataclass_field(default=BASE_CATALOG, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.entity, Entity)
                or (isinstance(self.entity, EntityName) and self.entity in self.catalog.entities)):
            raise _choice("entity", self.catalog.entities, self.entity)
        if not isinstance(self.agg, Agg):
            raise _choice("agg", Agg, self.agg)
        if not isinstance(self.window, Duration):
            raise _err("window", "a Duration", self.window)
        if self.offset is not None and not isinstance(self.offset, Duration):
            raise _err("offset", "a Duration or None", self.offset)
        if self.facts is not None and not isinstance(self.facts, FactKind):
            raise _choice("facts", FactKind, self.facts)
        if self.filter and self.qualifier is None:
            raise _err("qualifier", "given when there is a filter (it names the filter in the feature name)",
                       None)
        if self.qualifier is not None and not _QUALIFIER.match(self.qualifier):
            raise _err("qualifier", "snake_case (a-z, 0-9, _)", self.qualifier)
        kind = _resolve_kind(self, self.facts)
        if self.facts is not None and self.qualifier is None and _implied_kind(self) is not kind:
            raise _err("qualifier", f"given when `facts` overrides the implied kind of facts "
                       f"(it names {kind.value} facts in the feature name)", None)
        object.__setattr__(self, "facts", kind)
        _check_filter(self.filter, kind, self.catalog)

    @property
    def kind(self) -> FactKind:
        """The kind of facts this feature reads (resolved at construction)."""
        assert self.facts is not None
        return self.facts

    @property
    def name(self) -> str:
        """``{agg}_{field}[_{qualifier}]_by_{entity}_{window}[_lag{offset}]``."""
        qualifier = f"_{self.qualifier}" if self.qualifier else ""
        lag = f"_lag{self.offset.text}" if self.offset is not None else ""
        return f"{self.agg.value}_{self.field}{qualifier}_by_{self.entity.value}_{self.window.text}{lag}"

    @property
    def frame(self) -> Window:
        """The event-time window ``(t - o - w, t - o]`` (``features.windows``)."""
        return Window(self.window.us, self.offset.us if self.offset is not None else 0)

    @property
    def strict(self) -> bool:
        """``time_since`` looks strictly before the window's upper edge (never at the current fact)."""
        return self.agg is Agg.TIME_SINCE

    @property
    def multi_valued(self) -> bool:
        """Whether an order has several keys of the entity (SKU, SKU pairs): values are reduced over them."""
        return self.entity in MULTI_VALUED

    @property
    def value_attr(self) -> str | None:
        """The fact attribute aggregated by numeric aggregations, else ``None``."""
        return self.field if self.agg in NUMERIC_AGGS else None

    @property
    def distinct_entity(self) -> EntityRef | None:
        """The entity whose distinct values ``distinct`` counts, else ``None``."""
        return self.catalog.distinct_fields[self.field] if self.agg is Agg.DISTINCT else None

    def to_data(self) -> dict[str, Any]:
        """The YAML/dict form (round-trips through :meth:`FeatureSet.from_data`)."""
        data: dict[str, Any] = {"entity": self.entity.value, "field": self.field, "agg": self.agg.value,
                                "window": self.window.text}
        if self.offset is not None:
            data["offset"] = self.offset.text
        if self.filter:
            by_attr: dict[str, list[Condition]] = {}
            for c in self.filter:
                by_attr.setdefault(c.attr, []).append(c)
            data["filter"] = {
                attr: (conds[0].to_data() if len(conds) == 1 and conds[0].op in (Op.EQ, Op.IN)
                       else {c.op.value: c.to_data() for c in conds})
                for attr, conds in by_attr.items()}
        if self.qualifier is not None:
            data["qualifier"] = self.qualifier
        data["facts"] = self.kind.value
        return data


def _field_ok(spec: FeatureSpec, kind: FactKind) -> bool:
    catalog = spec.catalog
    if spec.agg in (Agg.COUNT, Agg.TIME_SINCE):
        return COUNT_FIELDS.get(spec.field) is kind
    if spec.agg is Agg.DISTINCT:
        counted = catalog.distinct_fields.get(spec.field)
        return counted is not None and counted in catalog.entities_by_kind[kind]
    return catalog.attributes[kind].get(spec.field) in (AttrType.NUMBER, AttrType.FLAG)


def _field_constraint(agg: Agg, catalog: Catalog) -> tuple[str, Iterable[str] | None]:
    if agg in (Agg.COUNT, Agg.TIME_SINCE):
        return "one of", COUNT_FIELDS
    if agg is Agg.DISTINCT:
        return "one of", catalog.distinct_fields
    return "a numeric or flag attribute of some fact kind", None


def _implied_kind(spec: FeatureSpec) -> FactKind | None:
    try:
        return _resolve_kind(spec, None)
    except ConfigError:
        return None


def _resolve_kind(spec: FeatureSpec, facts: FactKind | None) -> FactKind:
    kinds = [facts] if facts is not None else list(FactKind)
    with_field = [k for k in kinds if _field_ok(spec, k)]
    if not with_field:
        constraint, options = _field_constraint(spec.agg, spec.catalog)
        if facts is not None and any(_field_ok(spec, k) for k in FactKind):
            raise _err("facts", f"a kind of facts that has `{spec.field}` for `{spec.agg.value}`",
                       facts.value)
        if options is not None:
            raise _choice("field", options, spec.field)
        raise _err("field", constraint, spec.field)
    by_kind = spec.catalog.entities_by_kind
    attributes = spec.catalog.attributes
    with_entity = [k for k in with_field if spec.entity in by_kind[k]]
    if not with_entity:
        carried = sorted({e for k in with_field for e in by_kind[k]})
        raise _err("entity", f"an entity carried by the facts with `{spec.field}` ({', '.join(carried)})",
                   spec.entity.value)
    for kind in with_entity:
        if all(c.attr in attributes[kind] for c in spec.filter):
            return kind
    first = with_entity[0]
    missing = next(c.attr for c in spec.filter if c.attr not in attributes[first])
    raise _choice(f"filter.{missing}", attributes[first], missing)


def _check_filter(conditions: Sequence[Condition], kind: FactKind, catalog: Catalog) -> None:
    for c in conditions:
        where = f"filter.{c.attr}"
        attr_type = catalog.attributes[kind][c.attr]
        if c.op not in _OPS_BY_TYPE[attr_type]:
            raise _choice(f"{where}.op", _OPS_BY_TYPE[attr_type], c.op.value)
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        for v in values:
            if attr_type is AttrType.FLAG and not isinstance(v, bool):
                raise _err(where, "true or false", v)
            if attr_type is AttrType.NUMBER and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise _err(where, "a number", v)
            if attr_type is AttrType.CATEGORY:
                if not isinstance(v, str):
                    raise _err(where, "a string", v)
                allowed = catalog.category_values.get(c.attr)
                if allowed is not None and v not in allowed:
                    raise _choice(where, allowed, v)


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """A feature that is an attribute of the order being scored, as it is (not aggregated).

    The value is ``features.facts.order_attributes(order)[attr]`` as a float: numbers as
    they are, flags 1.0 / 0.0, unknown values NaN. Looked up by entity keys alone (no
    order), it is NaN.

    >>> AttributeSpec("virtual_phone").name
    'order_virtual_phone'
    >>> AttributeSpec("channel")
    Traceback (most recent call last):
    ...
    orderguard.errors.ConfigError: `attribute` must be a numeric or flag order attribute \
(account_age_days, coupon_fen, coupons, discount_fen, goods_fen, has_coupon, line_count, max_unit_price_fen, \
member_level, min_unit_price_fen, night, paid_fen, phone_delivery_km, phone_warehouse_km, pickup_address, \
shipping_fen, units, urgent_note, virtual_phone, weekend, whole_thousand_no_message); got 'channel'
    """

    attr: str
    catalog: Catalog = field(default=BASE_CATALOG, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        declared = self.catalog.declared.get(self.attr)
        if declared is not None:
            if declared.type is AttrType.CATEGORY and declared.values is None:
                raise _err("attribute", "a category declared with its `values` (the model input is the value's "
                           "position in that list)", self.attr)
            return
        if self.catalog.order_attributes.get(self.attr) not in (AttrType.NUMBER, AttrType.FLAG):
            usable = sorted(a for a, t in self.catalog.order_attributes.items() if t is not AttrType.CATEGORY)
            raise _err("attribute", f"a numeric or flag order attribute ({', '.join(usable)})", self.attr)

    def value(self, attrs: Mapping[str, AttrValue]) -> float:
        """The feature's value from the order's attributes (a declared category as its code)."""
        declared = self.catalog.declared.get(self.attr)
        raw = attrs.get(self.attr)
        return declared.code(raw) if declared is not None else attribute_value(raw)

    @property
    def name(self) -> str:
        """``order_{attr}``."""
        return f"order_{self.attr}"

    @property
    def needs_gazetteer(self) -> bool:
        """Whether computing it needs reference data (``orderguard.enrich.Gazetteer``)."""
        return self.attr in REFERENCE_ATTRIBUTES


def attribute_value(value: AttrValue) -> float:
    """An order attribute as a feature value: numbers as they are, flags 1/0, unknown (or text) NaN.

    >>> attribute_value(True), attribute_value(3), attribute_value(None)
    (1.0, 3.0, nan)
    """
    if value is None or isinstance(value, str):
        return NAN
    return float(value)


class DerivedOp(StrEnum):
    """Expressions a derived feature may apply to features declared before it.

    Missing (NaN) inputs give a missing output, except for ``is_missing``:

    * ``ratio`` (a, b): ``a / b``; missing when ``b`` is 0;
    * ``is_zero`` (a): 1 when ``a == 0``, else 0 ("no refund claims", "never seen");
    * ``is_missing`` (a): 1 when ``a`` is missing, else 0 (``time_since`` with no earlier
      fact: "first order of this account");
    * ``all`` (a, b, ...): 1 when every argument is non-zero, else 0 (flags ANDed).
    """

    RATIO = "ratio"
    IS_ZERO = "is_zero"
    IS_MISSING = "is_missing"
    ALL = "all"


#: How many arguments each expression takes: (at least, at most).
_ARITY: Mapping[DerivedOp, tuple[int, int]] = {
    DerivedOp.RATIO: (2, 2), DerivedOp.IS_ZERO: (1, 1), DerivedOp.IS_MISSING: (1, 1), DerivedOp.ALL: (2, 8),
}


def derive(op: DerivedOp, args: Sequence[float]) -> float:
    """Evaluate one expression: the single definition both engines call.

    >>> derive(DerivedOp.RATIO, [150.0, 1000.0]), derive(DerivedOp.RATIO, [1.0, 0.0])
    (0.15, nan)
    >>> derive(DerivedOp.IS_ZERO, [0.0]), derive(DerivedOp.IS_MISSING, [float("nan")])
    (1.0, 1.0)
    >>> derive(DerivedOp.ALL, [1.0, 2.0]), derive(DerivedOp.ALL, [1.0, 0.0]), derive(DerivedOp.ALL, [1.0, NAN])
    (1.0, 0.0, nan)
    """
    if op is DerivedOp.IS_MISSING:
        a = args[0]
        return 1.0 if a != a else 0.0
    for a in args:
        if a != a:  # NaN in, NaN out
            return NAN
    if op is DerivedOp.RATIO:
        a, b = args
        return a / b if b != 0.0 else NAN
    if op is DerivedOp.IS_ZERO:
        return 1.0 if args[0] == 0.0 else 0.0
    return 1.0 if all(a != 0.0 for a in args) else 0.0


@dataclass(frozen=True, slots=True)
class DerivedSpec:
    """A feature computed from other features of the same vector by one ``DerivedOp``.

    Attributes:
        op: the expression.
        args: names of the features it reads, all declared before it.

    >>> DerivedSpec(DerivedOp.RATIO, ("order_max_unit_price_fen", "mean_unit_price_fen_by_sku_7d_lag2h")).name
    'ratio_order_max_unit_price_fen_to_mean_unit_price_fen_by_sku_7d_lag2h'
    >>> DerivedSpec(DerivedOp.ALL, ("order_has_coupon", "is_zero_count_orders_by_user_90d")).name
    'all_order_has_coupon_and_is_zero_count_orders_by_user_90d'
    """

    op: DerivedOp
    args: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.op, DerivedOp):
            raise _choice("op", DerivedOp, self.op)
        least, most = _ARITY[self.op]
        if not least <= len(self.args) <= most:
            count = f"{least}" if least == most else f"{least} to {most}"
            raise _err("of", f"a list of {count} feature names for `{self.op.value}`", list(self.args))

    @property
    def name(self) -> str:
        """Derived from the expression (see the module docstring)."""
        if self.op is DerivedOp.RATIO:
            return f"ratio_{self.args[0]}_to_{self.args[1]}"
        if self.op is DerivedOp.ALL:
            return "all_" + "_and_".join(self.args)
        return f"{self.op.value}_{self.args[0]}"

    def evaluate(self, args: Sequence[float]) -> float:
        """The value from the values of ``args``, in order (see :func:`derive`)."""
        return derive(self.op, args)

    def to_data(self) -> dict[str, Any]:
        """The YAML/dict form."""
        return {"op": self.op.value, "of": list(self.args)}


class DerivedModel(BaseModel):
    """YAML/dict form of one derived feature: ``{op: ratio, of: [a, b]}``."""

    model_config = ConfigDict(extra="forbid")

    op: str
    of: list[str]


class FeatureSpecModel(BaseModel):
    """YAML/dict form of one spec (validated structurally here, semantically by FeatureSpec)."""

    model_config = ConfigDict(extra="forbid")

    entity: str
    field: str
    agg: str
    window: str
    offset: str | None = None
    filter: dict[str, Any] = {}
    qualifier: str | None = None
    facts: str | None = None


#: Feature sets another may extend (``extends: shop``): name → YAML file beside this module.
BASE_SETS: Mapping[str, str] = {"shop": "shop.yaml"}


def _extended(data: object) -> object:
    """``data`` with the set it ``extends`` put first: its features, attributes, derived and monotone lists, then
    the file's own (so a data scientist's set is the shop's plus a few lines, and the shop's rule pack still fits)."""
    if not isinstance(data, Mapping) or "extends" not in data:
        return data
    name = data["extends"]
    if name not in BASE_SETS:
        raise _choice("extends", BASE_SETS, name)
    base = yaml.safe_load(Path(__file__).with_name(BASE_SETS[name]).read_text(encoding="utf-8"))
    merged: dict[str, Any] = {k: v for k, v in data.items() if k != "extends"}
    for key in ("features", "attributes", "derived", "monotone"):
        merged[key] = [*base.get(key, []), *(data.get(key) or [])]
    return merged


class FeatureSetModel(BaseModel):
    """YAML/dict form of a feature set: ``{"features": [spec, ...]}``."""

    model_config = ConfigDict(extra="forbid")

    declare: DeclareModel | None = None
    features: list[FeatureSpecModel]
    attributes: list[str] = []
    derived: list[DerivedModel] = []
    monotone: list[str] = []


def _loc(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _spec_from_model(model: FeatureSpecModel, *, path: str, catalog: Catalog = BASE_CATALOG) -> FeatureSpec:
    def enum_of(enum: type[StrEnum], value: str, name: str) -> Any:
        try:
            return enum(value)
        except ValueError as e:
            raise _choice(f"{path}.{name}", list(enum), value) from e

    entity = catalog.entities.get(model.entity)
    if entity is None:
        raise _choice(f"{path}.entity", catalog.entities, model.entity)
    agg = enum_of(Agg, model.agg, "agg")
    facts = enum_of(FactKind, model.facts, "facts") if model.facts is not None else None
    window = Duration.parse(model.window, field=f"{path}.window")
    offset = Duration.parse(model.offset, field=f"{path}.offset") if model.offset is not None else None
    conditions = parse_filter(model.filter, path=f"{path}.filter")
    try:
        return FeatureSpec(entity, model.field, agg, window, conditions, offset, model.qualifier, facts, catalog)
    except ConfigError as e:
        raise _located(e, path) from e


def _located(error: ConfigError, path: str) -> ConfigError:
    """The same error with its field nested under where it sits in the feature set."""
    return error.under(path)


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """Features with unique names: what a model is trained and served on.

    The vector is the windowed specs, then the attributes, then the derived features,
    each in declared order: the column order of the batch frame and of model inputs.
    Iterating a feature set yields its windowed specs (what the SQL of ``features.batch``
    is generated from); ``len`` counts every feature.

    Attributes:
        specs: windowed aggregates (``FeatureSpec``).
        attributes: attributes of the order itself (``AttributeSpec``).
        derived: expressions over earlier features (``DerivedSpec``).
    """

    specs: tuple[FeatureSpec, ...]
    attributes: tuple[AttributeSpec, ...] = ()
    derived: tuple[DerivedSpec, ...] = ()
    declared: Declarations = field(default_factory=Declarations)
    monotone: tuple[str, ...] = ()
    _digest: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        entries = ([(f"features[{i}]", s.name) for i, s in enumerate(self.specs)]
                   + [(f"attributes[{i}]", a.name) for i, a in enumerate(self.attributes)])
        for path, name in entries:
            if name in seen:
                raise ConfigError(f"`{path}` must have a unique name; {name!r} is also {seen[name]} "
                                  "(set `qualifier` to tell them apart)", field=path)
            seen[name] = path
        for i, d in enumerate(self.derived):
            path = f"derived[{i}]"
            unknown = [a for a in d.args if a not in seen]
            if unknown:
                raise ConfigError.must(f"{path}.of", "names of features declared before it", unknown[0])
            if d.name in seen:
                raise ConfigError(f"`{path}` must have a unique name; {d.name!r} is also {seen[d.name]}",
                                  field=path)
            seen[d.name] = path
        for i, name in enumerate(self.monotone):
            if name not in seen:
                raise ConfigError.must(f"monotone[{i}]", "the name of a feature of this set", name)
        # Hashing the definitions costs ~0.2 ms; the scorer stamps it on every record. ``monotone`` is how a
        # model is fitted, not what a feature is: it stays out, so served records keep matching their models.
        definitions = {k: v for k, v in self.to_data().items() if k != "monotone"}
        text = json.dumps(definitions, sort_keys=True, ensure_ascii=False)
        object.__setattr__(self, "_digest", hashlib.sha256(text.encode()).hexdigest()[:12])

    @property
    def names(self) -> tuple[str, ...]:
        """Every feature name, in vector order (specs, attributes, derived)."""
        return (tuple(s.name for s in self.specs) + tuple(a.name for a in self.attributes)
                + tuple(d.name for d in self.derived))

    @property
    def spec_names(self) -> tuple[str, ...]:
        """Names of the windowed specs only, in order."""
        return tuple(s.name for s in self.specs)

    @property
    def needs_gazetteer(self) -> bool:
        """Whether some attribute needs reference data: engines must then be given a Gazetteer."""
        return any(a.needs_gazetteer for a in self.attributes)

    def windowed(self) -> FeatureSet:
        """The windowed specs alone, as a feature set (what ``features.batch.BatchFeatures`` computes)."""
        return FeatureSet(self.specs, declared=self.declared)

    def __len__(self) -> int:
        return len(self.specs) + len(self.attributes) + len(self.derived)

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.specs)

    def to_data(self) -> dict[str, Any]:
        """The YAML/dict form (``declare``, ``attributes`` and ``derived`` only when there are some)."""
        data: dict[str, Any] = {"features": [s.to_data() for s in self.specs]}
        if self.declared:
            data["declare"] = self.declared.to_data()
        if self.attributes:
            data["attributes"] = [a.attr for a in self.attributes]
        if self.derived:
            data["derived"] = [d.to_data() for d in self.derived]
        if self.monotone:
            data["monotone"] = list(self.monotone)
        return data

    def hash(self) -> str:
        """Short stable hash of the definitions (MLflow tag ``feature_set_hash``).

        Two sets hash equal iff they define the same features in the same order.
        Computed once, when the set is built (it is immutable).
        """
        return self._digest

    @classmethod
    def from_data(cls, data: object) -> FeatureSet:
        """Validate a ``{"features": [...], "attributes": [...], "derived": [...]}`` mapping.

        Every problem is a ``ConfigError`` naming its field. ``extends: shop`` starts from the shop's set.
        """
        try:
            model = FeatureSetModel.model_validate(_extended(data))
        except ValidationError as e:
            first = e.errors()[0]
            path = _loc(first["loc"]) or "features"
            raise ConfigError(f"`{path}` {first['msg'].lower()}; got {first.get('input')!r}",
                              field=path) from e
        declared = declarations_from(model.declare)
        catalog = declared.catalog
        specs = tuple(_spec_from_model(m, path=f"features[{i}]", catalog=catalog)
                      for i, m in enumerate(model.features))
        attributes: list[AttributeSpec] = []
        for i, attr in enumerate(model.attributes):
            try:
                attributes.append(AttributeSpec(attr, catalog))
            except ConfigError as e:
                raise e.at(f"attributes[{i}]") from e
        derived: list[DerivedSpec] = []
        for i, d in enumerate(model.derived):
            try:
                op = DerivedOp(d.op)
            except ValueError as e:
                raise _choice(f"derived[{i}].op", DerivedOp, d.op) from e
            try:
                derived.append(DerivedSpec(op, tuple(d.of)))
            except ConfigError as e:
                raise _located(e, f"derived[{i}]") from e
        return cls(specs, tuple(attributes), tuple(derived), declared, tuple(model.monotone))

    @classmethod
    def from_yaml(cls, text: str) -> FeatureSet:
        """Parse YAML text (see :meth:`from_data`)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"`features` must be valid YAML; {e}", field="features") from e
        return cls.from_data(data)

    @classmethod
    def from_file(cls, path: Path) -> FeatureSet:
        """Read a YAML file (see :meth:`from_data`)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError.must("features", "a readable YAML file", str(path)) from e
        return cls.from_yaml(text)
