"""The handbook's 15 features from FeatureSpecs against the book's own definitions.

The expected values are computed here, independently, the way the book's code does it:
pandas ``rolling`` over ``TX_DATETIME`` per customer (``get_customer_spending_behaviour_features``)
and per terminal (``get_count_risk_rolling_window``: windows of n + 7 days minus the
7-day delay, ``fillna(0)``), on rows in canonical ``TRANSACTION_ID`` order.

The data is handbook-format and generated (``tests/training/handbook_data.py``), with the
edge cases planted. The slice keeps every window complete: all transactions of a set of
customers (whose customer features are then exact) and of a set of terminals (whose
terminal features are exact), over the whole six months. The sets are chosen to contain
the edge cases - customers with two transactions in the same second, and customer /
terminal pairs exactly one window length apart (the open lower edges and the closed
delayed upper edge) - plus a random sample; the test asserts they are there.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from training.benchmarks.handbook_features import (
    BOOK_COLUMNS,
    OUTPUT_COLUMNS,
    handbook_features,
    write_handbook_features,
)

WINDOWS = (1, 7, 30)
DELAY = 7
CUSTOMER_COLUMNS = [f"CUSTOMER_ID_{w}_{n}DAY_WINDOW" for n in WINDOWS for w in ("NB_TX", "AVG_AMOUNT")]
TERMINAL_COLUMNS = [f"TERMINAL_ID_{w}_{n}DAY_WINDOW" for n in WINDOWS for w in ("NB_TX", "RISK")]
SAMPLE = 80


@pytest.fixture(scope="module")
def transactions(handbook_files: tuple[Path, Path]) -> pd.DataFrame:
    """The raw transactions (the columns the features use), in canonical order."""
    columns = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"]
    df = pd.read_csv(handbook_files[0], usecols=columns, parse_dates=["TX_DATETIME"])
    return df.sort_values("TRANSACTION_ID", kind="stable").reset_index(drop=True)


def lag_pairs(df: pd.DataFrame, key: str, days: Iterable[int]) -> pd.DataFrame:
    """Pairs of transactions of one ``key`` exactly ``n`` days apart (to the second): ``earlier``, ``later``, ``n``."""
    right = df[[key, "TX_DATETIME", "TRANSACTION_ID"]].rename(columns={"TRANSACTION_ID": "later"})
    pairs = []
    for n in days:
        left = df[[key, "TX_DATETIME", "TRANSACTION_ID", "TX_FRAUD"]].rename(columns={"TRANSACTION_ID": "earlier"})
        left["TX_DATETIME"] = left["TX_DATETIME"] + pd.Timedelta(days=n)
        pairs.append(left.merge(right, on=[key, "TX_DATETIME"]).assign(n=n))
    return pd.concat(pairs, ignore_index=True)


def same_second(df: pd.DataFrame) -> pd.DataFrame:
    """Transactions sharing a customer and a second with another one."""
    return df[df.duplicated(["CUSTOMER_ID", "TX_DATETIME"], keep=False)]


@pytest.fixture(scope="module")
def chosen(transactions: pd.DataFrame) -> tuple[set[int], set[int]]:
    """Customers and terminals whose features are compared: the edge cases plus a random sample."""
    ties = same_second(transactions)
    customer_edges = lag_pairs(transactions, "CUSTOMER_ID", WINDOWS)
    terminal_edges = lag_pairs(transactions, "TERMINAL_ID", (DELAY, *(n + DELAY for n in WINDOWS)))
    rng = np.random.default_rng(7)
    customers = (set(ties["CUSTOMER_ID"]) | set(customer_edges["CUSTOMER_ID"])
                 | set(rng.choice(transactions["CUSTOMER_ID"].unique(), SAMPLE, replace=False).tolist()))
    terminals = (set(ties["TERMINAL_ID"]) | set(terminal_edges["TERMINAL_ID"])
                 | set(rng.choice(transactions["TERMINAL_ID"].unique(), SAMPLE, replace=False).tolist()))
    return {int(c) for c in customers}, {int(t) for t in terminals}


@pytest.fixture(scope="module")
def sliced(transactions: pd.DataFrame, chosen: tuple[set[int], set[int]],
           tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    """Every transaction of the chosen customers or terminals, and the same rows as a CSV file."""
    customers, terminals = chosen
    rows = transactions[transactions["CUSTOMER_ID"].isin(customers) | transactions["TERMINAL_ID"].isin(terminals)]
    path = tmp_path_factory.mktemp("handbook") / "transactions.csv"
    rows.to_csv(path, index=False)
    return rows.reset_index(drop=True), path


def book_customer_features(tx: pd.DataFrame) -> pd.DataFrame:
    """The book's customer features of one customer's transactions (pandas rolling, window ends at the row)."""
    tx = tx.sort_values("TX_DATETIME", kind="stable").set_index("TX_DATETIME")
    out = pd.DataFrame({"TRANSACTION_ID": tx["TRANSACTION_ID"].to_numpy()})
    for n in WINDOWS:
        total = tx["TX_AMOUNT"].rolling(f"{n}D").sum()
        count = tx["TX_AMOUNT"].rolling(f"{n}D").count()
        out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count.to_numpy()
        out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = (total / count).to_numpy()
    return out


def book_terminal_features(tx: pd.DataFrame) -> pd.DataFrame:
    """The book's terminal features: windows of n + delay days minus the delay window, risk 0 when empty."""
    tx = tx.sort_values("TX_DATETIME", kind="stable").set_index("TX_DATETIME")
    fraud = tx["TX_FRAUD"].astype(float)
    frauds_delay, count_delay = fraud.rolling(f"{DELAY}D").sum(), fraud.rolling(f"{DELAY}D").count()
    out = pd.DataFrame({"TRANSACTION_ID": tx["TRANSACTION_ID"].to_numpy()})
    for n in WINDOWS:
        frauds = fraud.rolling(f"{n + DELAY}D").sum() - frauds_delay
        count = fraud.rolling(f"{n + DELAY}D").count() - count_delay
        out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count.to_numpy()
        out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = (frauds / count).to_numpy()
    return out.fillna(0)


def expected(rows: pd.DataFrame, key: str, keys: set[int]) -> pd.DataFrame:
    compute = book_customer_features if key == "CUSTOMER_ID" else book_terminal_features
    parts = [compute(group) for value, group in rows.groupby(key) if value in keys]
    return pd.concat(parts).set_index("TRANSACTION_ID").sort_index()


@pytest.fixture(scope="module")
def computed(sliced: tuple[pd.DataFrame, Path]) -> pd.DataFrame:
    return handbook_features(sliced[1])


def test_slice_holds_the_edge_cases(sliced: tuple[pd.DataFrame, Path], chosen: tuple[set[int], set[int]]) -> None:
    rows, _ = sliced
    customers, terminals = chosen
    mine = rows[rows["CUSTOMER_ID"].isin(customers)]
    assert same_second(mine).shape[0] >= 2
    customer_edges = lag_pairs(mine, "CUSTOMER_ID", WINDOWS)
    assert set(customer_edges["n"]) == set(WINDOWS)
    terminal_edges = lag_pairs(rows[rows["TERMINAL_ID"].isin(terminals)], "TERMINAL_ID",
                               (DELAY, *(n + DELAY for n in WINDOWS)))
    assert set(terminal_edges["n"]) == {DELAY, *(n + DELAY for n in WINDOWS)}
    assert terminal_edges.loc[terminal_edges["n"] == DELAY, "TX_FRAUD"].sum() > 0  # a label exactly at t


def test_output_shape(computed: pd.DataFrame, sliced: tuple[pd.DataFrame, Path]) -> None:
    rows, _ = sliced
    assert tuple(computed.columns) == OUTPUT_COLUMNS
    assert len(BOOK_COLUMNS) == 15
    assert computed["TRANSACTION_ID"].tolist() == sorted(rows["TRANSACTION_ID"].tolist())
    assert not computed[list(BOOK_COLUMNS)].isna().to_numpy().any()


def test_per_transaction_columns(computed: pd.DataFrame, sliced: tuple[pd.DataFrame, Path]) -> None:
    rows, _ = sliced
    got = computed.set_index("TRANSACTION_ID")
    want = rows.set_index("TRANSACTION_ID").loc[got.index]
    np.testing.assert_allclose(got["TX_AMOUNT"], want["TX_AMOUNT"], rtol=1e-12)
    assert (got["TX_DURING_WEEKEND"] == (want["TX_DATETIME"].dt.day_of_week >= 5).astype(int)).all()
    assert (got["TX_DURING_NIGHT"] == (want["TX_DATETIME"].dt.hour <= 6).astype(int)).all()
    assert 0 < got["TX_DURING_NIGHT"].mean() < 1 and 0 < got["TX_DURING_WEEKEND"].mean() < 1


@pytest.mark.parametrize(("key", "columns"), [("CUSTOMER_ID", CUSTOMER_COLUMNS), ("TERMINAL_ID", TERMINAL_COLUMNS)])
def test_window_columns_match_the_book(key: str, columns: list[str], computed: pd.DataFrame,
                                       sliced: tuple[pd.DataFrame, Path],
                                       chosen: tuple[set[int], set[int]]) -> None:
    rows, _ = sliced
    keys = chosen[0] if key == "CUSTOMER_ID" else chosen[1]
    want = expected(rows, key, keys)
    got = computed.set_index("TRANSACTION_ID").loc[want.index]
    assert len(want) > 10_000
    for column in columns:
        np.testing.assert_allclose(got[column].to_numpy(), want[column].to_numpy(), rtol=1e-9, atol=1e-9,
                                   err_msg=column)
    if key == "TERMINAL_ID":
        assert (want["TERMINAL_ID_RISK_30DAY_WINDOW"] > 0).sum() > 100  # frauds are actually counted


def test_same_second_transactions_count_only_earlier_peers(computed: pd.DataFrame,
                                                           sliced: tuple[pd.DataFrame, Path]) -> None:
    rows, _ = sliced
    ties = same_second(rows).sort_values("TRANSACTION_ID")
    got = computed.set_index("TRANSACTION_ID").loc[ties["TRANSACTION_ID"]]
    counts = dict(zip(ties["TRANSACTION_ID"], got["CUSTOMER_ID_NB_TX_1DAY_WINDOW"], strict=True))
    for _, group in ties.groupby(["CUSTOMER_ID", "TX_DATETIME"]):
        ids = group["TRANSACTION_ID"].tolist()
        steps = [counts[b] - counts[a] for a, b in pairwise(ids)]
        assert steps == [1.0] * (len(ids) - 1), ids


def test_a_period_reads_the_history_it_needs(computed: pd.DataFrame, sliced: tuple[pd.DataFrame, Path],
                                             tmp_path: Path) -> None:
    rows, path = sliced
    start, end = date(2018, 8, 8), date(2018, 8, 14)
    run = write_handbook_features(path, tmp_path / "week.parquet", start=start, end=end)
    week = pd.read_parquet(run.path)
    in_period = rows["TX_DATETIME"].between(pd.Timestamp(start), pd.Timestamp(end + timedelta(days=1)),
                                            inclusive="left")
    assert run.rows == in_period.sum() == len(week) > 0
    full = computed.set_index("TRANSACTION_ID").loc[week["TRANSACTION_ID"]].reset_index()
    pd.testing.assert_frame_equal(week, full, check_dtype=False)


def test_command_line(computed: pd.DataFrame, sliced: tuple[pd.DataFrame, Path], tmp_path: Path) -> None:
    _, path = sliced
    out = tmp_path / "features.parquet"
    runner = CliRunner()
    result = runner.invoke(app, ["handbook", "features", "--data", str(path), "--out", str(out),
                                 "--start", "2018-09-30"])
    assert result.exit_code == 0, result.output
    last_day = pd.read_parquet(out)
    assert f"wrote {len(last_day):,} transactions" in result.output
    full = computed.set_index("TRANSACTION_ID").loc[last_day["TRANSACTION_ID"]].reset_index()
    pd.testing.assert_frame_equal(last_day, full, check_dtype=False)
    bad = runner.invoke(app, ["handbook", "features", "--data", str(path), "--out", str(out), "--end", "30.9.2018"])
    assert bad.exit_code == 2
    assert "`--end` must be a date YYYY-MM-DD" in bad.output
