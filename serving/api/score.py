"""``POST /v1/score`` and ``/v1/score/batch``: the order system's call for every new order
and every refund claim.

The payload is stored in the order log first (idempotently), the order's newest state
is scored and the decision is stored as a ScoreRecord (``serving.services.score_and_store``).
The handlers are ``async`` on purpose: scoring is a sub-millisecond CPU step over in-process state, so running it on
the event loop avoids thread hand-offs and keeps the online store single-threaded; with a remote (Redis) store it
runs on the one engine thread instead (``serving.worker``), so a stalled server cannot hold the loop.

``POST /v1/score`` stores its ScoreRecord right *after* the response is sent (a
background task on the same event loop), so the order system does not wait for that
write: the decision is known once scored, and the record (the audit trail) follows
within the same request cycle; a graceful shutdown completes it. Only a process
killed in between loses a record. The batch route stores each record before the next
item, so a batch repeating an order replays the first answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends

from orderguard.errors import InvalidInputError, OrderGuardError
from scoring.records import ScoreRecord
from serving.api.auth import AUTH_RESPONSES, ORDER_SYSTEM
from serving.api.deps import services
from serving.api.schemas import (
    ErrorBody,
    ReasonOut,
    ScoreBatchItem,
    ScoreBatchRequest,
    ScoreBatchResponse,
    ScoreRequest,
    ScoreResponse,
)
from serving.services import Scored, Services, score_and_store, store_records

router = APIRouter(tags=["score"], dependencies=[ORDER_SYSTEM], responses=AUTH_RESPONSES)

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "unknown channel"},
    409: {"model": ErrorBody, "description": "the order document has not arrived yet (after-sale only)"},
    422: {"model": ErrorBody, "description": "malformed payload: the field and the reason"},
}


def _note(record: ScoreRecord) -> str | None:
    if record.degraded:
        return ("degraded: the online feature store is unavailable; scored by the rules on the order's own "
                "attributes, without its history")
    return "rules-only: no champion model is loaded" if record.rules_only else None


def _response(scored: Scored) -> ScoreResponse:
    record = scored.record
    return ScoreResponse(
        order_key=str(record.order_key), event_version=record.event_version, score=record.score,
        risk_level=record.risk_level.value, decision=record.decision.value,
        reasons=[ReasonOut(code=r.code, weight=r.weight, text_zh=r.text_zh, text_en=r.text_en, source=r.source)
                 for r in record.reasons],
        allow_listed=record.allow_listed, released=record.released, rules_only=record.rules_only,
        model_version=record.model_version,
        degraded=record.degraded, note=_note(record),
        latency_ms=round(record.latency_ms, 3), replayed=scored.replayed, rules_version=record.rules_version)


async def _store(svc: Services, records: list[ScoreRecord]) -> None:
    """Store records after the response went out (where the handlers run: ``svc.worker``)."""
    await svc.worker.run(store_records, svc, records)


@router.post("/v1/score", response_model=ScoreResponse, responses=_ERRORS,
             summary="Score one order or refund claim")
async def score(request: ScoreRequest, svc: Annotated[Services, Depends(services)],
                background: BackgroundTasks) -> ScoreResponse:
    """Score 0-100, risk level, decision (approve / verify / review / hold) and readable reasons."""
    records: list[ScoreRecord] = []
    scored = await svc.worker.run(score_and_store, svc, request.channel, request.payload, deferred=records)
    if records:
        background.add_task(_store, svc, records)
    return _response(scored)


@router.post("/v1/score/batch", response_model=ScoreBatchResponse, summary="Score several orders")
async def score_batch(request: ScoreBatchRequest, svc: Annotated[Services, Depends(services)]) -> ScoreBatchResponse:
    """Each item is scored independently; a bad item gets its error and the others still score."""
    if len(request.items) > svc.settings.api.max_batch:
        raise InvalidInputError(f"`items` must hold at most {svc.settings.api.max_batch} orders; "
                                f"got {len(request.items)}", field="items")
    return await svc.worker.run(_score_all, svc, request)


def _score_all(svc: Services, request: ScoreBatchRequest) -> ScoreBatchResponse:
    items = []
    for position, item in enumerate(request.items):
        try:
            items.append(ScoreBatchItem(position=position,
                                        result=_response(score_and_store(svc, item.channel, item.payload))))
        except OrderGuardError as e:
            items.append(ScoreBatchItem(position=position, error=ErrorBody(**e.to_dict())))
    return ScoreBatchResponse(items=items)

