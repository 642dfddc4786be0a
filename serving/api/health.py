"""Liveness and a small status summary of the order log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from serving.api.deps import services
from serving.api.schemas import HealthResponse
from serving.health_watch import monitor_status
from serving.services import Services, feature_store_status

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness, order-log counts and the serving model")
def healthz(svc: Annotated[Services, Depends(services)]) -> HealthResponse:
    """Liveness, each dependency, order-log counts (cheap aggregate queries) and the model serving.

    While the online feature store is unavailable the status is ``degraded``: scoring goes
    on by the rules (see the score response's ``degraded``). So it is while the order-health
    sweeper has not finished a sweep for three intervals (``order_health: stale``): stuck
    orders are then not being flagged.
    """
    log = svc.order_log
    store = feature_store_status(svc)
    monitor = monitor_status(svc.health, svc.settings)
    return HealthResponse(status="ok" if store == "ok" and monitor != "stale" else "degraded",
                          dependencies={"order_log": "ok", "feature_store": store, "order_health": monitor},
                          orders=log.count_orders(), events=log.count_events(),
                          orders_by_status={s.value: n for s, n in log.status_counts().items()},
                          model_version=svc.champion.status.version, rules_only=svc.champion.status.rules_only,
                          score_commits=svc.committer.stats.summary() if svc.committer is not None else None)
