"""Holdout evaluation through the served decision step, checked against an independent computation."""

from __future__ import annotations

import io
import math
from datetime import date, datetime, timedelta

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from features.shop import default_shop_features
from orderguard.clock import SHOP_TZ
from orderguard.enrich import Gazetteer
from orderguard.errors import InvalidInputError
from orderguard.ingest.state import derive_order
from orderguard.schema import Address, ClientInfo, Label, Order, Party, Verdict
from orderguard.settings import TrainingSettings
from scoring.policy import Bands, Campaign, Decision, Policy
from scoring.rules import RulePack, default_rules_path, load_rules, load_rules_file
from tests.factories import BASE_TIME, make_event
from training.dataset import Dataset, TargetPolicy, build_dataset
from training.evaluate import Evaluation, evaluate
from training.plots import feature_importance_figure, pr_curve_figure, score_distribution_figure

RULES = load_rules({"rules": [
    {"code": "BURST", "points": 50, "when": {"feature": "burst", "op": "ge", "value": 5},
     "reason": {"zh": "连续下单", "en": "burst"}},
    {"code": "NEW", "points": 20, "when": {"feature": "age", "op": "le", "value": 1},
     "reason": {"zh": "新账号", "en": "new account"}},
]})
POINTS = {"BURST": 50.0, "NEW": 20.0}
DAY1, DAY2 = BASE_TIME, BASE_TIME + timedelta(days=1)  # 10:00 Beijing on 11.11 and 11.12

#: (created, burst, age, target, model probability): two Beijing days, frauds and honest orders.
ROWS: list[tuple[datetime, float, float, int, float]] = [
    (DAY1, 6, 0, 1, 0.70),
    (DAY1 + timedelta(minutes=1), 0, 0, 1, 0.55),
    (DAY1 + timedelta(minutes=2), 0, 5, 0, 0.30),
    (DAY1 + timedelta(minutes=3), 7, 9, 0, 0.05),
    (DAY1 + timedelta(minutes=4), 0, 30, 0, 0.02),
    (DAY1 + timedelta(minutes=5), 0, 1, 0, 0.10),
    (DAY2, 0, 40, 1, 0.90),
    (DAY2 + timedelta(minutes=1), 5, 1, 1, 0.04),
    (DAY2 + timedelta(minutes=2), 0, 0, 0, 0.45),
    (DAY2 + timedelta(minutes=3), 0, 12, 0, 0.01),
]
CAPACITY = 2


def _order(i: int, created: datetime) -> Order:
    built = derive_order([make_event(order_id=f"E{i}", event_time=created, buyer=Party(account_id=f"a{i}"))])
    assert built is not None
    return built


def hand_made() -> Dataset:
    orders = [_order(i, row[0]) for i, row in enumerate(ROWS)]
    times = pd.Series(pd.to_datetime([row[0] for row in ROWS], utc=True))
    frame = pd.DataFrame({
        "order_key": [str(o.key) for o in orders], "event_time": times,
        "day": [row[0].astimezone(SHOP_TZ).date() for row in ROWS],
        "target": np.array([row[3] for row in ROWS], dtype="int8"), "target_source": "label",
        "verdict": ["confirmed_fraud" if row[3] else "false_positive" for row in ROWS],
        "label_time": times, "burst": [row[1] for row in ROWS], "age": [row[2] for row in ROWS]})
    return Dataset(frame=frame, feature_names=("burst", "age"), cutoff=DAY2 + timedelta(days=1),
                   policy=TargetPolicy(timedelta(days=14)), orders={str(o.key): o for o in orders}, labels=(),
                   candidates=frame)


def expected_scores(policy: Policy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rules, model and blend scores written out from the documented noisy-OR formula."""
    rules, blend = [], []
    for _, burst, age, _, p in ROWS:
        points = (POINTS["BURST"] if burst >= 5 else 0.0) + (POINTS["NEW"] if age <= 1 else 0.0)
        r = 1 - math.exp(-points / policy.points_scale)
        rules.append(100 * r)
        blend.append(100 * (1 - (1 - r) * (1 - policy.model_weight * p)))
    return np.array(rules), np.array([row[4] for row in ROWS]), np.array(blend)


def top_per_day(score: np.ndarray, k: int) -> list[int]:
    chosen: list[int] = []
    for day in (date(2024, 11, 11), date(2024, 11, 12)):
        rows = [i for i, row in enumerate(ROWS) if row[0].astimezone(SHOP_TZ).date() == day]
        chosen += sorted(rows, key=lambda i: -score[i])[:k]
    return chosen


def band_of(score: float, bands: Bands) -> int:
    return sum(score >= edge for edge in (bands.verify, bands.review, bands.hold))


def test_metrics_match_an_independent_computation() -> None:
    policy = Policy()
    probability = np.array([row[4] for row in ROWS])
    result = evaluate(hand_made(), probability=probability, rules=RULES, policy=policy, capacity_per_day=CAPACITY)
    metrics = result.metrics()
    y = np.array([row[3] for row in ROWS])
    for name, score in zip(("rules", "model", "blend"), expected_scores(policy), strict=True):
        np.testing.assert_allclose(result.scores[name], score)
        assert metrics[f"{name}_roc_auc"] == pytest.approx(roc_auc_score(y, score))
        assert metrics[f"{name}_pr_auc"] == pytest.approx(average_precision_score(y, score))
        top = top_per_day(score, CAPACITY)
        hits = sum(y[i] for i in top)
        assert metrics[f"{name}_precision_at_capacity"] == pytest.approx(hits / len(top))
        assert metrics[f"{name}_recall_at_capacity"] == pytest.approx(hits / y.sum())
        # the model alone is banded as a blend with no rule points: 100 * p
        banded = score * 100 if name == "model" else score
        for rank, band in enumerate(("verify", "review", "hold"), start=1):
            flagged = np.array([band_of(s, policy.bands) >= rank for s in banded])
            assert metrics[f"{name}_fpr_{band}"] == pytest.approx(flagged[y == 0].mean())
            assert metrics[f"{name}_recall_{band}"] == pytest.approx(flagged[y == 1].mean())
    assert metrics["holdout_rows"] == len(ROWS) and metrics["holdout_positives"] == y.sum()


def test_metric_names_for_the_gate() -> None:
    result = evaluate(hand_made(), probability=np.full(len(ROWS), 0.5), rules=RULES, policy=Policy(),
                      capacity_per_day=CAPACITY)
    names = set(result.metrics())
    for scorer in ("rules", "model", "blend"):
        assert {f"{scorer}_pr_auc", f"{scorer}_roc_auc", f"{scorer}_recall_at_capacity",
                f"{scorer}_precision_at_capacity", f"{scorer}_fpr_review", f"{scorer}_recall_hold"} <= names


def test_without_a_model_the_blend_is_the_rules() -> None:
    result = evaluate(hand_made(), probability=None, rules=RULES, policy=Policy(), capacity_per_day=CAPACITY)
    assert set(result.results) == {"rules", "blend"}
    np.testing.assert_array_equal(result.scores["blend"], result.scores["rules"])
    assert not any(name.startswith("model_") for name in result.metrics())


def test_bands_are_those_in_force_at_the_order_creation() -> None:
    """A campaign on 11.11 raises that day's bands only: the same score is decided differently on 11.12."""
    policy = Policy(campaigns=(Campaign("double-11", date(2024, 11, 11), date(2024, 11, 11), 30.0),))
    probability = np.array([row[4] for row in ROWS])
    plain = evaluate(hand_made(), probability=probability, rules=RULES, policy=Policy(), capacity_per_day=CAPACITY)
    shifted = evaluate(hand_made(), probability=probability, rules=RULES, policy=policy, capacity_per_day=CAPACITY)
    _, _, blend = expected_scores(policy)
    campaign_bands = Policy().bands.shifted(30.0)
    for i, row in enumerate(ROWS):
        bands = campaign_bands if row[0] < DAY2 else Policy().bands
        assert [Decision.APPROVE, Decision.VERIFY, Decision.REVIEW, Decision.HOLD][
            band_of(blend[i], bands)] is shifted.decisions["blend"][i]
    assert shifted.decisions["blend"][6:] == plain.decisions["blend"][6:]
    assert shifted.decisions["blend"][:6] != plain.decisions["blend"][:6]


def test_a_probability_per_row_is_required() -> None:
    with pytest.raises(InvalidInputError, match="probability"):
        evaluate(hand_made(), probability=np.zeros(3), rules=RULES, policy=Policy(), capacity_per_day=CAPACITY)


def test_a_built_dataset_is_judged_with_the_shipped_rules() -> None:
    """End to end: a device burst, built point-in-time, trips the shipped DEVICE_BURST_5M rule at creation."""
    burst = [derive_order([make_event(order_id=f"B{i}", event_time=BASE_TIME + timedelta(minutes=i),
                                      buyer=Party(account_id=f"bot{i}"), client=ClientInfo(device_id="dev-bot"))])
             for i in range(5)]
    calm = [derive_order([make_event(order_id=f"C{i}", event_time=BASE_TIME + timedelta(hours=i),
                                     buyer=Party(account_id=f"calm{i}"), client=ClientInfo(device_id=f"dev{i}"),
                                     address=Address("浙江省", "杭州市", "西湖区", f"文三路{i + 1}号"))])
            for i in range(5)]
    orders = [o for o in burst + calm if o is not None]
    labels = [Label(o.key, Verdict.CONFIRMED_FRAUD, BASE_TIME + timedelta(days=1), "r") for o in orders[:5]]
    features = default_shop_features()
    dataset = build_dataset(orders, labels, features, cutoff=BASE_TIME + timedelta(days=30),
                            gazetteer=Gazetteer.build(), settings=TrainingSettings())
    rules: RulePack = load_rules_file(default_rules_path(), known_features=features.names)
    result = evaluate(dataset, probability=None, rules=rules, policy=Policy(), capacity_per_day=1)
    decisions = dict(zip(result.order_keys, result.decisions["rules"], strict=True))
    assert decisions["site:B4"] in (Decision.REVIEW, Decision.HOLD)
    assert all(decisions[f"site:C{i}"] is Decision.APPROVE for i in range(5))
    assert result.metrics()["rules_recall_at_capacity"] == pytest.approx(1 / 5)


def _png(figure: object) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")  # type: ignore[attr-defined]
    return buffer.getvalue()


def test_figures_render_without_pyplot() -> None:
    result: Evaluation = evaluate(hand_made(), probability=np.array([row[4] for row in ROWS]), rules=RULES,
                                  policy=Policy(), capacity_per_day=CAPACITY)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(x, label=(x[:, 0] > 0).astype(int), feature_name=["burst", "age"]),
                        num_boost_round=5)
    curves = pr_curve_figure(result)
    legend = curves.axes[0].get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert any(label.startswith("blend") for label in labels) and any(label.startswith("rules") for label in labels)
    importance = feature_importance_figure(booster)
    assert [t.get_text() for t in importance.axes[0].get_yticklabels()][-1] == "burst"
    for figure in (curves, score_distribution_figure(result), importance):
        assert type(figure.canvas).__name__ == "FigureCanvasAgg"
        assert _png(figure).startswith(b"\x89PNG")
