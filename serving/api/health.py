"""Liveness and a small status summary of the order log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from serving.api.deps import Services, services

router = APIRouter(tags=["health"])


class HealthResponse(BaseModel):
    """Service is up; counts come straight from the order log."""

    status: str
    orders: int
    events: int
    orders_by_status: dict[str, int]
    model_version: str | None
    rules_only: bool


@router.get("/healthz", response_model=HealthResponse, summary="Liveness, order-log counts and the serving model")
def healthz(svc: Annotated[Services, Depends(services)]) -> HealthResponse:
    """Liveness, order-log counts (cheap aggregate queries) and the model serving."""
    log = svc.order_log
    return HealthResponse(status="ok", orders=log.count_orders(), events=log.count_events(),
                          orders_by_status={s.value: n for s, n in log.status_counts().items()},
                          model_version=svc.champion.status.version, rules_only=svc.champion.status.rules_only)
