"""Learn the weights of rules and model in the served score from labels (``scoring.blend_weights``).

Fitted on the training data's *validation part* (the newest rows of the training
period, the part early stopping already watches), never on the holdout the gate judges.

**Rule multipliers: the author's points, corrected by what the rule caught.** A rule's
points stand for evidence ``r = 1 - exp(-points / points_scale)`` in the noisy-OR (a +50
rule says ~57 %). In a noisy-OR with a background rate ``b`` (the fraud share of the
validation part), a rule with evidence ``r`` is right on a share
``q = 1 - (1 - b) * (1 - r)`` of the orders it fires on. On the validation part the rule
fired on ``n`` orders, ``k`` of them frauds; the measured share is the author's ``q``
updated by those orders, the author counting as ``prior_orders`` orders::

    q' = (k + prior_orders * q) / (n + prior_orders)
    r' = max(0, 1 - (1 - q') / (1 - b))

and the multiplier turns the author's points into that evidence,
``ln(1 - r') / ln(1 - r)``, capped at 1. A rule whose orders are no more often fraud
than orders in general (one that fires on 95 % of honest orders) measures ``r'`` = 0
and adds nothing; a rule that never fired, or that caught what its author said, keeps
all its points. Why a prior: a rule that fired twice proves nothing either way.

**Model weight: the one that ranks the validation part best.** With the multipliers
fixed, the weight of the model's probability in the noisy-OR is chosen from a short grid
by the validation average precision of the served blend (ties go to the higher weight:
the model is the calibrated part).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scoring.blend_weights import BlendWeights
from scoring.policy import Policy, blend
from scoring.rules import RuleHit
from training.metrics import pr_auc

#: How many orders the author's points count for, against the validation part's.
PRIOR_ORDERS = 20.0
#: Model weights tried (the first is preferred on ties).
MODEL_WEIGHTS: tuple[float, ...] = (1.0, 0.9, 0.75, 0.5, 0.25)


@dataclass(frozen=True, slots=True)
class RuleCounts:
    """What one rule did on the validation part: orders it fired on, frauds among them, its points."""

    code: str
    points: float
    fired: int
    frauds: int


def rule_counts(hits: Sequence[Sequence[RuleHit]], target: np.ndarray) -> list[RuleCounts]:
    """Per rule with positive points: fires and frauds among them (a rule firing twice on one order counts once)."""
    fired: dict[str, int] = {}
    frauds: dict[str, int] = {}
    points: dict[str, float] = {}
    for row, y in zip(hits, target, strict=True):
        for code in {h.code for h in row if h.points > 0}:
            fired[code] = fired.get(code, 0) + 1
            frauds[code] = frauds.get(code, 0) + int(y)
        for h in row:
            if h.points > 0:
                points[h.code] = max(points.get(h.code, 0.0), h.points)
    return [RuleCounts(code, points[code], fired[code], frauds[code]) for code in sorted(fired)]


def multiplier(counts: RuleCounts, *, base_rate: float, policy: Policy,
               prior_orders: float = PRIOR_ORDERS) -> tuple[float, float]:
    """``(multiplier, fraud share measured where it fired)`` of one rule (see the module docstring).

    >>> p = Policy()
    >>> [round(v, 3) for v in multiplier(RuleCounts("NOISY", 30, fired=950, frauds=28), base_rate=0.03, policy=p)]
    [0.015, 0.037]
    >>> round(multiplier(RuleCounts("WEAK", 50, fired=100, frauds=20), base_rate=0.03, policy=p)[0], 3)
    0.33
    >>> multiplier(RuleCounts("SHARP", 50, fired=40, frauds=36), base_rate=0.03, policy=p)[0]
    1.0
    """
    r = 1.0 - math.exp(-counts.points / policy.points_scale)
    background = min(max(base_rate, 0.0), 0.999)
    author = 1.0 - (1.0 - background) * (1.0 - r)
    share = (counts.frauds + prior_orders * author) / (counts.fired + prior_orders)
    fitted = max(0.0, 1.0 - (1.0 - share) / (1.0 - background))
    if fitted >= r:
        return 1.0, share
    return math.log1p(-fitted) / math.log1p(-r), share


def fit_blend(hits: Sequence[Sequence[RuleHit]], probability: np.ndarray, target: np.ndarray, *,
              policy: Policy, prior_orders: float = PRIOR_ORDERS) -> BlendWeights:
    """The blend weights from the validation part's rule hits, model probabilities and targets.

    Args:
        hits: per validation row, the rule hits (``RulePack.evaluate(...).hits``).
        probability: per row, the model's P(fraud).
        target: per row, 1 for fraud.
        policy: the serving policy (its ``points_scale`` gives points their meaning).
        prior_orders: weight of the author's points against the validation orders.
    """
    y = np.asarray(target, dtype=np.int8)
    base_rate = float(y.mean()) if len(y) else 0.0
    rules: dict[str, float] = {}
    evidence: dict[str, float] = {}
    for counts in rule_counts(hits, y):
        rules[counts.code], evidence[counts.code] = multiplier(counts, base_rate=base_rate, policy=policy,
                                                               prior_orders=prior_orders)
    partial = BlendWeights(rules, 1.0, len(y), evidence)
    points = np.array([partial.points(row) for row in hits], dtype=np.float64)
    best_weight, best_ap = MODEL_WEIGHTS[0], -math.inf
    if 0 < y.sum() < len(y):
        for weight in MODEL_WEIGHTS:
            scaled = Policy(points_scale=policy.points_scale, model_weight=policy.model_weight * weight)
            scores = np.array([blend(pt, float(p), policy=scaled) for pt, p in zip(points, probability, strict=True)])
            ap = pr_auc(y, scores)
            if ap > best_ap + 1e-9:
                best_weight, best_ap = weight, ap
    return BlendWeights(rules, best_weight, len(y), evidence)
