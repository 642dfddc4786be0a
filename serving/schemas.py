"""Request and response models of the HTTP API (inbound models forbid unknown fields)."""

from __future__ import annotations

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
