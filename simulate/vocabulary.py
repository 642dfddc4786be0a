"""Fit the simulated life cycle to what each channel's documents can say.

The simulator plays the physical life of an order (a parcel is delivered whether or
not the platform reports it), but platforms differ in what they send: Douyin and WeChat
order documents have no "delivered" state, and most platforms report an unpaid order
closed at the timeout as "cancelled". ``restate`` rewrites the event stream into each
channel's vocabulary: a ``closed`` order document becomes ``cancelled`` where the
channel has no ``closed``; any other status a channel cannot state is not sent at all.
Which statuses a channel can state is the channel encoders' knowledge, passed in as a
callable (``lambda c, k: ENCODERS[c].statuses(k)``), so it lives in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import replace

from orderguard.schema import Channel, EventKind, OrderStatus
from simulate.plain import PlainEvent

#: Statuses a channel's documents of one kind can state.
StatusVocabulary = Callable[[Channel, EventKind], Collection[OrderStatus]]


def restate(events: Iterable[PlainEvent], *, can_state: StatusVocabulary) -> list[PlainEvent]:
    """Events as the channels would send them, order preserved.

    >>> from datetime import UTC, datetime
    >>> from orderguard.schema import Amounts
    >>> from simulate.plain import PlainBuyer
    >>> t = datetime(2024, 9, 1, tzinfo=UTC)
    >>> def ev(s):
    ...     return PlainEvent(Channel.DOUYIN, "1", "s", EventKind.ORDER, s, t, t, PlainBuyer("u"), (),
    ...                       Amounts(0, 0))
    >>> vocab = lambda c, k: {OrderStatus.CREATED, OrderStatus.CANCELLED}
    >>> [e.status.value for e in restate([ev(OrderStatus.CREATED), ev(OrderStatus.DELIVERED),
    ...                                   ev(OrderStatus.CLOSED)], can_state=vocab)]
    ['created', 'cancelled']
    """
    known: dict[tuple[Channel, EventKind], Collection[OrderStatus]] = {}
    out: list[PlainEvent] = []
    for event in events:
        key = (event.channel, event.kind)
        allowed = known.get(key)
        if allowed is None:
            allowed = known[key] = frozenset(can_state(*key))
        if event.status in allowed:
            out.append(event)
        elif (event.status is OrderStatus.CLOSED and event.kind is EventKind.ORDER
              and OrderStatus.CANCELLED in allowed):
            out.append(replace(event, status=OrderStatus.CANCELLED))
    return out
