"""Findings and snapshots in the order-log database: a restart keeps when a finding was first flagged, and what
was resolved while nobody swept is closed by the next process's first sweep."""

from __future__ import annotations

from datetime import timedelta

from health.checks import load_checks
from health.store import HealthStore
from health.sweeper import Sweeper
from orderguard.ingest.orderlog import OrderLog
from tests.factories import EventFactory
from tests.health.kit import T0, healthy_steps, paid_order


def test_a_restart_keeps_first_flagged_times_and_reconciles(order_log: OrderLog) -> None:
    store = HealthStore(order_log.engine)
    events = EventFactory()
    stuck, recovers = paid_order(events), paid_order(events)
    before = Sweeper(load_checks())
    before.add_order_events(stuck + recovers)
    store.record(before.sweep(T0 + timedelta(minutes=20)))
    flagged = {(f.order_key, f.check_id): f.flagged_at for f in store.open_findings()}
    assert set(flagged) == {(str(o[0].key), c) for o in (stuck, recovers) for c in ("payment_callback", "erp_sync")}

    # the service restarts an hour later; meanwhile the second order's reports came in
    after = Sweeper(load_checks())
    after.add_order_events(stuck + recovers)
    after.add_steps(healthy_steps(recovers[0].key, T0)[:3])
    restart = T0 + timedelta(hours=1)
    store.record(after.sweep(restart))
    resolved = store.reconcile({(k, c) for k, c, _ in after.open_findings()}, restart)
    assert resolved == 2
    still = {(f.order_key, f.check_id): f.flagged_at for f in store.open_findings()}
    assert still == {(str(stuck[0].key), "payment_callback"): flagged[(str(stuck[0].key), "payment_callback")],
                     (str(stuck[0].key), "erp_sync"): flagged[(str(stuck[0].key), "erp_sync")],
                     (str(stuck[0].key), "inventory_lock"): restart}
    history = store.findings_of(recovers[0].key)
    assert [(f.check_id, f.resolved_at) for f in history] == [("payment_callback", restart), ("erp_sync", restart)]


def test_snapshots_make_the_chart_and_are_pruned(order_log: OrderLog) -> None:
    store = HealthStore(order_log.engine)
    sweeper = Sweeper(load_checks())
    sweeper.add_order_events(paid_order(EventFactory()))
    for minute in range(0, 120, 1):
        store.record(sweeper.sweep(T0 + timedelta(minutes=minute)))
    latest = store.latest()
    assert latest is not None and latest.taken_at == T0 + timedelta(minutes=119) and latest.overall == 45
    chart = store.history(start=T0, points=12)
    assert 12 <= len(chart) <= 14 and chart[0] == (T0, 100.0) and chart[-1] == (latest.taken_at, 45.0)
    assert store.prune(T0 + timedelta(minutes=60)) == 60
    assert store.history(start=T0)[0][0] == T0 + timedelta(minutes=60)
