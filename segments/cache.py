"""Computed pools kept for the pages that follow: the API pages through one pool, not one per page.

A pool is keyed by its as-of instant and its criteria (digest included, so an edited
criteria file is a new pool). Entries live ``ttl`` (late labels or events for a past day
reach the pool at the next computation), at most ``size`` of them; the oldest goes
first and its DuckDB connection is closed. Building happens outside the cache's lock,
under a per-key lock, so two first requests for the same pool build it once and a
request for another pool is not held up. Reads of one pool are serialised by the
pool's own lock (its tables are temporary: connection-local in DuckDB).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from segments.build import TrustPool

Key = tuple[datetime, str, str]


@dataclass
class _Entry:
    pool: TrustPool
    built_at: datetime
    lock: threading.Lock = field(default_factory=threading.Lock)


class PoolCache:
    """At most ``size`` pools, each for ``ttl`` (see the module docstring)."""

    def __init__(self, *, size: int, ttl: timedelta) -> None:
        self._size = size
        self._ttl = ttl
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._building: dict[Key, threading.Lock] = {}
        self._lock = threading.Lock()

    def _fresh(self, key: Key, now: datetime) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.built_at < self._ttl:
                self._entries.move_to_end(key)
                return entry
            return None

    @contextmanager
    def use(self, key: Key, now: datetime, build: Callable[[], TrustPool]) -> Iterator[TrustPool]:
        """The pool for ``key`` (built with ``build`` when missing or stale), held for reading until exit."""
        entry = self._fresh(key, now)
        if entry is None:
            with self._lock:
                gate = self._building.setdefault(key, threading.Lock())
            with gate:
                entry = self._fresh(key, now)
                if entry is None:
                    entry = _Entry(build(), now)
                    self._put(key, entry)
        with entry.lock:
            yield entry.pool

    def _put(self, key: Key, entry: _Entry) -> None:
        evicted: list[_Entry] = []
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                evicted.append(old)
            self._entries[key] = entry
            while len(self._entries) > self._size:
                evicted.append(self._entries.popitem(last=False)[1])
            self._building.pop(key, None)
        for gone in evicted:
            with gone.lock:  # a reader still paging through it finishes first
                gone.pool.close()

    def clear(self) -> None:
        """Close every pool (the service is stopping)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            with entry.lock:
                entry.pool.close()
