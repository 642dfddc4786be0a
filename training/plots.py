"""Figures of a training run: PR curves, score distribution by verdict, feature importance.

Each function returns a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas:
no pyplot state, no global backend switch, safe in a server or a test process. The
registry (``scoring.registry``) saves them with the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import precision_recall_curve

from training.evaluate import BLEND, MODEL, RULES, Evaluation
from training.fit import gain_ranking

if TYPE_CHECKING:
    import lightgbm as lgb
    from matplotlib.figure import Figure

_COLORS = {RULES: "#8c8c8c", MODEL: "#1f77b4", BLEND: "#d62728"}
_LABELS = {RULES: "rules only", MODEL: "model only", BLEND: "blend (served)"}


def _figure(width: float = 6.4, height: float = 4.8) -> Figure:
    """A figure on a private Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def pr_curve_figure(evaluation: Evaluation) -> Figure:
    """Precision-recall curves of the scorers on the holdout, PR AUC in the legend."""
    figure = _figure()
    ax = figure.add_subplot()
    y = evaluation.target
    for name, score in evaluation.scores.items():
        if y.sum() == 0 or y.sum() == len(y):
            break
        precision, recall, _ = precision_recall_curve(y, score)
        result = evaluation.results[name]
        ax.step(recall, precision, where="post", color=_COLORS.get(name), label=f"{_LABELS.get(name, name)} "
                f"(PR AUC {result.pr_auc:.3f})")
    if len(y):
        ax.axhline(float(y.mean()), color="#cccccc", linestyle=":", label=f"base rate {float(y.mean()):.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Holdout precision-recall ({len(y)} orders, {int(y.sum())} frauds)")
    if len(y):
        ax.legend(loc="upper right", fontsize="small")
    return figure


def score_distribution_figure(evaluation: Evaluation, *, scorer: str = BLEND) -> Figure:
    """Histogram of one scorer's score for each verdict (confirmed fraud, false positive, matured ...)."""
    figure = _figure()
    ax = figure.add_subplot()
    score = evaluation.scores[scorer]
    top = 1.0 if scorer == MODEL else 100.0
    bins = [top * i / 40 for i in range(41)]
    verdicts = np.asarray(evaluation.verdict, dtype=object)
    for verdict in sorted(set(evaluation.verdict)):
        values = score[verdicts == verdict]
        ax.hist(values, bins=bins, histtype="step", density=True, linewidth=1.5, label=f"{verdict} ({len(values)})")
    ax.set_xlabel(f"{_LABELS.get(scorer, scorer)} score")
    ax.set_ylabel("density")
    ax.set_title("Score by verdict (holdout)")
    if evaluation.verdict:
        ax.legend(loc="upper center", fontsize="small")
    return figure


def feature_importance_figure(booster: lgb.Booster, *, top: int = 25) -> Figure:
    """The ``top`` features by total gain (how much each feature's splits reduced the loss)."""
    ranked = gain_ranking(booster, top=top)[::-1]  # largest at the top of the chart
    figure = _figure(7.5, max(3.0, 0.28 * len(ranked) + 1.2))
    ax = figure.add_subplot()
    ax.barh([name for name, _ in ranked], [gain for _, gain in ranked], color="#1f77b4")
    ax.set_xlabel("total gain")
    ax.set_title(f"Feature importance (top {len(ranked)} by gain)")
    ax.tick_params(axis="y", labelsize="small")
    return figure
