"""``POST /v1/labels`` and ``GET /v1/labels/{channel}/{order_id}``: reviewer verdicts.

A label is stored in the label log (append-only, idempotent; see ``orderguard.labels``)
and applied at once to the online features, so "confirmed frauds on this device" counts
it for the next order scored. Batches are atomic: when any label is bad nothing is
stored and every bad label is listed with its index and field. The handlers are
``async`` like the scoring ones: the online store is used from the event loop only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Response
from fastapi.openapi.models import Example
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    RootModel,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, ErrorDetails

from orderguard.errors import InvalidInputError, NotFoundError, OrderGuardError, UnknownChannelError, must
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog, LabelProblem, LabelRecord
from orderguard.schema import Channel, Label, OrderKey, Verdict
from serving.api.deps import Services, services
from serving.api.schemas import ErrorBody
from serving.engine import Engine, longest_window

router = APIRouter(tags=["labels"])


class OrderRef(BaseModel):
    """An order named by its channel and the channel's order id."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description="tmall | jd | douyin | kuaishou | wechat | site", examples=["jd"])
    order_id: str = Field(min_length=1, description="the channel's order id", examples=["3021587746"])


class LabelIn(BaseModel):
    """One verdict on one order. Name the order by ``order`` or by ``order_key``, not both."""

    model_config = ConfigDict(extra="forbid")

    order: OrderRef | None = Field(default=None, description="the order as channel + order id")
    order_key: str | None = Field(default=None, description="the order as '<channel>:<order id>'",
                                  examples=["jd:3021587746"])
    verdict: Verdict = Field(description="confirmed_fraud | false_positive | needs_investigation")
    labeled_at: AwareDatetime | None = Field(
        default=None, description="when the reviewer reached the verdict, ISO 8601 with offset; default: now. "
                                  "Not before the order's creation, not in the future.",
        examples=["2024-11-13T14:05:00+08:00"])
    reviewer_id: str = Field(min_length=1, max_length=128, examples=["reviewer-07"])
    note: str = Field(default="", max_length=2000, examples=["同一设备三个账号，收货地址为驿站"])

    @model_validator(mode="after")
    def _one_order(self) -> LabelIn:
        if (self.order is None) == (self.order_key is None):
            raise ValueError("give exactly one of `order` or `order_key`")
        return self


class LabelBatchIn(BaseModel):
    """Several labels, stored all together or not at all."""

    model_config = ConfigDict(extra="forbid")

    labels: list[LabelIn] = Field(min_length=1)


class LabelsRequest(RootModel[dict[str, Any]]):
    """One :class:`LabelIn` or a :class:`LabelBatchIn`.

    Validated by the handler rather than by FastAPI, so that every bad label of a batch
    is reported with its index; the documented schema is the union of the two shapes.
    """

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler,
                                     ) -> JsonSchemaValue:
        return handler(TypeAdapter(LabelIn | LabelBatchIn).core_schema)


class LabelOut(BaseModel):
    """A verdict as stored (times in UTC)."""

    order_key: str = Field(examples=["jd:3021587746"])
    verdict: Verdict
    labeled_at: datetime
    reviewer_id: str
    note: str


class LabelRecordOut(LabelOut):
    """A stored label version with its provenance."""

    source: str = Field(examples=["api"], description="api | cli | file:<name>")
    recorded_at: datetime = Field(description="when orderguard stored it (audit only)")


class LabelItemOut(BaseModel):
    """What happened to one label of the request."""

    index: int = Field(description="0-based position in the request (0 for a single label)")
    order_key: str
    verdict: Verdict
    labeled_at: datetime
    outcome: Literal["added", "duplicate"] = Field(description="added | duplicate (the same label was already "
                                                               "stored: a no-op)")


class LabelsAdded(BaseModel):
    """Result of ``POST /v1/labels``: 201 when something was added, 200 when all were already stored."""

    received: int
    added: int
    duplicates: int
    items: list[LabelItemOut]


class LabelErrorOut(BaseModel):
    """Why one label of a batch was refused."""

    index: int
    code: str = Field(examples=["not_found"])
    field: str | None = Field(examples=["labels.1.order_key"])
    message: str


class LabelBatchErrorBody(ErrorBody):
    """A refused batch: the first problem as the usual error body, plus every problem."""

    errors: list[LabelErrorOut]


class LabelHistory(BaseModel):
    """Every verdict on one order, oldest first, and the one in force."""

    order_key: str
    current: LabelOut | None = Field(description="the newest verdict (by labeled_at); null when never labelled")
    history: list[LabelRecordOut]


class LabelBatchError(InvalidInputError):
    """Some labels of a batch are bad; nothing was stored. Renders every problem."""

    def __init__(self, problems: list[LabelProblem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"label {first.index}: {first.error.message}{more}; nothing was stored",
                         field=_batch_field(first))
        self.problems = problems

    def to_dict(self) -> dict[str, Any]:
        errors = [{"index": p.index, "code": p.error.code, "field": _batch_field(p), "message": p.error.message}
                  for p in self.problems]
        return {**super().to_dict(), "errors": errors}


def _batch_field(problem: LabelProblem) -> str:
    return f"labels.{problem.index}" + (f".{problem.error.field}" if problem.error.field else "")


def _validation_problem(index: int, error: ErrorDetails) -> LabelProblem:
    """A pydantic error as a problem whose field is the dotted path inside the label."""
    field = ".".join(str(p) for p in error["loc"])
    if error["type"] == "missing":
        message = f"`{field}` is required"
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
            raise UnknownChannelError(must("order.channel", f"one of {', '.join(c.value for c in Channel)}",
                                           item.order.channel), field="order.channel") from e
    assert item.order_key is not None
    try:
        return OrderKey.parse(item.order_key)
    except ValueError as e:
        raise InvalidInputError(must("order_key", "'<channel>:<order id>' with a known channel", item.order_key),
                                field="order_key") from e


def _parse(raw: dict[str, Any], *, now: datetime, max_batch: int,
           ) -> tuple[bool, list[tuple[int, Label]], list[LabelProblem]]:
    """Request body → (is a batch, labels with their index, problems)."""
    batch = "labels" in raw
    if batch:
        extra = sorted(set(raw) - {"labels"})
        if extra:
            raise InvalidInputError(f"`{extra[0]}` is not allowed next to `labels`", field=extra[0])
        items = raw["labels"]
        if not isinstance(items, list) or not items:
            raise InvalidInputError(must("labels", "a non-empty array of labels", items), field="labels")
        if len(items) > max_batch:
            raise InvalidInputError(must("labels", f"at most {max_batch} labels", len(items)), field="labels")
    else:
        items = [raw]
    labels: list[tuple[int, Label]] = []
    problems: list[LabelProblem] = []
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
        labels.append((index, Label(key, parsed.verdict, parsed.labeled_at or now, parsed.reviewer_id,
                                    parsed.note)))
    return batch, labels, problems


def _out(label: Label) -> LabelOut:
    return LabelOut(order_key=str(label.key), verdict=label.verdict, labeled_at=label.labeled_at,
                    reviewer_id=label.reviewer_id, note=label.note)


def _record_out(record: LabelRecord) -> LabelRecordOut:
    return LabelRecordOut(**_out(record.label).model_dump(), source=record.source, recorded_at=record.recorded_at)


_EXAMPLES = {
    "one": Example(summary="One label", value={
        "order": {"channel": "jd", "order_id": "3021587746"}, "verdict": "confirmed_fraud",
        "labeled_at": "2024-11-13T14:05:00+08:00", "reviewer_id": "reviewer-07",
        "note": "同一设备三个账号，收货地址为驿站"}),
    "batch": Example(summary="A batch (atomic)", value={"labels": [
        {"order_key": "tmall:3912837465012", "verdict": "false_positive", "reviewer_id": "reviewer-02"},
        {"order_key": "site:SO20241111000123", "verdict": "needs_investigation", "reviewer_id": "reviewer-02",
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
) -> LabelsAdded:
    """Store one verdict, or a batch of them atomically, and update the online features.

    ``labeled_at`` defaults to the service's clock. Relabelling an order (a later verdict)
    keeps the earlier one in its history; sending the same label again changes nothing.
    A single bad label is answered with the usual error body (404 unknown order, 409
    conflicting verdict, 422 bad field); a batch with any bad label is refused with 422
    listing each bad label's index, field and reason.
    """
    now = svc.clock.now()
    batch, labels, problems = _parse(body.root, now=now, max_batch=svc.settings.api.max_batch)
    positions = [index for index, _ in labels]
    checked = svc.labels.check([label for _, label in labels], recorded_at=now)
    problems = sorted([*problems, *(LabelProblem(positions[p.index], p.error) for p in checked)],
                      key=lambda p: p.index)
    if problems:
        if not batch:
            raise problems[0].error
        raise LabelBatchError(problems)
    result = svc.labels.add([label for _, label in labels], source="api", recorded_at=now)
    apply_labels(svc.engine, svc.order_log, labels=result.stored)
    response.status_code = 201 if result.added else 200
    return LabelsAdded(
        received=len(labels), added=result.added, duplicates=result.duplicates,
        items=[LabelItemOut(index=index, order_key=str(label.key), verdict=label.verdict,
                            labeled_at=label.labeled_at, outcome=outcome.value)
               for (index, label), outcome in zip(labels, result.outcomes, strict=True)])


@router.get(
    "/v1/labels/{channel}/{order_id}", response_model=LabelHistory,
    summary="Verdicts on one order",
    responses={404: {"model": ErrorBody, "description": "unknown channel, or the order is not in the order log"}},
)
async def get_labels(channel: str, order_id: str, svc: Annotated[Services, Depends(services)]) -> LabelHistory:
    """Every label of the order, oldest ``labeled_at`` first, and the verdict in force (the newest).

    An order that exists but was never labelled has an empty history.
    """
    try:
        key = OrderKey(Channel(channel), order_id)
    except ValueError as e:
        raise UnknownChannelError(must("channel", f"one of {', '.join(c.value for c in Channel)}", channel),
                                  field="channel") from e
    if svc.order_log.get(key) is None:
        raise NotFoundError(must("order_key", "an order in the order log", str(key)), field="order_key")
    records = svc.labels.history(key)
    current = records[-1] if records else None  # newest labeled_at; ties: greatest reviewer id
    return LabelHistory(order_key=str(key), current=_out(current.label) if current else None,
                        history=[_record_out(r) for r in records])


def apply_labels(engine: Engine, log: OrderLog, *, labels: Sequence[Label]) -> int:
    """Add labels to the online features (facts at ``labeled_at`` on the order's entities).

    Returns how many changed the store's state (a repeat or a label older than the
    store's retention changes nothing).
    """
    changed = 0
    for label in labels:
        order = log.get(label.key)
        if order is not None and engine.online.apply_label(label, order):
            changed += 1
    return changed


def warm_start_labels(engine: Engine, log: OrderLog, *, labels: LabelLog) -> int:
    """Replay recent labels into a freshly warmed online store; returns labels applied.

    Call after ``serving.engine.warm_start`` replayed orders into an empty store: labels
    reach as far back as the longest feature window from the newest event seen.
    """
    watermark = engine.online.watermark
    if watermark is None:
        return 0
    horizon = watermark - longest_window(engine.online.specs) - timedelta(hours=1)
    return apply_labels(engine, log, labels=list(labels.iter_labels(since=horizon)))
