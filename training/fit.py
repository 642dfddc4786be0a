"""Fit the risk model: LightGBM, binary, early-stopped on the newest part of the training period.

Choices, and why:

* **Time-ordered validation.** The newest ``settings.validation_fraction`` of the training
  rows (by ``(event_time, order_key)``) choose the number of trees; a random split would
  let the model see the future of the rings and bursts it is validated on.
* **No class re-weighting.** Fraud is rare, but the served score blends the model's
  probability with the rule evidence (``scoring.policy.blend``, a noisy-OR): an
  up-weighted minority class would inflate every probability and drown the rules, and
  the decision bands would no longer mean what reviewers were told. The imbalance is
  handled where it matters: trees are chosen by the validation *average precision*
  (PR AUC, the gate's metric) rather than by accuracy, and ``min_data_in_leaf`` keeps a
  handful of frauds from carving leaves of their own.
* **Monotone constraints**, declared by the feature set (``monotone:`` in its YAML, checked
  when it loads): for velocity and ring features
  more is never less risky, whatever the training data happens to say; the constraint
  keeps a sparse corner of the data from teaching "six orders in five minutes is safer
  than five" and makes the model's behaviour explainable to reviewers.
* **Repeatable.** Fixed seed, ``deterministic=True``, row-wise histograms and a small
  fixed thread count: the same data and settings give the same trees.

The returned booster holds exactly the best iteration's trees, so every consumer
(evaluation, MLflow, serving) predicts with the same model without extra arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from orderguard.errors import InvalidInputError
from orderguard.settings import TrainingSettings
from training.dataset import Dataset, feature_matrix, time_ordered
from training.metrics import pr_auc, roc_auc

#: Threads LightGBM may use: the training host is shared with the service.
NUM_THREADS = 2


@dataclass(frozen=True, slots=True, eq=False)
class FittedModel:
    """A fitted model and how it was chosen.

    Attributes:
        booster: LightGBM booster with exactly ``best_iteration`` trees.
        best_iteration: trees kept (chosen on the validation part).
        feature_names: the model's input columns, in order.
        params: the LightGBM parameters used, plus ``num_boost_round`` and
            ``early_stopping_rounds``.
        validation: metrics of the kept model on the validation part (``valid_pr_auc``,
            ``valid_roc_auc``, ``valid_logloss``) and the sizes of both parts.
        monotone: the features constrained to be non-decreasing.
    """

    booster: lgb.Booster
    best_iteration: int
    feature_names: list[str]
    params: Mapping[str, Any]
    validation: Mapping[str, float] = field(default_factory=dict)
    monotone: tuple[str, ...] = ()

    def metrics(self) -> dict[str, float]:
        """Flat metrics for the run: the validation figures and ``best_iteration``."""
        return {**self.validation, "best_iteration": float(self.best_iteration)}

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """P(fraud) for each row of a dataset frame (columns taken by name)."""
        return _predict(self.booster, feature_matrix(frame, self.feature_names))


def predict(booster: lgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """P(fraud) of any booster (e.g. the champion loaded from the registry) on a frame,
    reading the columns the booster was trained on, by name."""
    return _predict(booster, feature_matrix(frame, list(booster.feature_name())))


def _predict(booster: lgb.Booster, matrix: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(matrix), dtype=np.float64)


def gain_ranking(booster: lgb.Booster, *, top: int | None = None) -> tuple[tuple[str, float], ...]:
    """Features by total split gain (how much their splits reduced the loss), largest first.

    Features the trees never split on are left out; ``top`` keeps only the first ones.
    The plot of a run and the model card both read this ranking.
    """
    names = booster.feature_name()
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    order = np.argsort(-gain, kind="stable")
    ranked = tuple((names[i], float(gain[i])) for i in order if gain[i] > 0)
    return ranked if top is None else ranked[:top]


def monotone_vector(feature_names: Sequence[str], increasing: Sequence[str]) -> list[int]:
    """LightGBM's ``monotone_constraints``: +1 for the constrained features, 0 elsewhere.

    >>> monotone_vector(["order_paid_fen", "count_orders_by_device_5m"], ["count_orders_by_device_5m"])
    [0, 1]
    """
    wanted = set(increasing)
    return [1 if name in wanted else 0 for name in feature_names]


def lgb_params(settings: TrainingSettings, feature_names: Sequence[str],
               monotone: Sequence[str] = ()) -> dict[str, Any]:
    """The LightGBM parameters for ``settings``, ``monotone`` features constrained; see the module docstring."""
    return {
        "objective": "binary",
        "metric": ["average_precision", "binary_logloss"],
        "first_metric_only": True,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_data_in_leaf": settings.min_data_in_leaf,
        "feature_fraction": 0.9,
        "lambda_l2": 1.0,
        "monotone_constraints": monotone_vector(feature_names, monotone),
        "monotone_constraints_method": "basic",
        "seed": settings.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": NUM_THREADS,
        "verbosity": -1,
    }


def validation_split(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The older ``1 - fraction`` of rows to fit on and the newest ``fraction`` to validate on.

    >>> f = pd.DataFrame({"event_time": pd.to_datetime([f"2024-11-{d:02d}T00:00Z" for d in (5, 1, 4, 2, 3)]),
    ...                   "order_key": list("abcde")})
    >>> [part["order_key"].tolist() for part in validation_split(f, 0.4)]
    [['b', 'd', 'e'], ['c', 'a']]
    """
    ordered = time_ordered(frame)
    n_valid = max(1, math.ceil(len(ordered) * fraction))
    return ordered.iloc[: len(ordered) - n_valid], ordered.iloc[len(ordered) - n_valid:]


def _check_classes(part: pd.DataFrame, name: str) -> None:
    positives = int(part["target"].sum())
    if positives == 0 or positives == len(part):
        raise InvalidInputError.must(f"train.{name}", "hold both frauds and honest orders",
                                     f"{positives} frauds in {len(part)} rows")


def fit(train: Dataset, *, settings: TrainingSettings, feature_names: Sequence[str],
        monotone: Sequence[str] = ()) -> FittedModel:
    """Fit LightGBM on ``train`` with early stopping on its newest rows.

    Args:
        train: the training part of a time split (targets as known at its end).
        settings: ``validation_fraction``, ``seed``, ``num_boost_round``,
            ``early_stopping_rounds``, ``learning_rate``, ``num_leaves``, ``min_data_in_leaf``.
        feature_names: the model's inputs, columns of ``train.frame``.
        monotone: inputs constrained to be non-decreasing (``FeatureSet.monotone``).

    Raises:
        InvalidInputError: a part (fit or validation) lacks frauds or honest orders.
    """
    names = list(feature_names)
    fit_part, valid_part = validation_split(train.frame, settings.validation_fraction)
    _check_classes(fit_part, "fit")
    _check_classes(valid_part, "validation")
    params = lgb_params(settings, names, monotone)
    x_fit, x_valid = feature_matrix(fit_part, names), feature_matrix(valid_part, names)
    y_fit = fit_part["target"].to_numpy(dtype=np.float64)
    y_valid = valid_part["target"].to_numpy(dtype=np.float64)
    d_fit = lgb.Dataset(x_fit, label=y_fit, feature_name=names, free_raw_data=True)
    d_valid = lgb.Dataset(x_valid, label=y_valid, reference=d_fit, free_raw_data=True)
    trained = lgb.train(params, d_fit, num_boost_round=settings.num_boost_round, valid_sets=[d_valid],
                        valid_names=["validation"],
                        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, first_metric_only=True,
                                                      verbose=False)])
    best = trained.best_iteration if trained.best_iteration > 0 else trained.current_iteration()
    booster = lgb.Booster(model_str=trained.model_to_string(num_iteration=best))
    p_valid = _predict(booster, x_valid)
    validation = {
        "valid_pr_auc": pr_auc(y_valid, p_valid),
        "valid_roc_auc": roc_auc(y_valid, p_valid),
        "valid_logloss": _logloss(y_valid, p_valid),
        "fit_rows": float(len(fit_part)),
        "fit_positives": float(y_fit.sum()),
        "valid_rows": float(len(valid_part)),
        "valid_positives": float(y_valid.sum()),
    }
    monotone = tuple(n for n, c in zip(names, params["monotone_constraints"], strict=True) if c)
    return FittedModel(booster=booster, best_iteration=best, feature_names=names,
                       params={**params, "num_boost_round": settings.num_boost_round,
                               "early_stopping_rounds": settings.early_stopping_rounds},
                       validation=validation, monotone=monotone)


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary log loss, probabilities clipped away from 0 and 1.

    >>> round(_logloss(np.array([1.0, 0.0]), np.array([0.9, 0.2])), 4)
    0.1643
    """
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
