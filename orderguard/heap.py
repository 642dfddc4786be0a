"""How a long-running process sets up Python's cyclic garbage collector once its warm state is built.

Two measures, both for the latency of a scored order rather than for memory:

* ``gc.freeze()``: the warm state (every recent order's facts, the model, the rule pack) moves out
  of the collector's generations, so no later collection walks it again.
* A young-generation threshold of :data:`YOUNG_THRESHOLD` allocations instead of Python's 700. A
  scored order allocates a few thousand container objects; with the default the collector ran
  several times within every order, and each run walked the read lists that order had just built
  (a busy key's read is a list of a thousand facts, each visit a cache miss): on the Redis store
  that was ~0.5-1 ms at a scored order's p99. With the higher threshold most of those lists are
  replaced by the next read of their key before any collection sees them, and collections fall in
  well under one order in a hundred. Garbage cycles live a little longer; they are rare here (the
  hot path frees by reference counting).

The service calls :func:`settle_heap` after its warm start, and the benches call it where they
stand in for the service, so they measure what it runs; :func:`release_heap` undoes it (shutdown,
the end of a timed run). A file import runs inside :func:`settled_heap` for the second reason alone:
each row allocates a few hundred short-lived containers (decoded JSON, the event, its encoding), and
with the default threshold the collector ran every two or three rows; the import went 15-20 % faster.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations (less deallocations) of container objects between two young-generation collections.
YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Collect, freeze what is alive, raise the young threshold (the older generations' stay).

    >>> before = gc.get_threshold()
    >>> settle_heap()
    >>> gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:]) and gc.get_freeze_count() > 0
    True
    >>> release_heap(before)
    >>> gc.get_threshold() == before and gc.get_freeze_count() == 0
    True
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


def release_heap(thresholds: tuple[int, int, int]) -> None:
    """Undo :func:`settle_heap`: thaw what it froze and put back ``thresholds`` (``gc.get_threshold()`` taken
    before it). Harmless when the heap was never settled."""
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@contextmanager
def settled_heap() -> Iterator[None]:
    """:func:`settle_heap` for the length of a block (a batch job), :func:`release_heap` after it.

    >>> before = gc.get_threshold()
    >>> with settled_heap():
    ...     gc.get_threshold()[0] == YOUNG_THRESHOLD
    True
    >>> gc.get_threshold() == before
    True
    """
    before = gc.get_threshold()
    settle_heap()
    try:
        yield
    finally:
        release_heap(before)
