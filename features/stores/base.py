"""The online store protocol: versioned fact groups in, time-range reads out.

A store knows nothing about features. It keeps the facts of each entity key sorted by
event time and answers "the facts of these entity keys between these two times"; the
online engine (``features.online``) aggregates them with the shared aggregators. Keeping
the aggregation out of the stores is what makes every backend give the same numbers.

Semantics every store implements (and ``tests/contracts`` checks):

* ``apply(group)`` stores a :class:`~features.facts.FactGroup` if its version is higher
  than the stored version of that group (or the group is unknown), replacing all the
  group's previous facts; a lower version is a no-op, and so is an equal version with
  the same facts. An equal version with *different* facts replaces them: the order log
  re-derives an order from all its events, and an older event arriving late (a
  delivery scan, say) changes the order without raising its newest ``event_version``;
  the later derivation is the more complete one. Late groups are fine: reads are by
  event time, not arrival.
* ``fetch(queries)`` returns, for each :class:`RangeQuery`, the facts of one kind of that
  entity key with ``lo <= ts <= hi`` (microseconds, both inclusive), ascending by ``ts``; peers (same
  ``ts``) in any order. An unknown key gives an empty list.
* ``evict(before_us=c)`` drops every group whose newest fact is at or before ``c``, so
  state stays bounded by the longest window; returns how many groups went.
* ``apply_and_fetch(group, queries, evict_before_us=c)`` is ``apply(group)``, then
  ``evict(before_us=c)`` when ``c`` is given, then ``fetch(queries)``, with the same
  results, in one call: scoring applies the order and reads its entity keys' windows at
  once, so a remote store answers in one round trip. The reads see the group just
  applied (and not the groups just evicted); a store may do the three steps one after
  the other (:func:`apply_then_fetch`). Eviction rides along because the engine evicts
  right after the apply that moved its watermark, and a separate call would double the
  cost of one scored order in every dozen.
* ``apply_and_fetch_many(steps)`` is ``apply_and_fetch`` of each :class:`Step` in turn (a
  step without a group evicts, if asked, and fetches), with the same results: each step's reads see the
  steps before it and none after. The score route scores a batch of orders at once, and a
  remote store answers the batch in one round trip instead of one per order; a store in
  this process runs the steps one after the other (:func:`each_step`).
* ``declare_reads(pairs)``: the engine says which (entity, kind) ranges it will ever
  fetch. A store whose state is rebuilt on every start (memory) may then skip indexing
  the others: an order's facts carry about twice as many entity keys as the shop's
  features read (the order's own key, the shop, identities on line facts). Durable stores
  ignore it and index everything, so a later feature set can read what they hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, Protocol

from features.declared import EntityRef
from features.facts import Fact, FactGroup, FactKind


class RangeQuery(NamedTuple):
    """The facts of one kind of one entity key with ``lo <= ts <= hi`` (event time, µs, inclusive).

    Stores index by kind too: most features read order facts only, and a lookup then
    never touches the (more numerous) line facts of the same key. A named tuple rather
    than a dataclass: a lookup builds a few dozen of these on the hot path.
    """

    entity: EntityRef
    key: str
    kind: FactKind
    lo: int
    hi: int


#: ``totals(attr, i, j)``: ``(sum, count)`` of the non-missing values of ``attr`` over
#: ``facts[i:j]`` of a range, or ``None`` when the store cannot answer exactly (some value
#: is not an integer): the engine then folds the values itself.
Totals = Callable[[str, int, int], "tuple[int, int] | None"]


class FactRange(NamedTuple):
    """Facts of one query ascending by event time, with their event times alongside.

    The times come separately because the engine binary-searches them for every
    window edge; a store that keeps them as a column hands them over for free.

    ``totals`` is optional: a store that keeps running totals of a long range (the
    in-memory store does, per entity key) lets the engine compute a window's sum or
    mean without touching each fact. Totals are integer sums, exact, so they give the
    very values a fold of the facts gives.
    """

    ts: Sequence[int]
    facts: Sequence[Fact]
    totals: Totals | None = None


#: Ranges at least this long come with running totals (stores that keep them); shorter ones are folded
#: as fast directly.
TOTALS_FROM = 48

#: Running totals of one attribute: cumulative sums and cumulative counts of known values
#: (``n + 1`` entries each), or ``None`` when some value is not an integer (no exact totals).
Running = tuple[list[int], list[int]] | None


def running_totals(facts: Sequence[Fact], attr: str) -> Running:
    """Cumulative integer totals of ``attr`` over ``facts``.

    >>> f = [Fact(FactKind.LINE, i, str(i), {}, {"units": u}) for i, u in enumerate((2, None, 3))]
    >>> running_totals(f, "units")
    ([0, 2, 2, 5], [0, 1, 1, 2])
    >>> running_totals([Fact(FactKind.LINE, 0, "x", {}, {"hours": 1.5})], "hours") is None
    True
    """
    sums, counts = [0], [0]
    total = count = 0
    for fact in facts:
        value = fact.attrs.get(attr)
        if value is not None:
            if not isinstance(value, int):  # floats would make totals inexact; bools are ints
                return None
            total += value
            count += 1
        sums.append(total)
        counts.append(count)
    return sums, counts


#: The result of a query that matched nothing.
EMPTY_RANGE = FactRange((), ())


class Step(NamedTuple):
    """One order's turn in :meth:`OnlineStore.apply_and_fetch_many`: apply ``group`` (none: an order too late to
    change anything is only read around), evict before ``evict_before_us`` when given, then read ``queries``."""

    group: FactGroup | None
    queries: Sequence[RangeQuery]
    evict_before_us: int | None = None


class OnlineStore(Protocol):
    """Where the online engine keeps facts between orders."""

    def apply(self, group: FactGroup) -> bool:
        """Store the group unless a newer version or the same facts are stored; ``True`` if it changed state."""
        ...

    def fetch(self, queries: Sequence[RangeQuery]) -> list[FactRange]:
        """For each query, its facts ascending by event time (one round trip for remote stores)."""
        ...

    def apply_and_fetch(self, group: FactGroup, queries: Sequence[RangeQuery], *,
                        evict_before_us: int | None = None) -> tuple[bool, list[FactRange]]:
        """``apply(group)``, ``evict(before_us=evict_before_us)`` if given, ``fetch(queries)``: what ``apply``
        returned and what ``fetch`` returned (one round trip for remote stores)."""
        ...

    def apply_and_fetch_many(self, steps: Sequence[Step]) -> list[tuple[bool, list[FactRange]]]:
        """``apply_and_fetch`` of each step in order (no apply for a step without a group), as one
        call: each step's reads see the steps before it, none after (one round trip for remote stores)."""
        ...

    def evict(self, *, before_us: int) -> int:
        """Drop the groups whose newest fact is at or before ``before_us``; return how many."""
        ...

    def declare_reads(self, pairs: Iterable[tuple[EntityRef, FactKind]]) -> None:
        """The (entity, kind) ranges fetches will ask for; other ranges may go unindexed.

        Raises ``ValueError`` when the store already holds facts it did not index for
        one of ``pairs`` (rebuild it by replaying the order log).
        """
        ...

    def size(self) -> int:
        """Number of groups held (orders plus labels): what eviction keeps bounded."""
        ...

    @property
    def remote(self) -> bool:
        """Whether calls cross the network (and may stall): the service then keeps them off its event loop."""
        ...

    def lost_state(self) -> bool:
        """Whether the state this store held when opened is gone (a server restarted empty, a flush).

        The service then re-warms the store from the order log. A fresh store marks itself so
        the question can be answered: the marker survives as long as the facts do.
        """
        ...

    def close(self) -> None:
        """Release connections or files; the store is unusable afterwards."""
        ...


def apply_then_fetch(store: OnlineStore, group: FactGroup, queries: Sequence[RangeQuery], *,
                     evict_before_us: int | None = None) -> tuple[bool, list[FactRange]]:
    """``OnlineStore.apply_and_fetch`` as the three calls it stands for, one after the other.

    What a store in this process uses: it has no round trip to save.
    """
    changed = store.apply(group)
    if evict_before_us is not None:
        store.evict(before_us=evict_before_us)
    return changed, store.fetch(queries)


def each_step(store: OnlineStore, steps: Sequence[Step]) -> list[tuple[bool, list[FactRange]]]:
    """``OnlineStore.apply_and_fetch_many`` as one call per step: what a store in this process uses."""
    out: list[tuple[bool, list[FactRange]]] = []
    for group, queries, evict_before in steps:
        if group is not None:
            out.append(store.apply_and_fetch(group, queries, evict_before_us=evict_before))
            continue
        if evict_before is not None:
            store.evict(before_us=evict_before)
        out.append((False, store.fetch(queries) if queries else []))
    return out
