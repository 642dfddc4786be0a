"""Derive the current state of an order from its events (pure).

The order log stores events; this fold is the one definition of "current state" used
by the log, the feature store and tests. It depends only on the *set* of events, not
on their arrival order: events are sorted by ``event_version`` first.
"""

from __future__ import annotations

from collections.abc import Iterable

from orderguard.schema import Order, OrderEvent, StatusChange


def derive_order(events: Iterable[OrderEvent]) -> Order | None:
    """Fold an order's events into its current :class:`Order`.

    ``status`` and ``updated_at`` come from the newest event; ``details`` from the
    newest event that carries a snapshot; ``refund`` from the newest event carrying a
    refund. Returns ``None`` while only after-sale events are known (the order
    document has not arrived yet): such an order cannot be scored or shown.
    """
    ordered = sorted(events, key=lambda e: e.event_version)
    if not ordered:
        return None
    details = None
    refund = None
    timeline: list[StatusChange] = []
    for event in ordered:
        if event.details is not None:
            details = event.details
        if event.refund is not None:
            refund = event.refund
        if not timeline or timeline[-1].status is not event.status:
            timeline.append(StatusChange(event.status, event.event_time, event.event_version,
                                         event.channel_status))
    if details is None:
        return None
    last = ordered[-1]
    return Order(key=last.key, status=last.status, details=details, event_version=last.event_version,
                 updated_at=last.event_time, timeline=tuple(timeline), refund=refund)


def advance_order(base: Order, newer: Iterable[OrderEvent]) -> Order:
    """``derive_order(all events)`` computed from the previous state and the newer events only.

    Valid when every event in ``newer`` has a higher ``event_version`` than ``base``
    (the common case: updates arrive in order); the order log falls back to
    :func:`derive_order` otherwise. Same fold, same result, without reading history back.
    """
    details, refund, timeline = base.details, base.refund, list(base.timeline)
    last = None
    for event in sorted(newer, key=lambda e: e.event_version):
        if event.event_version <= base.event_version:
            raise ValueError(f"advance_order needs newer events; got version {event.event_version} "
                             f"<= {base.event_version} for {event.key}")
        if event.details is not None:
            details = event.details
        if event.refund is not None:
            refund = event.refund
        if not timeline or timeline[-1].status is not event.status:
            timeline.append(StatusChange(event.status, event.event_time, event.event_version,
                                         event.channel_status))
        last = event
    if last is None:
        return base
    return Order(key=base.key, status=last.status, details=details, event_version=last.event_version,
                 updated_at=last.event_time, timeline=tuple(timeline), refund=refund)
