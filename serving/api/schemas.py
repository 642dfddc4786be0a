"""Request and response models of the HTTP API, all in one place (inbound models forbid unknown fields).

Routes (``serving.api.*``) parse into these and render from them; the use cases
(``serving.services``) never see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    RootModel,
    TypeAdapter,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from orderguard.schema import Verdict


class ErrorBody(BaseModel):
    """Every error response: a stable code, a readable message and the offending field."""

    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["`tid` is required"])
    field: str | None = Field(default=None, examples=["tid"])


class IngestItem(BaseModel):
    """Outcome of one accepted payload."""

    position: int = Field(description="0-based index in the request (0 for a single payload)")
    order_key: str = Field(examples=["tmall:3912837465"])
    event_version: int
    status: str = Field(examples=["paid"])
    outcome: str = Field(description="inserted | duplicate (already stored, no-op) | conflict (same version, "
                                     "different content: the stored one is kept)")


class IngestError(BaseModel):
    """Why one payload of a batch was refused."""

    position: int
    code: str
    field: str | None
    message: str


#: What ``degraded`` means on a write.
DEFERRED = ("true when the online feature store was unavailable: what was stored is kept by the service and "
            "counts in later scores' features once the store answers again")

#: The note a degraded write carries.
DEFERRED_NOTE = ("degraded: stored; the online feature store is unavailable, so these count in features once it "
                 "answers again")


class IngestResponse(BaseModel):
    """Result of an ingest request. With any ``errors`` the status is 207 (some kept) or 422 (none kept)."""

    model_config = ConfigDict(extra="forbid")

    channel: str
    received: int
    inserted: int
    duplicates: int
    conflicts: int
    items: list[IngestItem]
    errors: list[IngestError]
    degraded: bool = Field(default=False, description=DEFERRED)
    note: str | None = None


class ScoreRequest(BaseModel):
    """One order (or refund claim) to score, as its channel sends it."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description="tmall | jd | douyin | kuaishou | wechat | site (site = the unified JSON form)",
                         examples=["douyin"])
    payload: dict[str, Any] = Field(description="the channel-native order or after-sale document")


class ReasonOut(BaseModel):
    """One readable reason, strongest first."""

    code: str = Field(examples=["DEVICE_BURST_5M"])
    weight: float = Field(description="score points the reason carries (rule points or model contribution)")
    text_zh: str = Field(examples=["同一设备5分钟内下单6次（阈值5）"])
    text_en: str = Field(examples=["6 orders from one device within 5 min (threshold 5)"])
    source: str = Field(examples=["rule"], description="rule | model | policy (a VIP release)")


class ScoreResponse(BaseModel):
    """The decision for one order version; re-scoring the same version returns the stored answer."""

    order_key: str = Field(examples=["douyin:4987123"])
    event_version: int
    score: float = Field(ge=0, le=100)
    risk_level: str = Field(examples=["high"], description="low | medium | high | critical")
    decision: str = Field(examples=["review"], description="approve | verify | review | hold")
    reasons: list[ReasonOut]
    allow_listed: bool = Field(description="VIP or known-good address: never held automatically")
    released: bool = Field(default=False, description="a VIP release capped the decision (the score is "
                                                     "unchanged); a hard rule or deny list undoes it")
    rules_only: bool = Field(description="true while no champion model is loaded")
    model_version: str | None
    degraded: bool = Field(default=False, description="true when the online feature store was unavailable: "
                                                     "scored by the rules on the order's own attributes")
    note: str | None = Field(default=None, examples=["rules-only: no champion model is loaded"])
    latency_ms: float = Field(description="server-side scoring time, features to decision")
    replayed: bool = Field(description="true when this order version was scored before and the stored answer "
                                       "is returned")
    rules_version: str | None = Field(default=None, examples=["v3:1f2e3d4c"],
                                      description="the rule pack version that judged the order (version and hash)")


class ScoreBatchRequest(BaseModel):
    """Several orders to score in one call (each independently)."""

    model_config = ConfigDict(extra="forbid")

    items: list[ScoreRequest] = Field(min_length=1)


class ScoreBatchItem(BaseModel):
    """Either a decision or the error for one item of a batch."""

    position: int
    result: ScoreResponse | None = None
    error: ErrorBody | None = None


class ScoreBatchResponse(BaseModel):
    """Per-item results, in request order."""

    items: list[ScoreBatchItem]


# -- labels -----------------------------------------------------------------------------------------------------


class OrderRef(BaseModel):
    """An order named by its channel and the channel's order id."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description="tmall | jd | douyin | kuaishou | wechat | site", examples=["jd"])
    order_id: str = Field(min_length=1, description="the channel's order id", examples=["3021587746"])


class LabelIn(BaseModel):
    """One verdict on one order. Name the order by ``order`` or by ``order_key``, not both.

    The reviewer is the caller (the signed-in user, or the API key as ``key:<name> (<prefix>)``),
    never a field of the request, so no caller can label in someone else's name.
    """

    model_config = ConfigDict(extra="forbid")

    order: OrderRef | None = Field(default=None, description="the order as channel + order id")
    order_key: str | None = Field(default=None, description="the order as '<channel>:<order id>'",
                                  examples=["jd:3021587746"])
    verdict: Verdict = Field(description="confirmed_fraud | false_positive | needs_investigation")
    labeled_at: AwareDatetime | None = Field(
        default=None, description="when the reviewer reached the verdict, ISO 8601 with offset; default: now. "
                                  "Not before the order's creation, not in the future.",
        examples=["2024-11-13T14:05:00+08:00"])
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
    degraded: bool = Field(default=False, description=DEFERRED)
    note: str | None = None


class LabelErrorOut(BaseModel):
    """Why one label of a batch was refused."""

    index: int
    code: str = Field(examples=["not_found"])
    field: str | None = Field(examples=["labels.1.order_key"])
    message: str


class LabelBatchErrorBody(ErrorBody):
    """A refused label request: the first problem as the usual error body; for a batch, every problem."""

    errors: list[LabelErrorOut] = Field(default_factory=list,
                                        description="every bad label of a batch (absent for a single label)")


class LabelHistory(BaseModel):
    """Every verdict on one order, oldest first, and the one in force."""

    order_key: str
    current: LabelOut | None = Field(description="the newest verdict (by labeled_at); null when never labelled")
    history: list[LabelRecordOut]


# -- model and health -------------------------------------------------------------------------------------------


class ModelStatusOut(BaseModel):
    """The model scores are computed with."""

    model_version: str | None = Field(description="registered model `name/version`; null when rules-only",
                                      examples=["orderguard-risk/3"])
    rules_only: bool = Field(description="true when no model is loaded and scores come from the rules alone")
    note: str = Field(description="why: which champion, or why none is loaded")
    loaded_at: datetime | None = Field(description="when the model was loaded (UTC)")


class ReloadOut(BaseModel):
    """The model before and after a reload."""

    changed: bool = Field(description="true when a different model serves now")
    previous: ModelStatusOut
    current: ModelStatusOut


class HealthResponse(BaseModel):
    """Service is up; counts come straight from the order log."""

    status: str = Field(description="ok, or degraded while a dependency is unavailable")
    dependencies: dict[str, str] = Field(default_factory=dict, description="each dependency: ok or why not",
                                         examples=[{"order_log": "ok", "feature_store": "ok"}])
    orders: int
    events: int
    orders_by_status: dict[str, int]
    model_version: str | None
    rules_only: bool
    score_commits: dict[str, int | float] | None = Field(
        default=None, description="the score route's group commit since the start: batches, requests, largest "
                                  "and mean batch, and each stage's mean milliseconds per batch (append, score, store)",
        examples=[{"batches": 120, "requests": 480, "largest": 9, "mean_batch": 4.0, "append_ms": 1.2,
                   "score_ms": 1.9, "store_ms": 0.8}])


class BuyerOut(BaseModel):
    """The buyer as the caller's roles may see them (``orderguard.privacy``): never a clear phone or id card."""

    account_id: str
    phone: str | None = Field(description="masked, e.g. 138****1234", examples=["138****1234"])
    id_card_on_file: bool = Field(description="whether a real-name id card came with the order (never the number)")
    member_level: int | None = None
    registered_at: datetime | None = None


class AddressOut(BaseModel):
    """The delivery address: to the district for every role; the masked street for reviewers and admins."""

    province: str
    city: str
    district: str
    street: str | None = Field(description="masked street (文三路****) for reviewers and admins; null for others",
                               examples=["文三路****"])
    pickup: str | None = Field(description="the pick-up / temporary keyword of the street (驿站 …), a risk signal",
                               examples=["驿站"])


class LineOut(BaseModel):
    """One SKU on the order."""

    sku_id: str
    title: str
    qty: int
    unit_price_fen: int
    list_price_fen: int | None = None


class StatusChangeOut(BaseModel):
    """One step of the order's status timeline."""

    status: str
    at: datetime
    channel_status: str


class OrderOut(BaseModel):
    """An order as stored, personal data shown as the caller's roles allow (``disclosure``)."""

    order_key: str = Field(examples=["jd:3021587746"])
    status: str
    shop_id: str
    created_at: datetime
    paid_at: datetime | None
    updated_at: datetime
    paid_fen: int
    goods_fen: int
    discount_fen: int
    coupon_fen: int
    lines: list[LineOut]
    buyer: BuyerOut
    address: AddressOut | None
    timeline: list[StatusChangeOut]
    refund_reason: str | None
    disclosure: Literal["case", "summary"] = Field(
        description="case: reviewers and admins (masked street); summary: every other role (district only)")


class VerificationIn(BaseModel):
    """The outcome of a ``verify`` order's step-up check (an SMS code, a call), as the order system saw it."""

    model_config = ConfigDict(extra="forbid")

    order_key: str = Field(description="the order as '<channel>:<order id>'", examples=["jd:3021587746"])
    outcome: Literal["passed", "failed", "timed_out"] = Field(
        description="passed: ship it; failed or timed_out: the order goes to the review desk")
    method: str = Field(default="", max_length=64, examples=["sms"], description="how it was checked")
    verified_at: AwareDatetime | None = Field(default=None, description="when; default: now")


class VerificationOut(BaseModel):
    """A stored outcome."""

    order_key: str
    outcome: str
    method: str
    verified_at: datetime


# -- order health ----------------------------------------------------------------------------------------------------


class FulfilmentResponse(BaseModel):
    """What became of a request's fulfilment reports."""

    received: int
    inserted: int
    duplicates: int
    conflicts: int
    errors: list[IngestError]


class HealthOrderOut(BaseModel):
    """One order's health in a list: score, tier, failing checks (oldest due first)."""

    order_key: str
    channel: str
    score: float
    tier: str
    checks: list[str]
    oldest_due: datetime | None


class HealthSummaryOut(BaseModel):
    """The shop's health after the latest sweep (``taken_at`` null: no sweep yet)."""

    taken_at: datetime | None
    overall: float | None
    orders: int
    alert_below: float
    tiers: dict[str, int]
    stages: dict[str, int]
    channels: dict[str, dict[str, int]]
    worst: list[HealthOrderOut]
    history: list[tuple[datetime, float]]


class FindingOut(BaseModel):
    """A failing (or, in an order's history, resolved) check of one order."""

    order_key: str
    check_id: str
    text: str
    channel: str
    stage: str
    component: str
    due_at: datetime
    flagged_at: datetime
    resolved_at: datetime | None
    detail: str


class TimelineEntryOut(BaseModel):
    """One line of an order's timeline across systems."""

    at: datetime
    system: str
    what: str
    label: str
    detail: str


class OrderHealthOut(BaseModel):
    """An order's timeline across systems, its health now and its findings history."""

    order_key: str
    score: float
    tier: str
    failing: list[FindingOut]
    entries: list[TimelineEntryOut]
    findings: list[FindingOut]


#: Longest rule pack text accepted (characters); the store also bounds its UTF-8 bytes.
MAX_PACK_CHARS = 256 * 1024
#: Highest rule pack version a request may name (the column is a 32-bit integer).
MAX_VERSION = 2**31 - 1


class RulePackOut(BaseModel):
    """One applied change of the live rule pack or of the shadow candidate."""

    version: int
    label: str = Field(examples=["v3:1f2e3d4c"], description="how score records name it: version and hash")
    role: str = Field(description="live | shadow | shadow_off (a shadow run ended)")
    content_hash: str = Field(description="SHA-256 of the YAML text")
    author: str = Field(examples=["alice", "key:tuning (og_ab12cd)", "file:features/default_rules.yaml"])
    source: str = Field(description="file | publish | rollback | shadow")
    applied_at: datetime
    note: str
    bands: list[float] | None = Field(default=None, description="a shadow candidate's own verify, review, hold bands")
    rollback_of: int | None = Field(default=None, description="the version a rollback restored")


class RulePackDetailOut(RulePackOut):
    """A version with its YAML text and the unified diff against the live pack before it."""

    text: str
    diff: str


class ServingRulesOut(BaseModel):
    """What the answering process judges with (every process swaps within ``scoring.rules_poll_s``)."""

    live: str
    shadow: str | None
    seen: int = Field(description="newest version this process has looked at")
    loaded_at: datetime
    problem: str | None = Field(default=None, description="why the newest version is not served, if it is not")


class RulesOut(BaseModel):
    """The live pack and the shadow candidate as stored, and what this process serves."""

    live: RulePackOut
    shadow: RulePackOut | None
    serving: ServingRulesOut


class RuleHistoryOut(BaseModel):
    """Every change, newest first."""

    items: list[RulePackOut]


class PublishRulesIn(BaseModel):
    """A new live rule pack: its YAML text (validated against the feature set before it is stored) and a note."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_PACK_CHARS, description="the pack's YAML, as a file holds it")
    note: str = Field(default="", max_length=2000, examples=["tighter device bursts for 12.12"])


class RollbackRulesIn(BaseModel):
    """Publish an earlier version's text again as a new version, recorded as a rollback."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_VERSION)
    note: str = Field(default="", max_length=2000)


class ShadowRulesIn(BaseModel):
    """A candidate judged beside the live pack on every order, never deciding, with optional own bands."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_PACK_CHARS)
    bands: list[float] | None = Field(default=None, min_length=3, max_length=3, examples=[[35, 55, 80]],
                                      description="verify, review, hold; null: the live bands")
    note: str = Field(default="", max_length=2000)


class PublishRulesOut(BaseModel):
    """What a publish, rollback or shadow change did."""

    changed: bool = Field(description="false when the same text (and bands) was in force already: nothing stored")
    pack: RulePackOut
