"""``create_app(settings)``: the HTTP service, wired once per process.

The lifespan opens the order log, the online feature store and the scorer (replaying
recent orders into an empty in-memory store) and loads the registry's champion model
(rules-only when there is none; ``POST /v1/admin/reload-model`` swaps in a new one) and the
rule pack from the pack store (``serving.rule_slot``: the configured file is taken in by the
store's start-up rule; a published pack is swapped in while serving).
Routes reach them through ``serving.api.deps.services`` and hand them to the use cases
of ``serving.services``. Nothing is opened at import
time, so tests build as many independent apps as they like.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from features.settings import Settings
from health.checks import load_checks
from health.store import HealthStore
from health.sweeper import Sweeper
from orderguard.access import Directory
from orderguard.clock import Clock, SystemClock
from orderguard.errors import ServiceUnavailableError
from orderguard.fulfilment import FulfilmentLog
from orderguard.heap import release_heap, settle_heap
from orderguard.ingest.normalize import PiiHasher
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog
from orderguard.outbox import Outbox
from scoring.model import model_factory
from scoring.pack_store import PackStore
from scoring.records import ScoreLog
from scoring.registry import Registry
from scoring.rules import default_rules_path
from segments.cache import PoolCache
from serving.api import admin, health, ingest, labels, order_health, orders, rules, score, segments, verifications
from serving.api.docs import install_docs
from serving.api.errors import BodyLimit, install_error_handlers
from serving.api.openapi import install_openapi
from serving.champion import ChampionSlot, ChampionSource
from serving.engine import build_engine
from serving.group_commit import ScoreCommitter
from serving.health_watch import HealthMonitor, watch_health
from serving.notify.sender import sending
from serving.rule_slot import RuleSlot, watch_rules
from serving.services import (
    AccessState,
    Services,
    StoreState,
    warm_start,
    watch_checkpoints,
    watch_keys,
    watch_store,
)
from serving.web.pages import install_pages
from serving.web.session import SessionCodec
from serving.web.throttle import SignInThrottle
from serving.worker import EngineWorker

logger = logging.getLogger("orderguard.serving")


def create_app(settings: Settings, *, clock: Clock | None = None,
               champion_source: ChampionSource | None = None) -> FastAPI:
    """Build the FastAPI app for ``settings``.

    Args:
        clock: defaults to the system clock.
        champion_source: where the champion model comes from; defaults to the settings'
            MLflow registry. Benchmarks pass a fixed model file here, so the model is
            installed by the same slot, at the same point of start-up, as in service.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        the_clock = clock or SystemClock()
        development = settings.development_secrets()
        if development:
            logger.warning("public development values (fine on this machine only): %s", ", ".join(development))
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        health_config = load_checks(settings.health.checks)  # a bad check file stops the start, naming the field
        log = OrderLog.open(settings.database_url, background_checkpoints=True,
                            wal_limit_bytes=settings.database.wal_limit_bytes)
        label_log = LabelLog(log.engine)
        engine = build_engine(settings, clock=the_clock)
        worker = EngineWorker(remote=engine.store.remote)
        # A writer thread that releases the interpreter for each SQLite call gets it back only when the busy
        # event loop yields it: after the switch interval. At Python's 5 ms a batch of a few calls waited tens
        # of milliseconds under load; the previous value comes back when the service stops.
        switch_interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
        sys.setswitchinterval(settings.api.switch_interval_ms / 1000)
        try:
            source = champion_source or Registry.from_settings(settings)
            champion = ChampionSlot(registry=source, scorer=engine.scorer, clock=the_clock,
                                    make_model=model_factory(engine.online.specs, policy=engine.scorer.policy,
                                                             max_reasons=settings.scoring.max_reasons))
            logger.info("model: %s", champion.load_at_start().note)
            rule_slot = RuleSlot(store=PackStore(log.engine, known_features=engine.online.specs.names),
                                 scorer=engine.scorer, clock=the_clock)
            served = rule_slot.load_at_start(settings.scoring.rules_path or default_rules_path())
            logger.info("rule pack: %s%s", served.live.label,
                        f", shadow {served.shadow.label}" if served.shadow is not None else "")
            cold = False
            try:
                engine.store.lost_state()  # adopt the store's generation marker: a later loss is then noticed
                if settings.scoring.warm_start:
                    warmed = warm_start(engine, log, label_log)
                    logger.info("warm start: %d recent orders and %d labels replayed into the online store",
                                warmed.orders, warmed.labels)
            except ServiceUnavailableError as e:  # degraded, not down: scoring goes on by the rules
                logger.error("warm start skipped, the online store is unavailable: %s", e.message)
                cold = settings.scoring.warm_start  # warmed by the store watcher once it answers
            settle_heap()  # the warmed state is long-lived: out of every later collection (orderguard.heap)
            app.state.services = Services(
                settings=settings, clock=the_clock,
                hasher=PiiHasher(settings.pii.hash_key.get_secret_value().encode()), order_log=log,
                scores=ScoreLog(log.engine), engine=engine, labels=label_log,
                champion=champion, rules=rule_slot, worker=worker, store_state=StoreState(cold=cold),
                pools=PoolCache(size=settings.segments.cache_entries, ttl=settings.segments.cache_for),
                access=AccessState(Directory(log.engine).key_ring(),
                                   SessionCodec(settings.session.secret.get_secret_value(),
                                                max_age=settings.session.max_age),
                                   SignInThrottle(per_user=settings.session.max_failures,
                                                  per_address=settings.session.max_failures_per_address,
                                                  window=settings.session.failure_window)),
                health=HealthMonitor(config=health_config, steps=FulfilmentLog(log.engine),
                                     store=HealthStore(log.engine),
                                     sweeper=Sweeper(health_config, horizon=settings.health.horizon)))
            committer = ScoreCommitter(app.state.services, max_batch=settings.scoring.commit_batch)
            app.state.services.committer = committer
            committing = asyncio.create_task(committer.run(), name="orderguard-group-commit")
            watchers = [asyncio.create_task(watch_store(app.state.services), name="orderguard-store-watch"),
                        asyncio.create_task(watch_keys(app.state.services), name="orderguard-key-watch"),
                        asyncio.create_task(watch_rules(rule_slot, settings.scoring.rules_poll_s),
                                            name="orderguard-rules-watch"),
                        asyncio.create_task(watch_checkpoints(log, settings.database.checkpoint_s,
                                                              limit_bytes=settings.database.wal_limit_bytes,
                                                              writer=committer),
                                            name="orderguard-checkpoint")]
            outbox = Outbox(log.engine)
            if settings.health.enabled:
                watchers.append(asyncio.create_task(
                    watch_health(app.state.services.health, log, outbox, settings, clock=the_clock),
                    name="orderguard-health"))
            try:
                async with sending(outbox, settings.alerts, clock=the_clock):
                    try:
                        yield
                    finally:  # the requests already queued are answered, their rows committed
                        await committer.close(committing)
            finally:
                for watcher in watchers:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
        finally:
            if hasattr(app.state, "services"):
                app.state.services.pools.clear()
            release_heap(thresholds)
            worker.close()
            engine.close()
            log.close()
            sys.setswitchinterval(switch_interval)

    app = FastAPI(title="orderguard", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Order-risk service: ingest orders from every channel, score them, review them.")
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    app.include_router(health.router)
    app.include_router(ingest.router)
    app.include_router(score.router)
    app.include_router(labels.router)
    app.include_router(orders.router)
    app.include_router(verifications.router)
    app.include_router(admin.router)
    app.include_router(rules.router)
    app.include_router(segments.router)
    app.include_router(order_health.router)
    install_openapi(app)
    install_docs(app, settings.api.docs_assets)
    install_pages(app)
    return app
