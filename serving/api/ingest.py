"""``POST /v1/orders/{channel}``: webhook-style ingest of one payload or a batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from orderguard.errors import InvalidInputError
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.files import Record
from orderguard.ingest.normalize import ParseContext
from orderguard.ingest.service import ingest_payloads
from serving.api.deps import Services, services
from serving.api.schemas import ErrorBody, IngestError, IngestItem, IngestResponse

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
    Re-sending a payload is a no-op (``outcome: duplicate``). Stored orders also update
    the online features, so later scores see them.
    """
    adapter = get_adapter(channel)
    single = isinstance(payload, dict)
    items = [payload] if single else list(payload)
    if len(items) > svc.settings.api.max_batch:
        raise InvalidInputError(f"`body` must hold at most {svc.settings.api.max_batch} payloads; got {len(items)}",
                                field="body")
    ctx = ParseContext(received_at=svc.clock.now(), hasher=svc.hasher)
    numbered: list[Record] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            numbered.append((i, item))
        else:
            numbered.append((i, InvalidInputError(f"`{i}` must be a JSON object; got {type(item).__name__}",
                                                  field=str(i))))
    report = ingest_payloads(svc.order_log, adapter, numbered, ctx=ctx, all_or_nothing=atomic,
                             on_orders=svc.engine.apply_orders)
    if single and report.errors:
        raise report.errors[0].error
    if report.errors:
        response.status_code = 207 if report.items else 422
    return IngestResponse(
        channel=adapter.channel.value, received=len(items), inserted=report.inserted,
        duplicates=report.duplicates, conflicts=report.conflicts,
        items=[IngestItem(position=i.position, order_key=i.order_key, event_version=i.event_version,
                          status=i.status, outcome=i.outcome) for i in report.items],
        errors=[IngestError(**e.to_dict()) for e in report.errors],
    )

