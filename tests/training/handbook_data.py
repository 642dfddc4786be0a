"""Handbook-format data for the benchmark's tests: generated, seeded, with the window edges planted.

The tests of the handbook benchmark compare its features, splits and metrics with
definitions computed independently in the tests; they need data of the book's shape, not
the book's own file (which is public but not part of the repository). ``simulate.handbook``
generates it; this module adds the boundary cases the window definitions must get right,
which a random draw almost never holds:

* two transactions of one customer in the same second;
* transactions of one customer exactly 1, 7 and 30 days apart (the open lower edges of
  the customer windows);
* transactions of one terminal exactly 7, 8, 14 and 37 days apart, the 7-day one from a
  fraud (the closed, delayed upper edge of the terminal windows and a label exactly at t).

The published-results folder is written in the book's CSV format with figures of the
tests' own, so a test can tell they were read from the file.

Tests of the book's real figures (split sizes, published rows) live in
``test_handbook_book_data.py`` and read the real file from ``ORDERGUARD_TEST_HANDBOOK_DIR``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simulate.handbook import HandbookShape, handbook_transactions, with_calendar

SHAPE = HandbookShape(seed=20180401)
CUSTOMER_LAGS = (1, 7, 30)
TERMINAL_LAGS = (7, 8, 14, 37)
_DAY = 86_400

#: The figures of :func:`write_published`: ``(model, auc, ap, cp100)`` of the chapter 3 test set.
CH3_ROWS = (("Logistic regression", 0.812, 0.534, 0.222), ("Random forest", 0.834, 0.571, 0.245),
            ("XGBoost", 0.829, 0.566, 0.240))
#: ``(model class, parameters, auc test, ap test, cp test, auc validation, ap validation, cp validation)``.
CH5_ROWS = (("XGBoost", "3/50", 0.851, 0.633, 0.281, 0.840, 0.620, 0.270),
            ("XGBoost", "6/100", 0.846, 0.641, 0.284, 0.845, 0.610, 0.275),
            ("Random Forest", "5/100", 0.839, 0.618, 0.276, 0.830, 0.600, 0.262))


def _copies(tx: pd.DataFrame, rows: np.ndarray, shift_days: int) -> pd.DataFrame:
    """Copies of ``rows`` moved ``shift_days`` later (same customer, terminal and second of the day), not fraud."""
    copy = tx.loc[rows].copy()
    copy["TX_TIME_SECONDS"] += shift_days * _DAY
    copy["TX_FRAUD"], copy["TX_FRAUD_SCENARIO"] = 0, 0
    return copy


def planted_transactions() -> pd.DataFrame:
    """The generated transactions plus the planted edge cases, renumbered in time order."""
    tx = handbook_transactions(SHAPE)
    rng = np.random.default_rng(SHAPE.seed)
    early = tx.index[tx["TX_TIME_DAYS"] < SHAPE.days - 60].to_numpy()
    extra = []
    twins = tx.loc[rng.choice(early, 3, replace=False)].copy()  # same customer, same second
    twins["TX_AMOUNT"] = np.round(twins["TX_AMOUNT"] * 1.5 + 1, 2)
    extra.append(twins)
    for lag in CUSTOMER_LAGS:
        extra.append(_copies(tx, rng.choice(early, 2, replace=False), lag))
    frauds = np.intersect1d(early, tx.index[tx["TX_FRAUD"] == 1].to_numpy())
    for lag in TERMINAL_LAGS:
        source = frauds if lag == 7 else early
        extra.append(_copies(tx, rng.choice(source, 2, replace=False), lag))
    return with_calendar(pd.concat([tx, *extra], ignore_index=True), SHAPE.start)


def write_transactions(out: Path, *, scenario: bool = True) -> Path:
    """:func:`planted_transactions` as the book's CSV, with or without ``TX_FRAUD_SCENARIO``."""
    tx = planted_transactions()
    if not scenario:
        tx = tx.drop(columns="TX_FRAUD_SCENARIO")
    tx.to_csv(out, index=False, date_format="%Y-%m-%d %H:%M:%S", float_format="%.2f")
    return out


def write_published(folder: Path) -> Path:
    """A ``published_results`` folder in the book's format holding :data:`CH3_ROWS` and :data:`CH5_ROWS`."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([("test", m, auc, ap, cp) for m, auc, ap, cp in CH3_ROWS]
                 + [("train", "Logistic regression", 0.9, 0.8, 0.7)],
                 columns=["set", "model", "AUC ROC", "Average precision", "Card Precision@100"],
                 ).to_csv(folder / "ch3_baseline_modeling.csv", index=False)
    rows = []
    for model, summary, auc, ap, cp, v_auc, v_ap, v_cp in CH5_ROWS:
        rows.append({"Model class": model, "Parameters summary": summary, "Parameters": "{}",
                     "AUC ROC Test": auc, "AUC ROC Test Std": 0.01, "Average precision Test": ap,
                     "Average precision Test Std": 0.02, "Card Precision@100 Test": cp,
                     "Card Precision@100 Test Std": 0.005, "AUC ROC Validation": v_auc,
                     "AUC ROC Validation Std": 0.01, "Average precision Validation": v_ap,
                     "Average precision Validation Std": 0.02, "Card Precision@100 Validation": v_cp,
                     "Card Precision@100 Validation Std": 0.005, "Execution time": 1.0})
    pd.DataFrame(rows).to_csv(folder / "ch5_model_selection_all_parameters.csv", index=False)
    return folder
