"""The order states this process wrote last, so advancing one of them again needs no decode.

An append re-derives every order it touches from the order's stored state. Decoding that
state (JSON text → dict → :class:`~orderguard.schema.Order`) cost about as much as the
rest of re-deriving it, and in a backfill or a busy service most states read back are the
very ones this process wrote a few batches earlier. The memo keeps, per order, the stored
form it wrote (the JSON text on SQLite, the JSON value the driver returns on PostgreSQL)
beside the :class:`Order` it encoded.

It is never trusted blindly: :meth:`StateMemo.order` is handed what the database holds
*now*, inside the appender's transaction, and uses the kept :class:`Order` only when that
equals the kept stored form, content for content. Another process's write, a rolled-back
transaction or an evicted entry therefore only costs a decode, never a stale state.
Entries are forgotten least recently used first. A file import keeps one
(``OrderLog.open(..., remembered_states=IMPORT_CAPACITY)``); the service does not (see
``OrderLog.__init__``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from orderguard.ingest import codec
from orderguard.schema import Order

#: Orders a file import keeps: a few batches of a backfill. About 10 KB each.
IMPORT_CAPACITY = 4_096


class StateMemo:
    """Stored form → decoded :class:`Order` for the states written last (see the module docstring).

    Safe to share between threads: every step is one dict operation, and a lost race
    only means a decode. ``hits`` and ``misses`` count :meth:`order`'s answers.
    """

    def __init__(self, capacity: int = IMPORT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be positive; got {capacity}")
        self._capacity = capacity
        self._kept: OrderedDict[Hashable, tuple[Any, Order]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def order(self, key: Hashable, stored: Any) -> Order:
        """The order whose stored form is ``stored`` (text or a decoded JSON value), from the memo when it
        holds exactly that form for ``key``, else decoded."""
        kept = self._kept.pop(key, None)
        if kept is not None and kept[0] == stored:
            self._kept[key] = kept  # most recently used again
            self.hits += 1
            return kept[1]
        self.misses += 1
        return codec.order_from_dict(codec.stored_json(stored))

    def keep(self, key: Hashable, stored: Any, order: Order) -> None:
        """Remember that ``order`` was written as ``stored``."""
        self._kept.pop(key, None)
        self._kept[key] = (stored, order)
        while len(self._kept) > self._capacity:
            try:
                self._kept.popitem(last=False)
            except KeyError:  # another thread emptied it meanwhile
                break

    def __len__(self) -> int:
        return len(self._kept)
