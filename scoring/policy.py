"""From rule points and model probability to one 0-100 score and a decision (pure).

The blend is a *noisy-OR* of two pieces of evidence::

    r     = 1 - exp(-points / points_scale)      # rule evidence, 0 <= r < 1
    m     = model_weight * p                     # model evidence, p = P(fraud)
    score = 100 * (1 - (1 - r) * (1 - m))

Why this form: it is strictly increasing in both points and probability (property
tested), it stays in [0, 100] whatever the inputs, a single strong signal is enough to
reach a high score (one +50 rule alone gives ~57 with the default scale of 60), and
independent signals compound without ever exceeding 100. With no model (rules-only) the
score is ``100 * r``. Training evaluates this same function, so the thresholds it
validates are the ones that serve.

Decision bands cut the score: ``approve < verify <= ... < review <= ... < hold``. A
campaign day (e.g. 11.11) shifts every band up by its ``band_shift`` so promotion-day
volume does not flood the queue; an allow-listed VIP is never held automatically (the
worst automatic outcome is review).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from orderguard.clock import SHOP_TZ
from orderguard.errors import ConfigError
from orderguard.schema import Order, OrderStatus
from orderguard.settings import PolicySettings


class Decision(StrEnum):
    """What the order system should do with the order."""

    APPROVE = "approve"
    VERIFY = "verify"  # step-up check, e.g. an SMS code or a call
    REVIEW = "review"  # a reviewer looks before it ships
    HOLD = "hold"  # do not ship; cancel unless a reviewer releases it


class RiskLevel(StrEnum):
    """Coarse level shown to reviewers, one per decision band."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


_LEVEL = {Decision.APPROVE: RiskLevel.LOW, Decision.VERIFY: RiskLevel.MEDIUM,
          Decision.REVIEW: RiskLevel.HIGH, Decision.HOLD: RiskLevel.CRITICAL}
_ORDER = [Decision.APPROVE, Decision.VERIFY, Decision.REVIEW, Decision.HOLD]


@dataclass(frozen=True, slots=True)
class Bands:
    """Lowest score of each non-approve decision; must satisfy 0 < verify <= review <= hold <= 100."""

    verify: float = 35.0
    review: float = 55.0
    hold: float = 80.0

    def __post_init__(self) -> None:
        if not 0 < self.verify <= self.review <= self.hold <= 100:
            raise ConfigError.must("policy.bands", "0 < verify <= review <= hold <= 100",
                                   (self.verify, self.review, self.hold))

    def shifted(self, shift: float) -> Bands:
        """Every band moved up by ``shift`` points (capped at 100)."""
        return Bands(min(self.verify + shift, 100.0), min(self.review + shift, 100.0), min(self.hold + shift, 100.0))


@dataclass(frozen=True, slots=True)
class Campaign:
    """A promotion period (Beijing calendar days, inclusive) during which bands move up."""

    name: str
    first_day: date
    last_day: date
    band_shift: float

    def covers(self, at: datetime) -> bool:
        """Whether the instant ``at`` falls on one of the campaign's Beijing days."""
        day = at.astimezone(SHOP_TZ).date()
        return self.first_day <= day <= self.last_day


@dataclass(frozen=True, slots=True)
class Policy:
    """The blend and decision parameters (built from ``Settings.policy``)."""

    points_scale: float = 60.0
    model_weight: float = 1.0
    bands: Bands = Bands()
    campaigns: tuple[Campaign, ...] = ()

    def __post_init__(self) -> None:
        if not self.points_scale > 0:
            raise ConfigError.must("policy.points_scale", "> 0", self.points_scale)
        if not 0 <= self.model_weight <= 1:
            raise ConfigError.must("policy.model_weight", "between 0 and 1", self.model_weight)

    def bands_at(self, at: datetime) -> Bands:
        """Bands in force at ``at``: the largest shift of any campaign covering that day."""
        shift = max((c.band_shift for c in self.campaigns if c.covers(at)), default=0.0)
        return self.bands.shifted(shift) if shift else self.bands


_AFTER_SALE = frozenset({OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED, OrderStatus.REFUND_REJECTED})


def decision_moment(order: Order) -> datetime:
    """The instant an order's risk is judged at: its refund claim while one is open or
    decided, otherwise its creation.

    The order system asks at those two moments (a new order, a refund claim). Judging a
    later fulfilment update "as of now" would let velocity windows (5 min, 48 h) slide
    past the very burst that made the order suspicious.
    """
    if order.refund is not None and order.status in _AFTER_SALE:
        return order.refund.requested_at
    return order.details.created_at


def policy_from(settings: PolicySettings) -> Policy:
    """The :class:`Policy` described by ``Settings.policy`` (bad bands are a ConfigError)."""
    return Policy(points_scale=settings.points_scale, model_weight=settings.model_weight,
                  bands=Bands(settings.bands.verify, settings.bands.review, settings.bands.hold),
                  campaigns=tuple(Campaign(c.name, c.first_day, c.last_day, c.band_shift) for c in settings.campaigns))


def blend(points: float, probability: float | None, *, policy: Policy) -> float:
    """Score 0-100 from rule points and model probability (``None`` = rules-only).

    Negative points (allow-list credits) lower the rule evidence to 0 at most.

    >>> p = Policy()
    >>> round(blend(50, None, policy=p), 1), round(blend(0, 0.5, policy=p), 1), round(blend(50, 0.5, policy=p), 1)
    (56.5, 50.0, 78.3)
    >>> blend(10_000, 1.0, policy=p)
    100.0
    """
    r = 1.0 - math.exp(-max(points, 0.0) / policy.points_scale)
    m = 0.0 if probability is None else policy.model_weight * min(max(probability, 0.0), 1.0)
    return 100.0 * (1.0 - (1.0 - r) * (1.0 - m))


def decide(score: float, *, bands: Bands, never_hold: bool = False) -> Decision:
    """The decision band of ``score``; ``never_hold`` (allow-listed VIP) caps it at review.

    >>> [decide(s, bands=Bands()).value for s in (0, 35, 54.9, 55, 80, 100)]
    ['approve', 'verify', 'verify', 'review', 'hold', 'hold']
    >>> decide(99, bands=Bands(), never_hold=True).value
    'review'
    """
    if score >= bands.hold:
        decision = Decision.HOLD
    elif score >= bands.review:
        decision = Decision.REVIEW
    elif score >= bands.verify:
        decision = Decision.VERIFY
    else:
        decision = Decision.APPROVE
    if never_hold and decision is Decision.HOLD:
        return Decision.REVIEW
    return decision


def risk_level(decision: Decision) -> RiskLevel:
    """The reviewer-facing level of a decision.

    >>> risk_level(Decision.REVIEW).value
    'high'
    """
    return _LEVEL[decision]


def decision_rank(decision: Decision) -> int:
    """Position of a decision from approve (0) to hold (3), for monotonicity checks."""
    return _ORDER.index(decision)


@dataclass(frozen=True, slots=True)
class Reason:
    """One readable reason: a fired rule or a model contribution.

    ``weight`` is what orders the reasons: rule points, or the model contribution
    converted to score points by the caller. ``source`` is ``rule`` or ``model``.
    """

    code: str
    weight: float
    text_zh: str
    text_en: str
    source: str


def order_reasons(reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    """Strongest first; ties keep rules before model and then code order, so output is stable.

    >>> [r.code for r in order_reasons([Reason("B", 10, "", "", "model"), Reason("A", 10, "", "", "rule"),
    ...                                 Reason("C", 50, "", "", "rule")])]
    ['C', 'A', 'B']
    """
    return tuple(sorted(reasons, key=lambda r: (-r.weight, r.source != "rule", r.code)))


def top(reasons: Sequence[Reason], limit: int) -> tuple[Reason, ...]:
    """The first ``limit`` reasons of an already ordered sequence."""
    return tuple(reasons[:limit])
