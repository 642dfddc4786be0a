"""Feeding a sweeper from the database: a warm start up to a moment, then following the logs as they grow.

The sweeper keeps orders in memory; this is how it gets them. :func:`load` folds every
channel event and fulfilment report with event time in ``[start, end)`` (a replay to an
as-of, or the service's start-up over its horizon). :class:`Follower` then reads what was
stored since, by row id, from both logs. PostgreSQL hands out ids before commit, so an
id can become visible after a higher one was read: the follower re-reads a margin of
rows behind its cursor, and the sweeper's folding makes a repeat harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from health.sweeper import Sweeper
from orderguard.fulfilment import FulfilmentLog
from orderguard.ingest.orderlog import OrderLog

#: Rows re-read behind each cursor (see the module docstring).
MARGIN = 256


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
        events = steps = 0
        while True:
            rows = self._log.events_after(max(0, self.events_cursor - MARGIN), limit=page)
            fresh = [e for i, e in rows if i > self.events_cursor]
            sweeper.add_order_events(e for _, e in rows)
            events += len(fresh)
            if rows:
                self.events_cursor = max(self.events_cursor, rows[-1][0])
            if len(fresh) < page - MARGIN:
                break
        while True:
            stored = self._steps.after(max(0, self.steps_cursor - MARGIN), limit=page)
            sweeper.add_steps(s.event for s in stored)
            fresh_steps = [s for s in stored if s.id > self.steps_cursor]
            steps += len(fresh_steps)
            if stored:
                self.steps_cursor = max(self.steps_cursor, stored[-1].id)
            if len(fresh_steps) < page - MARGIN:
                break
        return Loaded(events, steps)
