"""Liveness and a small status summary of the order log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from serving.api.deps import services
from serving.api.schemas import HealthResponse
from serving.services import Services, feature_store_status

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness, order-log counts and the serving model")
def healthz(svc: Annotated[Services, Depends(services)]) -> HealthResponse:
    """Liveness, each dependency, order-log counts (cheap aggregate queries) and the model serving.

    While the online feature store is unavailable the status is ``degraded``: scoring goes
    on by the rules (see the score response's ``degraded``).
    """
    log = svc.order_log
    store = feature_store_status(svc)
    return HealthResponse(status="ok" if store == "ok" else "degraded",
                          dependencies={"order_log": "ok", "feature_store": store},
                          orders=log.count_orders(), events=log.count_events(),
                          orders_by_status={s.value: n for s, n in log.status_counts().items()},
                          model_version=svc.champion.status.version, rules_only=svc.champion.status.rules_only)
