"""``POST /v1/labels`` and ``GET /v1/labels/{channel}/{order_id}``: reviewer verdicts.

A label is stored in the label log (append-only, idempotent; see ``orderguard.labels``)
and applied at once to the online features, so "confirmed frauds on this device" counts
it for the next order scored. Batches are atomic: when any label is bad nothing is
stored and every bad label is listed with its index and field. The handlers are
``async`` like the scoring ones: the online store is used from the event loop only.
Parsing (every bad label of a batch with its index) lives here; storing and applying
is ``serving.services.label_and_apply``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from fastapi.openapi.models import Example
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from orderguard.access import Principal
from orderguard.errors import InvalidInputError, OrderGuardError, UnknownChannelError, must
from orderguard.labels import LabelProblem, LabelRecord
from orderguard.schema import Channel, Label, OrderKey
from serving.api.auth import AUTH_RESPONSES, REVIEW_READERS, REVIEWER
from serving.api.deps import services
from serving.api.orders import body_order_key, path_order_key
from serving.api.schemas import (
    DEFERRED_NOTE,
    ErrorBody,
    LabelBatchErrorBody,
    LabelHistory,
    LabelIn,
    LabelItemOut,
    LabelOut,
    LabelRecordOut,
    LabelsAdded,
    LabelsRequest,
)
from serving.services import Services, label_and_apply, label_history, resolve_timeless

router = APIRouter(tags=["labels"], responses=AUTH_RESPONSES)


def _validation_problem(index: int, error: ErrorDetails) -> LabelProblem:
    """A pydantic error as a problem whose field is the dotted path inside the label."""
    field = ".".join(str(p) for p in error["loc"])
    if error["type"] == "missing":
        message = f"`{field}` is required"
    elif error["type"] == "extra_forbidden" and field == "reviewer_id":
        message = "`reviewer_id` is not a label field: the reviewer is the caller (the signed-in user or the API key)"
    elif error["type"] == "extra_forbidden":
        message = f"`{field}` is not a label field"
    elif not field:
        field = "order" if "order" in error["msg"] else "label"
        message = f"`{field}`: {error['msg'].removeprefix('Value error, ')}"
    else:
        message = must(field, f"valid: {error['msg']}", error["input"])
    return LabelProblem(index, InvalidInputError(message, field=field or None))


def _order_key(item: LabelIn) -> OrderKey:
    if item.order is not None:
        try:
            return OrderKey(Channel(item.order.channel), item.order.order_id)
        except ValueError as e:
            raise UnknownChannelError.must("order.channel", f"one of {', '.join(c.value for c in Channel)}",
                                           item.order.channel) from e
    assert item.order_key is not None
    return body_order_key(item.order_key)


def _parse(raw: dict[str, Any], *, now: datetime, max_batch: int, reviewer: str,
           ) -> tuple[bool, list[tuple[int, Label]], list[LabelProblem], frozenset[int]]:
    """Request body → (is a batch, labels with their index, problems, indexes of labels sent without a time)."""
    batch = "labels" in raw
    if batch:
        extra = sorted(set(raw) - {"labels"})
        if extra:
            raise InvalidInputError(f"`{extra[0]}` is not allowed next to `labels`", field=extra[0])
        items = raw["labels"]
        if not isinstance(items, list) or not items:
            raise InvalidInputError.must("labels", "a non-empty array of labels", items)
        if len(items) > max_batch:
            raise InvalidInputError.must("labels", f"at most {max_batch} labels", len(items))
    else:
        items = [raw]
    labels: list[tuple[int, Label]] = []
    problems: list[LabelProblem] = []
    timeless: set[int] = set()
    for index, item in enumerate(items):
        try:
            parsed = LabelIn.model_validate(item)
        except ValidationError as e:
            problems.append(_validation_problem(index, e.errors()[0]))
            continue
        try:
            key = _order_key(parsed)
        except OrderGuardError as e:
            problems.append(LabelProblem(index, e))
            continue
        if parsed.labeled_at is None:
            timeless.add(index)
        labels.append((index, Label(key, parsed.verdict, parsed.labeled_at or now, reviewer, parsed.note)))
    return batch, labels, problems, frozenset(timeless)


def _out(label: Label) -> LabelOut:
    return LabelOut(order_key=str(label.key), verdict=label.verdict, labeled_at=label.labeled_at,
                    reviewer_id=label.reviewer_id, note=label.note)


def _record_out(record: LabelRecord) -> LabelRecordOut:
    return LabelRecordOut(**_out(record.label).model_dump(), source=record.source, recorded_at=record.recorded_at)


_EXAMPLES = {
    "one": Example(summary="One label", value={
        "order": {"channel": "jd", "order_id": "3021587746"}, "verdict": "confirmed_fraud",
        "labeled_at": "2024-11-13T14:05:00+08:00",
        "note": "同一设备三个账号，收货地址为驿站"}),
    "batch": Example(summary="A batch (atomic)", value={"labels": [
        {"order_key": "tmall:3912837465012", "verdict": "false_positive"},
        {"order_key": "site:SO20241111000123", "verdict": "needs_investigation",
         "note": "买家称未收到货，物流显示已签收"}]}),
}


@router.post(
    "/v1/labels", response_model=LabelsAdded, status_code=201,
    summary="Record reviewer verdicts on orders",
    responses={
        200: {"model": LabelsAdded, "description": "every label was already stored (a repeat is a no-op)"},
        404: {"model": ErrorBody, "description": "single label: the order is not in the order log, or the "
                                                 "channel is unknown"},
        409: {"model": ErrorBody, "description": "single label: the reviewer already gave another verdict on "
                                                 "the order at the same labeled_at"},
        422: {"model": LabelBatchErrorBody, "description": "a bad label (field and reason); for a batch every bad "
                                                           "label is listed in `errors` and nothing is stored"},
    },
)
async def post_labels(
    body: Annotated[LabelsRequest, Body(openapi_examples=_EXAMPLES)],
    response: Response,
    svc: Annotated[Services, Depends(services)],
    caller: Annotated[Principal, REVIEWER],
) -> LabelsAdded:
    """Store one verdict, or a batch of them atomically, and update the online features.

    The reviewer of every label is the caller: the signed-in user, or ``key:<name> (<prefix>)``
    for an API key. ``labeled_at`` defaults to the service's clock. Relabelling an order (a later verdict)
    keeps the earlier one in its history; sending the same label again changes nothing -
    also without ``labeled_at``: then the reviewer's latest verdict on the order, when it
    says the same (verdict and note), is that label.
    A single bad label is answered with the usual error body (404 unknown order, 409
    conflicting verdict, 422 bad field); a batch with any bad label is refused with 422
    listing each bad label's index, field and reason.
    """
    now = svc.clock.now()
    batch, labels, problems, timeless = _parse(body.root, now=now, max_batch=svc.settings.api.max_batch,
                                                 reviewer=caller.reviewer_id)
    labels = resolve_timeless(svc, labels, timeless)
    labelled = await svc.worker.run(label_and_apply, svc, labels, problems, batch=batch, now=now)
    result = labelled.result
    response.status_code = 201 if result.added else 200
    return LabelsAdded(
        received=len(labels), added=result.added, duplicates=result.duplicates,
        items=[LabelItemOut(index=index, order_key=str(label.key), verdict=label.verdict,
                            labeled_at=label.labeled_at, outcome=outcome.value)
               for (index, label), outcome in zip(labels, result.outcomes, strict=True)],
        degraded=labelled.deferred, note=DEFERRED_NOTE if labelled.deferred else None)


@router.get(
    "/v1/labels/{channel}/{order_id}", response_model=LabelHistory,
    summary="Verdicts on one order",
    dependencies=[REVIEW_READERS],
    responses={404: {"model": ErrorBody, "description": "unknown channel, or the order is not in the order log"}},
)
async def get_labels(channel: str, order_id: str, svc: Annotated[Services, Depends(services)]) -> LabelHistory:
    """Every label of the order, oldest ``labeled_at`` first, and the verdict in force (the newest).

    An order that exists but was never labelled has an empty history.
    """
    key = path_order_key(channel, order_id)
    records = label_history(svc, key)
    current = records[-1] if records else None  # newest labeled_at; ties: greatest reviewer id
    return LabelHistory(order_key=str(key), current=_out(current.label) if current else None,
                        history=[_record_out(r) for r in records])
