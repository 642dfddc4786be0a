"""Request and response models of the HTTP API (inbound models forbid unknown fields)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    source: str = Field(examples=["rule"], description="rule | model")


class ScoreResponse(BaseModel):
    """The decision for one order version; re-scoring the same version returns the stored answer."""

    order_key: str = Field(examples=["douyin:4987123"])
    event_version: int
    score: float = Field(ge=0, le=100)
    risk_level: str = Field(examples=["high"], description="low | medium | high | critical")
    decision: str = Field(examples=["review"], description="approve | verify | review | hold")
    reasons: list[ReasonOut]
    allow_listed: bool = Field(description="VIP or known-good address: never held automatically")
    rules_only: bool = Field(description="true while no champion model is loaded")
    model_version: str | None
    note: str | None = Field(default=None, examples=["rules-only: no champion model is loaded"])
    latency_ms: float = Field(description="server-side scoring time, features to decision")
    replayed: bool = Field(description="true when this order version was scored before and the stored answer "
                                       "is returned")


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
