"""Answers kept by key, forgotten all at once when the cache is full.

The gazetteer's places and phone homes, the describer's phrases and the online engine's
reference attributes are pure answers asked again and again on the score path (a day's
orders repeat the same districts, phone blocks and feature values), and each costs
microseconds to work out against a fraction of one to look up. Why not
``functools.lru_cache``: it would hold the instance alive and share one bound across
instances, and its bookkeeping costs more per hit than these lookups save; a cache that
starts afresh when full bounds the memory that made-up inputs could take, which is all
these need.

Shared between threads: a lookup reads the dict once, so another thread's clear between
the read and the use cannot make it raise; a lost race costs one more computation.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")

#: A miss (``None`` may be a kept answer); compared by identity.
_MISSING = object()


class ClearingCache(Generic[_K, _V]):
    """``make(key)`` kept by ``key``; all answers are dropped once ``size`` are kept.

    >>> squares = ClearingCache[int, int](2)
    >>> [squares.get(n, lambda k: k * k) for n in (3, 3, 4, 5)], len(squares)
    ([9, 9, 16, 25], 1)
    """

    __slots__ = ("_kept", "_size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be positive; got {size}")
        self._size = size
        self._kept: dict[_K, _V] = {}

    def get(self, key: _K, make: Callable[[_K], _V]) -> _V:
        """The kept answer for ``key``, else ``make(key)``, kept (after dropping everything when full)."""
        kept = self._kept
        found = kept.get(key, _MISSING)  # one read: another thread may clear the cache in between
        if found is _MISSING:
            if len(kept) >= self._size:
                kept.clear()
            found = kept[key] = make(key)
        return cast(_V, found)

    def __len__(self) -> int:
        return len(self._kept)
