"""Parse payloads of one channel and append them to the order log, item by item.

Shared by the HTTP ingest route and the file importer so both report bad input the
same way: each rejected item keeps its position (batch index or file line), the field
and the reason, and every good item is stored. ``all_or_nothing`` stores nothing when
any item is bad, for shops that prefer to fix a file and re-run it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orderguard.errors import OrderGuardError
from orderguard.ingest.attributes import with_attributes
from orderguard.ingest.channels.base import ChannelAdapter
from orderguard.ingest.guard import check_event, check_payload
from orderguard.ingest.normalize import ParseContext
from orderguard.ingest.orderlog import AppendOutcome, OrderLog
from orderguard.ingest.protect import protect
from orderguard.schema import Order, OrderEvent


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one payload was refused.

    Attributes:
        position: batch index (0-based) or file line number (1-based), as the caller numbers them.
    """

    position: int
    error: OrderGuardError

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, **self.error.to_dict()}


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What happened to one accepted payload."""

    position: int
    order_key: str
    event_version: int
    status: str
    outcome: str  # "inserted" | "duplicate" | "conflict"


@dataclass(slots=True)
class IngestReport:
    """Totals and per-item outcomes of one ingest call."""

    items: list[ItemResult] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)

    @property
    def inserted(self) -> int:
        return sum(1 for i in self.items if i.outcome == "inserted")

    @property
    def duplicates(self) -> int:
        return sum(1 for i in self.items if i.outcome == "duplicate")

    @property
    def conflicts(self) -> int:
        return sum(1 for i in self.items if i.outcome == "conflict")

    def merge(self, other: IngestReport) -> None:
        self.items.extend(other.items)
        self.errors.extend(other.errors)


def parse_payload(adapter: ChannelAdapter, payload: Mapping[str, Any], *, ctx: ParseContext) -> OrderEvent:
    """One payload → one event, through the bounds every way in shares (``orderguard.ingest.guard``), with its
    personal data in the form it is stored in (``orderguard.ingest.protect``)."""
    check_payload(payload, ctx.limits)
    event = with_attributes(adapter.parse(payload, ctx=ctx), payload)
    check_event(event, ctx.limits)
    return protect(event, ctx.hasher)


def parse_items(
    adapter: ChannelAdapter, payloads: Iterable[tuple[int, Mapping[str, Any] | OrderGuardError]],
    *, ctx: ParseContext,
) -> tuple[list[tuple[int, OrderEvent]], list[ItemError]]:
    """Parse numbered payloads; a pre-failed item (an ``OrderGuardError`` from the reader) passes through."""
    events: list[tuple[int, OrderEvent]] = []
    errors: list[ItemError] = []
    for position, payload in payloads:
        if isinstance(payload, OrderGuardError):
            errors.append(ItemError(position, payload))
            continue
        try:
            events.append((position, parse_payload(adapter, payload, ctx=ctx)))
        except OrderGuardError as e:
            errors.append(ItemError(position, e))
    return events, errors


def store(log: OrderLog, events: list[tuple[int, OrderEvent]], *,
          on_orders: Callable[[Sequence[Order]], None] | None = None) -> list[ItemResult]:
    """Append parsed events and say, per item, whether it was new, a duplicate or a conflict.

    ``on_orders`` receives the current state of every order that changed (the service
    uses it to keep the online features fresh) and of every order an event was a
    duplicate of: a retry after a failure between storing and applying (say, the online
    store was down) must reach the state a first success would have, so the order is
    applied again - applying is idempotent by version, so nothing counts twice.
    """
    if not events:
        return []
    result = log.append([e for _, e in events])
    if on_orders is not None:
        changed = {o.key for o in result.orders}
        retried = {event.key for (_, event), outcome in zip(events, result.outcomes, strict=True)
                   if outcome is AppendOutcome.DUPLICATE and event.key not in changed}
        again = [order for key in sorted(retried) if (order := log.get(key)) is not None]
        if result.orders or again:
            on_orders([*result.orders, *again])
    return [ItemResult(position, str(event.key), event.event_version, event.status.value, outcome.value)
            for (position, event), outcome in zip(events, result.outcomes, strict=True)]


def ingest_payloads(
    log: OrderLog, adapter: ChannelAdapter,
    payloads: Iterable[tuple[int, Mapping[str, Any] | OrderGuardError]],
    *, ctx: ParseContext, all_or_nothing: bool = False,
    on_orders: Callable[[Sequence[Order]], None] | None = None,
) -> IngestReport:
    """Parse and store one batch; see the module docstring for the error policy."""
    events, errors = parse_items(adapter, payloads, ctx=ctx)
    if all_or_nothing and errors:
        return IngestReport(items=[], errors=errors)
    return IngestReport(items=store(log, events, on_orders=on_orders), errors=errors)
