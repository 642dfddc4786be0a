"""Replaying the sweeper on event time: what the service would have found, sweep by sweep, from the stored logs.

Channel events and fulfilment reports are read in event-time order and handed to the
sweeper just before the first sweep at or after their time, so each sweep sees exactly
what had happened by then — the point-in-time view the service had live (arrival delays
aside: a replay assumes every event arrived when it happened). Used by
``orderguard health sweep`` and the evidence benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from health.sweeper import Sweeper, SweepResult
from orderguard.fulfilment import FulfilmentLog
from orderguard.ingest.orderlog import OrderLog

_TICK = timedelta(microseconds=1)


def replay(sweeper: Sweeper, log: OrderLog, steps: FulfilmentLog, *, start: datetime, end: datetime,
           every: timedelta, horizon: timedelta) -> Iterator[SweepResult]:
    """Sweep at ``start``, every ``every`` after it and at ``end``, feeding events from ``start - horizon`` on."""
    if every <= timedelta(0):
        raise ValueError("every must be positive")
    events = iter(log.iter_events(start=start - horizon, end=end + _TICK))
    reports = iter(s.event for s in steps.iter_range(start=start - horizon, end=end + _TICK))
    next_event, next_report = next(events, None), next(reports, None)
    at = start
    while True:
        batch = []
        while next_event is not None and next_event.event_time <= at:
            batch.append(next_event)
            next_event = next(events, None)
        sweeper.add_order_events(batch)
        fed = []
        while next_report is not None and next_report.event_time <= at:
            fed.append(next_report)
            next_report = next(reports, None)
        sweeper.add_steps(fed)
        yield sweeper.sweep(at)
        if at >= end:
            return
        at = min(at + every, end)
