"""``create_app(settings)``: the HTTP service, wired once per process.

The lifespan opens the order log (and, as the product grows, the feature store and the
champion model); routes reach them through ``serving.api.deps.services``. Nothing is
opened at import time, so tests build as many independent apps as they like.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from orderguard.clock import Clock, SystemClock
from orderguard.ingest.normalize import PiiHasher
from orderguard.ingest.orderlog import OrderLog
from orderguard.settings import Settings
from serving.api import health, ingest
from serving.api.deps import Services
from serving.api.errors import install_error_handlers


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """Build the FastAPI app for ``settings``; ``clock`` defaults to the system clock."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log = OrderLog.open(settings.database_url)
        app.state.services = Services(
            settings=settings, clock=clock or SystemClock(),
            hasher=PiiHasher(settings.pii.hash_key.get_secret_value().encode()), order_log=log)
        try:
            yield
        finally:
            log.close()

    app = FastAPI(title="orderguard", version="0.1.0", lifespan=lifespan,
                  description="Order-risk service: ingest orders from every channel, score them, review them.")
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(ingest.router)
    return app
