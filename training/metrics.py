"""Ranking metrics shared by training, the champion gate and the public benchmark (pure).

Fraud is rare, so the headline metric is the area under the precision-recall curve
(average precision); ROC AUC is kept for comparison with published results. Reviewers
can only look at so many orders a day, so precision and recall are also measured on
the top ``k`` orders of each day ("at capacity"). The handbook's card precision@k is in
``training.benchmarks.handbook_metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from orderguard.errors import InvalidInputError


def _arrays(y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int8)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape:
        raise InvalidInputError.must("score", f"one value per label ({y.shape[0]})", s.shape[0])
    return y, s


def roc_auc(y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = _arrays(y_true, score)
    if len(np.unique(y)) < 2:
        return math.nan
    return float(roc_auc_score(y, s))


def pr_auc(y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Average precision (area under the precision-recall curve); NaN with no positive.

    >>> round(pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    y, s = _arrays(y_true, score)
    if y.sum() == 0:
        return math.nan
    return float(average_precision_score(y, s))


def at_capacity(y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray,
                day: Sequence[object] | np.ndarray, *, per_day: int) -> tuple[float, float]:
    """Precision and recall when reviewers take the ``per_day`` highest-scored orders of each day.

    Ties at the cut are broken by position (stable sort), so the figure is repeatable.

    >>> at_capacity([1, 0, 0, 1, 0, 0], [0.9, 0.8, 0.1, 0.2, 0.7, 0.1], ["a", "a", "a", "b", "b", "b"], per_day=1)
    (0.5, 0.5)
    """
    y, s = _arrays(y_true, score)
    frame = pd.DataFrame({"y": y, "s": s, "day": np.asarray(day)})
    top = frame.sort_values("s", ascending=False, kind="stable").groupby("day", sort=False).head(per_day)
    hits = int(top["y"].sum())
    positives = int(frame["y"].sum())
    precision = hits / len(top) if len(top) else math.nan
    recall = hits / positives if positives else math.nan
    return precision, recall
