"""In-process online store: per-(entity key, fact kind) buffers sorted by event time.

Built for the hot path: a read is two binary searches and a slice per entity key; an
in-order write appends, a late one inserts at its place by event time. Eviction pops a
heap of ``(newest fact time, group)``, so it costs O(log n) per evicted group and never
scans the whole state. A lock makes it safe to share between request threads.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from features.facts import Entity, Fact, FactGroup, FactKind
from features.stores.base import EMPTY_RANGE, FactRange, RangeQuery


class _Buffer:
    """Facts of one entity key: ``ts`` ascending, ``facts`` in the same order."""

    __slots__ = ("facts", "ts")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.facts: list[Fact] = []

    def insert(self, fact: Fact) -> None:
        if not self.ts or fact.ts >= self.ts[-1]:
            self.ts.append(fact.ts)
            self.facts.append(fact)
            return
        i = bisect_right(self.ts, fact.ts)
        self.ts.insert(i, fact.ts)
        self.facts.insert(i, fact)

    def remove(self, fact: Fact) -> None:
        i = bisect_left(self.ts, fact.ts)
        while i < len(self.ts) and self.ts[i] == fact.ts:
            if self.facts[i] is fact:
                del self.ts[i]
                del self.facts[i]
                return
            i += 1


@dataclass(frozen=True, slots=True)
class _Stored:
    version: int
    max_ts: int
    facts: tuple[Fact, ...]
    serial: int  # which apply stored it: tells a live expiry entry from a superseded one


class MemoryStore:
    """Facts in process memory; lost on restart (rebuild by replaying the order log)."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[Entity, str, FactKind], _Buffer] = {}
        self._groups: dict[str, _Stored] = {}
        self._expiry: list[tuple[int, str, int]] = []  # (max_ts, group_id, serial), lazily pruned
        self._serial = 0
        self._lock = threading.Lock()

    def apply(self, group: FactGroup) -> bool:
        with self._lock:
            old = self._groups.get(group.group_id)
            if old is not None and (old.version > group.version
                                    or (old.version == group.version and old.facts == group.facts)):
                return False
            if old is not None:
                self._place(old.facts, remove=True)
            self._place(group.facts, remove=False)
            self._serial += 1
            stored = _Stored(group.version, group.max_ts, group.facts, self._serial)
            self._groups[group.group_id] = stored
            heapq.heappush(self._expiry, (stored.max_ts, group.group_id, stored.serial))
            return True

    def _place(self, facts: Sequence[Fact], *, remove: bool) -> None:
        buffers = self._buffers
        for fact in facts:
            kind = fact.kind
            for entity, key in fact.entities.items():
                slot = (entity, key, kind)
                buffer = buffers.get(slot)
                if remove:
                    if buffer is not None:
                        buffer.remove(fact)
                        if not buffer.ts:
                            del buffers[slot]
                    continue
                if buffer is None:
                    buffer = buffers[slot] = _Buffer()
                buffer.insert(fact)

    def fetch(self, queries: Sequence[RangeQuery]) -> list[FactRange]:
        out: list[FactRange] = []
        buffers = self._buffers
        with self._lock:
            for entity, key, kind, lo, hi in queries:
                buffer = buffers.get((entity, key, kind))
                if buffer is None:
                    out.append(EMPTY_RANGE)
                    continue
                ts = buffer.ts
                i = bisect_left(ts, lo)
                j = bisect_right(ts, hi)
                out.append(FactRange(ts[i:j], buffer.facts[i:j]))
        return out

    def evict(self, *, before_us: int) -> int:
        evicted = 0
        with self._lock:
            while self._expiry and self._expiry[0][0] <= before_us:
                _, group_id, serial = heapq.heappop(self._expiry)
                stored = self._groups.get(group_id)
                if stored is None or stored.serial != serial:
                    continue  # superseded by a later apply, which has its own heap entry
                self._place(stored.facts, remove=True)
                del self._groups[group_id]
                evicted += 1
        return evicted

    def size(self) -> int:
        return len(self._groups)

    def close(self) -> None:
        with self._lock:
            self._buffers.clear()
            self._groups.clear()
            self._expiry.clear()

