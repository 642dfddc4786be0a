"""Health checks as data: a YAML file (``health/presets/default.yaml``) validated when loaded.

A shop's deadlines differ by channel and change with its warehouse and carriers, so
every check is a row of data (stage, score component, kind, anchor, expected step,
deadline, per-channel deadlines, reason text in Chinese and English) and the sweeper
(``health.sweeper``) only interprets it. A bad file is a ``ConfigError`` naming the file
and the field, at start-up, never a wrong alert at 2 a.m.

Kinds:

* ``missing_step``: once any ``after`` anchor has happened, one of the ``expect`` steps
  must have happened ``within`` the deadline (``use_due_at``: the anchor step's own
  ``due_at`` is the deadline instead, e.g. a presale's balance deadline).
* ``silence``: after the latest ``after`` anchor, a *later* ``expect`` step must come
  within the deadline, again and again (a carrier that stops reporting).
* ``false_delivery``: the carrier says delivered and the buyer says not received.
* ``address_incomplete``, ``phone_invalid``, ``price_bounds``, ``duplicate_order``: facts
  of the order document, flagged when the order arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orderguard.durations import parse_duration
from orderguard.errors import ConfigError
from orderguard.fulfilment import StepKind
from orderguard.schema import Channel
from orderguard.yaml_models import preset_or_file, validated

PRESETS_DIR = Path(__file__).with_name("presets")
PRESETS = ("default",)

#: The health score's components, each worth its weight (the shops' own model by default).
COMPONENTS = ("address", "payment", "inventory", "price", "logistics")
#: Lifecycle stages, in the order an order passes them (the dashboard's grouping).
STAGES = ("order", "payment", "sync", "inventory", "warehouse", "logistics", "after_sale")
#: Anchors that are the channel's own statuses rather than fulfilment steps.
ORDER_ANCHORS = ("paid", "shipped", "delivered")


class Kind(StrEnum):
    """How a check reads an order's timeline (see the module docstring)."""

    MISSING_STEP = "missing_step"
    SILENCE = "silence"
    FALSE_DELIVERY = "false_delivery"
    ADDRESS_INCOMPLETE = "address_incomplete"
    PHONE_INVALID = "phone_invalid"
    PRICE_BOUNDS = "price_bounds"
    DUPLICATE_ORDER = "duplicate_order"


class Tier(StrEnum):
    """How urgent an order is, from its score; ``ok`` and ``watch`` need nobody yet."""

    OK = "ok"
    WATCH = "watch"  # a check failed, the score is still at or above action_below
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


#: Tiers from least to most urgent: a move to a later one is an escalation.
TIER_ORDER = (Tier.OK, Tier.WATCH, Tier.YELLOW, Tier.ORANGE, Tier.RED)
_ANCHORS = (*ORDER_ANCHORS, *(k.value for k in StepKind))


def _duration(value: object, field: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return timedelta(microseconds=parse_duration(value, field=field)[0])
    except ConfigError as e:  # pydantic reports a ValueError with the field's path
        raise ValueError(e.message) from e


class _Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    stage: Literal["order", "payment", "sync", "inventory", "warehouse", "logistics", "after_sale"]
    component: Literal["address", "payment", "inventory", "price", "logistics"]
    kind: Kind
    enabled: bool = True
    after: list[str] = Field(default_factory=list)
    expect: list[str] = Field(default_factory=list)
    within: timedelta | None = None
    channels: dict[Channel, timedelta] = Field(default_factory=dict)
    use_due_at: bool = False
    min_paid_share: float | None = Field(default=None, ge=0, le=1)
    max_discount_share: float | None = Field(default=None, ge=0, le=1)
    text: _Text

    @field_validator("within", mode="before")
    @classmethod
    def _within(cls, value: object) -> object:
        return None if value is None else _duration(value, "within")

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: object) -> object:
        if not isinstance(value, Mapping):
            return value
        return {k: _duration(v, f"channels.{k}") for k, v in value.items()}

    @field_validator("after", "expect")
    @classmethod
    def _steps(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in _ANCHORS:
                raise ValueError(f"{name!r} is not a step ({', '.join(_ANCHORS)})")
        return value

    @model_validator(mode="after")
    def _shape(self) -> _Check:
        if self.kind in (Kind.MISSING_STEP, Kind.SILENCE):
            if not self.after or not self.expect:
                raise ValueError(f"a {self.kind.value} check needs `after` and `expect`")
            if self.within is None:
                raise ValueError(f"a {self.kind.value} check needs `within` (a deadline like 15m or 24h)")
        if self.kind is Kind.DUPLICATE_ORDER and self.within is None:
            raise ValueError("a duplicate_order check needs `within` (how far apart two orders are duplicates)")
        if self.kind is Kind.PRICE_BOUNDS and self.min_paid_share is None and self.max_discount_share is None:
            raise ValueError("a price_bounds check needs min_paid_share and/or max_discount_share")
        return self


class _Tiers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    yellow: float = Field(ge=0, le=100)
    orange: float = Field(ge=0, le=100)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    weights: dict[Literal["address", "payment", "inventory", "price", "logistics"], float]
    action_below: float = Field(ge=0, le=100)
    tiers: _Tiers
    overall_alert_below: float = Field(ge=0, le=100)
    checks: list[_Check] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> _Config:
        missing = [c for c in COMPONENTS if c not in self.weights]
        if missing:
            raise ValueError(f"weights: every component needs a weight; missing {', '.join(missing)}")
        if any(w < 0 for w in self.weights.values()) or abs(sum(self.weights.values()) - 100) > 1e-9:
            raise ValueError(f"weights must be non-negative and sum to 100; they sum to {sum(self.weights.values())}")
        if not self.tiers.orange <= self.tiers.yellow <= self.action_below:
            raise ValueError("tiers: orange <= yellow <= action_below")
        ids = [c.id for c in self.checks]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"checks: id {twice[0]!r} is used twice")
        return self


@dataclass(frozen=True, slots=True)
class Check:
    """One validated check."""

    id: str
    stage: str
    component: str
    kind: Kind
    after: tuple[str, ...]
    expect: tuple[str, ...]
    within: timedelta
    channels: Mapping[Channel, timedelta]
    use_due_at: bool
    min_paid_share: float | None
    max_discount_share: float | None
    text_zh: str
    text_en: str

    def deadline(self, channel: Channel) -> timedelta:
        """How long after the anchor the expected step may come, on ``channel``."""
        return self.channels.get(channel, self.within)


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """A validated check file: the enabled checks in file order, weights, tiers and the alert bar."""

    name: str
    checks: tuple[Check, ...]
    weights: Mapping[str, float]
    action_below: float
    yellow_at: float
    orange_at: float
    overall_alert_below: float
    digest: str

    def check(self, check_id: str) -> Check:
        """The check named ``check_id`` (``KeyError`` when there is none)."""
        found = self.get(check_id)
        if found is None:
            raise KeyError(check_id)
        return found

    def get(self, check_id: str) -> Check | None:
        """The check named ``check_id``, or ``None`` (a stored finding of a check the file no longer has)."""
        return next((check for check in self.checks if check.id == check_id), None)

    def texts(self, check_id: str) -> tuple[str, str]:
        """A check's Chinese and English text; its id for both when the file no longer has it."""
        check = self.get(check_id)
        return (check_id, check_id) if check is None else (check.text_zh, check.text_en)

    def tier(self, score: float, *, flagged: bool) -> Tier:
        """The tier of a score: red below orange_at, orange below yellow_at, yellow below action_below."""
        if score < self.orange_at:
            return Tier.RED
        if score < self.yellow_at:
            return Tier.ORANGE
        if score < self.action_below:
            return Tier.YELLOW
        return Tier.WATCH if flagged else Tier.OK

    def score(self, failed_components: set[str] | frozenset[str]) -> float:
        """100 minus the weights of the failed components (never below 0)."""
        return max(0.0, 100.0 - sum(self.weights[c] for c in failed_components))


def _build(model: _Config, digest: str) -> HealthConfig:
    checks = tuple(
        Check(id=c.id, stage=c.stage, component=c.component, kind=c.kind, after=tuple(c.after),
              expect=tuple(c.expect), within=c.within or timedelta(0), channels=dict(c.channels),
              use_due_at=c.use_due_at, min_paid_share=c.min_paid_share, max_discount_share=c.max_discount_share,
              text_zh=c.text.zh, text_en=c.text.en)
        for c in model.checks if c.enabled)
    weights = {str(k): v for k, v in model.weights.items()}
    return HealthConfig(name=model.name, checks=checks, weights=weights, action_below=model.action_below,
                        yellow_at=model.tiers.yellow, orange_at=model.tiers.orange,
                        overall_alert_below=model.overall_alert_below, digest=digest)


def load_checks_text(text: str, *, source: str) -> HealthConfig:
    """Validate a check file's YAML text; a bad one is a ``ConfigError`` naming the file and the field."""
    model, digest = validated(text, _Config, source=source,
                              shape="a health check file is a mapping (name, weights, tiers, checks)")
    return _build(model, digest)


def load_checks(preset_or_path: str | Path = "default") -> HealthConfig:
    """A shipped preset by name (``default``) or a check file by path."""
    text, source = preset_or_file(preset_or_path, presets_dir=PRESETS_DIR, presets=PRESETS, what="health checks",
                                  field="health.checks")
    return load_checks_text(text, source=source)
