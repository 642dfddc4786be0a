"""The champion gate: margins, the first-model baseline, too few positives, readable reasons."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from orderguard.settings import GateSettings
from training.gate import Gate

CHAMP = {"blend_pr_auc": 0.60, "blend_roc_auc": 0.90, "blend_recall_at_capacity": 0.50}


def _candidate(pr: float, roc: float = 0.90, recall: float = 0.50, rules_pr: float = 0.40) -> dict[str, float]:
    return {"blend_pr_auc": pr, "blend_roc_auc": roc, "blend_recall_at_capacity": recall, "rules_pr_auc": rules_pr}


def test_better_candidate_passes_and_worse_is_refused_with_both_values() -> None:
    gate = Gate(GateSettings(min_pr_auc_gain=0.01))
    good = gate.decide(_candidate(0.65), champion=CHAMP, champion_version="2", holdout_positives=50)
    assert good.passed and good.baseline == "champion 2"
    bad = gate.decide(_candidate(0.605), champion=CHAMP, champion_version="2", holdout_positives=50)
    assert not bad.passed
    assert bad.reasons[0] == "FAIL pr_auc: candidate 0.6050 vs champion 2 0.6000 (gain +0.0050, needs >= +0.0100)"


def test_a_loss_on_a_secondary_metric_beyond_its_tolerance_refuses() -> None:
    gate = Gate(GateSettings(min_pr_auc_gain=0.0, min_recall_at_capacity_gain=-0.02))
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
    gate = Gate(GateSettings(min_pr_auc_gain=margin - 0.5))
    before = gate.decide(_candidate(pr), champion=CHAMP, holdout_positives=50)
    after = gate.decide(_candidate(min(pr + bump, 1.0)), champion=CHAMP, holdout_positives=50)
    assert after.passed or not before.passed


def test_a_holdout_without_honest_orders_gives_no_verdict() -> None:
    decision = Gate(GateSettings(min_holdout_positives=10)).decide(
        _candidate(1.0, rules_pr=1.0), champion=None, holdout_positives=98, holdout_negatives=0)
    assert not decision.passed
    assert decision.reasons[-1] == "FAIL holdout: 0 honest orders, needs >= 10 for a verdict"
