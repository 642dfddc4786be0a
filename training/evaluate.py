"""Evaluate rules-only, model-only and their blend on a holdout, through the served decision step (pure).

Every holdout row is judged as the service would have judged it at the order's creation:
``scoring.judge.judge`` on the row's features (the same rule pack, allow and deny lists,
blend and decision bands, campaign shifts included) at ``created_at``. Three scorers:

* ``rules``: ``judge`` without a model probability (what serves before any champion);
* ``model``: the model's probability alone; its decision band is the policy's bands
  applied to ``blend(0 points, p)``, i.e. what the model would decide without rules;
* ``blend``: ``judge`` with the probability, the score that serves.

The blend uses the candidate's learned weights (``scoring.blend_weights``) when given, as
serving will. Every rule's firing rate on honest and on fraud holdout orders is reported
too (``RuleRate``): a rule that fires on most honest orders is visible in every run.

For each: ROC AUC, PR AUC (average precision), precision and recall at the review
team's daily capacity (the top ``capacity_per_day`` orders of each Beijing day, see
``training.metrics.at_capacity``), and for each decision band from ``verify`` up the
false-positive rate (share of honest orders at that band or above), recall and
precision. Without a probability only ``rules`` and ``blend`` (then equal) are given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from orderguard.errors import InvalidInputError
from scoring.blend_weights import BlendWeights
from scoring.judge import judge
from scoring.policy import Decision, Policy, blend, decide, decision_rank
from scoring.rules import RulePack
from training.dataset import Dataset, TargetSource
from training.metrics import at_capacity, pr_auc, roc_auc

#: Scorer names, in reporting order.
RULES, MODEL, BLEND = "rules", "model", "blend"
#: The bands reported: flagged at this decision or above.
BANDS: tuple[Decision, ...] = (Decision.VERIFY, Decision.REVIEW, Decision.HOLD)
#: Verdict shown for unlabelled rows counted honest after maturing.
MATURED = TargetSource.MATURED.value


@dataclass(frozen=True, slots=True)
class BandRates:
    """What one scorer flags at ``decision`` or above.

    Attributes:
        decision: the lowest band counted.
        flagged: rows at that band or above.
        false_positive_rate: share of honest rows flagged (NaN without honest rows).
        recall: share of fraud rows flagged (NaN without frauds).
        precision: share of flagged rows that are fraud (NaN when nothing is flagged).
    """

    decision: Decision
    flagged: int
    false_positive_rate: float
    recall: float
    precision: float


def band_rates(target: np.ndarray, decisions: Sequence[Decision], band: Decision) -> BandRates:
    """False-positive rate, recall and precision of the rows at ``band`` or above.

    >>> r = band_rates(np.array([1, 0, 0, 1]), [Decision.HOLD, Decision.REVIEW, Decision.APPROVE,
    ...                                            Decision.VERIFY], Decision.REVIEW)
    >>> r.flagged, r.false_positive_rate, r.recall, r.precision
    (2, 0.5, 0.5, 0.5)
    """
    y = np.asarray(target, dtype=np.int8)
    threshold = decision_rank(band)
    flagged = np.array([decision_rank(d) >= threshold for d in decisions], dtype=bool)
    positives, negatives, hits = int(y.sum()), int((y == 0).sum()), int(y[flagged].sum())
    n_flagged = int(flagged.sum())
    return BandRates(
        decision=band, flagged=n_flagged,
        false_positive_rate=(n_flagged - hits) / negatives if negatives else math.nan,
        recall=hits / positives if positives else math.nan,
        precision=hits / n_flagged if n_flagged else math.nan)


@dataclass(frozen=True, slots=True)
class RuleRate:
    """How often one rule fired on the holdout's honest and fraud orders.

    Attributes:
        code: the rule.
        honest: honest orders it fired on.
        frauds: fraud orders it fired on.
        honest_rate: share of honest orders it fired on (NaN without honest orders).
        fraud_rate: share of fraud orders it fired on (NaN without frauds).
        weight: its learned multiplier in the served blend (1 when none was learned).
    """

    code: str
    honest: int
    frauds: int
    honest_rate: float
    fraud_rate: float
    weight: float = 1.0


def rule_rates(hit_codes: Sequence[frozenset[str]], target: np.ndarray,
               weights: BlendWeights | None = None) -> tuple[RuleRate, ...]:
    """Per rule that fired at all, its firing rate on honest and on fraud rows, most honest-firing first.

    >>> [(r.code, r.honest_rate, r.fraud_rate) for r in rule_rates(
    ...     [frozenset({"A"}), frozenset({"A", "B"}), frozenset()], np.array([0, 1, 0]))]
    [('A', 0.5, 1.0), ('B', 0.0, 1.0)]
    """
    y = np.asarray(target, dtype=np.int8)
    honest_total, fraud_total = int((y == 0).sum()), int(y.sum())
    honest: dict[str, int] = {}
    frauds: dict[str, int] = {}
    for codes, label in zip(hit_codes, y, strict=True):
        for code in codes:
            bucket = frauds if label else honest
            bucket[code] = bucket.get(code, 0) + 1
            (honest if label else frauds).setdefault(code, 0)
    rates = [RuleRate(code, honest[code], frauds[code],
                      honest[code] / honest_total if honest_total else math.nan,
                      frauds[code] / fraud_total if fraud_total else math.nan,
                      weights.rules.get(code, 1.0) if weights is not None else 1.0)
             for code in honest]
    return tuple(sorted(rates, key=lambda r: (-r.honest, r.code)))


@dataclass(frozen=True, slots=True)
class ScorerResult:
    """The ranking and decision metrics of one scorer on the holdout."""

    name: str
    roc_auc: float
    pr_auc: float
    precision_at_capacity: float
    recall_at_capacity: float
    bands: tuple[BandRates, ...]

    def metrics(self) -> dict[str, float]:
        """Flat names: ``<scorer>_pr_auc``, ``<scorer>_fpr_review``, ``<scorer>_recall_hold`` ..."""
        out = {f"{self.name}_roc_auc": self.roc_auc, f"{self.name}_pr_auc": self.pr_auc,
               f"{self.name}_precision_at_capacity": self.precision_at_capacity,
               f"{self.name}_recall_at_capacity": self.recall_at_capacity}
        for b in self.bands:
            out[f"{self.name}_fpr_{b.decision.value}"] = b.false_positive_rate
            out[f"{self.name}_recall_{b.decision.value}"] = b.recall
            out[f"{self.name}_precision_{b.decision.value}"] = b.precision
        return out


def score_metrics(name: str, target: np.ndarray, score: np.ndarray, day: np.ndarray,
                  decisions: Sequence[Decision], *, capacity_per_day: int) -> ScorerResult:
    """All metrics of one scorer from its scores and decisions."""
    precision, recall = at_capacity(target, score, day, per_day=capacity_per_day) if len(target) else (
        math.nan, math.nan)
    return ScorerResult(name=name, roc_auc=roc_auc(target, score) if len(target) else math.nan,
                        pr_auc=pr_auc(target, score) if len(target) else math.nan,
                        precision_at_capacity=precision, recall_at_capacity=recall,
                        bands=tuple(band_rates(target, decisions, band) for band in BANDS))


@dataclass(frozen=True, slots=True, eq=False)
class Evaluation:
    """The holdout evaluation of the scorers, with the per-row scores kept for plots.

    Attributes:
        results: scorer name → its metrics (``rules``, ``blend``, and ``model`` when a
            probability was given).
        order_keys: the holdout rows, in frame order.
        target: 0/1 per row.
        day: Beijing date per row.
        verdict: per row the label verdict, or ``matured`` for unlabelled honest rows.
        scores: scorer name → score per row (``rules``/``blend`` on 0-100, ``model`` in 0-1).
        decisions: scorer name → decision per row.
        capacity_per_day: the review capacity used.
    """

    results: Mapping[str, ScorerResult]
    order_keys: tuple[str, ...]
    target: np.ndarray
    day: np.ndarray
    verdict: tuple[str, ...]
    scores: Mapping[str, np.ndarray]
    decisions: Mapping[str, tuple[Decision, ...]]
    capacity_per_day: int
    rules: tuple[RuleRate, ...] = ()

    def metrics(self) -> dict[str, float]:
        """Flat view for MLflow and the gate: every scorer's metrics plus the holdout size.

        Names: ``{rules,model,blend}_{roc_auc,pr_auc,precision_at_capacity,recall_at_capacity}``,
        ``{scorer}_{fpr,recall,precision}_{verify,review,hold}``, ``holdout_rows``,
        ``holdout_positives``. Undefined figures (one class only) are NaN.
        """
        out = {"holdout_rows": float(len(self.target)), "holdout_positives": float(self.target.sum())}
        for result in self.results.values():
            out.update(result.metrics())
        return out


def evaluate(holdout: Dataset, *, probability: np.ndarray | None, rules: RulePack, policy: Policy,
             capacity_per_day: int, weights: BlendWeights | None = None) -> Evaluation:
    """Judge every holdout row as served at its creation and measure rules, model and blend.

    Args:
        holdout: the holdout part of a time split.
        probability: the model's P(fraud) per holdout row (frame order), or None for rules only.
        rules: the rule pack that serves.
        policy: the blend and decision policy that serves.
        capacity_per_day: orders reviewers can take per Beijing day.
        weights: the model's learned blend weights (None: rule points as written).
    """
    frame = holdout.frame
    n = len(frame)
    if probability is not None and len(probability) != n:
        raise InvalidInputError.must("probability", f"one value per holdout row ({n})", len(probability))
    if capacity_per_day < 1:
        raise InvalidInputError.must("capacity_per_day", ">= 1", capacity_per_day)
    keys = tuple(str(k) for k in frame["order_key"])
    target = frame["target"].to_numpy(dtype=np.int8)
    day = frame["day"].to_numpy()
    scores: dict[str, list[float]] = {RULES: [], BLEND: []}
    decisions: dict[str, list[Decision]] = {RULES: [], BLEND: []}
    if probability is not None:
        scores[MODEL], decisions[MODEL] = [], []
    fired: list[frozenset[str]] = []
    for i, (key, vector) in enumerate(zip(keys, holdout.vectors(), strict=True)):
        order = holdout.orders[key]
        at = order.details.created_at
        alone = judge(order, vector, rules=rules, policy=policy, at=at)
        fired.append(frozenset(h.code for h in alone.evaluation.hits))
        scores[RULES].append(alone.score)
        decisions[RULES].append(alone.decision)
        if probability is None:
            scores[BLEND].append(alone.score)
            decisions[BLEND].append(alone.decision)
            continue
        p = float(probability[i])
        both = judge(order, vector, rules=rules, policy=policy, at=at, probability=p, weights=weights)
        scores[BLEND].append(both.score)
        decisions[BLEND].append(both.decision)
        scores[MODEL].append(p)
        decisions[MODEL].append(decide(blend(0.0, p, policy=policy), bands=policy.bands_at(at)))
    order_of = [RULES, MODEL, BLEND]
    arrays = {name: np.asarray(scores[name], dtype=np.float64) for name in order_of if name in scores}
    results = {name: score_metrics(name, target, arrays[name], day, decisions[name],
                                   capacity_per_day=capacity_per_day) for name in arrays}
    verdict = tuple(v if v else MATURED for v in frame["verdict"])
    return Evaluation(results=results, order_keys=keys, target=target, day=day,
                      verdict=verdict, scores=arrays,
                      decisions={k: tuple(v) for k, v in decisions.items()},
                      capacity_per_day=capacity_per_day, rules=rule_rates(fired, target, weights))
