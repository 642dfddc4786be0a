"""Request-scoped access to the objects the lifespan opened (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from features.settings import Settings
from orderguard.clock import Clock
from orderguard.ingest.normalize import PiiHasher
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog
from scoring.records import ScoreLog
from serving.champion import ChampionSlot
from serving.engine import Engine


@dataclass(slots=True)
class Services:
    """Everything a route may use; built once by ``create_app``'s lifespan."""

    settings: Settings
    clock: Clock
    hasher: PiiHasher
    order_log: OrderLog
    scores: ScoreLog
    engine: Engine
    labels: LabelLog
    champion: ChampionSlot


async def services(request: Request) -> Services:
    """FastAPI dependency returning the app's :class:`Services` (async: a sync dependency
    would be sent to the thread pool on every request)."""
    found: Services = request.app.state.services
    return found
