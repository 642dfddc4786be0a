"""The handbook's evaluation protocols: splits, the card precision, the features fed to the model, the command.

The data is handbook-format and generated (``tests/training/handbook_data.py``); the
book's own split sizes and published figures are checked on the real file in
``test_handbook_book_data.py``. The model runs are smoke runs with a one-point grid, so
the suite stays fast; the full benchmark is ``orderguard handbook evaluate``.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from features.settings import Settings
from orderguard.errors import InvalidInputError
from scoring.registry import Registry
from tests.training.handbook_data import CH3_ROWS
from training.benchmarks.handbook import (
    ID_COLUMNS,
    QUICK_GRID,
    Features,
    HandbookDataset,
    ModelParams,
    Protocol,
    Scores,
    SplitPlan,
    book_split,
    evaluate,
    load_dataset,
    mlflow_payload,
    parse_protocols,
    plus_feature_set,
    protocol_plans,
    read_published,
    select_params,
    validation_plans,
)
from training.benchmarks.handbook_features import BOOK_COLUMNS, handbook_features
from training.benchmarks.handbook_metrics import card_precision_top_k

#: The slice's period: the validation folds and the chapter 3 split (2018-06-20 ... 08-14).
SLICE_START, SLICE_END = date(2018, 6, 20), date(2018, 8, 14)


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@pytest.fixture(scope="module")
def transactions(handbook_files: tuple[Path, Path]) -> pd.DataFrame:
    """Id, calendar day, customer and label of every transaction, in canonical order."""
    with duckdb.connect() as con:
        df = con.execute(
            "SELECT CAST(TRANSACTION_ID AS BIGINT) AS id, CAST(CUSTOMER_ID AS BIGINT) AS customer, "
            "CAST(TX_FRAUD AS INTEGER) AS fraud, CAST(CAST(TX_DATETIME AS TIMESTAMP) AS DATE) AS day "
            f"FROM read_csv({_sql_path(handbook_files[0])}, header = true) ORDER BY id").df()
    df["day"] = pd.to_datetime(df["day"]).to_numpy().astype("datetime64[D]")
    return df


@pytest.fixture(scope="module")
def dataset(handbook_files: tuple[Path, Path]) -> HandbookDataset:
    return load_dataset(handbook_files[1], start=SLICE_START, end=SLICE_END, features=Features.PLUS)


# ---------------------------------------------------------------------------------------------- splits


def test_test_days_drop_exactly_the_customers_known_compromised(transactions: pd.DataFrame) -> None:
    """Closed form of the book's cumulative rule: a row of test day D is dropped iff its customer
    had a fraud on a day from the training start to D - 8."""
    for plan in (*protocol_plans(Protocol.CH5), *validation_plans()):
        _, test = book_split(transactions["day"].to_numpy(), transactions["customer"].to_numpy(),
                             transactions["fraud"].to_numpy(), plan)
        start = np.datetime64(plan.start, "D")
        frauds = transactions[(transactions["fraud"] == 1) & (transactions["day"] >= start)]
        first_fraud = frauds.groupby("customer")["day"].min()
        days = transactions[(transactions["day"] >= np.datetime64(plan.first_test_day, "D"))
                            & (transactions["day"] <= np.datetime64(plan.last_test_day, "D"))]
        known_since = days["customer"].map(first_fraud)
        dropped = known_since.notna() & (known_since <= days["day"] - np.timedelta64(8, "D"))
        assert days.index[~dropped.to_numpy()].tolist() == test.tolist(), plan
        assert dropped.sum() > 0


def test_customer_removal_rule_by_hand() -> None:
    """Training 07-25..07-31, delay 08-01..08-07, test 08-08..08-14; test day i knows the frauds up to 07-31 + i."""
    rows = [  # (day, customer, fraud)
        ("2018-07-26", "a", 1),  # a: fraud in training -> none of a's test rows
        ("2018-08-08", "a", 0),
        ("2018-08-01", "b", 1),  # b: fraud on the first delay day, known from test day 1 (08-09)
        ("2018-08-08", "b", 0),
        ("2018-08-09", "b", 0),
        ("2018-08-07", "c", 1),  # c: fraud on the last delay day, known only after the test week
        ("2018-08-14", "c", 1),
        ("2018-08-08", "d", 1),  # d: fraud on a test day stays in the test set
        ("2018-08-14", "d", 0),
        ("2018-07-24", "e", 1),  # e: fraud before the training week is not "known" by the rule
        ("2018-08-10", "e", 0),
        ("2018-08-15", "f", 0),  # after the test week
    ]
    days = np.array([r[0] for r in rows], dtype="datetime64[D]")
    train, test = book_split(days, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
                             SplitPlan(date(2018, 7, 25)))
    assert train.tolist() == [0]
    assert [rows[i][:2] for i in test] == [("2018-08-08", "b"), ("2018-08-14", "c"), ("2018-08-08", "d"),
                                           ("2018-08-14", "d"), ("2018-08-10", "e")]


def test_protocol_days() -> None:
    ch5 = protocol_plans(Protocol.CH5)
    assert [p.start for p in ch5] == [date(2018, 8, 15), date(2018, 8, 8), date(2018, 8, 1), date(2018, 7, 25)]
    assert [p.start for p in validation_plans()] == [date(2018, 7, 11), date(2018, 7, 4), date(2018, 6, 27),
                                                     date(2018, 6, 20)]
    assert [(p.first_test_day, p.last_test_day) for p in protocol_plans(Protocol.CH3)] == [
        (date(2018, 8, 8), date(2018, 8, 14))]
    # every validation test day precedes every test fold's first test day
    last_validation_day = max(p.last_test_day for p in validation_plans())
    assert last_validation_day < min(p.first_test_day for p in (*ch5, *protocol_plans(Protocol.CH3)))
    # every training label is known (7 days after its transaction) before testing starts
    for plan in (*ch5, *validation_plans()):
        assert plan.last_train_day + timedelta(days=1 + 7) <= plan.first_test_day
    with pytest.raises(InvalidInputError, match="delta_delay"):
        SplitPlan(date(2018, 7, 25), delta_delay=6)


# ---------------------------------------------------------------------------------------------- metric


def card_precision_at_k(y_true: list[int], score: list[float], day: list[int], card: list[str], *, k: int) -> float:
    """Card precision@k with every day on its own, spelled out: per day, a card's score is its highest
    transaction score and it is compromised if any of its transactions is; the share of compromised
    cards among the day's ``k`` highest, averaged over days."""
    per_day = []
    for d in sorted(set(day)):
        cards: dict[str, tuple[float, int]] = {}
        for y, s, dd, c in zip(y_true, score, day, card, strict=True):
            if dd == d:
                best, fraud = cards.get(c, (-math.inf, 0))
                cards[c] = (max(best, s), max(fraud, y))
        top = sorted(cards.values(), key=lambda v: -v[0])[:k]
        per_day.append(sum(fraud for _, fraud in top) / k)
    return float(np.mean(per_day))


def test_card_precision_by_hand() -> None:
    """k = 2, three days.

    Day 1: cards by max score x 0.9 (fraud), y 0.8, z 0.7 (fraud) -> top 2 = x, y: 1/2; x detected.
    Day 2: x 0.95 (fraud) is removed; y 0.6, z 0.5 (fraud), w 0.4 -> top 2 = y, z: 1/2; z detected.
    Day 3: x and z removed; w 0.9 (fraud: one of its two), y 0.1 -> top 2 = w, y: 1/2.
    Mean 0.5. Without removal every card competes every day (figures below).
    """
    day = [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3]
    card = ["x", "y", "z", "x", "x", "y", "z", "w", "w", "w", "y", "x", "z"]
    score = [0.9, 0.8, 0.7, 0.2, 0.95, 0.6, 0.5, 0.4, 0.9, 0.3, 0.1, 0.3, 0.05]
    fraud = [1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1]
    result = card_precision_top_k(fraud, score, day, card, k=2)
    assert result.per_day == (0.5, 0.5, 0.5)
    assert result.detected == (1, 1, 1)
    assert result.mean == 0.5
    # without removal, day 2 = x (fraud), y -> 1/2; day 3 = w (fraud), x (0.3, fraud) -> 2/2
    kept = card_precision_top_k(fraud, score, day, card, k=2, remove_detected=False)
    assert kept.per_day == (0.5, 0.5, 1.0)
    assert math.isclose(kept.mean, 2 / 3)
    # the per-day form is the same measure without removal
    assert math.isclose(card_precision_at_k(fraud, score, day, card, k=2), kept.mean)


def test_card_precision_divides_by_k_even_on_a_small_day() -> None:
    assert card_precision_top_k([1, 0], [0.5, 0.4], [1, 1], ["x", "y"], k=100).per_day == (0.01,)
    with pytest.raises(InvalidInputError, match="`k` must be at least 1"):
        card_precision_top_k([1], [0.5], [1], ["x"], k=0)


# -------------------------------------------------------------------------------------------- features


def test_the_scenario_column_is_never_an_input(handbook_files: tuple[Path, Path], dataset: HandbookDataset) -> None:
    with_scenario = load_dataset(handbook_files[0], start=SLICE_START, end=SLICE_END, features=Features.PLUS)
    for ds in (dataset, with_scenario):
        assert "TX_FRAUD_SCENARIO" not in ds.frame.columns
        assert not {"TX_FRAUD_SCENARIO", "TX_FRAUD", "TRANSACTION_ID", "CUSTOMER_ID"} & set(ds.features)
        assert not any("scenario" in name.lower() for name in ds.features)
    # a file without the column gives the very same rows and values
    pd.testing.assert_frame_equal(with_scenario.frame, dataset.frame)


def test_dataset_columns(dataset: HandbookDataset, handbook_files: tuple[Path, Path]) -> None:
    frame = dataset.frame
    assert tuple(frame.columns) == (*ID_COLUMNS, *dataset.features)
    assert dataset.features[:15] == BOOK_COLUMNS
    assert len(set(dataset.features)) == len(dataset.features) > 40
    assert frame["TRANSACTION_ID"].is_monotonic_increasing
    days = dataset.days()
    assert days.min() == np.datetime64(SLICE_START) and days.max() == np.datetime64(SLICE_END)
    # the book's 15 columns are the ones handbook_features computes
    book = handbook_features(handbook_files[1], start=SLICE_START, end=SLICE_END)
    pd.testing.assert_frame_equal(frame[["TRANSACTION_ID", *BOOK_COLUMNS]].reset_index(drop=True),
                                  book.reset_index(drop=True), check_dtype=False)
    # a derived ratio agrees with the same ratio of the book's columns
    ratio = frame["ratio_order_paid_fen_to_mean_paid_fen_by_user_30d"]
    np.testing.assert_allclose(ratio, frame["TX_AMOUNT"] / frame["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"], rtol=1e-9)
    # labels are the file's TX_FRAUD
    raw = pd.read_csv(handbook_files[1], usecols=["TRANSACTION_ID", "TX_FRAUD"]).set_index("TRANSACTION_ID")
    assert (raw.loc[frame["TRANSACTION_ID"], "TX_FRAUD"].to_numpy() == frame["TX_FRAUD"].to_numpy()).all()


def test_plus_features_extend_the_books() -> None:
    names = plus_feature_set().names
    assert len(names) == len(set(names))
    assert all(not name.startswith("TX_") for name in names)


# ------------------------------------------------------------------------------------- model selection


def test_model_selection_never_sees_the_test_period(dataset: HandbookDataset) -> None:
    """Scrambling every label after the last validation test day (07-31) changes nothing in the selection."""
    candidates = (ModelParams(num_leaves=7, min_data_in_leaf=20, num_boost_round=30),
                  ModelParams(num_leaves=7, min_data_in_leaf=20, num_boost_round=60))
    first = select_params(dataset, candidates, seed=3)
    frame = dataset.frame.copy()
    later = dataset.days() > np.datetime64("2018-07-31")
    frame.loc[later, "TX_FRAUD"] = np.random.default_rng(0).permutation(frame.loc[later, "TX_FRAUD"].to_numpy())
    frame.loc[later, list(dataset.features)] = 0.0
    second = select_params(HandbookDataset(frame, dataset.features, dataset.feature_set_hash), candidates, seed=3)
    assert first.candidates == second.candidates
    assert first.params == second.params
    assert all(not math.isnan(scores.ap) for _, scores in first.candidates)


def test_evaluate_on_a_slice(handbook_files: tuple[Path, Path], handbook_published: Path) -> None:
    result = evaluate(handbook_files[1], protocols=(Protocol.CH3,), candidates=QUICK_GRID,
                      published=handbook_published, seed=1)
    (ch3,) = result.protocols
    assert ch3.protocol is Protocol.CH3 and ch3.params == QUICK_GRID[0]
    (fold,) = ch3.folds
    assert fold.plan == SplitPlan(date(2018, 7, 25))
    assert 0 < fold.train_frauds < fold.train_rows and 0 < fold.test_frauds < fold.test_rows
    assert 0.5 < fold.scores.auc <= 1 and 0 < fold.scores.ap <= 1 and 0 <= fold.scores.cp100 <= 1
    assert len(fold.cp_per_day) == 7 and math.isclose(float(np.mean(fold.cp_per_day)), fold.scores.cp100)
    assert ch3.std.auc == 0.0
    assert {row.model for row in result.published} >= {"Logistic regression", "Random forest", "XGBoost"}
    params, metrics, text = mlflow_payload(result)
    assert params["features"] == "plus" and params["lgbm_num_leaves"] == QUICK_GRID[0].num_leaves
    assert metrics["ch3_ap_mean"] == fold.scores.ap and metrics["ch3_fold0_cp100"] == fold.scores.cp100
    assert all(isinstance(v, float) and not math.isnan(v) for v in metrics.values())
    assert all(isinstance(v, str | int | float) for v in params.values())
    assert "orderguard LightGBM" in text and "book: Logistic regression" in text


def test_published_rows_are_read_from_the_books_files(handbook_published: Path) -> None:
    rows = {(r.protocol, r.model): r for r in read_published(handbook_published)}
    assert set(rows) == {*((Protocol.CH3, m) for m, *_ in CH3_ROWS), (Protocol.CH5, "XGBoost"),
                         (Protocol.CH5, "Random Forest")}  # the ch3 "train" row is not a result
    assert rows[(Protocol.CH3, "Random forest")].scores == Scores(0.834, 0.571, 0.245)
    # ch5: each metric's test figure at the parameters with the best validation value of that metric
    xgb = rows[(Protocol.CH5, "XGBoost")]
    assert xgb.scores == Scores(0.846, 0.633, 0.284)
    assert xgb.std == Scores(0.01, 0.02, 0.005)
    assert "AUC 6/100; AP 3/50; CP 6/100" in xgb.note
    assert read_published(handbook_published, (Protocol.CH3,)) == tuple(
        r for r in read_published(handbook_published) if r.protocol is Protocol.CH3)
    with pytest.raises(InvalidInputError, match="`published` must be the handbook's published_results folder"):
        read_published(handbook_published.parent / "nowhere")


# ------------------------------------------------------------------------------------------ command line


def test_command_line_prints_the_table_and_logs_the_run(handbook_files: tuple[Path, Path], tmp_path: Path,
                                                       handbook_published: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "handbook", "evaluate", "--data", str(handbook_files[1]),
                                 "--protocol", "ch3", "--published", str(handbook_published), "--quick"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    run_id = out.split("logged to MLflow run ")[1].split()[0]
    run = Registry.from_settings(Settings(data_dir=tmp_path)).run(run_id)
    assert run.tags["benchmark"] == "handbook" and "ch3_ap" in " ".join(run.metrics)
    assert "orderguard LightGBM (plus" in out
    assert "book: Logistic regression" in out and "0.812" in out and "0.534" in out
    assert "book: XGBoost" in out
    assert "parameters chosen on the validation folds" in out
    bad = runner.invoke(app, ["handbook", "evaluate", "--data", str(handbook_files[1]), "--protocol", "ch4"])
    assert bad.exit_code == 2
    assert "`--protocol` must be ch3, ch5 or all; got 'ch4'" in bad.output
    missing = runner.invoke(app, ["handbook", "evaluate", "--data", str(handbook_files[1].with_name("nope.csv"))])
    assert missing.exit_code == 2
    assert "`data` must be an existing transactions_raw.csv(.gz) file" in missing.output
    # a generated file has no published results beside it: our rows only
    alone = runner.invoke(app, ["--data-dir", str(tmp_path), "handbook", "evaluate", "--data", str(handbook_files[1]),
                                "--protocol", "ch3", "--quick", "--no-track"], env={"COLUMNS": "200"})
    assert alone.exit_code == 0, alone.output
    assert "orderguard LightGBM (plus" in alone.output and "book:" not in alone.output


def test_parse_protocols() -> None:
    assert parse_protocols("all") == (Protocol.CH3, Protocol.CH5)
    assert parse_protocols(" ch3 ") == (Protocol.CH3,)
