"""Fitting: repeatable with a seed, early-stopped on the newest rows, monotone where more is riskier."""

from __future__ import annotations

import math
from datetime import timedelta

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.shop import default_shop_features
from features.specs import FeatureSet
from orderguard.enrich import Gazetteer
from orderguard.errors import ConfigError, InvalidInputError
from orderguard.settings import TrainingSettings
from tests.factories import BASE_TIME
from tests.training.shop import build_shop
from training.dataset import Dataset, Split, TargetPolicy, build_dataset, time_split
from training.fit import FittedModel, fit, lgb_params, predict
from training.metrics import roc_auc

SETTINGS = TrainingSettings(maturity="1d", holdout_days=2, gap="12h", num_boost_round=120, early_stopping_rounds=20,
                            num_leaves=15, min_data_in_leaf=10, learning_rate=0.1)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    # 300 orders a day puts about 50 frauds in the two-day holdout: with fewer, the holdout's AUC swings
    # by +-0.2 between simulator seeds, and the check below would measure the seed, not the model
    shop = build_shop(tmp_path_factory.mktemp("fit_shop"), days=8, orders_per_day=300, seed=5)
    dataset = build_dataset(shop.orders, shop.fraud_labels(), default_shop_features(), cutoff=shop.config.end_at,
                            gazetteer=Gazetteer.build(), settings=SETTINGS)
    return time_split(dataset, holdout_days=SETTINGS.holdout_days, gap=timedelta(hours=12))


@pytest.fixture(scope="module")
def fitted(split: Split) -> FittedModel:
    return fit(split.train, settings=SETTINGS, feature_names=split.train.feature_names,
               monotone=default_shop_features().monotone)


def test_same_data_and_seed_give_the_same_model(split: Split, fitted: FittedModel) -> None:
    again = fit(split.train, settings=SETTINGS, feature_names=split.train.feature_names,
                monotone=default_shop_features().monotone)
    assert again.best_iteration == fitted.best_iteration
    assert again.booster.model_to_string() == fitted.booster.model_to_string()
    np.testing.assert_array_equal(again.predict(split.holdout.frame), fitted.predict(split.holdout.frame))


def test_the_booster_keeps_the_best_iteration_and_predicts_by_name(split: Split, fitted: FittedModel) -> None:
    assert 1 <= fitted.best_iteration < SETTINGS.num_boost_round
    assert fitted.booster.num_trees() == fitted.best_iteration
    frame = split.holdout.frame
    shuffled_columns = frame[list(reversed(frame.columns))]
    np.testing.assert_array_equal(predict(fitted.booster, shuffled_columns), fitted.predict(frame))
    p = fitted.predict(frame)
    assert p.shape == (len(frame),) and ((p > 0) & (p < 1)).all()
    assert fitted.params["seed"] == SETTINGS.seed and fitted.params["deterministic"] is True


def test_validation_is_the_newest_share_of_training(split: Split, fitted: FittedModel) -> None:
    rows = len(split.train.frame)
    assert fitted.validation["valid_rows"] == math.ceil(rows * SETTINGS.validation_fraction)
    assert fitted.validation["fit_rows"] + fitted.validation["valid_rows"] == rows
    metrics = fitted.metrics()
    assert {"valid_pr_auc", "valid_roc_auc", "valid_logloss", "best_iteration"} <= set(metrics)


def test_the_model_ranks_holdout_frauds_above_honest_orders(split: Split, fitted: FittedModel) -> None:
    holdout = split.holdout
    assert holdout.positives >= 10
    assert roc_auc(holdout.target, fitted.predict(holdout.frame)) > 0.75


def test_more_same_device_orders_never_lower_the_probability(split: Split, fitted: FittedModel) -> None:
    """Directional: for every holdout order, raising a velocity / ring count never lowers P(fraud)."""
    assert "count_orders_by_device_5m" in fitted.monotone
    base = split.holdout.frame
    for feature in fitted.monotone:
        previous = None
        for value in range(0, 13):
            varied = base.copy()
            varied[feature] = float(value)
            p = fitted.predict(varied)
            if previous is not None:
                assert (p >= previous - 1e-12).all(), f"{feature} = {value} lowered a probability"
            previous = p


def _synthetic(rows: int, *, seed: int) -> Dataset:
    """A training set where frauds have 3-4 same-device orders in 5 min but 8+ is (falsely) always honest."""
    rng = np.random.default_rng(seed)
    burst = rng.integers(0, 12, rows).astype(float)
    noise = rng.normal(size=rows)
    target = ((burst >= 3) & (burst <= 7) & (rng.random(rows) < 0.8)).astype("int8")
    times = pd.Series(pd.date_range(BASE_TIME, periods=rows, freq="min", tz="UTC"))
    frame = pd.DataFrame({"order_key": [f"site:{i}" for i in range(rows)], "event_time": times,
                          "target": target, "count_orders_by_device_5m": burst, "noise": noise})
    return Dataset(frame=frame, feature_names=("count_orders_by_device_5m", "noise"), cutoff=BASE_TIME,
                   policy=TargetPolicy(timedelta(days=1)), orders={}, labels=(), candidates=frame)


def test_the_constraint_holds_even_against_the_data() -> None:
    train = _synthetic(3000, seed=2)
    names = list(train.feature_names)
    grid = pd.DataFrame({"count_orders_by_device_5m": np.arange(12, dtype=float), "noise": np.zeros(12)})
    constrained = fit(train, settings=SETTINGS, feature_names=names, monotone=["count_orders_by_device_5m"])
    assert np.all(np.diff(constrained.predict(grid)) >= -1e-12)
    # the same data without the constraint does learn "more orders, less risk" past 7
    params = lgb_params(SETTINGS, names)  # nothing declared monotone
    x = train.frame[names].to_numpy(dtype=float)
    free = lgb.train(params, lgb.Dataset(x, label=train.frame["target"].to_numpy(), feature_name=names),
                     num_boost_round=50)
    assert np.any(np.diff(free.predict(grid.to_numpy())) < -0.05)


def test_the_shop_set_declares_velocity_ring_and_fraud_features_monotone() -> None:
    shop = default_shop_features()
    monotone = set(shop.monotone)
    assert monotone <= set(shop.names)
    assert {"count_orders_by_device_5m", "count_orders_by_device_10m", "count_orders_by_ip_5m",
            "distinct_users_by_device_48h", "distinct_users_by_wifi_48h", "distinct_users_by_address_48h"} <= monotone
    assert "distinct_users_by_ip_48h" not in monotone  # offices and carrier NAT share IPs
    expected = [1 if name in monotone else 0 for name in shop.names]
    assert lgb_params(SETTINGS, shop.names, shop.monotone)["monotone_constraints"] == expected


def test_a_monotone_name_outside_the_set_is_refused_when_it_loads() -> None:
    with pytest.raises(ConfigError) as caught:
        FeatureSet.from_data({"features": [{"entity": "device", "field": "orders", "agg": "count", "window": "5m"}],
                              "monotone": ["count_orders_by_device_5m", "count_orders_by_device_6m"]})
    assert caught.value.field == "monotone[1]"


def test_a_training_set_without_frauds_is_refused() -> None:
    train = _synthetic(200, seed=3)
    honest = train.with_frame(train.frame.assign(target=np.int8(0)))
    with pytest.raises(InvalidInputError, match="frauds"):
        fit(honest, settings=SETTINGS, feature_names=list(train.feature_names))
