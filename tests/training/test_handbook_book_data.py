"""The book's own figures on the book's own file: split sizes and published rows.

These are facts about the public data set (``transactions_raw.csv.gz`` and
``published_results/`` of the fraud-detection handbook), which is not part of the
repository. The folder is ``ORDERGUARD_TEST_HANDBOOK_DIR`` (default: ``../shared/data/handbook``
beside the repository); without it these tests are skipped, saying where to put it. Every
other test of the benchmark runs on generated data of the same format.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from training.benchmarks.handbook import Protocol, SplitPlan, book_split, read_published

HANDBOOK_DIR_ENV = "ORDERGUARD_TEST_HANDBOOK_DIR"
FOLDER = Path(os.environ.get(HANDBOOK_DIR_ENV, Path(__file__).parents[2].parent / "shared" / "data" / "handbook"))
DATA = FOLDER / "transactions_raw.csv.gz"
PUBLISHED = FOLDER / "published_results"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"the handbook's public data is not here: {path} (set {HANDBOOK_DIR_ENV} to its folder)")
    return path


def test_chapter3_split_has_the_books_sizes() -> None:
    data = str(_need(DATA)).replace("'", "''")
    with duckdb.connect() as con:
        df = con.execute("SELECT CAST(CAST(TX_DATETIME AS TIMESTAMP) AS DATE) AS day, CUSTOMER_ID AS customer, "
                         f"TX_FRAUD AS fraud FROM read_csv('{data}', header = true) ORDER BY TRANSACTION_ID").df()
    days = df["day"].to_numpy().astype("datetime64[D]")
    fraud = df["fraud"].to_numpy()
    train, test = book_split(days, df["customer"].to_numpy(), fraud, SplitPlan(date(2018, 7, 25)))
    assert (len(train), int(fraud[train].sum())) == (67_240, 598)
    assert (len(test), int(fraud[test].sum())) == (58_264, 385)


def test_published_rows_are_the_books() -> None:
    rows = {(r.protocol, r.model): r for r in read_published(_need(PUBLISHED))}
    # the figures the data set's README quotes
    ch3 = rows[(Protocol.CH3, "Logistic regression")].scores
    assert (ch3.auc, ch3.ap, ch3.cp100) == (0.871, 0.606, 0.291)
    xgb = rows[(Protocol.CH5, "XGBoost Random")].scores
    assert (round(xgb.auc, 3), round(xgb.ap, 3), round(xgb.cp100, 3)) == (0.872, 0.687, 0.303)
    forest = rows[(Protocol.CH5, "Random Forest")].scores
    assert (round(forest.auc, 3), round(forest.ap, 3), round(forest.cp100, 3)) == (0.870, 0.678, 0.299)
