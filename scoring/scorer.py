"""Scoring, wired: features → rules (+ model) → blend → decision → ScoreRecord.

Only wiring lives here; every step is owned elsewhere (``features.online``,
``scoring.rules``, ``scoring.policy``). Applying an order to the online features is
idempotent by order version, and a score is stored once per order version, so the
order system may retry a request and gets the same answer without double counting.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from features.online import OnlineFeatures
from orderguard.clock import Clock
from orderguard.errors import ServiceUnavailableError
from orderguard.schema import Order
from scoring.blend_weights import BlendWeights
from scoring.judge import judge
from scoring.policy import Policy, Reason, decision_moment, order_reasons, risk_level
from scoring.records import ScoreRecord
from scoring.rules import RuleHit, RulePack


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
    """Scores orders; one instance per process, built by ``serving.app``'s lifespan."""

    online: OnlineFeatures
    rules: RulePack
    policy: Policy
    clock: Clock
    settings_hash: str
    model: Model | None = None
    max_reasons: int = 8

    def score(self, order: Order) -> ScoreRecord:
        """Score the newest state of ``order`` at its decision moment (creation, or the open
        refund claim), with features as of that moment; the record is not yet stored."""
        started = time.perf_counter()
        model = self.model  # read once: a reload may swap it, and one request is scored by one model
        as_of = decision_moment(order)
        degraded = False
        try:
            self.online.apply(order)  # kept in the engine's backlog while the store is unavailable
            vector = self.online.lookup(order, as_of=as_of)
        except ServiceUnavailableError:
            # Degraded, not down: the rules on the order's own attributes, without history; the
            # model was trained on histories and would misread their absence, so it sits out.
            alone = self.online.standalone()
            alone.apply(order)
            vector = alone.lookup(order, as_of=as_of)
            degraded, model = True, None
        output = model.predict(vector) if model is not None else None
        values = vector.by_name  # a plain dict: rules and the record read it at C speed
        weights = model.blend if model is not None else None
        judgement = judge(order, values, rules=self.rules, policy=self.policy, at=as_of,
                          probability=output.probability if output else None, weights=weights)
        evaluation, score, decision = judgement.evaluation, judgement.score, judgement.decision
        reasons = order_reasons([*(_rule_reason(hit, weights) for hit in evaluation.hits),
                                 *(output.reasons if output else ())])
        latency_ms = (time.perf_counter() - started) * 1000
        return ScoreRecord(
            order_key=order.key, event_version=order.event_version, event_time=as_of, scored_at=self.clock.now(),
            score=round(score, 2), risk_level=risk_level(decision), decision=decision,
            rules_only=model is None, model_version=model.version if model else None,
            settings_hash=self.settings_hash, feature_set_hash=self.online.specs.hash(), latency_ms=latency_ms,
            allow_listed=evaluation.allow_listed, features=dict(values),
            hits=evaluation.hits, reasons=reasons[: self.max_reasons], degraded=degraded)
