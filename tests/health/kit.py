"""Builders for order-health tests: a paid order's channel events and the fulfilment reports of a healthy one."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orderguard.fulfilment import FulfilmentEvent, StepKind
from orderguard.schema import OrderEvent, OrderKey, OrderStatus
from tests.factories import DEFAULT_BUYER, EventFactory, follow_up

#: A promotion morning, 10:00 Beijing.
T0 = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)
_ids = itertools.count(1)


def step(key: OrderKey, kind: StepKind, at: datetime, **fields: object) -> FulfilmentEvent:
    """One report of ``kind`` at ``at`` with a fresh event id."""
    return FulfilmentEvent(key=key, kind=kind, event_id=f"{kind.value}-{next(_ids)}", event_time=at,
                           received_at=at + timedelta(seconds=1), **fields)  # type: ignore[arg-type]


def paid_order(events: EventFactory, at: datetime = T0, **overrides: object) -> list[OrderEvent]:
    """A new order of a buyer of its own (unless ``buyer`` is given), paid at ``at`` (the channel's first ``paid``
    event)."""
    overrides.setdefault("buyer", replace(DEFAULT_BUYER, account_id=f"buyer-{next(_ids)}"))
    return [events(status=OrderStatus.PAID, event_time=at, created_at=at - timedelta(seconds=30), **overrides)]


def healthy_steps(key: OrderKey, paid: datetime, *, deliver: bool = True) -> list[FulfilmentEvent]:
    """Every report of an order fulfilled on time: callback, sync, lock, print, out-scan, tracking, delivery."""
    out = [step(key, StepKind.PAYMENT_CALLBACK, paid + timedelta(seconds=20), source="alipay"),
           step(key, StepKind.ERP_SYNC, paid + timedelta(minutes=2), source="erp"),
           step(key, StepKind.INVENTORY_LOCK, paid + timedelta(minutes=3), source="erp"),
           step(key, StepKind.WAYBILL_PRINTED, paid + timedelta(hours=5), source="wms"),
           step(key, StepKind.OUT_SCAN, paid + timedelta(hours=7), source="wms"),
           step(key, StepKind.TRACKING, paid + timedelta(hours=12), carrier="sf", waybill="SF1", node="运输中"),
           step(key, StepKind.TRACKING, paid + timedelta(hours=30), carrier="sf", waybill="SF1", node="派送中")]
    if deliver:
        out.append(step(key, StepKind.DELIVERED, paid + timedelta(hours=34), carrier="sf", waybill="SF1"))
    return out


def shipped(previous: Sequence[OrderEvent], after: timedelta) -> OrderEvent:
    """The channel's ``shipped`` event ``after`` the last one."""
    return follow_up(previous[-1], status=OrderStatus.SHIPPED, after=after)
