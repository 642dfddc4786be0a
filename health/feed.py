"""Feeding a sweeper from the database: a warm start up to a moment, then following the logs as they grow.

The sweeper keeps orders in memory; this is how it gets them. :func:`load` folds every
channel event and fulfilment report with event time in ``[start, end)`` (a replay to an
as-of, or the service's start-up over its horizon). :class:`Follower` then reads what was
stored since, by row id, from both logs. PostgreSQL hands out ids before commit, so an
id can become visible after a higher one was read: the follower re-reads a margin of
rows behind its cursor, and the sweeper's folding makes a repeat harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from health.sweeper import Sweeper
from orderguard.fulfilment import FulfilmentLog
from orderguard.ingest.orderlog import OrderLog

#: Rows re-read behind each cursor (see the module docstring).
MARGIN = 256
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Loaded:
    """How many channel events and fulfilment reports a load or a poll folded in."""

    events: int
    steps: int


def load(sweeper: Sweeper, log: OrderLog, steps: FulfilmentLog, *, start: datetime | None,
         end: datetime | None) -> Loaded:
    """Fold everything with event time in ``[start, end)`` into ``sweeper``."""
    events = sweeper.add_order_events(log.iter_events(start=start, end=end))
    reports = sweeper.add_steps(s.event for s in steps.iter_range(start=start, end=end))
    return Loaded(events, reports)


class Follower:
    """Reads both logs forward from where it last stopped (see the module docstring)."""

    def __init__(self, log: OrderLog, steps: FulfilmentLog, *, events_after: int = 0, steps_after: int = 0) -> None:
        self._log, self._steps = log, steps
        self.events_cursor, self.steps_cursor = events_after, steps_after

    @classmethod
    def at_end(cls, log: OrderLog, steps: FulfilmentLog) -> Follower:
        """A follower that starts after everything stored now (after a warm start has loaded it)."""
        return cls(log, steps, events_after=log.last_event_id(), steps_after=steps.last_id())

    def poll(self, sweeper: Sweeper, *, page: int = 5000) -> Loaded:
        """Fold what was stored since the last poll (and the re-read margin) into ``sweeper``."""
        self.events_cursor, events = _drain(lambda after: self._log.events_after(after, limit=page),
                                            sweeper.add_order_events, self.events_cursor, page)
        self.steps_cursor, steps = _drain(
            lambda after: [(s.id, s.event) for s in self._steps.after(after, limit=page)],
            sweeper.add_steps, self.steps_cursor, page)
        return Loaded(events, steps)


def _drain(read: Callable[[int], list[tuple[int, T]]], fold: Callable[[Iterable[T]], int], cursor: int,
           page: int) -> tuple[int, int]:
    """Read rows after ``cursor`` minus the margin, page by page, folding each; the new cursor and how many rows
    were new (the margin's repeats are folded again, harmlessly, and not counted)."""
    fresh_total = 0
    while True:
        rows = read(max(0, cursor - MARGIN))
        fold(item for _, item in rows)
        fresh = sum(1 for row_id, _ in rows if row_id > cursor)
        fresh_total += fresh
        if rows:
            cursor = max(cursor, rows[-1][0])
        if fresh < page - MARGIN:
            return cursor, fresh_total
