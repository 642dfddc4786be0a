"""A small shop on a promotion morning, stored and swept: what the order-health pages and routes are tested on.

Eight orders paid between 10:00 and 10:07 Beijing (T0): five fulfilled on time, one whose
payment callback never came (red by 10:45), one printed but never out-scanned, one with an
address without street or number. Swept every minute until ``NOW`` (T0 + 10 h) and recorded,
so the store holds findings, snapshots for the chart and a latest snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from features.settings import Settings
from health.checks import load_checks
from health.store import HealthStore
from health.sweeper import Sweeper
from orderguard.fulfilment import FulfilmentLog
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Address, OrderEvent, OrderKey
from tests.factories import EventFactory
from tests.health.kit import T0, healthy_steps, paid_order

#: When the pages are looked at.
NOW = T0 + timedelta(hours=10)


@dataclass(frozen=True, slots=True)
class Shop:
    """The keys of the interesting orders."""

    lost_callback: OrderKey
    stuck_in_warehouse: OrderKey
    bad_address: OrderKey
    healthy: tuple[OrderKey, ...]


def fill(settings: Settings, *, every: timedelta = timedelta(minutes=1)) -> Shop:
    """Store the shop's events and reports in ``settings``' order log and record the sweeps up to ``NOW``."""
    events = EventFactory(prefix="HX")
    orders: list[list[OrderEvent]] = [paid_order(events, at=T0 + timedelta(minutes=i)) for i in range(7)]
    nowhere = Address("浙江省", "杭州市", "西湖区", "翠湖花园东门")  # no street, no number
    odd = paid_order(events, at=T0 + timedelta(minutes=7), address=nowhere)
    lost, stuck, *fine = orders
    steps = [s for order in fine for s in healthy_steps(order[0].key, order[0].event_time) if s.event_time <= NOW]
    steps += healthy_steps(stuck[0].key, stuck[0].event_time)[:4]  # printed at +5 h, never out-scanned
    steps += [s for s in healthy_steps(odd[0].key, odd[0].event_time) if s.event_time <= NOW]
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
        log.append([e for order in [*orders, odd] for e in order])
        FulfilmentLog(log.engine).append(steps)
        sweeper, store = Sweeper(load_checks()), HealthStore(log.engine)
        sweeper.add_order_events(e for order in [*orders, odd] for e in order)
        pending = sorted(steps, key=lambda s: s.event_time)
        at: datetime = T0
        while at <= NOW:
            while pending and pending[0].event_time <= at:
                sweeper.add_steps([pending.pop(0)])
            store.record(sweeper.sweep(at))
            at += every
    return Shop(lost[0].key, stuck[0].key, odd[0].key, tuple(o[0].key for o in fine))
