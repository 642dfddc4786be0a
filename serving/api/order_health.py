"""Order health over HTTP: fulfilment reports in (``POST /v1/fulfilment``), the monitor's view out (``/v1/health``).

The systems around an order (payment gateway, ERP/OMS, warehouse, carrier, customer
service) report steps with the order system's API key, one JSON object per step or an
array of up to 1,000 (``orderguard.fulfilment.FIELDS``). As with orders, a bad item is
refused with its position, field and reason while the good ones of the batch are stored
(207), or nothing is stored with ``atomic=true``; a repeat is a duplicate, the same
``event_id`` with other content a conflict (409 for a single report).

Operations (and admins) read the health: the latest sweep's counts, the chart of the
day, the open findings oldest first, and one order's timeline across systems.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Body, Depends, Query, Response

from health.checks import STAGES, HealthConfig
from health.store import StoredFinding
from health.timeline import order_timeline
from orderguard.errors import InvalidInputError, NotFoundError, OrderGuardError, ServiceUnavailableError
from orderguard.fulfilment import BATCH_MAX, FulfilmentEvent, conflict_error, parse_event
from orderguard.ingest.orderlog import AppendOutcome
from orderguard.schema import Channel
from serving.api.auth import AUTH_RESPONSES, OPERATIONS, ORDER_SYSTEM
from serving.api.deps import services
from serving.api.orders import path_order_key
from serving.api.schemas import (
    ErrorBody,
    FindingOut,
    FulfilmentResponse,
    HealthOrderOut,
    HealthSummaryOut,
    IngestError,
    OrderHealthOut,
    TimelineEntryOut,
)
from serving.health_watch import HealthMonitor
from serving.services import Services

router = APIRouter(tags=["order health"], responses=AUTH_RESPONSES)
#: A lifecycle stage, as the checks group them (``health.checks.STAGES``).
Stage = Literal["order", "payment", "sync", "inventory", "warehouse", "logistics", "after_sale"]
Svc = Annotated[Services, Depends(services)]

Reports = Annotated[dict[str, Any] | list[Any], Body(
    description="One fulfilment report (object) or up to 1,000 (array). Fields: channel, order_id, kind "
                "(payment_callback, deposit_paid, balance_paid, erp_sync, inventory_lock, waybill_printed, out_scan, "
                "tracking, delivered, complaint), event_id, time (ISO 8601; no offset = Beijing time); optional "
                "source, carrier, waybill, node, reason (complaints: not_received, damaged …), due_at (a deposit's "
                "balance deadline).",
    examples=[{"channel": "douyin", "order_id": "6920000000001", "kind": "out_scan", "event_id": "wms-88121",
               "time": "2024-11-11T18:02:11+08:00", "source": "wms"}])]


assert get_args(Stage) == STAGES, "the API's stages are the checks' stages"


def monitor_of(svc: Services) -> HealthMonitor:
    """The service's health monitor (503 while the service starts without one)."""
    if svc.health is None:
        raise ServiceUnavailableError("the order-health monitor is not running", field="health")
    return svc.health


@router.post("/v1/fulfilment", response_model=FulfilmentResponse, dependencies=[ORDER_SYSTEM],
             summary="Report fulfilment steps (payment callback, ERP sync, warehouse, carrier, complaint)",
             responses={207: {"model": FulfilmentResponse, "description": "batch partly accepted; see errors"},
                        409: {"model": ErrorBody, "description": "single report: its event_id is stored with "
                                                                 "other content"},
                        413: {"model": ErrorBody, "description": "body too large"},
                        422: {"model": ErrorBody | FulfilmentResponse,
                              "description": "a bad report (single), or every report of a batch refused"}})
async def report_steps(payload: Reports, svc: Svc, response: Response, atomic: bool = False) -> FulfilmentResponse:
    """Store the reports, idempotently, ordered by their event time; the sweeper reads them at its next round."""
    monitor = monitor_of(svc)
    single = isinstance(payload, dict)
    items = [payload] if single else list(payload)
    if len(items) > BATCH_MAX:
        raise InvalidInputError.must("body", f"at most {BATCH_MAX} reports", f"{len(items)} reports")
    now = svc.clock.now()
    parsed: list[tuple[int, FulfilmentEvent]] = []
    errors: list[IngestError] = []
    for i, item in enumerate(items):
        try:
            parsed.append((i, parse_event(item, received_at=now)))
        except OrderGuardError as e:
            if single:
                raise
            errors.append(IngestError(position=i, code=e.code, field=e.field, message=e.message))
    if errors and atomic:
        response.status_code = 422
        return FulfilmentResponse(received=len(items), inserted=0, duplicates=0, conflicts=0, errors=errors)
    result = await svc.worker.run(monitor.steps.append, [e for _, e in parsed]) if parsed else None
    outcomes = result.outcomes if result is not None else ()
    for (i, event), outcome in zip(parsed, outcomes, strict=True):
        if outcome is AppendOutcome.CONFLICT:
            error = conflict_error(event)
            if single:
                raise error
            errors.append(IngestError(position=i, code=error.code, field=error.field, message=error.message))
    if errors:
        response.status_code = 207 if len(errors) < len(items) else 422
    return FulfilmentResponse(received=len(items), inserted=outcomes.count(AppendOutcome.INSERTED),
                              duplicates=outcomes.count(AppendOutcome.DUPLICATE),
                              conflicts=outcomes.count(AppendOutcome.CONFLICT), errors=errors)


def finding_out(config: HealthConfig, f: StoredFinding) -> FindingOut:
    """A stored finding with its check's text (the check's id when the check file no longer has it)."""
    return FindingOut(order_key=f.order_key, check_id=f.check_id, text=config.texts(f.check_id)[0],
                      channel=f.channel, stage=f.stage, component=f.component, due_at=f.due_at,
                      flagged_at=f.flagged_at, resolved_at=f.resolved_at, detail=f.detail)


def summary_out(svc: Services, monitor: HealthMonitor, *, hours: int = 24) -> HealthSummaryOut:
    """The latest snapshot and the chart of the last ``hours``."""
    latest = monitor.store.latest()
    alert_below = monitor.config.overall_alert_below
    if latest is None:
        return HealthSummaryOut(taken_at=None, overall=None, orders=0, alert_below=alert_below, tiers={}, stages={},
                                channels={}, worst=[], history=[])
    summary = latest.summary
    history = monitor.store.history(start=latest.taken_at - timedelta(hours=hours), end=latest.taken_at)
    return HealthSummaryOut(
        taken_at=latest.taken_at, overall=latest.overall, orders=latest.orders, alert_below=alert_below,
        tiers=dict(summary.get("tiers", {})), stages=dict(summary.get("stages", {})),
        channels={k: dict(v) for k, v in dict(summary.get("channels", {})).items()},
        worst=[HealthOrderOut(**w) for w in summary.get("worst", [])], history=history)


@router.get("/v1/health", response_model=HealthSummaryOut, dependencies=[OPERATIONS],
            summary="The shop's order health: counts by tier, stage and channel, the riskiest orders, the chart")
async def health_summary(svc: Svc, hours: Annotated[int, Query(ge=1, le=24 * 14)] = 24) -> HealthSummaryOut:
    """As of the latest sweep (the service sweeps every ``health.sweep_every``)."""
    monitor = monitor_of(svc)
    return await svc.worker.run(summary_out, svc, monitor, hours=hours)


@router.get("/v1/health/findings", response_model=list[FindingOut], dependencies=[OPERATIONS],
            summary="Open findings, the longest overdue first")
async def open_findings(svc: Svc, channel: Channel | None = None, stage: Stage | None = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[FindingOut]:
    """Each stuck order's failing check with when it was due and first flagged."""
    monitor = monitor_of(svc)
    rows = await svc.worker.run(monitor.store.open_findings, limit=limit,
                                channel=channel.value if channel else None, stage=stage)
    return [finding_out(monitor.config, f) for f in rows]


@router.get("/v1/health/orders/{channel}/{order_id}", response_model=OrderHealthOut, dependencies=[OPERATIONS],
            summary="One order's timeline across systems and its health now",
            responses={404: {"model": ErrorBody, "description": "unknown channel, or no event of the order"}})
async def order_health(channel: str, order_id: str, svc: Svc) -> OrderHealthOut:
    """Channel statuses and fulfilment reports merged by event time, the checks failing now, the findings."""
    monitor = monitor_of(svc)
    key = path_order_key(channel, order_id)
    now = svc.clock.now()
    timeline = await svc.worker.run(order_timeline, key, log=svc.order_log, steps=monitor.steps,
                                    store=monitor.store, config=monitor.config, now=now)
    if timeline is None:
        raise NotFoundError(f"no event of order {key} is stored", field="order_id")
    open_now = [FindingOut(order_key=str(key), check_id=f.check.id, text=f.check.text_zh, channel=channel,
                           stage=f.check.stage, component=f.check.component, due_at=f.due_at, flagged_at=now,
                           resolved_at=None, detail=f.detail) for f in timeline.failing]
    return OrderHealthOut(order_key=str(key), score=timeline.score, tier=timeline.tier, failing=open_now,
                          entries=[TimelineEntryOut(at=e.at, system=e.system, what=e.what, label=e.label,
                                                    detail=e.detail) for e in timeline.entries],
                          findings=[finding_out(monitor.config, f) for f in timeline.findings])
