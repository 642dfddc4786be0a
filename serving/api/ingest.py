"""``POST /v1/orders/{channel}``: webhook-style ingest of one payload or a batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from serving.api.deps import services
from serving.api.schemas import DEFERRED_NOTE, ErrorBody, IngestError, IngestItem, IngestResponse
from serving.services import Services, ingest_and_apply

router = APIRouter(tags=["ingest"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown channel"},
    422: {"model": ErrorBody, "description": "malformed payload (single) — or IngestResponse when every item "
                                             "of a batch was refused"},
}


@router.post(
    "/v1/orders/{channel}",
    response_model=IngestResponse,
    responses={207: {"model": IngestResponse, "description": "batch partly accepted; see errors"}, **_ERRORS},
    summary="Ingest channel-native order or after-sale payloads",
)
async def ingest_orders(
    channel: str,
    response: Response,
    svc: Annotated[Services, Depends(services)],
    payload: Annotated[dict[str, Any] | list[Any], Body(
        description="One channel-native payload (object) or a batch (array) of them, exactly as the channel's "
                    "open platform sends them.")],
    atomic: bool = False,
) -> IngestResponse:
    """Parse with the channel's adapter and append to the order log, idempotently.

    A single payload that is malformed gets a 4xx naming the field. In a batch the good
    payloads are stored and each bad one is listed with its index, field and reason
    (status 207); ``atomic=true`` stores nothing unless every payload is good.
    While the online feature store is unavailable orders are still stored and answered,
    flagged ``degraded``; they count in features once the store answers again.
    Re-sending a payload is a no-op (``outcome: duplicate``). Stored orders also update
    the online features, so later scores see them.
    """
    single = isinstance(payload, dict)
    ingested = await svc.worker.run(ingest_and_apply, svc, channel, [payload] if single else list(payload),
                                    atomic=atomic)
    report = ingested.report
    if single and report.errors:
        raise report.errors[0].error
    if report.errors:
        response.status_code = 207 if report.items else 422
    return IngestResponse(
        channel=ingested.channel, received=ingested.received, inserted=report.inserted,
        duplicates=report.duplicates, conflicts=report.conflicts,
        items=[IngestItem(position=i.position, order_key=i.order_key, event_version=i.event_version,
                          status=i.status, outcome=i.outcome) for i in report.items],
        errors=[IngestError(**e.to_dict()) for e in report.errors],
        degraded=ingested.deferred, note=DEFERRED_NOTE if ingested.deferred else None,
    )

