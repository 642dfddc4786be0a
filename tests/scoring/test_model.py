"""The served LightGBM model: its probability is the booster's, its reasons are readable and weighted in points."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pytest

from features.describe import FeatureDescriber
from features.online import FeatureVector
from features.shop import default_shop_features
from orderguard.errors import IncompatibleModelError
from scoring.model import Attribution, LightGBMModel, model_factory, model_points
from scoring.policy import Policy, blend

SHOP = default_shop_features()
DEVICE_BURST = "count_orders_by_device_5m"
FEATURES = (DEVICE_BURST, "distinct_users_by_address_30d", "order_virtual_phone", "time_since_orders_by_user_30d",
            "order_paid_fen", "count_orders_by_ip_5m")


def synthetic(n: int, *, seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Orders whose fraud odds grow with device bursts, shared addresses and virtual phones; with gaps (NaN)."""
    rng = np.random.default_rng(seed)
    device = rng.poisson(0.6, n) + rng.binomial(1, 0.08, n) * rng.integers(3, 9, n)
    shared = 1 + rng.poisson(0.3, n) + rng.binomial(1, 0.05, n) * rng.integers(2, 6, n)
    virtual = rng.binomial(1, 0.06, n).astype(float)
    virtual[rng.random(n) < 0.1] = np.nan
    since = rng.exponential(86_400, n)
    since[rng.random(n) < 0.4] = np.nan
    paid = rng.lognormal(9, 1, n).round()
    ip = device + rng.poisson(0.3, n)
    logit = -4.0 + 0.9 * device + 0.8 * (shared - 1) + 2.5 * np.nan_to_num(virtual) + rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return np.column_stack([device, shared, virtual, since, paid, ip]).astype(np.float64), y


def train(*, rounds: int = 60, monotone: bool = False, objective: str = "binary", seed: int = 3) -> lgb.Booster:
    x, y = synthetic(3000, seed=seed)
    params: dict[str, object] = {"objective": objective, "num_leaves": 15, "learning_rate": 0.1, "verbose": -1,
                                 "seed": seed, "num_threads": 1, "deterministic": True, "min_data_in_leaf": 10}
    if monotone:
        params["monotone_constraints"] = [1 if name == DEVICE_BURST else 0 for name in FEATURES]
        params["monotone_constraints_method"] = "advanced"
    return lgb.train(params, lgb.Dataset(x, y, feature_name=list(FEATURES)), num_boost_round=rounds)


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    return train()


@pytest.fixture(scope="module")
def describer() -> FeatureDescriber:
    return FeatureDescriber(SHOP)


@pytest.fixture(scope="module", params=["native", "python"])
def model(request: pytest.FixtureRequest, booster: lgb.Booster, describer: FeatureDescriber) -> LightGBMModel:
    return LightGBMModel(booster, version="test/1", describer=describer, native=request.param == "native")


def rows(n: int = 200, *, seed: int = 11) -> npt.NDArray[np.float64]:
    return synthetic(n, seed=seed)[0]


def vector(row: npt.NDArray[np.float64]) -> dict[str, float]:
    return dict(zip(FEATURES, row.tolist(), strict=True))


def risky_vectors(model: LightGBMModel, *, least: float = 0.5) -> Iterator[tuple[dict[str, float], float]]:
    for row in rows(600):
        v = vector(row)
        p = model.predict(v).probability
        if p >= least:
            yield v, p


def test_the_probability_is_the_boosters(model: LightGBMModel, booster: lgb.Booster) -> None:
    x = rows()
    expected = np.asarray(booster.predict(x))
    got = [model.predict(vector(r)).probability for r in x]
    assert got == pytest.approx(expected.tolist(), rel=1e-9, abs=1e-12)
    assert model.version == "test/1" and model.feature_names == FEATURES


def test_contributions_and_bias_sum_to_the_raw_score(model: LightGBMModel, booster: lgb.Booster) -> None:
    x = rows(50)
    raw = np.asarray(booster.predict(x, raw_score=True))
    for r, expected in zip(x, raw.tolist(), strict=True):
        explained = model.explain(vector(r))
        assert explained.raw == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert explained.bias + math.fsum(explained.contributions.values()) == pytest.approx(expected, abs=1e-9)
        assert explained.probability == pytest.approx(1 / (1 + math.exp(-expected)), rel=1e-9)


def test_exact_shap_matches_lightgbm_pred_contrib(booster: lgb.Booster, describer: FeatureDescriber) -> None:
    model = LightGBMModel(booster, version="t", describer=describer, attribution=Attribution.SHAP)
    x = rows(30)
    expected = booster.predict(x, pred_contrib=True)
    for r, contrib in zip(x, expected, strict=True):
        explained = model.explain(vector(r))
        assert list(explained.contributions.values()) == pytest.approx(contrib[:-1].tolist(), abs=1e-9)
        assert explained.bias == pytest.approx(float(contrib[-1]), abs=1e-9)
        assert model.predict(vector(r)).probability == pytest.approx(booster.predict(r.reshape(1, -1))[0],
                                                                     rel=1e-9)


def test_path_attribution_credits_only_features_on_the_orders_path(booster: lgb.Booster,
                                                                   describer: FeatureDescriber) -> None:
    model = LightGBMModel(booster, version="t", describer=describer)
    leaves = booster.predict(rows(20), pred_leaf=True)
    dump = booster.dump_model()["tree_info"]
    for r, leaf_of_tree in zip(rows(20), leaves, strict=True):
        on_path: set[str] = set()
        for tree, leaf in zip(dump, leaf_of_tree.tolist(), strict=True):
            on_path |= _path_features(tree["tree_structure"], int(leaf))
        contributions = model.explain(vector(r)).contributions
        assert {f for f, c in contributions.items() if c != 0.0} <= on_path


def _path_features(node: Mapping[str, object], leaf: int) -> set[str]:
    """Names of the split features on the way to ``leaf`` (depth-first search)."""
    if "leaf_value" in node:
        return set() if node.get("leaf_index", 0) == leaf else {"<miss>"}
    for side in ("left_child", "right_child"):
        below = _path_features(node[side], leaf)  # type: ignore[arg-type]
        if "<miss>" not in below:
            return {FEATURES[int(node["split_feature"])]} | below  # type: ignore[call-overload]
    return {"<miss>"}


def test_path_attribution_is_the_sum_of_the_value_moves_on_each_trees_path(booster: lgb.Booster,
                                                                          describer: FeatureDescriber) -> None:
    """Each feature is credited, tree by tree, with how much each split on it moved the node value on the way
    to the order's leaf: the definition, walked here on the dump node by node."""
    model = LightGBMModel(booster, version="t", describer=describer)
    dump = booster.dump_model()["tree_info"]
    x = rows(40, seed=5)
    for r, leaf_of_tree in zip(x, booster.predict(x, pred_leaf=True), strict=True):
        expected = dict.fromkeys(FEATURES, 0.0)
        for tree, leaf in zip(dump, leaf_of_tree.tolist(), strict=True):
            for feature, move in _path_moves(tree["tree_structure"], int(leaf)) or []:
                expected[FEATURES[feature]] += move
        got = model.explain(vector(r)).contributions
        assert got == pytest.approx(expected, abs=1e-12)
        assert any(v != 0.0 for v in got.values())


def _value(node: Mapping[str, object]) -> float:
    return float(node["leaf_value"] if "leaf_value" in node else node["internal_value"])  # type: ignore[arg-type]


def _path_moves(node: Mapping[str, object], leaf: int) -> list[tuple[int, float]] | None:
    """(split feature, child value - node value) of each split on the way to ``leaf``; None when not below."""
    if "leaf_value" in node:
        return [] if node.get("leaf_index", 0) == leaf else None
    for side in ("left_child", "right_child"):
        child: Mapping[str, object] = node[side]  # type: ignore[assignment]
        below = _path_moves(child, leaf)
        if below is not None:
            return [(int(node["split_feature"]), _value(child) - _value(node)), *below]  # type: ignore[call-overload]
    return None


def test_reasons_are_the_strongest_pushes_in_words_and_ordered(model: LightGBMModel,
                                                                describer: FeatureDescriber) -> None:
    seen = 0
    for v, _ in risky_vectors(model):
        output = model.predict(v)
        explained = model.explain(v)
        positive = sorted((c, f) for f, c in explained.contributions.items() if c > 0)[::-1]
        assert output.reasons, v
        weights = [r.weight for r in output.reasons]
        assert weights == sorted(weights, reverse=True)
        assert [r.code for r in output.reasons] == [f"model:{f}" for _, f in positive[: len(output.reasons)]]
        for reason in output.reasons:
            name = reason.code.removeprefix("model:")
            phrase = describer.describe(name, v[name])
            assert (reason.text_zh, reason.text_en, reason.source) == (phrase.zh, phrase.en, "model")
        seen += 1
    assert seen >= 5


def test_reason_weights_share_the_models_points(booster: lgb.Booster, describer: FeatureDescriber) -> None:
    policy = Policy(points_scale=50.0, model_weight=0.8)
    model = LightGBMModel(booster, version="t", describer=describer, policy=policy, max_reasons=len(FEATURES),
                          min_weight=0.0)
    checked = 0
    for v, p in risky_vectors(model, least=0.2):
        reasons = model.predict(v).reasons
        total = sum(r.weight for r in reasons)
        assert total == pytest.approx(model_points(p, policy=policy), abs=0.01 * len(reasons))
        # the reasons' points added to a rule's give the blended score back
        assert blend(30.0 + total, None, policy=policy) == pytest.approx(blend(30.0, p, policy=policy), abs=0.05)
        checked += 1
    assert checked >= 5


def test_model_and_rule_reasons_compare_in_the_same_unit() -> None:
    policy = Policy()
    # a model as sure as a 50-point rule moves the score exactly as much as that rule
    p = 1 - math.exp(-50 / policy.points_scale)
    assert model_points(p, policy=policy) == pytest.approx(50.0)
    assert blend(0, p, policy=policy) == pytest.approx(blend(50, None, policy=policy))


def test_a_low_risk_order_gives_no_reasons(model: LightGBMModel) -> None:
    quiet = {name: 0.0 for name in FEATURES} | {"distinct_users_by_address_30d": 1.0, "order_paid_fen": 5990.0}
    output = model.predict(quiet)
    assert output.probability < 0.05
    assert all(r.weight >= 1.0 for r in output.reasons)
    assert model_points(output.probability, policy=Policy()) >= 1.0 or output.reasons == ()


def test_missing_features_are_nan_whatever_the_mapping(model: LightGBMModel, booster: lgb.Booster) -> None:
    row = rows(1)[0]
    partial = {k: val for k, val in vector(row).items() if k not in ("order_virtual_phone", DEVICE_BURST)}
    with_nan = row.copy()
    with_nan[[FEATURES.index("order_virtual_phone"), FEATURES.index(DEVICE_BURST)]] = np.nan
    expected = float(booster.predict(with_nan.reshape(1, -1))[0])
    assert model.predict(partial).probability == pytest.approx(expected, rel=1e-9)
    shuffled = dict(random.Random(1).sample(sorted(vector(row).items()), len(FEATURES)))
    as_served = FeatureVector(datetime(2024, 11, 11, tzinfo=UTC), shuffled | {"count_orders_by_user_5m": 9.0})
    assert model.predict(as_served).probability == pytest.approx(float(booster.predict(row.reshape(1, -1))[0]),
                                                                 rel=1e-9)


def test_a_missing_value_in_a_reason_reads_as_none_on_record(booster: lgb.Booster,
                                                             describer: FeatureDescriber) -> None:
    model = LightGBMModel(booster, version="t", describer=describer, max_reasons=len(FEATURES), min_weight=0.0)
    for v, _ in risky_vectors(model, least=0.3):
        gaps = {k: math.nan for k in ("time_since_orders_by_user_30d", "order_virtual_phone")}
        for reason in model.predict(v | gaps).reasons:
            name = reason.code.removeprefix("model:")
            if name in gaps:
                assert reason.text_zh.endswith("无记录") and reason.text_en.endswith("none on record")


def test_more_same_device_orders_never_lower_the_probability(describer: FeatureDescriber) -> None:
    model = LightGBMModel(train(monotone=True, seed=5), version="mono", describer=describer)
    for row in rows(60, seed=21):
        probabilities = [model.predict(vector(row) | {DEVICE_BURST: float(k)}).probability for k in range(12)]
        assert all(a <= b + 1e-12 for a, b in itertools.pairwise(probabilities)), probabilities
    assert probabilities[-1] > probabilities[0]


def test_a_burst_is_the_top_model_reason_and_shows_its_count(booster: lgb.Booster,
                                                             describer: FeatureDescriber) -> None:
    model = LightGBMModel(booster, version="t", describer=describer)
    calm = {DEVICE_BURST: 0.0, "distinct_users_by_address_30d": 1.0, "order_virtual_phone": 0.0,
            "time_since_orders_by_user_30d": 86_400.0 * 5, "order_paid_fen": 8000.0, "count_orders_by_ip_5m": 0.0}
    burst = calm | {DEVICE_BURST: 7.0, "count_orders_by_ip_5m": 7.0}
    output = model.predict(burst)
    assert output.probability > model.predict(calm).probability
    top = output.reasons[0]
    assert top.code in (f"model:{DEVICE_BURST}", "model:count_orders_by_ip_5m")
    assert "7" in top.text_zh and top.text_en.startswith("7 orders")


def test_a_model_that_is_not_a_binary_classifier_is_refused(describer: FeatureDescriber) -> None:
    with pytest.raises(IncompatibleModelError, match="binary"):
        LightGBMModel(train(objective="regression", rounds=5), version="reg/1", describer=describer)


def test_a_model_with_features_without_phrases_is_refused(booster: lgb.Booster) -> None:
    only_devices = FeatureDescriber(SHOP.windowed())
    with pytest.raises(IncompatibleModelError, match="order_virtual_phone"):
        LightGBMModel(booster, version="t", describer=only_devices)


def test_the_factory_builds_champions(booster: lgb.Booster) -> None:
    make = model_factory(SHOP, max_reasons=2)
    model = make(booster, "orderguard-risk/7")
    assert model.version == "orderguard-risk/7"
    for v, _ in risky_vectors(model):
        assert 1 <= len(model.predict(v).reasons) <= 2


def test_the_best_iteration_is_what_serves(describer: FeatureDescriber) -> None:
    booster = train(rounds=40)
    booster.best_iteration = 12
    model = LightGBMModel(booster, version="t", describer=describer)
    x = rows(20)
    expected = np.asarray(booster.predict(x))
    assert [model.predict(vector(r)).probability for r in x] == pytest.approx(expected.tolist(), rel=1e-9)
    assert not np.allclose(booster.predict(x), booster.predict(x, num_iteration=40))
