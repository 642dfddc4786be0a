"""Online features: apply orders as they arrive, look feature vectors up as of any time.

``OnlineFeatures(store, specs)`` turns each order (and each reviewer label) into facts
with ``features.facts``, keeps them in an online store (``features.stores``) and, on
``lookup``, aggregates the facts of the order's entity keys in each spec's window with
the shared aggregators. It holds no feature-specific code: the spec list is all it knows.

Guarantees (the same as ``features.batch``, checked by the parity property test):

* **Idempotent.** An order is a versioned group of facts: re-applying the same or an
  older version changes nothing; a newer version replaces the order's facts (so does
  the same version re-derived with different facts, see ``features.stores.base``).
* **Event time.** A late order lands at its event time: lookups as of any time see
  exactly the facts stamped in each window (``features.windows``), whatever the arrival
  order.
* **Bounded state.** Facts are needed only as far back as the longest window (plus
  offset); the engine evicts groups whose newest fact is older than that plus
  ``retention_margin`` behind the newest event time seen (the *watermark*). Lookups as
  of ``watermark - retention_margin`` or later are exact; groups arriving entirely
  before the eviction cutoff are dropped as too late to matter.

Multi-valued entities (``sku`` and the SKU pairs): an order has one key per distinct
SKU; the feature value is the maximum over its keys (the minimum for ``min`` and
``time_since``), ignoring keys with a missing value, so "the riskiest line" drives it.
An order without a key for an entity gets the empty-window value (0 for
``count``/``sum``/``distinct``, NaN otherwise).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from features.aggregators import NAN, fold
from features.facts import AttrValue, Entity, Fact, FactGroup, FactKind, entity_keys, label_facts, order_facts
from features.specs import ZERO_WHEN_EMPTY, Agg, Condition, FeatureSet, FeatureSpec
from features.stores.base import OnlineStore, RangeQuery
from features.windows import from_us, to_us
from orderguard.clock import Clock
from orderguard.schema import Label, Order

#: Entity keys of a lookup: entity → its keys (one for most entities, one per SKU for SKU entities).
EntityKeys = Mapping[Entity, Sequence[str]]


@dataclass(frozen=True, slots=True)
class FeatureVector(Mapping[str, float]):
    """Feature values by name, as of one event time; a missing value is NaN.

    Attributes:
        as_of: the query time the values hold for (UTC).
        by_name: name → value, in the feature set's order (also what the mapping
            interface reads: ``vector["count_orders_by_device_5m"]``, ``dict(vector)``).
    """

    as_of: datetime
    by_name: Mapping[str, float]

    def __getitem__(self, name: str) -> float:
        return self.by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_name)

    def __len__(self) -> int:
        return len(self.by_name)

    def missing(self) -> tuple[str, ...]:
        """Names whose value is missing (NaN): e.g. ``time_since`` with no earlier fact."""
        return tuple(name for name, v in self.by_name.items() if math.isnan(v))


_COUNT, _TIME_SINCE, _VALUE, _DISTINCT = range(4)

#: Compiled spec: (output index, code, selector, attribute or entity read, agg, a, b, reduce with min).
_SpecPlan = tuple[int, int, int, str, Agg, int, int, bool]
_Test = Callable[[Mapping[str, AttrValue]], bool]


@dataclass(frozen=True, slots=True)
class _SourcePlan:
    """Everything a lookup does with the facts of one kind of one entity, precomputed from the specs."""

    entity: Entity
    kind: FactKind
    span: int  # the largest ``a``: how far back the fetch must reach
    near: int  # the smallest ``b``: how close to ``t`` the fetch must reach
    selectors: tuple[_Test | None, ...]  # the distinct filters of these specs
    specs: tuple[_SpecPlan, ...]


def _predicate(conditions: tuple[Condition, ...]) -> _Test | None:
    if not conditions:
        return None
    checks = tuple((c.attr, c.matches) for c in conditions)

    def test(attrs: Mapping[str, AttrValue]) -> bool:
        return all(match(attrs.get(attr)) for attr, match in checks)

    return test


def _code(spec: FeatureSpec) -> tuple[int, str]:
    if spec.agg is Agg.COUNT:
        return _COUNT, ""
    if spec.agg is Agg.TIME_SINCE:
        return _TIME_SINCE, ""
    if spec.distinct_entity is not None:
        return _DISTINCT, spec.distinct_entity.value
    assert spec.value_attr is not None
    return _VALUE, spec.value_attr


def _plan(specs: Sequence[FeatureSpec]) -> tuple[_SourcePlan, ...]:
    by_source: dict[tuple[Entity, FactKind], list[tuple[int, FeatureSpec]]] = {}
    for i, spec in enumerate(specs):
        by_source.setdefault((spec.entity, spec.kind), []).append((i, spec))
    plans: list[_SourcePlan] = []
    for (entity, kind), members in by_source.items():
        filters: list[tuple[Condition, ...]] = []
        spec_plans: list[_SpecPlan] = []
        for i, spec in members:
            if spec.filter not in filters:
                filters.append(spec.filter)
            a, b = spec.frame.frame(strict=spec.strict)
            code, read = _code(spec)
            spec_plans.append((i, code, filters.index(spec.filter), read, spec.agg, a, b,
                               spec.agg in (Agg.MIN, Agg.TIME_SINCE)))
        plans.append(_SourcePlan(entity, kind, max(p[5] for p in spec_plans), min(p[6] for p in spec_plans),
                                 tuple(_predicate(f) for f in filters), tuple(spec_plans)))
    return tuple(plans)


class OnlineFeatures:
    """The online feature engine over one store and one feature set.

    Args:
        store: where facts live (memory, SQLite, Redis - ``features.stores``).
        specs: the feature definitions, in output order.
        retention_margin: how far behind the watermark lookups stay exact; also the
            slack for late orders. Eviction runs each time the cutoff moved by a quarter
            of it.
        clock: when given, the watermark never runs ahead of ``clock.now()``, so one
            order stamped in the far future cannot evict the present.
    """

    def __init__(self, store: OnlineStore, specs: FeatureSet | Sequence[FeatureSpec], *,
                 retention_margin: timedelta = timedelta(hours=1), clock: Clock | None = None) -> None:
        self.specs = specs if isinstance(specs, FeatureSet) else FeatureSet(tuple(specs))
        if retention_margin <= timedelta(0):
            raise ValueError(f"retention_margin must be positive; got {retention_margin!r}")
        self._store = store
        self._clock = clock
        self._plans = _plan(self.specs.specs)
        self._names = self.specs.names
        self._empty = tuple(0.0 if s.agg in ZERO_WHEN_EMPTY else NAN for s in self.specs.specs)
        self._margin_us = retention_margin // timedelta(microseconds=1)
        self._horizon_us = max((p.span for p in self._plans), default=0) + 1 + self._margin_us
        self._watermark: int | None = None
        self._evicted_to: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names, in output order."""
        return self._names

    @property
    def store(self) -> OnlineStore:
        """The underlying store."""
        return self._store

    @property
    def watermark(self) -> datetime | None:
        """Newest event time applied so far (capped by the clock), or ``None`` before any."""
        return None if self._watermark is None else from_us(self._watermark)

    def cutoff_us(self) -> int | None:
        """Event time (microseconds) at or before which facts can no longer affect an exact lookup."""
        return None if self._watermark is None else self._watermark - self._horizon_us

    def apply(self, order: Order) -> bool:
        """Add or update an order's facts; ``True`` if state changed (not a duplicate, stale or too late)."""
        return self._apply(order_facts(order))

    def apply_label(self, label: Label, order: Order) -> bool:
        """Add a reviewer label on ``order`` as a fact at ``label.labeled_at``."""
        return self._apply(label_facts(label, order))

    def _apply(self, group: FactGroup) -> bool:
        cutoff = self.cutoff_us()
        if cutoff is not None and group.max_ts <= cutoff:
            return False
        changed = self._store.apply(group)
        newest = group.max_ts
        if self._clock is not None:
            newest = min(newest, to_us(self._clock.now()))
        if self._watermark is None or newest > self._watermark:
            self._watermark = newest
            self._maybe_evict()
        return changed

    def _maybe_evict(self) -> None:
        cutoff = self.cutoff_us()
        if cutoff is None:
            return
        if self._evicted_to is None or cutoff - self._evicted_to >= self._margin_us // 4:
            self._store.evict(before_us=cutoff)
            self._evicted_to = cutoff

    def evict(self) -> int:
        """Evict now (normally automatic); returns how many groups were dropped."""
        cutoff = self.cutoff_us()
        if cutoff is None:
            return 0
        self._evicted_to = cutoff
        return self._store.evict(before_us=cutoff)

    def lookup(self, subject: Order | EntityKeys, *, as_of: datetime) -> FeatureVector:
        """Every feature as of ``as_of``, for an order's entity keys or explicit keys.

        Windows end at ``as_of`` inclusive (``features.windows``): to score an order,
        apply it first and look up as of its ``details.created_at``, so the order
        counts itself, exactly as in the training frame.
        """
        keys = entity_keys(subject) if isinstance(subject, Order) else subject
        t = to_us(as_of)
        queries: list[RangeQuery] = []
        owners: list[_SourcePlan] = []
        for plan in self._plans:
            for key in keys.get(plan.entity, ()):
                queries.append(RangeQuery(plan.entity, key, plan.kind, t - plan.span, t - plan.near))
                owners.append(plan)
        empty = self._empty
        values: list[float | None] = [None] * len(self._names)
        for plan, (times, facts) in zip(owners, self._store.fetch(queries), strict=True):
            chosen: list[tuple[Sequence[Fact], Sequence[int]]] = []
            for test in plan.selectors:
                if test is None:
                    chosen.append((facts, times))
                else:
                    kept = [f for f in facts if test(f.attrs)]
                    chosen.append((kept, [f.ts for f in kept]))
            for index, code, selector, read, agg, a, b, reduce_min in plan.specs:
                picked, stamps = chosen[selector]
                i = bisect_left(stamps, t - a)
                j = bisect_right(stamps, t - b)
                if code == _COUNT:
                    value = float(j - i)
                elif j == i:
                    value = empty[index]
                elif code == _TIME_SINCE:
                    value = (t - stamps[j - 1]) / 1e6
                elif code == _DISTINCT:
                    seen = {f.entities.get(read) for f in picked[i:j]}  # type: ignore[call-overload]
                    seen.discard(None)
                    value = float(len(seen))
                else:
                    value = fold(agg, [v for f in picked[i:j] if (v := f.attrs.get(read)) is not None])
                current = values[index]
                if current is None or (value == value and (current != current or  # NaN never wins a reduction
                                         (value < current if reduce_min else value > current))):
                    values[index] = value
        filled = [empty[k] if v is None else v for k, v in enumerate(values)]
        return FeatureVector(as_of, dict(zip(self._names, filled, strict=True)))
