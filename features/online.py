"""Online features: apply orders as they arrive, look feature vectors up as of any time.

``OnlineFeatures(store, feature_set)`` turns each order (and each reviewer label) into
facts with ``features.facts``, keeps them in an online store (``features.stores``) and,
on ``lookup``, aggregates the facts of the order's entity keys in each spec's window,
then appends the order's attributes and the derived features. It holds no
feature-specific code: the feature set is all it knows.

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
  before the eviction cutoff are dropped as too late to matter. Eviction runs each time
  the cutoff has moved by ``eviction_step`` (a minute by default), so each call
  drops a minute's worth of old groups rather than a burst of them.

Multi-valued entities (``sku`` and the SKU pairs): an order has one key per distinct
SKU; the feature value is the maximum over its keys (the minimum for ``min`` and
``time_since``), ignoring keys with a missing value, so "the riskiest line" drives it.
An order without a key for an entity gets the empty-window value (0 for
``count``/``sum``/``distinct``, NaN otherwise).

Order attributes (``features.specs.AttributeSpec``) are the scored order's own, from
``features.facts``; reference-data attributes need the ``Gazetteer`` the engine is
given. Derived features (``features.specs.DerivedSpec``) are evaluated last, in declared
order, with the same function the batch frame uses.

How a lookup runs (the hot path of scoring): the specs are compiled once into
*sources*, one per (entity, kind of fact) they read, each with a function generated
from its specs (``_compile_fill``). A lookup fetches one store range per source and
entity key, reaching as far back as the source's longest window, and the source's
function fills in its specs' values: one filter pass per filter, one binary search per
distinct window edge, running totals for sums and means where the store keeps them,
one pass over the values per (attribute, window). The store is told which ranges are
read (``declare_reads``), so it need not index the rest. Scoring right after ``apply``
reuses the order's facts and keys that ``apply`` has just built.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from features.aggregators import NAN, fold
from features.declared import EntityRef
from features.facts import (
    AttrValue,
    FactGroup,
    FactKind,
    group_keys,
    label_facts,
    order_facts,
    reference_attributes,
    reference_inputs,
)
from features.operators import MEANING, Op
from features.specs import ZERO_WHEN_EMPTY, Agg, Condition, FeatureSet, FeatureSpec
from features.stores.base import FactRange, OnlineStore, RangeQuery, Step
from features.stores.memory import MemoryStore
from features.windows import from_us, to_us
from orderguard.clearing_cache import ClearingCache
from orderguard.clock import Clock
from orderguard.enrich import Gazetteer
from orderguard.errors import ConfigError, OrderGuardError, ServiceUnavailableError
from orderguard.schema import Label, Order

#: Entity keys of a lookup: entity (an ``Entity`` or its string value) → its keys (one for most
#: entities, one per SKU for SKU entities).
EntityKeys = Mapping[str, Sequence[str]]


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


#: Aggregations a store's running totals answer (``FactRange.totals``).
_SUMMED = frozenset({Agg.SUM, Agg.MEAN})
_Test = Callable[[Mapping[str, AttrValue]], bool]
#: Most (phone block, delivery district) pairs whose reference attributes an engine remembers.
_REFERENCE_CACHE_SIZE = 100_000
_new = tuple.__new__  # builds a named tuple without the Python-level ``__new__`` of the class

#: A source's compiled selectors: ``fill(out, found, t, first_key)`` (see ``_compile_fill``).
_Fill = Callable[[list[float], FactRange, int, bool], None]

#: ``(output index, lower edge, upper edge)``: a spec over the facts with ``t - a <= ts <= t - b``
#: (``Window.frame``), its ``a`` and ``b`` given as positions in its selector's ``lows`` / ``highs``.
_Span = tuple[int, int, int]


class _Selector(NamedTuple):
    """The specs of one source that read the facts passing one filter, by what they compute.

    A named tuple: the lookup loop unpacks it. Window edges are deduplicated: most specs
    of a source end at ``t``, and a handful of window lengths recur, so each distinct
    edge is one binary search per lookup however many specs share it.

    Attributes:
        test: the filter, or ``None`` for every fact of the source.
        lows: the distinct ``a`` of its specs (lower edges ``t - a``).
        highs: the distinct ``b`` of its specs (upper edges ``t - b``).
        counts: ``count`` specs.
        since: ``time_since`` specs.
        distinct: ``distinct`` specs with the entity (string value) whose values they count.
        numeric: numeric specs with the attribute and the aggregation.
        conditions: the filter's conditions (what ``test`` checks), inlined by ``_compile_fill``.
    """

    test: _Test | None
    lows: tuple[int, ...]
    highs: tuple[int, ...]
    counts: tuple[_Span, ...]
    since: tuple[_Span, ...]
    distinct: tuple[tuple[int, int, int, str], ...]
    numeric: tuple[tuple[int, int, int, str, Agg], ...]
    conditions: tuple[Condition, ...] = ()


class _Planned(NamedTuple):
    """One order of :meth:`OnlineFeatures.apply_and_lookup_many`, ready for its store step."""

    order: Order
    as_of: datetime
    group: FactGroup
    queries: list[RangeQuery]
    owners: list[_Source]


@dataclass(frozen=True, slots=True)
class _Source:
    """Everything a lookup does with the facts of one kind of one entity, precomputed from the specs.

    Attributes:
        entity, kind: what one store range holds.
        span, near: the largest ``a`` and smallest ``b`` of its specs: the range fetched.
        selectors: its specs, grouped by filter.
        reduce: for a multi-valued entity (several keys per order), each output index
            with whether it is reduced with min (else max); empty for other entities.
        fill: its selectors compiled (``_compile_fill``): ``fill(out, found, t, first_key)``
            writes the value of each of its specs into ``out`` from one entity key's range
            (for a multi-valued entity, reduced with the values of its earlier keys unless
            ``first_key``).
        code: the source of ``fill``, for inspection.
    """

    entity: EntityRef
    kind: FactKind
    span: int
    near: int
    selectors: tuple[_Selector, ...]
    reduce: tuple[tuple[int, bool], ...]
    fill: _Fill
    code: str


def _condition_test(c: Condition) -> _Test:
    """One condition as a predicate on a fact's attributes (same semantics as ``Condition.matches``)."""
    attr, value = c.attr, c.value
    if c.op is Op.EQ:
        return lambda attrs: attrs.get(attr) == value  # ``value`` is never None, so unknown never matches
    if c.op is Op.IN:
        members = frozenset(value) if isinstance(value, tuple) else frozenset((value,))
        return lambda attrs: attrs.get(attr) in members
    match = c.matches
    return lambda attrs: match(attrs.get(attr))


def _filter_expr(conditions: tuple[Condition, ...], *, prefix: str, env: dict[str, object]) -> str:
    """A filter as one inline expression over a fact ``f`` (same semantics as ``Condition.matches``).

    A compound filter tested through a predicate per condition costs several Python
    calls per fact; a filter over a busy entity (a shop's orders in the last half hour)
    reads hundreds of facts per lookup, so the conditions are written into the list
    comprehension itself. Values are bound in ``env`` under names starting with ``prefix``.

    >>> env: dict[str, object] = {}
    >>> _filter_expr((Condition("has_coupon", Op.EQ, True), Condition("account_age_days", Op.LE, 1)),
    ...              prefix="c0_", env=env)
    "f.attrs.get('has_coupon') == c0_0 and (x0_1 := f.attrs.get('account_age_days')) is not None \
and float(x0_1) <= c0_1"
    """
    parts: list[str] = []
    for j, c in enumerate(conditions):
        name, temp, get = f"{prefix}{j}", f"x{prefix[1:]}{j}", f"f.attrs.get({c.attr!r})"
        meaning = MEANING[c.op]
        if meaning.membership:
            env[name] = frozenset(c.value) if isinstance(c.value, tuple) else frozenset((c.value,))
        elif meaning.ordering:
            env[name] = float(c.value)  # type: ignore[arg-type]  # ordering ops take numbers (validated)
        else:
            env[name] = c.value
        if c.op in (Op.EQ, Op.IN):
            # the value is never None (nor holds it), so an unknown attribute never matches
            parts.append(f"{get} {meaning.python} {name}")
        elif meaning.ordering:
            parts.append(f"({temp} := {get}) is not None and float({temp}) {meaning.python} {name}")
        else:
            parts.append(f"({temp} := {get}) is not None and {temp} {meaning.python} {name}")
    return " and ".join(parts)


def _predicate(conditions: tuple[Condition, ...]) -> _Test | None:
    if not conditions:
        return None
    tests = tuple(_condition_test(c) for c in conditions)
    if len(tests) == 1:
        return tests[0]

    def test(attrs: Mapping[str, AttrValue]) -> bool:
        return all(single(attrs) for single in tests)

    return test


def _selector(conditions: tuple[Condition, ...], members: Sequence[tuple[int, FeatureSpec]]) -> _Selector:
    frames = [spec.frame.frame(strict=spec.strict) for _, spec in members]
    lows = tuple(sorted({a for a, _ in frames}))
    highs = tuple(sorted({b for _, b in frames}))
    counts: list[_Span] = []
    since: list[_Span] = []
    distinct: list[tuple[int, int, int, str]] = []
    numeric: list[tuple[int, int, int, str, Agg]] = []
    for (i, spec), (a, b) in zip(members, frames, strict=True):
        lo, hi = lows.index(a), highs.index(b)
        if spec.agg is Agg.COUNT:
            counts.append((i, lo, hi))
        elif spec.agg is Agg.TIME_SINCE:
            since.append((i, lo, hi))
        elif spec.distinct_entity is not None:
            distinct.append((i, lo, hi, spec.distinct_entity.value))
        else:
            assert spec.value_attr is not None
            numeric.append((i, lo, hi, spec.value_attr, spec.agg))
    return _Selector(_predicate(conditions), lows, highs, tuple(counts), tuple(since), tuple(distinct),
                     tuple(numeric), conditions)


@functools.lru_cache(maxsize=32)
def _plan(specs: tuple[FeatureSpec, ...]) -> Mapping[str, tuple[_Source, ...]]:
    """The sources of a spec list, by entity value (a lookup walks the entities an order has).

    Pure and immutable (compiled functions in tuples), so it is compiled once per spec list
    and shared: an engine over the same specs - the store-less one a degraded score builds
    per order, a rebuild - costs no compilation (~20 ms for the shop's set).
    """
    empty = [0.0 if s.agg in ZERO_WHEN_EMPTY else NAN for s in specs]
    by_source: dict[tuple[EntityRef, FactKind], list[tuple[int, FeatureSpec]]] = {}
    for i, spec in enumerate(specs):
        by_source.setdefault((spec.entity, spec.kind), []).append((i, spec))
    plan: dict[str, list[_Source]] = {}
    for (entity, kind), members in by_source.items():
        by_filter: dict[tuple[Condition, ...], list[tuple[int, FeatureSpec]]] = {}
        for i, spec in members:
            by_filter.setdefault(spec.filter, []).append((i, spec))
        frames = [spec.frame.frame(strict=spec.strict) for _, spec in members]
        reduce = (tuple((i, spec.agg in (Agg.MIN, Agg.TIME_SINCE)) for i, spec in members)
                  if members[0][1].multi_valued else ())
        selectors = tuple(_selector(f, group) for f, group in by_filter.items())
        fill, code = _compile_fill(selectors, empty, reduce=dict(reduce) if reduce else None,
                                   name=f"fill_{entity.value}_{kind.value}")
        plan.setdefault(entity.value, []).append(_Source(
            entity, kind, max(a for a, _ in frames), min(b for _, b in frames), selectors, reduce, fill, code))
    return MappingProxyType({entity: tuple(sources) for entity, sources in plan.items()})


def _empty_literal(value: float) -> str:
    """A spec's empty-window value as Python source.

    >>> _empty_literal(0.0), _empty_literal(float("nan"))
    ('0.0', 'NAN')
    """
    return "NAN" if value != value else repr(value)


def _compile_fill(selectors: tuple[_Selector, ...], empty: Sequence[float], *, name: str,
                  reduce: Mapping[int, bool] | None = None) -> tuple[_Fill, str]:
    """Compile a source's selectors into one straight-line function ``fill(out, found, t, first_key)``.

    The function writes the value of every spec of the source into ``out`` (by output
    index) from the facts of one entity key. For a multi-valued entity (``reduce``: output
    index → reduce with min, else max), the first key's value is written as it is and a
    later key's (``first_key`` false) replaces it only when known and larger (smaller).

    Each filter is applied once; each distinct window edge is one binary search in the
    (filtered) event times, skipped when every fact is inside it; ``sum``/``mean`` take
    the store's running totals when it offers them; numeric specs of one attribute over
    one window share a single pass over the values. The code is generated from the specs
    alone (output indices, window edges, attribute and entity names are literals; filters
    are the compiled predicates): no feature-specific code, and several times faster than
    interpreting the spec tuples on every lookup (the lookup's largest cost before).

    >>> from features.facts import Entity
    >>> from features.windows import Duration
    >>> spec = FeatureSpec(Entity.DEVICE, "orders", Agg.COUNT, Duration.parse("5m"))
    >>> fill, code = _compile_fill((_selector((), [(0, spec)]),), [0.0], name="fill_device_order")
    >>> out = [0.0]
    >>> fill(out, FactRange([100, 200_000_000, 400_000_000], [], None), 400_000_000, True)
    >>> out
    [2.0]
    """
    env: dict[str, object] = {"bisect_left": bisect_left, "bisect_right": bisect_right, "fold": fold, "NAN": NAN}

    def store(index: int, value: str) -> list[str]:
        """Lines writing ``value`` (an expression) to ``out[index]``, reducing across keys if need be."""
        if reduce is None:
            return [f"out[{index}] = {value}"]
        better = "<" if reduce[index] else ">"
        return [f"v = {value}",
                "if first_key:",
                f"    out[{index}] = v",
                f"elif v == v and (out[{index}] != out[{index}] or v {better} out[{index}]):  # NaN never wins",
                f"    out[{index}] = v"]

    body = ["times, facts, totals = found"]
    for k, (test, lows, highs, counts, since, distinct, numeric, conditions) in enumerate(selectors):
        if test is None:
            body.append("stamps, picked, summed = times, facts, totals")
        else:
            keep = _filter_expr(conditions, prefix=f"c{k}_", env=env)
            body += [f"picked = [f for f in facts if {keep}]", "stamps = [f.ts for f in picked]",
                     "summed = None  # running totals cover every fact, not the filtered ones"]
        starts = [f"s{i}" for i in range(len(lows))]
        stops = [f"e{j}" for j in range(len(highs))]
        body += ["n = len(stamps)", "if n:", "    oldest, newest = stamps[0], stamps[-1]"]
        edge = {x: f"t - {x}" if x else "t" for x in (*lows, *highs)}
        body += [f"    s{i} = 0 if oldest >= {edge[a]} else bisect_left(stamps, {edge[a]})"
                 for i, a in enumerate(lows)]
        body += [f"    e{j} = n if newest <= {edge[b]} else bisect_right(stamps, {edge[b]})"
                 for j, b in enumerate(highs)]
        body += ["else:", "    " + " = ".join([*starts, *stops]) + " = 0"]
        for index, lo, hi in counts:
            body += store(index, f"float(e{hi} - s{lo})")
        for index, lo, hi in since:
            body += store(index, f"(t - stamps[e{hi} - 1]) / 1e6 if e{hi} > s{lo} else NAN")
        for index, lo, hi, entity in distinct:
            body += [f"if e{hi} > s{lo}:",
                     f"    seen = {{f.entities.get({entity!r}) for f in picked[s{lo}:e{hi}]}}",
                     "    seen.discard(None)",
                     "    n_seen = float(len(seen))",
                     "else:",
                     "    n_seen = 0.0",
                     *store(index, "n_seen")]
        groups: dict[tuple[str, int, int], list[tuple[int, Agg]]] = {}
        for index, lo, hi, attr, agg in numeric:
            groups.setdefault((attr, lo, hi), []).append((index, agg))
        for (attr, lo, hi), members in groups.items():
            values = f"[v for f in picked[s{lo}:e{hi}] if (v := f.attrs.get({attr!r})) is not None]"
            body += [f"if e{hi} > s{lo}:", "    values = None"]
            for index, agg in members:
                env[f"agg_{agg.value}"] = agg
                fold_it = ["if values is None:", f"    values = {values}",
                           f"value = fold(agg_{agg.value}, values)"]
                if agg in _SUMMED:
                    value = "float(exact[0])" if agg is Agg.SUM else "float(exact[0]) / exact[1] if exact[1] else NAN"
                    body += [f"    exact = summed({attr!r}, s{lo}, e{hi}) if summed is not None else None",
                             "    if exact is not None:  # integer totals: the fold of these values gives the same",
                             f"        value = {value}",
                             "    else:",
                             *(f"        {line}" for line in fold_it)]
                else:
                    body += [f"    {line}" for line in fold_it]
                body += [f"    {line}" for line in store(index, "value")]
            body += ["else:", *(f"    {line}" for index, _ in members
                                for line in store(index, _empty_literal(empty[index])))]
    code = f"def {name}(out, found, t, first_key):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(code, f"<{name}>", "exec"), env)  # generated from validated specs only
    fill = env[name]
    assert callable(fill)
    return fill, code


#: Most fact groups an engine keeps while its store is unavailable.
DEFAULT_BACKLOG = 100_000


class OnlineFeatures:
    """The online feature engine over one store and one feature set.

    Args:
        store: where facts live (memory, SQLite, Redis - ``features.stores``).
        specs: the feature definitions, in output order.
        gazetteer: reference data for attributes that need it (``phone_delivery_km``);
            required when the feature set has such an attribute. Build one per process
            and share it (``orderguard.enrich.Gazetteer.build()``).
        retention_margin: how far behind the watermark lookups stay exact; also the
            slack for late orders.
        eviction_step: how far the eviction cutoff moves between two evictions (at most
            a quarter of ``retention_margin``).
        clock: when given, the watermark never runs ahead of ``clock.now()``, so one
            order stamped in the far future cannot evict the present.
        backlog_limit: most fact groups kept while the store is unavailable (see
            :meth:`catch_up`); beyond it the oldest go, and a restart's warm start
            re-applies them from the order log.
    """

    def __init__(self, store: OnlineStore, specs: FeatureSet | Sequence[FeatureSpec], *,
                 gazetteer: Gazetteer | None = None, retention_margin: timedelta = timedelta(hours=1),
                 eviction_step: timedelta = timedelta(minutes=1), clock: Clock | None = None,
                 backlog_limit: int = DEFAULT_BACKLOG) -> None:
        self.specs = specs if isinstance(specs, FeatureSet) else FeatureSet(tuple(specs))
        if retention_margin <= timedelta(0):
            raise ValueError(f"retention_margin must be positive; got {retention_margin!r}")
        if eviction_step <= timedelta(0):
            raise ValueError(f"eviction_step must be positive; got {eviction_step!r}")
        if self.specs.needs_gazetteer and gazetteer is None:
            needing = [a.name for a in self.specs.attributes if a.needs_gazetteer]
            raise ConfigError(f"`gazetteer` must be given for {', '.join(needing)}; got None", field="gazetteer")
        self._store = store
        self._plan = _plan(self.specs.specs)
        store.declare_reads({(s.entity, s.kind) for sources in self._plan.values() for s in sources})
        self._clock = clock
        self._gazetteer = gazetteer
        self._names = self.specs.names
        self._empty = [0.0 if s.agg in ZERO_WHEN_EMPTY else NAN for s in self.specs.specs]
        self._attrs = tuple(a.value for a in self.specs.attributes)
        self._declared = self.specs.declared
        self._needs_reference = self.specs.needs_gazetteer
        index = {name: i for i, name in enumerate(self._names)}
        self._derived = tuple((d.evaluate, tuple(index[a] for a in d.args)) for d in self.specs.derived)
        self._margin_us = retention_margin // timedelta(microseconds=1)
        self._step_us = min(eviction_step // timedelta(microseconds=1), self._margin_us // 4)
        spans = [s.span for sources in self._plan.values() for s in sources]
        self._horizon_us = max(spans, default=0) + 1 + self._margin_us
        self._watermark: int | None = None
        self._evicted_to: int | None = None
        self._recent: dict[int, tuple[Order, FactGroup]] = {}  # by id(order): the last call's orders
        self._reference_cache: ClearingCache[tuple[str | None, str, str, str] | None, Mapping[str, AttrValue]] = (
            ClearingCache(_REFERENCE_CACHE_SIZE))
        self._backlog: dict[str, FactGroup] = {}
        self._backlog_limit = backlog_limit

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

    def standalone(self) -> OnlineFeatures:
        """The same features on an empty in-memory store: an order's own attributes, with no history.

        What scoring falls back to while the real store is unavailable.
        """
        return OnlineFeatures(MemoryStore(), self.specs, gazetteer=self._gazetteer, clock=self._clock)

    def apply(self, order: Order) -> bool:
        """Add or update an order's facts; ``True`` if state changed (not a duplicate, stale or too late)."""
        group = order_facts(order, self._declared)
        self._recent = {id(order): (order, group)}  # a lookup of this very order reuses its facts
        return self._apply(group)

    def apply_label(self, label: Label, order: Order) -> bool:
        """Add a reviewer label on ``order`` as a fact at ``label.labeled_at``."""
        return self._apply(label_facts(label, order, self._declared))

    @property
    def pending(self) -> int:
        """Fact groups waiting for the store to answer again (see :meth:`catch_up`)."""
        return len(self._backlog)

    def catch_up(self) -> int:
        """Apply the groups kept while the store was unavailable, oldest first; returns how many went.

        Every apply first catches up, so a store that answers again receives what it missed
        before anything newer, and an order accepted during an outage still counts in its
        neighbours' features afterwards. Raises ``ServiceUnavailableError`` while the store
        still does not answer (what was not applied stays kept).
        """
        done = 0
        while self._backlog:
            group_id, group = next(iter(self._backlog.items()))
            self._store_group(group)
            del self._backlog[group_id]
            done += 1
        return done

    def _keep(self, group: FactGroup) -> None:
        kept = self._backlog.pop(group.group_id, None)
        self._backlog[group.group_id] = group if kept is None or group.version >= kept.version else kept
        while len(self._backlog) > self._backlog_limit:
            del self._backlog[next(iter(self._backlog))]

    def _apply(self, group: FactGroup) -> bool:
        """Store the group after the backlog; while the store is unavailable the group joins the backlog and
        the ``ServiceUnavailableError`` goes on to the caller (who decides how to answer without it)."""
        try:
            if self._backlog:
                self.catch_up()
            return self._store_group(group)
        except ServiceUnavailableError:
            self._keep(group)
            raise

    def _store_group(self, group: FactGroup) -> bool:
        if self._too_late(group):
            return False
        changed = self._store.apply(group)
        watermark, evict_before = self._advance(group)
        if watermark is not None:
            self._watermark = watermark
        if evict_before is not None:
            self._store.evict(before_us=evict_before)
            self._evicted_to = evict_before
        return changed

    def _too_late(self, group: FactGroup) -> bool:
        """Whether the group lies wholly at or before the eviction cutoff (it could not change an exact lookup)."""
        cutoff = self.cutoff_us()
        return cutoff is not None and group.max_ts <= cutoff

    def _advance(self, group: FactGroup) -> tuple[int | None, int | None]:
        """Where applying the group moves the watermark (``None``: it stays) and the cutoff to evict before
        (``None``: no eviction due).

        Both depend only on the group, the clock and the engine's state, so they are known
        before the store is called: an apply that also reads (:meth:`apply_and_lookup`)
        carries the eviction in the same call. Nothing changes until :meth:`_moved`, once
        the store has answered.
        """
        newest = group.max_ts
        if self._clock is not None:
            newest = min(newest, to_us(self._clock.now()))
        if self._watermark is not None and newest <= self._watermark:
            return None, None
        cutoff = newest - self._horizon_us
        if self._evicted_to is None or cutoff - self._evicted_to >= self._step_us:
            return newest, cutoff
        return newest, None

    def _moved(self, watermark: int | None, evict_before: int | None) -> None:
        """Record what :meth:`_advance` planned, once the store has applied the group (and evicted)."""
        if watermark is not None:
            self._watermark = watermark
        if evict_before is not None:
            self._evicted_to = evict_before

    def evict(self) -> int:
        """Evict now (normally automatic); returns how many groups were dropped."""
        cutoff = self.cutoff_us()
        if cutoff is None:
            return 0
        self._evicted_to = cutoff
        return self._store.evict(before_us=cutoff)

    def _reference(self, order: Order) -> Mapping[str, AttrValue]:
        """Reference-data attributes of an order, cached by what they depend on (phone digits, district).

        A gazetteer lookup costs microseconds even when its own cache hits; the same few
        thousand (phone block, district) pairs come back all day. The cache is bounded:
        it starts afresh when full.
        """
        return self._reference_cache.get(reference_inputs(order),
                                         lambda _: reference_attributes(order, gazetteer=self._gazetteer))

    def _facts_of(self, order: Order) -> FactGroup:
        recent = self._recent.get(id(order))
        if recent is not None and recent[0] is order:
            return recent[1]
        return order_facts(order, self._declared)

    def keys_of(self, order: Order) -> EntityKeys:
        """The order's entity keys, from the facts :meth:`apply` just built for it when it was the last one
        applied (derived afresh otherwise): the scorer's allow / deny lists read them without hashing again."""
        return group_keys(self._facts_of(order))

    def apply_and_lookup(self, order: Order, *, as_of: datetime) -> FeatureVector:
        """:meth:`apply` then :meth:`lookup` of the same order, in one store call: scoring's path.

        The same values as the two calls (``OnlineStore.apply_and_fetch`` is the store's
        apply, eviction and fetch in one), at the cost of one round trip to a remote store
        instead of two or three. A store that is unavailable keeps the order in the backlog
        (as :meth:`apply` does) and the ``ServiceUnavailableError`` goes on to the caller.
        """
        group = order_facts(order, self._declared)
        self._recent = {id(order): (order, group)}
        keys = group_keys(group)
        t = to_us(as_of)
        queries, owners = self._queries(keys, t)
        try:
            if self._backlog:
                self.catch_up()
            if self._too_late(group):
                ranges = self._store.fetch(queries) if queries else []
            else:
                watermark, evict_before = self._advance(group)
                _, ranges = self._store.apply_and_fetch(group, queries, evict_before_us=evict_before)
                self._moved(watermark, evict_before)
        except ServiceUnavailableError:
            self._keep(group)
            raise
        return self._vector(self._fill(owners, ranges, t), order, group.facts[0].attrs, as_of)

    def apply_and_lookup_many(self, orders: Sequence[tuple[Order, datetime]]
                              ) -> list[FeatureVector | OrderGuardError]:
        """:meth:`apply_and_lookup` of each (order, as_of) in turn: the score route's batch. Each order's outcome
        is in its place: its values, or the error that kept it from them (``ServiceUnavailableError``: the
        store did not answer, and the order waits in the backlog).

        The values are those the single calls in the same order give. A remote store takes the
        whole batch in one call (``OnlineStore.apply_and_fetch_many``: one round trip), which
        runs the steps one after the other; the watermark and eviction each step carries are
        planned here in that order too. An order whose facts cannot be built gets its error and
        is not applied. When the store fails, the planned watermark is undone and every order of
        the batch waits in the backlog. A store in this process has no round trip to save, and
        one order at a time keeps each order's facts warm from apply to read: it is the faster
        way there (measured: about 60 µs an order on the memory store).
        """
        if not self._store.remote:
            return self._one_at_a_time(orders)
        planned = [self._planned(order, as_of) for order, as_of in orders]
        plans = [p for p in planned if not isinstance(p, OrderGuardError)]
        self._recent = {id(p.order): (p.order, p.group) for p in plans}
        before = self._watermark, self._evicted_to
        try:
            if self._backlog:
                self.catch_up()
                before = self._watermark, self._evicted_to
            steps: list[Step] = []
            for p in plans:
                if self._too_late(p.group):
                    steps.append(Step(None, p.queries))
                else:
                    watermark, evict_before = self._advance(p.group)
                    self._moved(watermark, evict_before)  # the next order is planned after this one
                    steps.append(Step(p.group, p.queries, evict_before))
            results = self._store.apply_and_fetch_many(steps) if steps else []
        except ServiceUnavailableError as e:
            self._watermark, self._evicted_to = before
            for p in plans:
                self._keep(p.group)
            return [plan if isinstance(plan, OrderGuardError) else e for plan in planned]
        done = iter(results)
        out: list[FeatureVector | OrderGuardError] = []
        for plan in planned:
            if isinstance(plan, OrderGuardError):
                out.append(plan)
                continue
            _, ranges = next(done)
            out.append(self._vector(self._fill(plan.owners, ranges, to_us(plan.as_of)), plan.order,
                                    plan.group.facts[0].attrs, plan.as_of))
        return out

    def _one_at_a_time(self, orders: Sequence[tuple[Order, datetime]]) -> list[FeatureVector | OrderGuardError]:
        """:meth:`apply_and_lookup` of each order, its error in its place; every order's facts are kept for the
        scorer's next question (its keys)."""
        out: list[FeatureVector | OrderGuardError] = []
        recent: dict[int, tuple[Order, FactGroup]] = {}
        for order, as_of in orders:
            try:
                out.append(self.apply_and_lookup(order, as_of=as_of))
            except OrderGuardError as e:
                out.append(e)
            recent.update(self._recent)
        self._recent = recent
        return out

    def _planned(self, order: Order, as_of: datetime) -> _Planned | OrderGuardError:
        """The order's facts and the ranges its lookup reads, or the error that kept them from being built."""
        try:
            group = order_facts(order, self._declared)
            queries, owners = self._queries(group_keys(group), to_us(as_of))
        except OrderGuardError as e:
            return e
        return _Planned(order, as_of, group, queries, owners)

    def lookup(self, subject: Order | EntityKeys, *, as_of: datetime) -> FeatureVector:
        """Every feature as of ``as_of``, for an order's entity keys or explicit keys.

        Windows end at ``as_of`` inclusive (``features.windows``): to score an order,
        apply it first and look up as of its ``details.created_at``, so the order
        counts itself, exactly as in the training frame. Attributes (and what is
        derived from them) are the order's own; with explicit keys they are missing.
        """
        if isinstance(subject, Order):
            group = self._facts_of(subject)
            queries, owners = self._queries(group_keys(group), to_us(as_of))
            ranges = self._store.fetch(queries) if queries else []
            return self._vector(self._fill(owners, ranges, to_us(as_of)), subject, group.facts[0].attrs, as_of)
        queries, owners = self._queries(subject, to_us(as_of))
        ranges = self._store.fetch(queries) if queries else []
        return self._vector(self._fill(owners, ranges, to_us(as_of)), None, None, as_of)

    def _vector(self, values: list[float], order: Order | None, order_attrs: Mapping[str, AttrValue] | None,
                as_of: datetime) -> FeatureVector:
        """The windowed values followed by the order's attributes (missing without an order) and the derived
        features."""
        if order is None or order_attrs is None:
            values.extend(NAN for _ in self._attrs)
        else:
            if self._needs_reference:
                order_attrs = {**order_attrs, **self._reference(order)}
            values.extend(value(order_attrs) for value in self._attrs)
        for evaluate, args in self._derived:
            values.append(evaluate([values[k] for k in args]))
        return FeatureVector(as_of, dict(zip(self._names, values, strict=True)))

    def _queries(self, keys: EntityKeys, t: int) -> tuple[list[RangeQuery], list[_Source]]:
        """The store ranges the windowed specs read as of ``t`` (microseconds), each with its source."""
        plan = self._plan
        queries: list[RangeQuery] = []
        owners: list[_Source] = []
        ask, own = queries.append, owners.append
        for name, found in keys.items():
            sources = plan.get(name)
            if sources is None or not found:
                continue
            for source in sources:
                entity, kind = source.entity, source.kind
                lo, hi = t - source.span, t - source.near
                for key in found:
                    ask(_new(RangeQuery, (entity, key, kind, lo, hi)))
                    own(source)
        return queries, owners

    def _fill(self, owners: Sequence[_Source], ranges: Sequence[FactRange], t: int) -> list[float]:
        """The windowed specs' values as of ``t`` (microseconds), in spec order, from the ranges fetched."""
        values = list(self._empty)
        previous: _Source | None = None
        for source, fetched in zip(owners, ranges, strict=True):
            if not source.reduce:
                if fetched[0]:
                    source.fill(values, fetched, t, True)
                continue  # an empty range leaves every spec at its empty-window value
            # a multi-valued entity: one range per key, in a row; even an empty one counts
            source.fill(values, fetched, t, source is not previous)
            previous = source
        return values

