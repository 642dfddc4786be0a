"""``POST /v1/score`` and ``/v1/score/batch``: the order system's call for every new order
and every refund claim.

The payload is stored in the order log first (idempotently), the order's newest state
is scored and the decision is stored as a ScoreRecord. The handlers are ``async`` on
purpose: scoring is a sub-millisecond CPU step over in-process state, so running it on
the event loop avoids thread hand-offs and keeps the online store single-threaded.

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
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.normalize import ParseContext
from scoring.records import ScoreRecord
from serving.api.deps import Services, services
from serving.api.schemas import (
    ErrorBody,
    ReasonOut,
    ScoreBatchItem,
    ScoreBatchRequest,
    ScoreBatchResponse,
    ScoreRequest,
    ScoreResponse,
)

router = APIRouter(tags=["score"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "unknown channel"},
    409: {"model": ErrorBody, "description": "the order document has not arrived yet (after-sale only)"},
    422: {"model": ErrorBody, "description": "malformed payload: the field and the reason"},
}


def _response(record: ScoreRecord, *, replayed: bool) -> ScoreResponse:
    return ScoreResponse(
        order_key=str(record.order_key), event_version=record.event_version, score=record.score,
        risk_level=record.risk_level, decision=record.decision,
        reasons=[ReasonOut(**r) for r in record.reasons], allow_listed=record.allow_listed,
        rules_only=record.rules_only, model_version=record.model_version,
        note="rules-only: no champion model is loaded" if record.rules_only else None,
        latency_ms=round(record.latency_ms, 3), replayed=replayed)


class OrderNotReadyError(OrderGuardError):
    """An after-sale document arrived before its order document: nothing to score yet."""

    code = "order_not_ready"
    http_status = 409


def score_one(svc: Services, request: ScoreRequest, *, deferred: list[ScoreRecord] | None = None) -> ScoreResponse:
    """Ingest, score (or replay the stored score of this order version) and record.

    With ``deferred``, a new record is appended there for the caller to store (after
    responding) instead of being stored here.
    """
    adapter = get_adapter(request.channel)
    event = adapter.parse(request.payload, ctx=ParseContext(received_at=svc.clock.now(), hasher=svc.hasher))
    result = svc.order_log.append([event])
    if result.conflicts:
        raise result.conflicts[0].to_error()
    # The append returns the current state of an order that gained the event; a duplicate
    # (a retry) gains nothing, so only then is the state read back.
    order = next((o for o in result.orders if o.key == event.key), None) or svc.order_log.get(event.key)
    if order is None:
        raise OrderNotReadyError(f"`payload` refers to {event.key} whose order document has not arrived yet",
                                 field="payload")
    # A version whose event this very call stored cannot have been scored yet: records are
    # written only after their event is in the log. Otherwise (a retry, a late older event)
    # the stored answer, if any, is returned.
    fresh = result.inserted == 1 and order.event_version == event.event_version
    stored = None if fresh else svc.scores.get(order.key, order.event_version)
    if stored is not None:
        return _response(stored, replayed=True)
    record = svc.engine.scorer.score(order)
    if deferred is None:
        record = svc.scores.put(record)
    else:
        deferred.append(record)
    return _response(record, replayed=False)


async def _store(svc: Services, records: list[ScoreRecord]) -> None:
    """Store records after the response went out (on the event loop, like the handlers)."""
    for record in records:
        svc.scores.put(record)


@router.post("/v1/score", response_model=ScoreResponse, responses=_ERRORS,
             summary="Score one order or refund claim")
async def score(request: ScoreRequest, svc: Annotated[Services, Depends(services)],
                background: BackgroundTasks) -> ScoreResponse:
    """Score 0-100, risk level, decision (approve / verify / review / hold) and readable reasons."""
    records: list[ScoreRecord] = []
    response = score_one(svc, request, deferred=records)
    if records:
        background.add_task(_store, svc, records)
    return response


@router.post("/v1/score/batch", response_model=ScoreBatchResponse, summary="Score several orders")
async def score_batch(request: ScoreBatchRequest, svc: Annotated[Services, Depends(services)]) -> ScoreBatchResponse:
    """Each item is scored independently; a bad item gets its error and the others still score."""
    if len(request.items) > svc.settings.api.max_batch:
        raise InvalidInputError(f"`items` must hold at most {svc.settings.api.max_batch} orders; "
                                f"got {len(request.items)}", field="items")
    items = []
    for position, item in enumerate(request.items):
        try:
            items.append(ScoreBatchItem(position=position, result=score_one(svc, item)))
        except OrderGuardError as e:
            items.append(ScoreBatchItem(position=position, error=ErrorBody(**e.to_dict())))
    return ScoreBatchResponse(items=items)

