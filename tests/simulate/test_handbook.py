"""The handbook-format generator: the book's columns and calendar, its three scenarios, a seed for everything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from orderguard.errors import InvalidInputError
from simulate.handbook import COLUMNS, HandbookShape, handbook_transactions

SMALL = HandbookShape(seed=3, customers=120, terminals=240, days=60, compromised_terminals_per_day=0.5,
                      leaked_cards_per_day=0.5)


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    return handbook_transactions(SMALL)


def test_same_shape_same_rows_and_the_seed_matters(tx: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(tx, handbook_transactions(SMALL))
    other = handbook_transactions(HandbookShape(seed=4, customers=120, terminals=240, days=60))
    assert not other["TX_AMOUNT"].head(100).equals(tx["TX_AMOUNT"].head(100))


def test_the_books_columns_and_calendar(tx: pd.DataFrame) -> None:
    assert tuple(tx.columns) == COLUMNS
    assert tx["TRANSACTION_ID"].tolist() == list(range(len(tx)))
    assert tx["TX_TIME_SECONDS"].is_monotonic_increasing
    start = pd.Timestamp("2018-04-01")
    assert ((tx["TX_DATETIME"] - start).dt.total_seconds() == tx["TX_TIME_SECONDS"]).all()
    assert (tx["TX_TIME_DAYS"] == (tx["TX_DATETIME"] - start).dt.days).all()
    assert tx["TX_TIME_DAYS"].between(0, SMALL.days - 1).all()
    assert (tx["TX_AMOUNT"] >= 0).all()
    assert set(tx["CUSTOMER_ID"]) <= set(range(SMALL.customers))
    assert set(tx["TERMINAL_ID"]) <= set(range(SMALL.terminals))
    # about two transactions per customer and day (uniform 0-4), a customer uses few terminals
    per_day = len(tx) / SMALL.customers / SMALL.days
    assert 1.5 < per_day < 2.5
    assert tx.groupby("CUSTOMER_ID")["TERMINAL_ID"].nunique().max() < SMALL.terminals / 4


def test_the_three_scenarios(tx: pd.DataFrame) -> None:
    assert ((tx["TX_FRAUD"] == 1) == (tx["TX_FRAUD_SCENARIO"] > 0)).all()
    assert set(tx["TX_FRAUD_SCENARIO"]) == {0, 1, 2, 3}
    # 1: every amount above 220 is a fraud (a leaked card's x5 amount may be one too)
    assert (tx.loc[tx["TX_AMOUNT"] > 220, "TX_FRAUD"] == 1).all()
    assert (tx.loc[tx["TX_FRAUD_SCENARIO"] == 1, "TX_AMOUNT"] > 220).all()
    # 2: a compromised terminal's frauds span at most 28 days per compromise; whole days of it are fraud
    two = tx[tx["TX_FRAUD_SCENARIO"] == 2]
    for _, rows in two.groupby("TERMINAL_ID"):
        same_terminal = tx[tx["TERMINAL_ID"] == rows["TERMINAL_ID"].iloc[0]]
        inside = same_terminal[same_terminal["TX_TIME_DAYS"].isin(rows["TX_TIME_DAYS"])]
        assert (inside["TX_FRAUD"] == 1).all()
    # 3: leaked cards: a share of a customer's rows on its days, not all of them
    three = tx[tx["TX_FRAUD_SCENARIO"] == 3]
    leaked = tx[tx["CUSTOMER_ID"].isin(three["CUSTOMER_ID"])]
    assert 0 < len(three) < len(leaked)


@pytest.mark.parametrize(("field", "value"), [("customers", 0), ("terminals", 10**7), ("days", -1),
                                              ("radius", float("nan")), ("leaked_cards_per_day", -0.1)])
def test_bad_shapes_are_refused(field: str, value: float) -> None:
    with pytest.raises(InvalidInputError, match=f"`{field}` must be"):
        HandbookShape(**{field: value})  # type: ignore[arg-type]


def test_command_line_writes_a_file_the_benchmark_reads(tmp_path: Path) -> None:
    out = tmp_path / "tx.csv.gz"
    runner = CliRunner()
    result = runner.invoke(app, ["handbook", "simulate", "--out", str(out), "--customers", "50", "--terminals", "100",
                                 "--days", "40", "--seed", "3"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, parse_dates=["TX_DATETIME"])
    expected = handbook_transactions(HandbookShape(seed=3, customers=50, terminals=100, days=40))
    assert f"wrote {len(expected):,} transactions" in result.output
    assert tuple(written.columns) == COLUMNS
    np.testing.assert_array_equal(written["TX_AMOUNT"].to_numpy(), expected["TX_AMOUNT"].to_numpy())
    assert (written["TX_DATETIME"] == expected["TX_DATETIME"]).all()
    features = runner.invoke(app, ["handbook", "features", "--data", str(out), "--out", str(tmp_path / "f.parquet")])
    assert features.exit_code == 0, features.output
    assert len(pd.read_parquet(tmp_path / "f.parquet")) == len(expected)
    bad = runner.invoke(app, ["handbook", "simulate", "--out", str(out), "--days", "0"])
    assert bad.exit_code == 2 and "`days` must be between 1 and 3,660; got 0" in bad.output
