"""The handbook's evaluation protocols, run on orderguard's feature store and LightGBM.

The public benchmark set (``../shared/data/handbook/``, the simulated card transactions
of *Reproducible Machine Learning for Credit Card Fraud Detection - Practical Handbook*,
Le Borgne et al., 2022) comes with the book's published results. This module reproduces
the book's protocols exactly, so that orderguard's pipeline - FeatureSpecs computed
point-in-time by ``features.batch``, then LightGBM - can be put beside them.

**Features.** ``book``: the book's 15 (``training.benchmarks.handbook_features``).
``plus``: the same 15 and the specs of ``handbook_plus.yaml`` (the customer's usual
spending before a leaked card could inflate it, amount ratios, the terminal's fraud
history as labels become known, ...), computed in the same pass by the same engine.
A fraud is a ``confirmed_fraud`` label stamped 7 days after its transaction, so no
feature ever sees a label before it is known. ``TX_FRAUD_SCENARIO`` (the generator's
ground truth) is never read.

**Protocols** (calendar days, UTC; ``delta_train = delta_delay = delta_test = 7``):

* train on the 7 days from a start day, skip 7 days (the labels of the training week
  become known), test on the next 7 days; a test day drops the customers already known
  to be compromised: those with a fraud in the training week, plus, cumulatively, those
  with a fraud on (test day - 8), whose labels are known by the test day;
* ``ch3``: one split, training from 2018-07-25 (test 2018-08-08 ... 08-14);
* ``ch5``: prequential, 4 test folds training from 2018-08-15, 08-08, 08-01, 07-25;
  mean ± standard deviation (population, as sklearn's grid search reports) over them.

Training labels are the training week's ``TX_FRAUD``: with a 7-day delay period every
one of them is known before the first test day, as in the book.

**Model selection** uses the 4 *validation* folds only (training from 2018-07-11,
07-04, 06-27, 06-20; their last test day is 2018-07-31, before any test day of either
protocol): each grid point is trained on every validation fold and the one with the
highest mean average precision is kept, then used unchanged for ``ch3`` and ``ch5``.
The book selects per metric (its AUC, AP and CP@100 rows may come from different
parameters); here one model is chosen and all three are reported for it.

**Metrics**: AUC ROC and average precision (``training.metrics``, i.e. sklearn's) and
the book's card precision@100 with detected cards removed from later days
(``training.benchmarks.handbook_metrics``).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

from features.batch import BatchFeatures, Progress
from features.derived import complete_frame
from features.specs import FeatureSet
from orderguard.errors import ConfigError, InvalidInputError, must
from training.benchmarks.handbook_features import (
    BOOK_COLUMNS,
    LABEL_DELAY,
    Period,
    _read_transactions,
    book_columns,
    facts_sql,
    handbook_feature_set,
)
from training.benchmarks.handbook_metrics import card_precision_top_k
from training.metrics import pr_auc, roc_auc

#: Where the data set sits relative to the repository root (see DESIGN.md §6).
DEFAULT_DATA = Path("../shared/data/handbook/transactions_raw.csv.gz")
#: The extra FeatureSpecs of ``--features plus`` (package data).
PLUS_SPECS_PATH = Path(__file__).with_name("handbook_plus.yaml")
#: Chapter 3's one training start.
CH3_START = date(2018, 7, 25)
#: Chapter 5's test folds (training start of each; fold 0 is the newest).
CH5_TEST_STARTS: tuple[date, ...] = (date(2018, 8, 15), date(2018, 8, 8), date(2018, 8, 1), date(2018, 7, 25))
#: Chapter 5's validation folds: the only data model selection looks at.
VALIDATION_STARTS: tuple[date, ...] = (date(2018, 7, 11), date(2018, 7, 4), date(2018, 6, 27), date(2018, 6, 20))
#: Cards a reviewer looks at per day in the book's card precision.
TOP_K = 100
#: The best figures the book reports on the chapter 5 protocol in any chapter (README of the
#: data set: XGBoost's AP in chapter 5, balanced bagging's CP@100 in later chapters).
BOOK_BEST_AP = 0.687
BOOK_BEST_CP100 = 0.305
#: Columns of a dataset that are not model inputs: identity, time, customer and label.
ID_COLUMNS: tuple[str, ...] = ("TRANSACTION_ID", "TX_DAY", "CUSTOMER_ID", "TX_FRAUD")
#: Order attributes the handbook's transactions have (the ``plus`` set may carry them).
_CARRIED_ATTRIBUTES: frozenset[str] = frozenset({"paid_fen"})
_US_PER_DAY = 86_400 * 10**6


class Protocol(StrEnum):
    """The book's evaluation protocols."""

    CH3 = "ch3"
    CH5 = "ch5"


class Features(StrEnum):
    """Which features the model gets."""

    BOOK = "book"
    PLUS = "plus"


def parse_protocols(text: str) -> tuple[Protocol, ...]:
    """``ch3``, ``ch5`` or ``all`` (both) → the protocols to run (the CLI's ``--protocol``).

    >>> parse_protocols("all"), parse_protocols("CH5")
    ((<Protocol.CH3: 'ch3'>, <Protocol.CH5: 'ch5'>), (<Protocol.CH5: 'ch5'>,))
    """
    value = text.strip().lower()
    if value == "all":
        return tuple(Protocol)
    try:
        return (Protocol(value),)
    except ValueError as e:
        raise InvalidInputError(must("--protocol", "ch3, ch5 or all", text), field="protocol") from e


def parse_features(text: str) -> Features:
    """``book`` or ``plus`` (the CLI's ``--features``).

    >>> parse_features("plus")
    <Features.PLUS: 'plus'>
    """
    try:
        return Features(text.strip().lower())
    except ValueError as e:
        raise InvalidInputError(must("--features", "book or plus", text), field="features") from e


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """One train / delay / test split of the book (``get_train_test_set``), in calendar days.

    Attributes:
        start: first training day.
        delta_train: training days.
        delta_delay: days between training and test, while the training labels arrive;
            at least the label delay (7 days), so every training label is known when
            testing starts.
        delta_test: test days.

    >>> p = SplitPlan(date(2018, 7, 25))
    >>> p.last_train_day.isoformat(), p.first_test_day.isoformat(), p.last_test_day.isoformat()
    ('2018-07-31', '2018-08-08', '2018-08-14')
    """

    start: date
    delta_train: int = 7
    delta_delay: int = 7
    delta_test: int = 7

    def __post_init__(self) -> None:
        if self.delta_train < 1 or self.delta_test < 1:
            raise InvalidInputError.must("delta_train", "at least 1 day for training and for testing",
                                         (self.delta_train, self.delta_test))
        if timedelta(days=self.delta_delay) < LABEL_DELAY:
            raise InvalidInputError.must("delta_delay", f"at least the label delay ({LABEL_DELAY.days} days)",
                                         self.delta_delay)

    @property
    def last_train_day(self) -> date:
        """The last training day (inclusive)."""
        return self.start + timedelta(days=self.delta_train - 1)

    @property
    def first_test_day(self) -> date:
        """The first test day."""
        return self.start + timedelta(days=self.delta_train + self.delta_delay)

    @property
    def last_test_day(self) -> date:
        """The last test day (inclusive)."""
        return self.first_test_day + timedelta(days=self.delta_test - 1)

    def known_from(self, test_day_index: int) -> date:
        """The day whose frauds are known by test day ``i`` (0-based): the book's ``start + delta_train + i - 1``.

        With the book's deltas, test day - 8: the labels of that day's frauds arrive 7
        days later, by the end of the day before the test day.

        >>> SplitPlan(date(2018, 7, 25)).known_from(0).isoformat()
        '2018-07-31'
        """
        return self.start + timedelta(days=self.delta_train + test_day_index - 1)


def book_split(days: np.ndarray, customers: np.ndarray, frauds: np.ndarray,
               plan: SplitPlan) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training and test sets of one split (the book's rule, see the module doc).

    Args:
        days: each transaction's calendar day (``datetime64[D]``).
        customers: each transaction's customer.
        frauds: each transaction's label (1 = fraud).
        plan: the split.

    Returns:
        ``(train, test)``: increasing positions into the arrays.

    >>> d = np.array(["2018-07-25", "2018-08-01", "2018-08-08", "2018-08-08", "2018-08-09"], dtype="datetime64[D]")
    >>> train, test = book_split(d, np.array([1, 2, 1, 2, 2]), np.array([1, 1, 0, 0, 0]), SplitPlan(date(2018, 7, 25)))
    >>> train.tolist(), test.tolist()
    ([0], [3])
    """
    day = np.asarray(days).astype("datetime64[D]")
    fraud = np.asarray(frauds).astype(bool)
    customer = np.asarray(customers)
    start = np.datetime64(plan.start, "D")
    train_mask = (day >= start) & (day < start + np.timedelta64(plan.delta_train, "D"))
    known = set(customer[train_mask & fraud].tolist())
    parts: list[np.ndarray] = []
    for i in range(plan.delta_test):
        test_day = np.datetime64(plan.first_test_day, "D") + np.timedelta64(i, "D")
        known.update(customer[(day == np.datetime64(plan.known_from(i), "D")) & fraud].tolist())
        on_day = day == test_day
        parts.append(np.flatnonzero(on_day & ~np.isin(customer, np.fromiter(known, dtype=customer.dtype,
                                                                             count=len(known)))))
    test = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return np.flatnonzero(train_mask), np.sort(test)


def protocol_plans(protocol: Protocol) -> tuple[SplitPlan, ...]:
    """The test splits of a protocol.

    >>> [p.start.isoformat() for p in protocol_plans(Protocol.CH5)][0]
    '2018-08-15'
    """
    if protocol is Protocol.CH3:
        return (SplitPlan(CH3_START),)
    return tuple(SplitPlan(s) for s in CH5_TEST_STARTS)


def validation_plans() -> tuple[SplitPlan, ...]:
    """The validation splits model selection uses."""
    return tuple(SplitPlan(s) for s in VALIDATION_STARTS)


# ----------------------------------------------------------------------------------------------- features


def plus_feature_set() -> FeatureSet:
    """The book's 12 window specs followed by ``handbook_plus.yaml`` (its specs, attributes, derived).

    The YAML is appended to the book's specs before validation, so its derived features
    may name the book's specs and a spec that repeats one of them is a ``ConfigError``.
    """
    try:
        extra = yaml.safe_load(PLUS_SPECS_PATH.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError.must("features", "a readable YAML file", str(PLUS_SPECS_PATH)) from e
    if not isinstance(extra, dict):
        raise ConfigError.must("features", "a mapping with `features`", type(extra).__name__)
    book = handbook_feature_set().to_data()
    data = {**extra, "features": [*book["features"], *(extra.get("features") or [])]}
    feature_set = FeatureSet.from_data(data)
    unusable = [a.attr for a in feature_set.attributes if a.attr not in _CARRIED_ATTRIBUTES]
    if unusable:
        raise ConfigError.must("attributes", "attributes the handbook's transactions have (paid_fen)", unusable)
    return feature_set


def model_inputs(feature_set: FeatureSet) -> tuple[str, ...]:
    """Model input columns: the book's 15, then every feature of the set that is not one of the book's specs.

    The book's own 12 specs enter through the book's columns (``TERMINAL_ID_RISK_*`` is
    their ratio), not a second time.

    >>> model_inputs(handbook_feature_set()) == BOOK_COLUMNS
    True
    """
    book = set(handbook_feature_set().names)
    return (*BOOK_COLUMNS, *(name for name in feature_set.names if name not in book))


@dataclass(frozen=True, slots=True)
class HandbookDataset:
    """One row per transaction of a period, with its label and features.

    Attributes:
        frame: ``TRANSACTION_ID``, ``TX_DAY`` (calendar day, ``datetime64``), ``CUSTOMER_ID``,
            ``TX_FRAUD`` (the label) and one float column per model input, sorted by
            ``TRANSACTION_ID``.
        features: the model input columns, in order.
        feature_set_hash: ``FeatureSet.hash()`` of the specs computed.
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    feature_set_hash: str

    def days(self) -> np.ndarray:
        """Each row's calendar day as ``datetime64[D]``."""
        days: np.ndarray = self.frame["TX_DAY"].to_numpy().astype("datetime64[D]")
        return days

    def split(self, plan: SplitPlan) -> tuple[np.ndarray, np.ndarray]:
        """Training and test row positions of a split (:func:`book_split`)."""
        return book_split(self.days(), self.frame["CUSTOMER_ID"].to_numpy(), self.frame["TX_FRAUD"].to_numpy(),
                          plan)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_dataset(data: Path, *, start: date, end: date, features: Features = Features.PLUS,
                 progress: Progress | None = None) -> HandbookDataset:
    """Compute the features of every transaction from ``start`` to ``end`` (days, inclusive).

    Transactions before ``start`` are read as far back as the windows reach. Windowed
    specs run in SQL (``features.batch``), the book's columns are the SQL of
    ``handbook_features.book_columns``, attributes and derived features are added by
    ``features.derived.complete_frame`` - the functions the online engine uses.

    Args:
        data: ``transactions_raw.csv(.gz)`` of the handbook, or a CSV with its columns.
        start: first day with a row.
        end: last day with a row.
        features: ``book`` (15) or ``plus`` (15 + ``handbook_plus.yaml``).
        progress: ``(stage, done, total)`` callback.
    """
    feature_set = plus_feature_set() if features is Features.PLUS else handbook_feature_set()
    inputs = model_inputs(feature_set)
    period = Period.of(feature_set, start=start, end=end)
    carry = tuple(sorted({a.attr for a in feature_set.attributes} | {"paid_fen"}))
    batch = BatchFeatures(feature_set.windowed(), carry=carry, progress=progress)
    try:
        with duckdb.connect() as reader:
            reader.execute("SET enable_progress_bar = false")
            rows = _read_transactions(reader, data, period)
            frauds = reader.execute("SELECT count(*) FROM tx WHERE fraud = 1").fetchall()[0][0]
            batch.load_facts(reader.sql(facts_sql()), total=rows + int(frauds))
            labels = reader.execute(
                "SELECT id AS TRANSACTION_ID, customer AS CUSTOMER_ID, fraud AS TX_FRAUD FROM tx "
                f"WHERE {period.output_filter()}").df()
        select = ", ".join(["CAST(order_key AS BIGINT) AS TRANSACTION_ID", "order_key", "ts",
                            *(_q(a) for a in carry), *(_q(n) for n in feature_set.spec_names),
                            *(f"{expr} AS {_q(name)}" for name, expr in book_columns(handbook_feature_set()))])
        relation = batch.relation(ordered=False).query(
            "frame", f"SELECT {select} FROM frame WHERE {period.output_filter()} ORDER BY TRANSACTION_ID")
        assert relation is not None  # a SELECT always gives a relation
        frame: pd.DataFrame = relation.df()
    finally:
        batch.close()
    ts = frame["ts"].to_numpy(dtype=np.int64)
    if feature_set.attributes or feature_set.derived:
        keys = frame["order_key"].tolist()
        values = [frame[a.attr].astype("float64").tolist() for a in feature_set.attributes]
        attributes = dict(zip(keys, zip(*values, strict=True), strict=True)) if values else {}
        base = frame[["order_key", *feature_set.spec_names]].assign(
            event_time=pd.to_datetime(ts, unit="us", utc=True))
        complete = complete_frame(base, feature_set, attributes=attributes, progress=progress)
        extra = [a.name for a in feature_set.attributes] + [d.name for d in feature_set.derived]
        for name in extra:
            frame[name] = complete[name].to_numpy()
    out = pd.DataFrame({"TRANSACTION_ID": frame["TRANSACTION_ID"].to_numpy(dtype=np.int64),
                        "TX_DAY": (ts // _US_PER_DAY).astype("datetime64[D]")})
    out = out.merge(labels.astype({"TRANSACTION_ID": "int64"}), on="TRANSACTION_ID", how="left", validate="1:1")
    body = pd.DataFrame({name: frame[name].to_numpy(dtype=np.float64) for name in inputs})
    result = pd.concat([out, body], axis=1)
    return HandbookDataset(result, inputs, feature_set.hash())


# ------------------------------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class ModelParams:
    """LightGBM hyper-parameters of one grid point (binary objective, bagging 0.8 every iteration).

    >>> ModelParams().summary()
    'leaves=15 min_leaf=50 ff=0.7 l2=0.0 lr=0.05 rounds=300'
    """

    num_leaves: int = 15
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.7
    lambda_l2: float = 0.0
    learning_rate: float = 0.05
    num_boost_round: int = 300

    def summary(self) -> str:
        """One short line naming every value."""
        return (f"leaves={self.num_leaves} min_leaf={self.min_data_in_leaf} ff={self.feature_fraction} "
                f"l2={self.lambda_l2} lr={self.learning_rate} rounds={self.num_boost_round}")

    def booster_params(self, *, seed: int, threads: int) -> dict[str, Any]:
        """The ``lightgbm.train`` parameters: deterministic for a given seed and thread count."""
        return {"objective": "binary", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "min_data_in_leaf": self.min_data_in_leaf, "feature_fraction": self.feature_fraction,
                "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": self.lambda_l2, "seed": seed,
                "deterministic": True, "force_col_wise": True, "num_threads": threads, "verbosity": -1}


def grid(*, num_leaves: Iterable[int], min_data_in_leaf: Iterable[int], num_boost_round: Iterable[int],
         lambda_l2: Iterable[float] = (0.0,), feature_fraction: float = 0.7,
         learning_rate: float = 0.05) -> tuple[ModelParams, ...]:
    """Every combination, rounds varying fastest (one model per other combination serves every round count).

    >>> len(grid(num_leaves=[7, 15], min_data_in_leaf=[50], num_boost_round=[100, 300], lambda_l2=[0.0, 10.0]))
    8
    """
    l2s = tuple(lambda_l2)
    return tuple(ModelParams(num_leaves=nl, min_data_in_leaf=md, feature_fraction=feature_fraction, lambda_l2=l2,
                             learning_rate=learning_rate, num_boost_round=r)
                 for nl in num_leaves for md in min_data_in_leaf for l2 in l2s for r in num_boost_round)


#: The grid searched on the validation folds: 24 points, 8 models per fold. Training sets are
#: small (about 600 frauds a week), so it spans regularised trees (large leaves, L2) and short
#: runs; learning rate x rounds from 2.5 to 10.
DEFAULT_GRID: tuple[ModelParams, ...] = grid(num_leaves=(15, 31), min_data_in_leaf=(100, 200), lambda_l2=(0.0, 10.0),
                                             num_boost_round=(50, 100, 200))
#: One small point, for smoke tests on a slice of the data.
QUICK_GRID: tuple[ModelParams, ...] = (ModelParams(num_leaves=7, min_data_in_leaf=20, num_boost_round=50),)


@dataclass(frozen=True, slots=True)
class Scores:
    """The book's three metrics on one test set (or their mean / std over folds)."""

    auc: float
    ap: float
    cp100: float

    def as_dict(self) -> dict[str, float]:
        """``{"auc": ..., "ap": ..., "cp100": ...}``."""
        return {"auc": self.auc, "ap": self.ap, "cp100": self.cp100}


def _stat(values: Sequence[float], how: Callable[[np.ndarray], Any]) -> float:
    array = np.asarray(values, dtype=np.float64)
    return float(how(array)) if len(array) else math.nan


def mean_scores(scores: Sequence[Scores]) -> Scores:
    """Mean of each metric over folds.

    >>> mean_scores([Scores(0.5, 0.25, 0.0), Scores(1.0, 0.75, 0.5)])
    Scores(auc=0.75, ap=0.5, cp100=0.25)
    """
    return Scores(*(_stat([getattr(s, m) for s in scores], np.mean) for m in ("auc", "ap", "cp100")))


def std_scores(scores: Sequence[Scores]) -> Scores:
    """Population standard deviation of each metric over folds (``ddof=0``, as the book's grid search).

    >>> std_scores([Scores(0.5, 0.5, 0.25), Scores(0.5, 0.5, 0.75)])
    Scores(auc=0.0, ap=0.0, cp100=0.25)
    """
    return Scores(*(_stat([getattr(s, m) for s in scores], np.std) for m in ("auc", "ap", "cp100")))


@dataclass(frozen=True, slots=True)
class FoldResult:
    """One train / test split and the model's scores on it.

    Attributes:
        plan: the split's days.
        train_rows: training transactions. train_frauds: frauds among them.
        test_rows: test transactions (known-compromised customers removed). test_frauds: frauds among them.
        scores: AUC ROC, average precision, card precision@100.
        cp_per_day: card precision@100 of each test day.
    """

    plan: SplitPlan
    train_rows: int
    train_frauds: int
    test_rows: int
    test_frauds: int
    scores: Scores
    cp_per_day: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ProtocolResult:
    """The model on every test fold of one protocol.

    Attributes:
        protocol: ``ch3`` or ``ch5``.
        folds: one result per split, in the protocol's order.
        params: the hyper-parameters used (chosen on the validation folds).
        seconds: wall time of training and scoring the folds.
    """

    protocol: Protocol
    folds: tuple[FoldResult, ...]
    params: ModelParams
    seconds: float

    @property
    def mean(self) -> Scores:
        """Mean over the folds."""
        return mean_scores([f.scores for f in self.folds])

    @property
    def std(self) -> Scores:
        """Population standard deviation over the folds (0 for one fold)."""
        return std_scores([f.scores for f in self.folds])


@dataclass(frozen=True, slots=True)
class Selection:
    """Model selection on the validation folds.

    Attributes:
        params: the grid point with the highest mean validation average precision
            (the first such point on ties).
        candidates: every grid point with its mean validation scores, in grid order.
        seconds: wall time of the search.
    """

    params: ModelParams
    candidates: tuple[tuple[ModelParams, Scores], ...]
    seconds: float


@dataclass(frozen=True, slots=True)
class PublishedRow:
    """One of the book's published results.

    Attributes:
        protocol: ``ch3`` (its baseline test set) or ``ch5`` (test mean over 4 folds).
        model: the book's model name.
        scores: test AUC ROC, average precision, card precision@100.
        std: their standard deviation over folds (``ch5``), else ``None``.
        note: how the row was chosen.
    """

    protocol: Protocol
    model: str
    scores: Scores
    std: Scores | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class HandbookResult:
    """Everything one ``evaluate`` run measured.

    Attributes:
        data: the transactions file.
        features: which feature set. inputs: the model input columns.
        feature_set_hash: hash of the computed specs.
        seed: LightGBM seed.
        selection: the validation search.
        protocols: one result per protocol evaluated.
        published: the book's rows for those protocols.
        feature_seconds: wall time of computing the features.
        seconds: wall time of the whole run.
    """

    data: Path
    features: Features
    inputs: tuple[str, ...]
    feature_set_hash: str
    seed: int
    selection: Selection
    protocols: tuple[ProtocolResult, ...]
    published: tuple[PublishedRow, ...] = field(default=())
    feature_seconds: float = 0.0
    seconds: float = 0.0


def _train(x: np.ndarray, y: np.ndarray, params: ModelParams, *, seed: int, threads: int) -> lgb.Booster:
    dataset = lgb.Dataset(x, label=y, free_raw_data=True)
    return lgb.train(params.booster_params(seed=seed, threads=threads), dataset,
                     num_boost_round=params.num_boost_round)


def _score(y: np.ndarray, score: np.ndarray, days: np.ndarray, customers: np.ndarray) -> tuple[Scores, tuple[float,
                                                                                                             ...]]:
    cp = card_precision_top_k(y, score, days, customers, k=TOP_K)
    return Scores(roc_auc(y, score), pr_auc(y, score), cp.mean), cp.per_day


def _fold_predictions(dataset: HandbookDataset, plan: SplitPlan, variants: Sequence[ModelParams], *,
                      seed: int, threads: int) -> tuple[list[tuple[Scores, tuple[float, ...]]], FoldResult]:
    """Train once with the most rounds of ``variants`` (same tree parameters) and score each round count."""
    train, test = dataset.split(plan)
    columns = list(dataset.features)
    y = dataset.frame["TX_FRAUD"].to_numpy(dtype=np.int8)
    y_train, y_test = y[train], y[test]
    if len(train) == 0 or y_train.min(initial=0) == y_train.max(initial=0):
        raise InvalidInputError.must("data", f"transactions of both classes in the training week from "
                                     f"{plan.start.isoformat()}", f"{len(train)} rows, {int(y_train.sum())} frauds")
    longest = max(variants, key=lambda p: p.num_boost_round)
    booster = _train(dataset.frame.iloc[train][columns].to_numpy(dtype=np.float64), y_train, longest, seed=seed,
                     threads=threads)
    x_test = dataset.frame.iloc[test][columns].to_numpy(dtype=np.float64)
    days, customers = dataset.days()[test], dataset.frame["CUSTOMER_ID"].to_numpy()[test]
    scored = []
    for params in variants:
        score = booster.predict(x_test, num_iteration=params.num_boost_round)
        scored.append(_score(y_test, np.asarray(score, dtype=np.float64), days, customers))
    last = scored[variants.index(longest)]
    fold = FoldResult(plan, len(train), int(y_train.sum()), len(test), int(y_test.sum()), last[0], last[1])
    return scored, fold


def _tree_key(params: ModelParams) -> ModelParams:
    return replace(params, num_boost_round=0)


def select_params(dataset: HandbookDataset, candidates: Sequence[ModelParams], *, seed: int, threads: int = 1,
                  plans: Sequence[SplitPlan] | None = None, progress: Progress | None = None) -> Selection:
    """Pick the grid point with the best mean average precision over the validation folds.

    Grid points that differ only in ``num_boost_round`` share one model per fold (scored
    at each round count), so the search costs one fit per tree configuration and fold.
    """
    if not candidates:
        raise InvalidInputError.must("grid", "at least one grid point", 0)
    started = time.perf_counter()
    folds = tuple(plans) if plans is not None else validation_plans()
    groups: dict[ModelParams, list[int]] = {}
    for i, params in enumerate(candidates):
        groups.setdefault(_tree_key(params), []).append(i)
    per_point: list[list[Scores]] = [[] for _ in candidates]
    total, done = len(groups) * len(folds), 0
    for members in groups.values():
        variants = [candidates[i] for i in members]
        for plan in folds:
            scored, _ = _fold_predictions(dataset, plan, variants, seed=seed, threads=threads)
            for i, (scores, _) in zip(members, scored, strict=True):
                per_point[i].append(scores)
            done += 1
            if progress is not None:
                progress("select parameters on validation folds", done, total)
    means = [mean_scores(s) for s in per_point]
    best = max(range(len(candidates)), key=lambda i: (_finite(means[i].ap), -i))
    return Selection(candidates[best], tuple(zip(candidates, means, strict=True)), time.perf_counter() - started)


def _finite(value: float) -> float:
    return value if not math.isnan(value) else -math.inf


def run_protocol(dataset: HandbookDataset, protocol: Protocol, params: ModelParams, *, seed: int, threads: int = 1,
                 progress: Progress | None = None) -> ProtocolResult:
    """Train and test ``params`` on every split of ``protocol``."""
    started = time.perf_counter()
    plans = protocol_plans(protocol)
    folds = []
    for done, plan in enumerate(plans, start=1):
        _, fold = _fold_predictions(dataset, plan, [params], seed=seed, threads=threads)
        folds.append(fold)
        if progress is not None:
            progress(f"{protocol.value} test folds", done, len(plans))
    return ProtocolResult(protocol, tuple(folds), params, time.perf_counter() - started)


# --------------------------------------------------------------------------------------- published results


def read_published(folder: Path, protocols: Iterable[Protocol] = tuple(Protocol)) -> tuple[PublishedRow, ...]:
    """The book's published rows for ``protocols`` from ``published_results/*.csv``.

    ``ch3``: the test rows of ``ch3_baseline_modeling.csv``. ``ch5``: for every model
    class of ``ch5_model_selection_all_parameters.csv``, each metric's test mean and std
    at the parameters with the best validation value of that metric (the book's own
    summary, so the three figures of a row may come from different parameters).
    """
    wanted = set(protocols)
    rows: list[PublishedRow] = []
    try:
        if Protocol.CH3 in wanted:
            ch3 = pd.read_csv(folder / "ch3_baseline_modeling.csv")
            for _, r in ch3[ch3["set"] == "test"].iterrows():
                rows.append(PublishedRow(Protocol.CH3, str(r["model"]),
                                         Scores(float(r["AUC ROC"]), float(r["Average precision"]),
                                                float(r["Card Precision@100"]))))
        if Protocol.CH5 in wanted:
            ch5 = pd.read_csv(folder / "ch5_model_selection_all_parameters.csv")
            metrics = ("AUC ROC", "Average precision", "Card Precision@100")
            for model, group in ch5.groupby("Model class", sort=True):
                best = [group.loc[group[f"{m} Validation"].idxmax()] for m in metrics]
                means = Scores(*(float(b[f"{m} Test"]) for b, m in zip(best, metrics, strict=True)))
                stds = Scores(*(float(b[f"{m} Test Std"]) for b, m in zip(best, metrics, strict=True)))
                chosen = "; ".join(f"{label} {b['Parameters summary']}"
                                   for label, b in zip(("AUC", "AP", "CP"), best, strict=True))
                rows.append(PublishedRow(Protocol.CH5, str(model), means, stds, f"best val. per metric ({chosen})"))
    except (OSError, KeyError, ValueError) as e:
        raise InvalidInputError.must("published", "the handbook's published_results folder (ch3_baseline_modeling.csv, "
                                     "ch5_model_selection_all_parameters.csv)", f"{folder}: {e}") from e
    return tuple(rows)


# ------------------------------------------------------------------------------------------------ evaluate


def dataset_days(protocols: Iterable[Protocol]) -> tuple[date, date]:
    """First and last day the protocols (and the validation folds) need rows for.

    >>> [d.isoformat() for d in dataset_days([Protocol.CH3])]
    ['2018-06-20', '2018-08-14']
    >>> dataset_days([Protocol.CH5])[1].isoformat()
    '2018-09-04'
    """
    plans = [*validation_plans(), *(p for protocol in protocols for p in protocol_plans(protocol))]
    return min(p.start for p in plans), max(p.last_test_day for p in plans)


def evaluate(data: Path, *, protocols: Sequence[Protocol] = tuple(Protocol), features: Features = Features.PLUS,
             candidates: Sequence[ModelParams] = DEFAULT_GRID, seed: int = 7, threads: int = 1,
             published: Path | None = None, progress: Progress | None = None) -> HandbookResult:
    """Run the book's protocols: features, model selection on the validation folds, then the test folds.

    Args:
        data: ``transactions_raw.csv.gz`` of the handbook.
        protocols: which protocols to report (model selection runs once for all).
        features: ``book`` or ``plus``.
        candidates: the hyper-parameter grid.
        seed: LightGBM seed (bagging and feature sampling).
        threads: LightGBM threads (results are repeatable for a given seed and count). One by
            default: the training sets are small (~70k rows), and on a machine whose cores are
            shared, OpenMP threads waiting for each other made a fit up to 10x slower than one thread.
        published: the book's ``published_results`` folder; default: beside ``data`` when it
            is there (a generated file, ``orderguard handbook simulate``, has none: no book rows).
        progress: ``(stage, done, total)`` callback.
    """
    if not protocols:
        raise InvalidInputError.must("protocol", "ch3, ch5 or all", "nothing")
    if not data.is_file():
        raise InvalidInputError.must("data", "an existing transactions_raw.csv(.gz) file", str(data))
    started = time.perf_counter()
    beside = data.parent / "published_results"
    if published is not None:
        book_rows = read_published(published, protocols)
    else:
        book_rows = read_published(beside, protocols) if beside.is_dir() else ()
    first, last = dataset_days(protocols)
    dataset = load_dataset(data, start=first, end=last, features=features, progress=progress)
    feature_seconds = time.perf_counter() - started
    selection = select_params(dataset, candidates, seed=seed, threads=threads, progress=progress)
    results = tuple(run_protocol(dataset, p, selection.params, seed=seed, threads=threads, progress=progress)
                    for p in dict.fromkeys(protocols))
    return HandbookResult(data, features, dataset.features, dataset.feature_set_hash, seed, selection, results,
                          book_rows, feature_seconds, time.perf_counter() - started)


# -------------------------------------------------------------------------------------------------- output


def _fmt(value: float, std: float | None = None) -> str:
    """``0.712`` or ``0.712 ± 0.010``; ``-`` when unknown.

    >>> _fmt(0.71234, 0.0101), _fmt(float("nan"))
    ('0.712 ± 0.010', '-')
    """
    if math.isnan(value):
        return "-"
    return f"{value:.3f}" if std is None or math.isnan(std) else f"{value:.3f} ± {std:.3f}"


def _span(plan: SplitPlan) -> str:
    return (f"train {plan.start:%m-%d}..{plan.last_train_day:%m-%d}, "
            f"test {plan.first_test_day:%m-%d}..{plan.last_test_day:%m-%d}")


def result_table(result: HandbookResult) -> Table:
    """Our rows beside the book's published ones, per protocol (values: mean ± std over folds)."""
    table = Table("protocol", "model", "AUC ROC", "Average precision", "Card Precision@100", "notes",
                  title="Fraud-detection handbook benchmark (Le Borgne et al., 2022)")
    model = f"orderguard LightGBM ({result.features.value}, {len(result.inputs)} features)"
    for run in result.protocols:
        several = len(run.folds) > 1
        mean, std = run.mean, run.std
        table.add_row(run.protocol.value, f"[bold]{model}[/bold]",
                      *(_fmt(getattr(mean, m), getattr(std, m) if several else None) for m in ("auc", "ap", "cp100")),
                      f"{run.seconds:.0f} s")
        if several:
            for i, fold in enumerate(run.folds):
                table.add_row("", f"  fold {i}: {_span(fold.plan)}",
                              *(_fmt(getattr(fold.scores, m)) for m in ("auc", "ap", "cp100")),
                              f"{fold.test_rows:,} tx / {fold.test_frauds} frauds", style="dim")
        for row in result.published:
            if row.protocol is run.protocol:
                table.add_row("", f"book: {row.model}",
                              *(_fmt(getattr(row.scores, m), getattr(row.std, m) if row.std is not None else None)
                                for m in ("auc", "ap", "cp100")), row.note)
        table.add_section()
    return table


def summary_lines(result: HandbookResult) -> list[str]:
    """The lines printed under the table: selection, targets, timings."""
    lines = [f"LightGBM parameters chosen on the validation folds (mean AP {_fmt(_selected(result).ap)}, "
             f"{len(result.selection.candidates)} grid points, {result.selection.seconds:.0f} s): "
             f"{result.selection.params.summary()}"]
    for run in result.protocols:
        if run.protocol is Protocol.CH5:
            mean = run.mean
            reached = mean.ap > BOOK_BEST_AP and mean.cp100 > BOOK_BEST_CP100
            lines.append(f"ch5 target (the book's best on this protocol): AP > {BOOK_BEST_AP}, "
                         f"CP@100 > {BOOK_BEST_CP100}: {'reached' if reached else 'not reached'} "
                         f"(AP {mean.ap:.3f}, CP@100 {mean.cp100:.3f})")
    lines.append(f"features {result.feature_seconds:.0f} s, total {result.seconds:.0f} s; seed {result.seed}; "
                 f"feature set {result.feature_set_hash}")
    return lines


def _selected(result: HandbookResult) -> Scores:
    for params, scores in result.selection.candidates:
        if params == result.selection.params:
            return scores
    return Scores(math.nan, math.nan, math.nan)


def format_result(result: HandbookResult, *, width: int = 200) -> str:
    """The table and summary lines as plain text (for logs and MLflow artifacts)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(result_table(result))
    for line in summary_lines(result):
        console.print(line, highlight=False)
    return buffer.getvalue()


def mlflow_payload(result: HandbookResult) -> tuple[dict[str, str | float | int], dict[str, float], str]:
    """``(params, metrics, table_text)`` of a run, ready for an MLflow run (NaN metrics left out).

    Metric names: ``{protocol}_{auc|ap|cp100}_{mean|std}``, ``{protocol}_fold{i}_{metric}``,
    ``validation_{metric}`` (the chosen point), ``seconds_*``.
    """
    chosen = result.selection.params
    params: dict[str, str | float | int] = {
        "benchmark": "handbook", "data": result.data.name, "features": result.features.value,
        "n_features": len(result.inputs), "feature_set_hash": result.feature_set_hash, "seed": result.seed,
        "protocols": ",".join(p.protocol.value for p in result.protocols),
        "grid_points": len(result.selection.candidates),
        **{f"lgbm_{name}": value for name, value in _param_items(chosen).items()},
    }
    metrics: dict[str, float] = {}
    for run in result.protocols:
        for name, value in run.mean.as_dict().items():
            metrics[f"{run.protocol.value}_{name}_mean"] = value
        for name, value in run.std.as_dict().items():
            metrics[f"{run.protocol.value}_{name}_std"] = value
        for i, fold in enumerate(run.folds):
            for name, value in fold.scores.as_dict().items():
                metrics[f"{run.protocol.value}_fold{i}_{name}"] = value
        metrics[f"seconds_{run.protocol.value}"] = run.seconds
    for name, value in _selected(result).as_dict().items():
        metrics[f"validation_{name}"] = value
    metrics["seconds_features"] = result.feature_seconds
    metrics["seconds_selection"] = result.selection.seconds
    metrics["seconds_total"] = result.seconds
    clean = {k: float(v) for k, v in metrics.items() if not math.isnan(v)}
    return params, clean, format_result(result)


def _param_items(params: ModelParams) -> Mapping[str, float | int]:
    return {"num_leaves": params.num_leaves, "min_data_in_leaf": params.min_data_in_leaf,
            "feature_fraction": params.feature_fraction, "lambda_l2": params.lambda_l2,
            "learning_rate": params.learning_rate, "num_boost_round": params.num_boost_round}
