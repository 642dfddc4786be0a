"""``POST /v1/orders/{channel}``: webhook-style ingest of one payload or a batch.

Every registered channel has its own documented operation (``/v1/orders/tmall`` …), so
the OpenAPI document can give each one that channel's payload schema
(``serving.api.openapi``); the generic ``{channel}`` route behind them answers the same
way for any other spelling (``/v1/orders/JD``) and 404 for an unknown channel, and is
left out of the document.

Every route takes the order system's API key or the channel platform's signed push
(``serving.api.webhooks.order_source``); each channel's operation documents how its
platform signs, so an integrator can sign a push from the description alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from orderguard.ingest.channels import ADAPTERS
from orderguard.schema import Channel
from serving.api.auth import AUTH_RESPONSES
from serving.api.deps import services
from serving.api.schemas import DEFERRED_NOTE, ErrorBody, IngestError, IngestItem, IngestResponse
from serving.api.webhooks import order_source
from serving.services import Services, ingest_and_apply

#: A push may also be refused for its signature: the 401 says so.
_AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    **AUTH_RESPONSES,
    401: {"model": ErrorBody, "description": "no API key (or session) and no channel signature, an unknown or "
                                             "revoked key, or a push whose signature is missing, bad, stale, "
                                             "replayed or has no secret configured (`webhook_rejected`)"},
}

router = APIRouter(tags=["ingest"], responses=_AUTH_RESPONSES)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    207: {"model": IngestResponse, "description": "batch partly accepted; see errors"},
    404: {"model": ErrorBody, "description": "unknown channel"},
    422: {"model": ErrorBody | IngestResponse,
          "description": "malformed payload (single): ErrorBody — or IngestResponse when every item of a batch was "
                         "refused"},
}

_SUMMARY = "Ingest channel-native order or after-sale payloads"

_DESCRIPTION = """Parse with the channel's adapter and append to the order log, idempotently.

A single payload that is malformed gets a 4xx naming the field. In a batch the good
payloads are stored and each bad one is listed with its index, field and reason
(status 207); ``atomic=true`` stores nothing unless every payload is good.
While the online feature store is unavailable orders are still stored and answered,
flagged ``degraded``; they count in features once the store answers again.
Re-sending a payload is a no-op (``outcome: duplicate``). Stored orders also update
the online features, so later scores see them."""

#: The request body as the handlers take it: the adapters, not FastAPI, validate each payload.
Payload = Annotated[dict[str, Any] | list[Any], Body(
    description="One channel-native payload (object) or a batch (array) of them, exactly as the channel's "
                "open platform sends them.")]

Svc = Annotated[Services, Depends(services)]


def channel_path(channel: Channel) -> str:
    """The documented ingest path of one channel.

    >>> channel_path(Channel.JD)
    '/v1/orders/jd'
    """
    return f"/v1/orders/{channel.value}"


async def _ingest(channel: str, payload: dict[str, Any] | list[Any], *, atomic: bool, svc: Services,
                  response: Response) -> IngestResponse:
    """The one handler behind every ingest route (see ``_DESCRIPTION``)."""
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


def _channel_endpoint(channel: Channel) -> Callable[..., Awaitable[IngestResponse]]:
    """The endpoint of ``channel``'s own route: the shared handler with the channel fixed."""

    async def ingest_channel_orders(response: Response, svc: Svc, payload: Payload,
                                    atomic: bool = False) -> IngestResponse:
        return await _ingest(channel.value, payload, atomic=atomic, svc=svc, response=response)

    return ingest_channel_orders


def _add_channel_routes(target: APIRouter) -> None:
    """One documented operation per registered channel, ahead of the generic route."""
    for channel in ADAPTERS:
        target.add_api_route(
            channel_path(channel), _channel_endpoint(channel), methods=["POST"], name=f"ingest_{channel.value}",
            dependencies=[Depends(order_source(channel))], response_model=IngestResponse, responses=_RESPONSES,
            summary=f"{_SUMMARY} ({channel.value})",
            description=f"{_DESCRIPTION}\n\n{ADAPTERS[channel].signing.describe()}")


_add_channel_routes(router)


@router.post("/v1/orders/{channel}", response_model=IngestResponse, responses=_RESPONSES, summary=_SUMMARY,
             description=_DESCRIPTION, include_in_schema=False, dependencies=[Depends(order_source())])
async def ingest_orders(channel: str, response: Response, svc: Svc, payload: Payload,
                        atomic: bool = False) -> IngestResponse:
    """Any channel named in the path; an unknown one is a 404 from the adapter registry."""
    return await _ingest(channel, payload, atomic=atomic, svc=svc, response=response)
