"""The champion gate: a candidate model goes live only when it beats the champion (pure).

Candidate and champion are scored on the *same* time-split holdout by the *same*
served decision step (``scoring.judge``), so the comparison is of what would serve.
The gate is data (``settings.training.gate.metrics``, as MLflow's ``MetricThreshold``):
one check per entry, comparing one metric of the served blend with its threshold::

    candidate - champion >  min_gain        (the primary metric: a real gain; a tie is no reason to switch)
    candidate - champion >= min_gain        (the others; min_gain may be negative: a tolerated loss)
    candidate >= min_value                  (if set)

(for a lower-is-better metric the gain is ``champion - candidate``). By default PR AUC is
primary (fraud is rare; ROC AUC hides poor precision); ROC AUC and recall at the review
team's daily capacity guard against a model that wins on one number by losing what
reviewers see. Before the first champion only the primary metric is checked, against
the rules-only scorer on the same holdout, so a first model is promoted only if it adds
something to the rules. A holdout with too few confirmed frauds gives
no verdict at all: the gate refuses rather than promote on noise.

One more check holds in both cases: the candidate's served blend against **its own model
alone** on the primary metric (``blend_vs_model_min_gain``, a small tolerated loss by
default). Rules written for another shop can fire on most of this shop's honest orders;
a blend that is worse than its own model would serve that damage, and comparing only
with rules-only or with a champion that carries the same rules would never see it.

Every check, with both values and the margin, becomes a readable reason; training
stores them with the run and ``orderguard promote`` prints them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from orderguard.settings import GateSettings, MetricThreshold


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One metric compared: ``gain > margin`` (``strict``, the primary metric) or ``gain >= margin``, and, if
    set, ``candidate >= floor``."""

    metric: str
    candidate: float
    baseline: float
    margin: float
    greater_is_better: bool = True
    floor: float | None = None
    strict: bool = False

    @property
    def gain(self) -> float:
        """The candidate's improvement over the baseline (positive is better either way)."""
        diff = self.candidate - self.baseline
        return diff if self.greater_is_better else -diff

    @property
    def passed(self) -> bool:
        if math.isnan(self.candidate) or math.isnan(self.baseline):
            return False
        above_floor = self.floor is None or self.candidate >= self.floor - 1e-12
        if self.strict:  # 1e-9: a difference below any metric's resolution on a real holdout is a tie
            return above_floor and self.gain > self.margin + 1e-9
        return above_floor and self.gain >= self.margin - 1e-12

    def reason(self, baseline_name: str) -> str:
        """E.g. ``pass pr_auc: candidate 0.712 vs champion 0.688 (gain +0.024, needs > +0.000)``."""
        floor = "" if self.floor is None else f" and candidate >= {self.floor:.4f}"
        needs = ">" if self.strict else ">="
        return (f"{'pass' if self.passed else 'FAIL'} {self.metric}: candidate {self.candidate:.4f} vs "
                f"{baseline_name} {self.baseline:.4f} (gain {self.gain:+.4f}, needs {needs} {self.margin:+.4f}"
                f"{floor})")

    @classmethod
    def of(cls, metric: str, threshold: MetricThreshold, candidate: float, baseline: float,
           *, margin: float | None = None, strict: bool = False) -> GateCheck:
        """The check one gate entry asks for (``margin`` overrides the entry's ``min_gain``)."""
        return cls(metric, candidate, baseline, threshold.min_gain if margin is None else margin,
                   threshold.greater_is_better, threshold.min_value, strict)


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    """The gate's verdict and why."""

    passed: bool
    baseline: str  # "champion <version>" or "rules-only"
    checks: tuple[GateCheck, ...]
    reasons: tuple[str, ...]

    def metrics(self) -> dict[str, float]:
        """Flat view for the run's metrics: ``gate_passed`` and each check's gain."""
        out = {"gate_passed": float(self.passed)}
        out.update({f"gate_gain_{c.metric}": c.gain for c in self.checks})
        return out


@dataclass(frozen=True, slots=True)
class Gate:
    """The thresholds of ``settings.training.gate``."""

    settings: GateSettings

    def decide(self, candidate: Mapping[str, float], *, champion: Mapping[str, float] | None,
               champion_version: str | None = None, holdout_positives: int,
               holdout_negatives: int | None = None) -> PromotionDecision:
        """Compare a candidate's holdout metrics with the champion's (or, with no champion, with
        the rules-only scorer's on the same holdout).

        Args:
            candidate: the candidate's evaluation metrics (``training.evaluate``'s flat names:
                ``blend_pr_auc``, ``blend_roc_auc``, ``blend_recall_at_capacity``, ``rules_pr_auc`` ...).
            champion: the champion's metrics on the same holdout, or None if there is no champion.
            champion_version: for the reasons.
            holdout_positives: confirmed frauds in the holdout.
            holdout_negatives: honest orders in the holdout (None: not checked). A holdout of
                frauds only ranks every scorer perfectly and proves nothing.

        >>> gate = Gate(GateSettings().with_gains(pr_auc=0.01))
        >>> d = gate.decide({"blend_pr_auc": 0.70, "blend_roc_auc": 0.9, "blend_recall_at_capacity": 0.5},
        ...                 champion={"blend_pr_auc": 0.68, "blend_roc_auc": 0.9, "blend_recall_at_capacity": 0.5},
        ...                 champion_version="3", holdout_positives=40)
        >>> d.passed, d.reasons[0]
        (True, 'pass pr_auc: candidate 0.7000 vs champion 3 0.6800 (gain +0.0200, needs > +0.0100)')
        """
        margins = self.settings
        checks: tuple[GateCheck, ...]
        if champion is None:
            baseline = "rules-only"
            primary = margins.primary
            threshold = margins.metrics[primary]
            checks = (GateCheck.of(primary, threshold, _get(candidate, f"blend_{primary}"),
                                   _get(candidate, f"rules_{primary}"), margin=max(threshold.min_gain, 0.0),
                                   strict=True),)
        else:
            baseline = f"champion {champion_version}" if champion_version else "champion"
            checks = tuple(GateCheck.of(metric, threshold, _get(candidate, f"blend_{metric}"),
                                        _get(champion, f"blend_{metric}"), strict=metric == margins.primary)
                           for metric, threshold in margins.metrics.items())
        model_primary = _get(candidate, f"model_{margins.primary}")
        if not math.isnan(model_primary):
            own = GateCheck(f"blend_vs_model_{margins.primary}", _get(candidate, f"blend_{margins.primary}"),
                            model_primary, margins.blend_vs_model_min_gain,
                            margins.metrics[margins.primary].greater_is_better)
            reasons_own = [own.reason("its own model alone").replace(f"{own.metric}: candidate",
                                                                      f"{own.metric}: served blend")]
            checks = (*checks, own)
        else:
            reasons_own = []
        reasons = [c.reason(baseline) for c in checks[:len(checks) - len(reasons_own)]] + reasons_own
        enough = holdout_positives >= margins.min_holdout_positives
        if not enough:
            reasons.append(f"FAIL holdout: {holdout_positives} confirmed frauds, needs >= "
                           f"{margins.min_holdout_positives} for a verdict")
        if holdout_negatives is not None and holdout_negatives < margins.min_holdout_positives:
            enough = False
            reasons.append(f"FAIL holdout: {holdout_negatives} honest orders, needs >= "
                           f"{margins.min_holdout_positives} for a verdict")
        passed = enough and all(c.passed for c in checks)
        return PromotionDecision(passed=passed, baseline=baseline, checks=checks, reasons=tuple(reasons))


def _get(metrics: Mapping[str, float], name: str) -> float:
    return float(metrics.get(name, math.nan))
