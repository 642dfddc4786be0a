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

Decision bands cut the score: ``approve < verify <= ... < review <= ... < hold``.
Campaigns move the bands both ways: a promotion day (11.11) widens them (a positive
shift) so honest promotion volume does not flood the queue, and a launch window tightens
them (a negative shift) because scalpers come exactly then. Where campaigns overlap,
tightening wins per band: a shop that asked for a stricter window never loses it to a
broader promotion. Bands stay within [1, 100] and in order whatever the shifts.

Two member-level exemptions, both undone by a *hard* hit (a deny-list entry or a rule
marked ``hard: true``), because a stolen VIP account is exactly what a deny list is for:

* the pack's allow list (``allow.vip_min_member_level``, known-good addresses) means
  "never held automatically": the worst automatic outcome is review;
* the policy's VIP release (``policy.vip_release``) lets high-level members through
  quickly: their decision is capped at ``release_to`` (approve, or verify for a step-up).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from orderguard.clock import SHOP_TZ
from orderguard.errors import ConfigError
from orderguard.schema import Order, OrderStatus
from orderguard.settings import CampaignSettings, PolicySettings


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
        """Every band moved by ``shift`` points (up widens, down tightens); see :meth:`moved`."""
        return self.moved(BandShift(shift, shift, shift))

    def moved(self, shift: BandShift) -> Bands:
        """Each band moved by its own shift, kept within [1, 100] and in order.

        Order is kept by letting a band that would fall below the one beneath it sit on
        it: each result is a non-decreasing function of every shift, so a wider shift never
        makes any decision stricter (property tested).

        >>> Bands(35, 55, 80).moved(BandShift(0, -30, -30))
        Bands(verify=35.0, review=35.0, hold=50.0)
        >>> Bands(35, 55, 80).moved(BandShift(70, 70, 70))
        Bands(verify=100.0, review=100.0, hold=100.0)
        """
        verify = _clamp(self.verify + shift.verify)
        review = max(verify, _clamp(self.review + shift.review))
        return Bands(verify, review, max(review, _clamp(self.hold + shift.hold)))


#: The lowest a band may be moved to: a score of 0 must always approve.
MIN_BAND = 1.0


def _clamp(value: float) -> float:
    return float(min(max(value, MIN_BAND), 100.0))


@dataclass(frozen=True, slots=True)
class BandShift:
    """Points added to each band: positive widens (fewer flags), negative tightens."""

    verify: float = 0.0
    review: float = 0.0
    hold: float = 0.0

    @staticmethod
    def combined(shifts: Sequence[BandShift]) -> BandShift:
        """Overlapping campaigns: per band the strictest tightening if any tightens, else the widest widening.

        >>> BandShift.combined([BandShift(10, 10, 10), BandShift(0, -20, -5)])
        BandShift(verify=10.0, review=-20.0, hold=-5.0)
        """
        def pick(values: list[float]) -> float:
            tighter = [v for v in values if v < 0]
            return float(min(tighter) if tighter else max(values, default=0.0))
        return BandShift(pick([s.verify for s in shifts]), pick([s.review for s in shifts]),
                         pick([s.hold for s in shifts]))


@dataclass(frozen=True, slots=True)
class Campaign:
    """A promotion or launch period (Beijing calendar days, inclusive, optionally only some hours of each day)
    during which the bands move by ``shift`` (``band_shift`` for every band unless ``shift`` is given)."""

    name: str
    first_day: date
    last_day: date
    band_shift: float = 0.0
    shift: BandShift | None = None
    hours: tuple[time, time] | None = None  # [start, end) Beijing time; start > end wraps past midnight

    @property
    def band_shifts(self) -> BandShift:
        """The shift of each band while the campaign runs."""
        return self.shift if self.shift is not None else BandShift(self.band_shift, self.band_shift, self.band_shift)

    def covers(self, at: datetime) -> bool:
        """Whether the instant ``at`` falls on one of the campaign's Beijing days (and hours).

        >>> c = Campaign("launch", date(2026, 11, 11), date(2026, 11, 11), -20, hours=(time(20), time(2)))
        >>> [c.covers(datetime(2026, 11, 11, h, tzinfo=SHOP_TZ)) for h in (19, 20, 23)]
        [False, True, True]
        """
        local = at.astimezone(SHOP_TZ)
        if not self.first_day <= local.date() <= self.last_day:
            return False
        if self.hours is None:
            return True
        start, end = self.hours
        now = local.time()
        return start <= now < end if start < end else (now >= start or now < end)


@dataclass(frozen=True, slots=True)
class VipRelease:
    """Members at or above ``min_member_level`` are capped at ``release_to`` unless a hard hit fires."""

    min_member_level: int
    release_to: Decision = Decision.APPROVE

    def __post_init__(self) -> None:
        if self.min_member_level < 1:
            raise ConfigError.must("policy.vip_release.min_member_level", ">= 1", self.min_member_level)
        if self.release_to not in (Decision.APPROVE, Decision.VERIFY):
            raise ConfigError.must("policy.vip_release.release_to", "approve or verify", self.release_to.value)

    def applies(self, member_level: int | None) -> bool:
        """Whether a buyer of ``member_level`` (None: the channel does not say) is released."""
        return member_level is not None and member_level >= self.min_member_level


@dataclass(frozen=True, slots=True)
class Policy:
    """The blend and decision parameters (built from ``Settings.policy``)."""

    points_scale: float = 60.0
    model_weight: float = 1.0
    bands: Bands = Bands()
    campaigns: tuple[Campaign, ...] = ()
    vip_release: VipRelease | None = None

    def __post_init__(self) -> None:
        if not self.points_scale > 0:
            raise ConfigError.must("policy.points_scale", "> 0", self.points_scale)
        if not 0 <= self.model_weight <= 1:
            raise ConfigError.must("policy.model_weight", "between 0 and 1", self.model_weight)

    def bands_at(self, at: datetime) -> Bands:
        """Bands in force at ``at``: moved by the campaigns covering that instant (see :meth:`BandShift.combined`)."""
        covering = [c.band_shifts for c in self.campaigns if c.covers(at)]
        return self.bands.moved(BandShift.combined(covering)) if covering else self.bands


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
    release = settings.vip_release
    return Policy(points_scale=settings.points_scale, model_weight=settings.model_weight,
                  bands=Bands(settings.bands.verify, settings.bands.review, settings.bands.hold),
                  campaigns=tuple(_campaign(c) for c in settings.campaigns),
                  vip_release=None if release.min_member_level is None else VipRelease(
                      release.min_member_level, Decision(release.release_to)))


def _campaign(c: CampaignSettings) -> Campaign:
    shift = None if c.shifts is None else BandShift(c.shifts.verify, c.shifts.review, c.shifts.hold)
    return Campaign(c.name, c.first_day, c.last_day, c.band_shift, shift, c.hours_window)


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


def decide(score: float, *, bands: Bands, never_hold: bool = False, cap: Decision | None = None) -> Decision:
    """The decision band of ``score``; ``never_hold`` (allow-listed VIP) caps it at review, ``cap`` (a VIP
    release) at that decision. Both caps keep the decision non-decreasing in the score.

    >>> [decide(s, bands=Bands()).value for s in (0, 35, 54.9, 55, 80, 100)]
    ['approve', 'verify', 'verify', 'review', 'hold', 'hold']
    >>> decide(99, bands=Bands(), never_hold=True).value, decide(99, bands=Bands(), cap=Decision.VERIFY).value
    ('review', 'verify')
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
        decision = Decision.REVIEW
    if cap is not None and _ORDER.index(decision) > _ORDER.index(cap):
        decision = cap
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
    converted to score points by the caller. ``source`` is ``rule``, ``model`` or ``policy`` (a VIP release).
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
