"""The order-health monitor inside the service: warm start, then one sweep every ``health.sweep_every``.

One asyncio task per service process (started by the app's lifespan). Database work and
the sweep itself run on a worker thread (``asyncio.to_thread``), one at a time, so the
event loop that serves requests never waits for them. Each round follows both logs
(channel events and fulfilment reports stored since the last round), sweeps at the
clock's now, records the findings and the snapshot (``health.store``) and queues the
round's messages in the outbox (``serving.notify.health``). A round that fails (the
database is down) is logged and the next one tries again: the sweeper's state is in
memory, so nothing is lost, and a deadline that passed meanwhile is caught by the
next sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from features.settings import Settings
from health.checks import HealthConfig
from health.feed import Follower, load
from health.store import HealthStore
from health.sweeper import Sweeper, SweepResult
from orderguard.clock import Clock
from orderguard.errors import OrderGuardError
from orderguard.fulfilment import FulfilmentLog
from orderguard.ingest.orderlog import OrderLog
from orderguard.outbox import Outbox
from serving.notify.health import health_messages

logger = logging.getLogger("orderguard.health")

#: How long sweep snapshots (the dashboard's chart) are kept.
SNAPSHOTS_KEPT = timedelta(days=35)


@dataclass(slots=True)
class HealthMonitor:
    """The monitor's parts: checks, the logs it follows, where it records, and its in-memory sweeper."""

    config: HealthConfig
    steps: FulfilmentLog
    store: HealthStore
    sweeper: Sweeper
    follower: Follower | None = None
    last: SweepResult | None = None
    last_digest_at: datetime | None = None
    last_prune_at: datetime | None = None
    swept_monotonic: float | None = None  # when the last sweep finished (``time.monotonic``), for /healthz
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def warm(monitor: HealthMonitor, log: OrderLog, *, now: datetime, settings: Settings) -> None:
    """Load the horizon's orders and reports, then follow the logs from their end."""
    follower = Follower.at_end(log, monitor.steps)  # cursor first: what arrives while loading is read again
    loaded = load(monitor.sweeper, log, monitor.steps, start=now - settings.health.horizon, end=None)
    monitor.follower = follower
    logger.info("order health: %d channel events and %d fulfilment reports loaded", loaded.events, loaded.steps)


def sweep_once(monitor: HealthMonitor, log: OrderLog, outbox: Outbox, settings: Settings, *,
               now: datetime) -> SweepResult:
    """One round: follow, sweep at ``now``, record, queue messages."""
    if monitor.follower is None:
        warm(monitor, log, now=now, settings=settings)
    assert monitor.follower is not None
    monitor.follower.poll(monitor.sweeper)
    result = monitor.sweeper.sweep(now)
    monitor.store.record(result)
    if monitor.last is None:  # the first sweep of this process: close what was resolved while nobody swept
        monitor.store.reconcile({(k, c) for k, c, _ in monitor.sweeper.open_findings()}, now)
    low = result.overall < monitor.config.overall_alert_below and result.orders > 0
    digest = low and (monitor.last_digest_at is None
                      or now - monitor.last_digest_at >= settings.health.digest_every)
    messages = health_messages(monitor.config, result, settings.alerts, settings.health, digest=digest)
    if messages:
        outbox.enqueue_many(messages, now=now)
    if digest:
        monitor.last_digest_at = now
    if monitor.last_prune_at is None or now - monitor.last_prune_at >= timedelta(days=1):
        monitor.store.prune(now - SNAPSHOTS_KEPT)  # the chart shows days; a snapshot a minute adds up
        monitor.last_prune_at = now
    monitor.last = result
    return result


async def watch_health(monitor: HealthMonitor, log: OrderLog, outbox: Outbox, settings: Settings, *,
                       clock: Clock) -> None:
    """Sweep every ``health.sweep_every`` until cancelled; a failed round is logged, never fatal."""
    every = settings.health.sweep_every.total_seconds()
    while True:
        try:
            result = await asyncio.to_thread(sweep_once, monitor, log, outbox, settings, now=clock.now())
            monitor.swept_monotonic = time.monotonic()
            monitor.ready.set()
            if result.opened or result.resolved:
                logger.info("order health %.1f: %d opened, %d resolved, %d orders in the pipeline",
                            result.overall, len(result.opened), len(result.resolved), result.orders)
        except OrderGuardError as e:
            logger.error("order-health sweep failed: %s", e.message)
        except Exception:  # the monitor must outlive any one bad round
            logger.exception("order-health sweep failed")
        await asyncio.sleep(every)


def monitor_status(monitor: HealthMonitor | None, settings: Settings) -> str:
    """``off`` (disabled), ``starting`` (no sweep yet), ``ok``, or ``stale``: no sweep finished for three
    intervals (and half a minute), so faults are not being flagged and nobody is told."""
    if monitor is None or not settings.health.enabled:
        return "off"
    if monitor.swept_monotonic is None:
        return "starting"
    late = 3 * settings.health.sweep_every.total_seconds() + 30
    return "ok" if time.monotonic() - monitor.swept_monotonic <= late else "stale"


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel the monitor's task and wait for it."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
