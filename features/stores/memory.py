"""In-process online store: per-(entity key, fact kind) buffers sorted by event time.

Built for the hot path of scoring:

* a read is two binary searches and a slice per entity key; an in-order write appends,
  a late one inserts at its place by event time;
* a newer version of a group moves only the facts that changed (an order's status
  changes many times, its facts rarely: a new version usually re-places nothing);
* only the ranges the engine reads are indexed (``declare_reads``): the state is rebuilt
  by replaying the order log on every start, so it always matches the feature set;
* a long buffer (a popular SKU's lines over a week) keeps running integer totals of
  the attributes asked for, built on first use and extended on append, so the sum or
  mean of a window is two subtractions instead of a pass over every fact (see
  ``FactRange.totals``); a late insert or a removal other than the oldest drops them,
  to be rebuilt on demand;
* eviction pops a heap of ``(newest fact time, group)``, so it costs O(log n) per
  evicted group and never scans the whole state.

Layout: for each (entity, kind) a dict from entity key to the event times and a parallel
dict to the facts. A key with a single fact (most pair keys never get a second: one
account and one SKU, one account and one address) holds the bare event time and fact;
a second fact turns them into two lists. That keeps the objects the garbage collector
must walk per order to a minimum: state that grows by a few dozen containers per order
makes every young-generation collection longer.

A lock makes it safe to share between request threads; totals handed out by ``fetch``
check, under the lock, that no buffer was rearranged since.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from features.declared import EntityRef
from features.facts import Fact, FactGroup, FactKind
from features.stores.base import (
    EMPTY_RANGE,
    TOTALS_FROM,
    FactRange,
    RangeQuery,
    Running,
    Step,
    apply_then_fetch,
    each_step,
    running_totals,
)

#: (entity, kind) of a buffer; facts name the entity by its plain string, queries by the
#: ``Entity`` member, which is equal and hashes alike.
_Slot = tuple[str, FactKind]
#: Event times of one entity key: a bare int while it has one fact, else a sorted list.
_Times = int | list[int]
#: Facts of one entity key, parallel to its ``_Times``.
_Facts = Fact | list[Fact]


class MemoryStoreConfig(BaseModel):
    """``type: memory``: the embedded default; the store is rebuilt at start from the order log."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["memory"] = Field(default="memory", description="the online feature store: memory, sqlite "
                                                                  "or redis")

    def open(self, data_dir: Path) -> MemoryStore:
        """A new, empty store (``data_dir`` is unused: nothing is written to disk)."""
        return MemoryStore()


def _extend(running: dict[str, Running], fact: Fact) -> None:
    """Append one fact to running totals (the fact went to the end of its buffer)."""
    for attr, totals in running.items():
        if totals is None:
            continue
        value = fact.attrs.get(attr)
        sums, counts = totals
        if value is None:
            sums.append(sums[-1])
            counts.append(counts[-1])
        elif isinstance(value, int):
            sums.append(sums[-1] + value)
            counts.append(counts[-1] + 1)
        else:
            running[attr] = None


class MemoryStore:
    """Facts in process memory; lost on restart (rebuild by replaying the order log)."""

    def __init__(self) -> None:
        self._times: dict[_Slot, dict[str, _Times]] = {}
        self._facts: dict[_Slot, dict[str, _Facts]] = {}
        self._running: dict[_Slot, dict[str, dict[str, Running]]] = {}
        self._groups: dict[str, tuple[int, int, tuple[Fact, ...], int]] = {}  # version, max_ts, facts, serial
        self._expiry: list[tuple[int, str, int]] = []  # (max_ts, group_id, serial), lazily pruned
        self._serial = 0
        self._rearranged = 0  # bumped whenever positions in some buffer shift
        self._indexed: dict[FactKind, frozenset[str]] | None = None  # entity values; None: every (entity, kind)
        self._lock = threading.Lock()

    def declare_reads(self, pairs: Iterable[tuple[EntityRef, FactKind]]) -> None:
        wanted: dict[FactKind, set[str]] = {}
        for entity, kind in pairs:
            wanted.setdefault(kind, set()).add(entity.value)  # facts key entities by plain string
        with self._lock:
            current = self._indexed
            if current is None:
                if not self._groups:
                    self._indexed = {kind: frozenset(entities) for kind, entities in wanted.items()}
                return  # otherwise it already indexes everything
            missing = [(e, k) for k, es in wanted.items() for e in es if e not in current.get(k, frozenset())]
            if missing and self._groups:
                raise ValueError(f"the store holds facts not indexed by {missing[0]}; rebuild it")
            self._indexed = {k: current.get(k, frozenset()) | wanted.get(k, set()) for k in {*current, *wanted}}

    def apply(self, group: FactGroup) -> bool:
        with self._lock:
            old = self._groups.get(group.group_id)
            if old is None:
                for fact in group.facts:
                    self._insert(fact)
                facts = group.facts
            else:
                old_version, old_max_ts, old_facts, old_serial = old
                if old_version > group.version:
                    return False
                if old_facts == group.facts:
                    if old_version == group.version:
                        return False
                    # a newer version with the same facts (a status change): nothing moves
                    self._groups[group.group_id] = (group.version, old_max_ts, old_facts, old_serial)
                    return True
                facts = self._replace(old_facts, group.facts)
            self._serial += 1
            max_ts = group.max_ts
            self._groups[group.group_id] = (group.version, max_ts, facts, self._serial)
            heapq.heappush(self._expiry, (max_ts, group.group_id, self._serial))
            return True

    def _replace(self, old: Sequence[Fact], new: Sequence[Fact]) -> tuple[Fact, ...]:
        """Move only the facts that changed; unchanged ones stay where they are (same objects)."""
        previous = {f.fact_id: f for f in old}
        kept: list[Fact] = []
        for fact in new:
            before = previous.pop(fact.fact_id, None)
            if before is not None and before == fact:
                kept.append(before)
                continue
            if before is not None:
                self._remove(before)
            self._insert(fact)
            kept.append(fact)
        for gone in previous.values():
            self._remove(gone)
        return tuple(kept)

    def _insert(self, fact: Fact) -> None:
        kind = fact.kind
        indexed = self._indexed
        allowed = indexed.get(kind, frozenset()) if indexed is not None else None
        at = fact.ts
        for entity, key in fact.entities.items():
            if allowed is not None and entity not in allowed:
                continue
            slot = (entity, kind)
            by_key = self._times.get(slot)
            if by_key is None:
                by_key = self._times[slot] = {}
                self._facts[slot] = {}
            times = by_key.get(key)
            if times is None:  # a new key: its one fact, bare
                by_key[key] = at
                self._facts[slot][key] = fact
                continue
            facts_by_key = self._facts[slot]
            if isinstance(times, int):  # a second fact: two lists, in event-time order
                first = facts_by_key[key]
                assert not isinstance(first, list)
                if at >= times:
                    by_key[key], facts_by_key[key] = [times, at], [first, fact]
                else:
                    by_key[key], facts_by_key[key] = [at, times], [fact, first]
                    self._rearranged += 1
                continue
            facts = facts_by_key[key]
            assert isinstance(facts, list)
            running = self._running.get(slot)
            if at >= times[-1]:
                times.append(at)
                facts.append(fact)
                if running is not None and key in running:
                    _extend(running[key], fact)
                continue
            i = bisect_right(times, at)
            times.insert(i, at)
            facts.insert(i, fact)
            self._rearranged += 1
            if running is not None:
                running.pop(key, None)

    def _remove(self, fact: Fact) -> None:
        kind = fact.kind
        at = fact.ts
        for entity, key in fact.entities.items():
            slot = (entity, kind)
            by_key = self._times.get(slot)
            times = by_key.get(key) if by_key is not None else None
            if by_key is None or times is None:
                continue  # not indexed
            facts_by_key = self._facts[slot]
            if isinstance(times, int):
                if facts_by_key[key] is fact:
                    del by_key[key]
                    del facts_by_key[key]
                    self._rearranged += 1
                continue
            facts = facts_by_key[key]
            assert isinstance(facts, list)
            i = bisect_left(times, at)
            while i < len(times) and times[i] == at and facts[i] is not fact:
                i += 1
            if i == len(times) or times[i] != at:
                continue
            del times[i]
            del facts[i]
            self._rearranged += 1
            running = self._running.get(slot)
            if not times:
                del by_key[key]
                del facts_by_key[key]
                if running is not None:
                    running.pop(key, None)
            elif running is not None and key in running:
                if i == 0:  # the oldest fact (eviction): totals stay valid one place on
                    for totals in running[key].values():
                        if totals is not None:
                            del totals[0][0]
                            del totals[1][0]
                else:
                    del running[key]

    def fetch(self, queries: Sequence[RangeQuery]) -> list[FactRange]:
        out: list[FactRange] = []
        put = out.append
        new = tuple.__new__  # a named tuple without the class's Python-level ``__new__``
        times_of, facts_of = self._times, self._facts
        with self._lock:
            for entity, key, kind, lo, hi in queries:
                slot = (entity, kind)
                by_key = times_of.get(slot)
                times = by_key.get(key) if by_key is not None else None
                if times is None:
                    put(EMPTY_RANGE)
                elif isinstance(times, int):
                    put(new(FactRange, ([times], [facts_of[slot][key]], None)) if lo <= times <= hi else EMPTY_RANGE)
                else:
                    i = bisect_left(times, lo)
                    j = bisect_right(times, hi)
                    facts = facts_of[slot][key]
                    assert isinstance(facts, list)
                    if j - i < TOTALS_FROM:
                        put(new(FactRange, (times[i:j], facts[i:j], None)) if j > i else EMPTY_RANGE)
                    else:
                        put(new(FactRange, (times[i:j], facts[i:j],
                                            partial(self._totals, slot, key, self._rearranged, i))))
        return out

    def _totals(self, slot: _Slot, key: str, rearranged: int, offset: int, attr: str, i: int, j: int
                ) -> tuple[int, int] | None:
        with self._lock:
            if self._rearranged != rearranged:  # positions may have shifted since the fetch
                return None
            per_key = self._running.setdefault(slot, {}).setdefault(key, {})
            if attr in per_key:
                found = per_key[attr]
            else:
                facts = self._facts[slot][key]
                found = per_key[attr] = running_totals(facts if isinstance(facts, list) else [facts], attr)
            if found is None:
                return None
            sums, counts = found
            return sums[offset + j] - sums[offset + i], counts[offset + j] - counts[offset + i]

    def apply_and_fetch(self, group: FactGroup, queries: Sequence[RangeQuery], *,
                        evict_before_us: int | None = None) -> tuple[bool, list[FactRange]]:
        """Apply, evict, fetch, one after the other: no round trip to save here."""
        return apply_then_fetch(self, group, queries, evict_before_us=evict_before_us)

    def apply_and_fetch_many(self, steps: Sequence[Step]) -> list[tuple[bool, list[FactRange]]]:
        """One step after the other: no round trip to save here."""
        return each_step(self, steps)

    def evict(self, *, before_us: int) -> int:
        evicted = 0
        with self._lock:
            while self._expiry and self._expiry[0][0] <= before_us:
                _, group_id, serial = heapq.heappop(self._expiry)
                stored = self._groups.get(group_id)
                if stored is None or stored[3] != serial:
                    continue  # superseded by a later apply, which has its own heap entry
                for fact in stored[2]:
                    self._remove(fact)
                del self._groups[group_id]
                evicted += 1
        return evicted

    @property
    def remote(self) -> bool:
        """``False``: in this process."""
        return False

    def lost_state(self) -> bool:
        """Never: the state lives as long as this object (memory) or its file (SQLite)."""
        return False

    def size(self) -> int:
        return len(self._groups)

    def close(self) -> None:
        with self._lock:
            self._times.clear()
            self._facts.clear()
            self._running.clear()
            self._groups.clear()
            self._expiry.clear()
