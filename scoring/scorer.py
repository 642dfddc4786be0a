"""Scoring, wired: features → rules (+ model) → blend → decision → ScoreRecord.

Only wiring lives here; every step is owned elsewhere (``features.online``,
``scoring.rules``, ``scoring.policy``). Applying an order to the online features is
idempotent by order version, and a score is stored once per order version, so the
order system may retry a request and gets the same answer without double counting.

The rule pack is hot-swapped like the model: :class:`ServedRules` (the live pack, its
version, and an optional shadow candidate) is one immutable value the service replaces in
one attribute assignment, and a request reads it once, so each order is judged wholly by
one pack version and its record names it. A shadow candidate is judged on the same
feature vector and model probability after the live answer is made; it never changes
that answer, and any error in it is caught and recorded instead of failing the request.
With no shadow set, the cost is one attribute read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from features.online import FeatureVector, OnlineFeatures
from orderguard.clock import Clock
from orderguard.errors import OrderGuardError, ServiceUnavailableError
from orderguard.schema import Order
from scoring.blend_weights import BlendWeights
from scoring.judge import judge, list_keys
from scoring.policy import Policy, Reason, decision_moment, order_reasons, risk_level
from scoring.records import ScoreRecord, ShadowOutcome
from scoring.rules import ListKeys, RuleHit, RulePack

logger = logging.getLogger("orderguard.scoring")


@dataclass(frozen=True, slots=True)
class ShadowCandidate:
    """A rule pack (and its policy: the live one, or the live one with candidate bands) judged beside the live
    pack on every order, never deciding."""

    rules: RulePack
    version: str
    policy: Policy


@dataclass(frozen=True, slots=True)
class ServedRules:
    """The rule pack in force, its version label (``scoring.pack_store.StoredPack.label``) and the shadow."""

    rules: RulePack
    version: str
    shadow: ShadowCandidate | None = None


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """A model's answer for one order.

    Attributes:
        probability: P(abnormal), calibrated on the training holdout.
        reasons: the model's strongest feature contributions, already readable and
            weighted in score points (see ``scoring.model``).
    """

    probability: float
    reasons: tuple[Reason, ...] = ()


class Model(Protocol):
    """What the scorer needs of the champion model."""

    @property
    def version(self) -> str: ...

    @property
    def blend(self) -> BlendWeights | None:
        """The weights of rules and model learned with this model (None: as written)."""

    def predict(self, vector: Mapping[str, float]) -> ModelOutput: ...


def _rule_reason(hit: RuleHit, weights: BlendWeights | None) -> Reason:
    """A hit as a reason, weighted by what it added to the score (its points times the learned multiplier)."""
    weight = hit.points * weights.weight(hit) if weights is not None else hit.points
    return Reason(code=hit.code, weight=weight, text_zh=hit.reason_zh, text_en=hit.reason_en, source="rule")


@dataclass(slots=True)
class Scorer:
    """Scores orders; one instance per process, built by ``serving.app``'s lifespan.

    ``served``, once set, is the pack that judges (swapped whole by ``serving.rule_slot``);
    until then ``rules`` does, unversioned.
    """

    online: OnlineFeatures
    rules: RulePack
    policy: Policy
    clock: Clock
    settings_hash: str
    model: Model | None = None
    max_reasons: int = 8
    served: ServedRules | None = None

    def score(self, order: Order) -> ScoreRecord:
        """Score the newest state of ``order`` at its decision moment (creation, or the open
        refund claim), with features as of that moment; the record is not yet stored."""
        started = time.perf_counter()
        model = self.model  # read once: a reload may swap it, and one request is scored by one model
        served = self.served  # likewise the rule pack: one request is judged by one pack version
        as_of = decision_moment(order)
        try:
            # one store call (one round trip to a remote store); the order is kept in the engine's
            # backlog while the store is unavailable
            vector: FeatureVector | None = self.online.apply_and_lookup(order, as_of=as_of)
        except ServiceUnavailableError:
            vector = None
        return self._record(order, as_of, vector, model, served, started)

    def score_many(self, orders: Sequence[Order]) -> list[ScoreRecord | OrderGuardError]:
        """:meth:`score` of each order in turn, their features applied and read in one store call (one round
        trip to a remote store for the whole batch); an order that cannot be scored gets its error in its place.

        The values are those of the single calls in the same order. One model and one rule pack
        judge the whole batch, and each record's latency runs from the batch's start, which is
        when its order began to wait here.
        """
        started = time.perf_counter()
        model, served = self.model, self.served
        moments = [decision_moment(order) for order in orders]
        vectors = self.online.apply_and_lookup_many(list(zip(orders, moments, strict=True)))
        out: list[ScoreRecord | OrderGuardError] = []
        for order, as_of, vector in zip(orders, moments, vectors, strict=True):
            if isinstance(vector, OrderGuardError) and not isinstance(vector, ServiceUnavailableError):
                out.append(vector)
                continue
            try:
                out.append(self._record(order, as_of, None if isinstance(vector, OrderGuardError) else vector,
                                        model, served, started))
            except OrderGuardError as e:
                out.append(e)
        return out

    def _record(self, order: Order, as_of: datetime, vector: FeatureVector | None, model: Model | None,
                served: ServedRules | None, started: float) -> ScoreRecord:
        """The record of ``order`` judged on ``vector``; without one (the store is unavailable) degraded: the
        rules on the order's own attributes, without history. The model was trained on histories and would
        misread their absence, so it sits out."""
        rules = served.rules if served is not None else self.rules
        degraded = vector is None
        if vector is None:
            alone = self.online.standalone()
            alone.apply(order)
            vector, model = alone.lookup(order, as_of=as_of), None
        output = model.predict(vector) if model is not None else None
        values = vector.by_name  # a plain dict: rules and the record read it at C speed
        weights = model.blend if model is not None else None
        probability = output.probability if output else None
        keys = list_keys(order, self.online.keys_of(order))  # the keys the engine derived applying it
        judgement = judge(order, values, rules=rules, policy=self.policy, at=as_of, probability=probability,
                          weights=weights, keys=keys)
        evaluation, score, decision = judgement.evaluation, judgement.score, judgement.decision
        reasons = order_reasons([*(_rule_reason(hit, weights) for hit in evaluation.hits),
                                 *(output.reasons if output else ())])
        if judgement.released:  # first: a reviewer reading a high score beside "approve" must see why
            reasons = (_release_reason(order), *reasons)
        latency_ms = (time.perf_counter() - started) * 1000
        shadow = None
        if served is not None and served.shadow is not None:  # after the latency: the caller never waits for it
            shadow = _shadow(served.shadow, order, values, at=as_of, probability=probability, weights=weights,
                             keys=keys)
        return ScoreRecord(
            order_key=order.key, event_version=order.event_version, event_time=as_of, scored_at=self.clock.now(),
            score=round(score, 2), risk_level=risk_level(decision), decision=decision,
            rules_only=model is None, model_version=model.version if model else None,
            settings_hash=self.settings_hash, feature_set_hash=self.online.specs.hash(), latency_ms=latency_ms,
            allow_listed=evaluation.allow_listed, released=judgement.released, features=dict(values),
            hits=evaluation.hits, reasons=reasons[: self.max_reasons], degraded=degraded,
            rules_version=served.version if served is not None else None, shadow=shadow)


def _release_reason(order: Order) -> Reason:
    level = order.details.buyer.member_level
    return Reason(code="VIP_RELEASE", weight=0.0, text_zh=f"会员等级{level}，无硬性规则命中：按会员放行",
                  text_en=f"member level {level} and no hard rule fired: released as a VIP", source="policy")


def _shadow(candidate: ShadowCandidate, order: Order, values: Mapping[str, float], *, at: datetime,
            probability: float | None, weights: BlendWeights | None, keys: ListKeys) -> ShadowOutcome:
    """The candidate's verdict on the very inputs the live pack judged; an error becomes the outcome's
    ``error``: a shadow run must never fail (or change) a served answer."""
    try:
        judgement = judge(order, values, rules=candidate.rules, policy=candidate.policy, at=at,
                          probability=probability, weights=weights, keys=keys)
    except Exception as e:  # noqa: BLE001  # anything the candidate does wrong stays in its own record
        logger.warning("shadow rule pack %s failed on %s: %s", candidate.version, order.key, e)
        return ShadowOutcome(version=candidate.version, score=None, decision=None, error=f"{type(e).__name__}: {e}")
    return ShadowOutcome(version=candidate.version, score=round(judgement.score, 2), decision=judgement.decision,
                         codes=tuple(h.code for h in judgement.evaluation.hits))
