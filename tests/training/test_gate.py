"""The champion gate: margins, the first-model baseline, too few positives, readable reasons."""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from orderguard.settings import GateMetric, GateSettings, MetricThreshold
from scoring.policy import Decision
from training.evaluate import score_metrics
from training.gate import Gate

CHAMP = {"blend_pr_auc": 0.60, "blend_roc_auc": 0.90, "blend_recall_at_capacity": 0.50}


def _candidate(pr: float, roc: float = 0.90, recall: float = 0.50, rules_pr: float = 0.40) -> dict[str, float]:
    return {"blend_pr_auc": pr, "blend_roc_auc": roc, "blend_recall_at_capacity": recall, "rules_pr_auc": rules_pr}


def test_better_candidate_passes_and_worse_is_refused_with_both_values() -> None:
    gate = Gate(GateSettings().with_gains(pr_auc=0.01))
    good = gate.decide(_candidate(0.65), champion=CHAMP, champion_version="2", holdout_positives=50)
    assert good.passed and good.baseline == "champion 2"
    bad = gate.decide(_candidate(0.605), champion=CHAMP, champion_version="2", holdout_positives=50)
    assert not bad.passed
    assert bad.reasons[0] == "FAIL pr_auc: candidate 0.6050 vs champion 2 0.6000 (gain +0.0050, needs > +0.0100)"


def test_a_tie_on_the_primary_metric_is_refused_by_default() -> None:
    """An identical retrain must not become champion: the default needs a strictly positive gain."""
    tie = Gate(GateSettings()).decide(_candidate(CHAMP["blend_pr_auc"]), champion=CHAMP, champion_version="2",
                                      holdout_positives=50)
    assert not tie.passed
    assert tie.reasons[0] == "FAIL pr_auc: candidate 0.6000 vs champion 2 0.6000 (gain +0.0000, needs > +0.0000)"
    better = Gate(GateSettings()).decide(_candidate(0.6001), champion=CHAMP, holdout_positives=50)
    assert better.passed
    first = Gate(GateSettings()).decide(_candidate(0.40, rules_pr=0.40), champion=None, holdout_positives=50)
    assert not first.passed  # a first model that only matches the rules adds nothing


def test_a_loss_on_a_secondary_metric_beyond_its_tolerance_refuses() -> None:
    gate = Gate(GateSettings().with_gains(pr_auc=0.0, recall_at_capacity=-0.02))
    decision = gate.decide(_candidate(0.7, recall=0.45), champion=CHAMP, holdout_positives=50)
    assert not decision.passed
    assert [c.metric for c in decision.checks if not c.passed] == ["recall_at_capacity"]


def test_first_model_must_beat_rules_only() -> None:
    gate = Gate(GateSettings())
    assert gate.decide(_candidate(0.5, rules_pr=0.4), champion=None, holdout_positives=50).passed
    refused = gate.decide(_candidate(0.35, rules_pr=0.4), champion=None, holdout_positives=50)
    assert not refused.passed and refused.baseline == "rules-only"
    assert "vs rules-only 0.4000" in refused.reasons[0]


def test_too_few_positives_gives_no_verdict() -> None:
    gate = Gate(GateSettings(min_holdout_positives=30))
    decision = gate.decide(_candidate(0.9), champion=CHAMP, holdout_positives=29)
    assert not decision.passed
    assert decision.reasons[-1].startswith("FAIL holdout: 29 confirmed frauds")


def test_missing_metric_fails_rather_than_passes() -> None:
    decision = Gate(GateSettings()).decide({"blend_pr_auc": 0.9}, champion=CHAMP, holdout_positives=50)
    assert not decision.passed
    assert math.isnan(decision.checks[1].candidate)


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_raising_the_candidate_never_turns_a_pass_into_a_refusal(pr: float, bump: float, margin: float) -> None:
    gate = Gate(GateSettings().with_gains(pr_auc=margin - 0.5))
    before = gate.decide(_candidate(pr), champion=CHAMP, holdout_positives=50)
    after = gate.decide(_candidate(min(pr + bump, 1.0)), champion=CHAMP, holdout_positives=50)
    assert after.passed or not before.passed


def test_a_holdout_without_honest_orders_gives_no_verdict() -> None:
    decision = Gate(GateSettings(min_holdout_positives=10)).decide(
        _candidate(1.0, rules_pr=1.0), champion=None, holdout_positives=98, holdout_negatives=0)
    assert not decision.passed
    assert decision.reasons[-1] == "FAIL holdout: 0 honest orders, needs >= 10 for a verdict"


def test_one_check_and_one_reason_per_configured_metric_in_order() -> None:
    settings = GateSettings(metrics={"roc_auc": MetricThreshold(min_gain=0.0),
                                     "fpr_review": MetricThreshold(min_gain=0.0, greater_is_better=False),
                                     "pr_auc": MetricThreshold(min_gain=-1.0, min_value=0.65)},
                            primary="roc_auc")
    candidate = {"blend_roc_auc": 0.91, "blend_fpr_review": 0.03, "blend_pr_auc": 0.62}
    champion = {"blend_roc_auc": 0.90, "blend_fpr_review": 0.05, "blend_pr_auc": 0.60}
    decision = Gate(settings).decide(candidate, champion=champion, champion_version="4", holdout_positives=50)
    assert [c.metric for c in decision.checks] == ["roc_auc", "fpr_review", "pr_auc"]
    assert len(decision.reasons) == 3
    # a lower false-positive rate is a gain
    assert decision.reasons[1] == ("pass fpr_review: candidate 0.0300 vs champion 4 0.0500 "
                                   "(gain +0.0200, needs >= +0.0000)")
    # the absolute floor refuses a candidate that beats the champion but stays below it
    assert decision.reasons[2].startswith("FAIL pr_auc") and decision.reasons[2].endswith("and candidate >= 0.6500)")
    assert not decision.passed


def test_the_first_model_is_checked_on_the_primary_metric_only() -> None:
    settings = GateSettings(primary="roc_auc")
    decision = Gate(settings).decide({"blend_roc_auc": 0.8, "rules_roc_auc": 0.7, "blend_pr_auc": 0.0},
                                     champion=None, holdout_positives=50)
    assert decision.passed and [c.metric for c in decision.checks] == ["roc_auc"]


def test_gate_settings_refuse_an_unknown_metric_or_an_unchecked_primary() -> None:
    with pytest.raises(ValidationError, match=r"metrics\.auc"):
        GateSettings.model_validate({"metrics": {"auc": {"min_gain": 0.0}}})
    with pytest.raises(ValidationError, match="primary metric 'fpr_hold'"):
        GateSettings(primary="fpr_hold")


def test_every_gate_metric_is_one_the_evaluation_reports() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, 40)
    result = score_metrics("blend", target, rng.random(40), np.zeros(40, dtype="datetime64[D]"),
                           [Decision.APPROVE] * 40, capacity_per_day=5)
    reported = {name.removeprefix("blend_") for name in result.metrics()}
    assert set(get_args(GateMetric)) <= reported
