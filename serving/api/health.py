"""Liveness and a small status summary of the order log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from serving.api.deps import services
from serving.api.schemas import HealthResponse
from serving.services import Services

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness, order-log counts and the serving model")
def healthz(svc: Annotated[Services, Depends(services)]) -> HealthResponse:
    """Liveness, order-log counts (cheap aggregate queries) and the model serving."""
    log = svc.order_log
    return HealthResponse(status="ok", orders=log.count_orders(), events=log.count_events(),
                          orders_by_status={s.value: n for s, n in log.status_counts().items()},
                          model_version=svc.champion.status.version, rules_only=svc.champion.status.rules_only)
