"""``POST /v1/score`` and ``/v1/score/batch``: the order system's call for every new order
and every refund claim.

The payload is parsed on the event loop (a malformed one is refused at once), then joins
the group commit (``serving.group_commit``): it is stored in the order log
(idempotently) together with the other requests in flight, the order's newest state is
scored and the decision is stored as a ScoreRecord in one more shared transaction. The
answer goes out only after both commits, so an acknowledged order and its decision
survive a crash. The batch route's items join the same queue together.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends

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
from serving.group_commit import Scored
from serving.services import Services, parse_event, score_event

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


async def _answer(svc: Services, channel: str, payload: dict[str, Any]) -> Scored:
    """Parse on the loop (a bad payload is refused before it queues), then wait for the group commit."""
    event = parse_event(svc, channel, payload)
    if svc.committer is None:  # a Services built without the app's lifespan: one request, its own transactions
        return await svc.worker.run(score_event, svc, event)
    return await svc.committer.score(event)


@router.post("/v1/score", response_model=ScoreResponse, responses=_ERRORS,
             summary="Score one order or refund claim")
async def score(request: ScoreRequest, svc: Annotated[Services, Depends(services)]) -> ScoreResponse:
    """Score 0-100, risk level, decision (approve / verify / review / hold) and readable reasons.

    Answered once the order's event and the decision's record are committed.
    """
    return _response(await _answer(svc, request.channel, request.payload))


@router.post("/v1/score/batch", response_model=ScoreBatchResponse, summary="Score several orders")
async def score_batch(request: ScoreBatchRequest, svc: Annotated[Services, Depends(services)]) -> ScoreBatchResponse:
    """Each item is scored independently; a bad item gets its error and the others still score.

    The items join the group commit together, in order: an item repeating an earlier one's
    order version replays its answer.
    """
    if len(request.items) > svc.settings.api.max_batch:
        raise InvalidInputError(f"`items` must hold at most {svc.settings.api.max_batch} orders; "
                                f"got {len(request.items)}", field="items")
    answers = await asyncio.gather(*(_answer(svc, item.channel, item.payload) for item in request.items),
                                   return_exceptions=True)
    items = []
    for position, answer in enumerate(answers):
        if isinstance(answer, OrderGuardError):
            items.append(ScoreBatchItem(position=position, error=ErrorBody(**answer.to_dict())))
        elif isinstance(answer, BaseException):
            raise answer
        else:
            items.append(ScoreBatchItem(position=position, result=_response(answer)))
    return ScoreBatchResponse(items=items)
