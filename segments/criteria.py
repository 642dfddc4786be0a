"""The trusted-customer pool's criteria: data (a YAML preset), validated when loaded.

Marketing rewards the pool with trials, samples and coupons, so a criterion is a bar a
customer must clear, each with the threshold, the window it looks back over and the
text that tells a customer (through marketing) why they are not in it. The checks are
data so a shop tunes them without code, and so ``explain`` can name the failing one
with its value and threshold: the same ``Check`` list drives the SQL filter and the
explanation, so they cannot disagree.

Three presets ship (``segments/presets``): ``standard`` (the default), ``loose`` and
``strict``; a shop's own file has the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orderguard.schema import RefundReason
from orderguard.yaml_models import preset_or_file, validated

PRESETS_DIR = Path(__file__).with_name("presets")
PRESETS = ("standard", "loose", "strict")


class LinkVia(StrEnum):
    """What two accounts may share that links them (the entities a ring shares, as the features key them)."""

    DEVICE = "device"
    WIFI = "wifi"
    IP = "ip"
    ADDRESS = "address"
    PHONE = "phone"
    ID_CARD = "id_card"


class Op(StrEnum):
    """How a customer's value is held against the threshold; the customer passes when it holds."""

    AT_LEAST = "at_least"
    AT_MOST = "at_most"
    BELOW = "below"

    def holds(self, value: float, threshold: float) -> bool:
        """Python's reading of the comparison (explanations); ``sql`` is the pool's."""
        if self is Op.AT_LEAST:
            return value >= threshold
        if self is Op.AT_MOST:
            return value <= threshold
        return value < threshold

    @property
    def sql(self) -> str:
        return {Op.AT_LEAST: ">=", Op.AT_MOST: "<=", Op.BELOW: "<"}[self]


class _Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: str = Field(min_length=1, max_length=300)
    en: str = Field(min_length=1, max_length=300)


class _Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    reason: _Reason


class _AtLeast(_Criterion):
    at_least: float = Field(ge=0)


class _Completed(_AtLeast):
    settle_days: int = Field(default=14, ge=0, le=365,
                             description="an order counts once this long has passed since it was placed without a "
                                         "refund claim: a fresh delivery may still turn into a false claim")


class _AtMost(_Criterion):
    at_most: float = Field(ge=0)


class _Windowed(_AtMost):
    window_days: int = Field(ge=1, le=3660)


class _RefundRate(_Criterion):
    at_most: float = Field(ge=0, le=1)
    min_orders: int = Field(default=1, ge=1, le=1000,
                            description="paid orders before the rate counts (one refund of one order is no pattern)")


class _RefundClaims(_Windowed):
    reasons: list[RefundReason] = Field(default_factory=lambda: [RefundReason.DAMAGED, RefundReason.NOT_RECEIVED],
                                        min_length=1)


class _MaxScore(_Criterion):
    below: float = Field(gt=0, le=100.0001)
    window_days: int = Field(ge=1, le=3660)


class _Links(_Windowed):
    via: list[LinkVia] = Field(default_factory=lambda: list(LinkVia), min_length=1)
    crowded_at: int = Field(default=20, ge=2, le=1_000_000,
                            description="a key shared by this many accounts or more (a carrier's NAT, an office, a "
                                        "parcel locker) links nobody")


class _Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    tenure_days: float = Field(default=0, ge=0)
    completed_orders: int = Field(default=0, ge=0)


class _Criteria(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    name: str = Field(min_length=1, max_length=64)
    tenure_days: _AtLeast
    completed_orders: _Completed
    refund_rate: _RefundRate
    refund_claims: _RefundClaims
    fraud_labels: _AtMost
    investigations: _AtMost
    max_score: _MaxScore
    holds: _Windowed
    deny_listed: _AtMost
    links: _Links
    tiers: list[_Tier] = Field(min_length=1)

    @field_validator("tiers")
    @classmethod
    def _tiers_end_open(cls, tiers: list[_Tier]) -> list[_Tier]:
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be unique")
        if tiers[-1].tenure_days or tiers[-1].completed_orders:
            raise ValueError("the last tier must take everyone left (tenure_days 0, completed_orders 0)")
        return tiers


@dataclass(frozen=True, slots=True)
class Check:
    """One bar of the pool: ``metric <op> threshold`` over the customer's metrics row.

    ``metric`` names a column of the pool's metrics (``segments.pool.METRICS``); ``reason_*``
    may use ``{value}`` and ``{threshold}``.
    """

    name: str
    metric: str
    op: Op
    threshold: float
    reason_zh: str
    reason_en: str

    def passes(self, value: float) -> bool:
        return self.op.holds(value, self.threshold)

    def reason(self, value: float, lang: str = "en") -> str:
        template = self.reason_zh if lang == "zh" else self.reason_en
        return template.format(value=_plain(value), threshold=_plain(self.threshold))


@dataclass(frozen=True, slots=True)
class Tier:
    """A tier: the first whose bars a pool member clears names it (tiers are listed best first)."""

    name: str
    tenure_days: float
    completed_orders: int


@dataclass(frozen=True, slots=True)
class Criteria:
    """A validated preset: its checks in file order, the windows the metrics use, the tiers."""

    name: str
    checks: tuple[Check, ...]
    refund_reasons: tuple[RefundReason, ...]
    refund_min_orders: int
    settle_days: int
    refund_claims_days: int
    score_days: int
    hold_days: int
    link_days: int
    link_via: tuple[LinkVia, ...]
    crowded_at: int
    tiers: tuple[Tier, ...]
    digest: str

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


def _plain(value: float) -> str:
    """A number as a person writes it: ``3`` not ``3.0``, rates to 3 places."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0")


def _build(model: _Criteria, digest: str) -> Criteria:
    checks: list[Check] = []

    def add(name: str, crit: _Criterion, op: Op, threshold: float) -> None:
        if crit.enabled:
            checks.append(Check(name, name, op, threshold, crit.reason.zh, crit.reason.en))

    add("tenure_days", model.tenure_days, Op.AT_LEAST, model.tenure_days.at_least)
    add("completed_orders", model.completed_orders, Op.AT_LEAST, model.completed_orders.at_least)
    add("refund_rate", model.refund_rate, Op.AT_MOST, model.refund_rate.at_most)
    add("refund_claims", model.refund_claims, Op.AT_MOST, model.refund_claims.at_most)
    add("fraud_labels", model.fraud_labels, Op.AT_MOST, model.fraud_labels.at_most)
    add("investigations", model.investigations, Op.AT_MOST, model.investigations.at_most)
    add("max_score", model.max_score, Op.BELOW, model.max_score.below)
    add("holds", model.holds, Op.AT_MOST, model.holds.at_most)
    add("deny_listed", model.deny_listed, Op.AT_MOST, model.deny_listed.at_most)
    add("links", model.links, Op.AT_MOST, model.links.at_most)
    return Criteria(
        name=model.name, checks=tuple(checks), refund_reasons=tuple(model.refund_claims.reasons),
        refund_min_orders=model.refund_rate.min_orders, settle_days=model.completed_orders.settle_days,
        refund_claims_days=model.refund_claims.window_days,
        score_days=model.max_score.window_days, hold_days=model.holds.window_days,
        link_days=model.links.window_days, link_via=tuple(dict.fromkeys(model.links.via)),
        crowded_at=model.links.crowded_at,
        tiers=tuple(Tier(t.name, t.tenure_days, t.completed_orders) for t in model.tiers), digest=digest)


def load_criteria_text(text: str, *, source: str) -> Criteria:
    """Validate a preset's YAML text; a bad one is a ``ConfigError`` naming the file and the field."""
    model, digest = validated(text, _Criteria, source=source,
                              shape="a criteria file is a mapping (name, tenure_days, ..., tiers)")
    return _build(model, digest)


def load_criteria(preset_or_path: str | Path = "standard") -> Criteria:
    """A shipped preset by name (``standard``, ``loose``, ``strict``) or a criteria file by path."""
    text, source = preset_or_file(preset_or_path, presets_dir=PRESETS_DIR, presets=PRESETS, what="criteria")
    return load_criteria_text(text, source=source)
