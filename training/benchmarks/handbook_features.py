"""The handbook's 15 baseline features, computed by the feature store from FeatureSpecs.

The public benchmark set (``../shared/data/handbook/``, the simulated card transactions
of *Reproducible Machine Learning for Credit Card Fraud Detection - Practical Handbook*,
Le Borgne et al., 2022) is mapped onto orderguard's facts, and the book's features are
declared as FeatureSpecs in ``handbook.yaml`` and computed by ``features.batch`` - the
same engine and SQL that build the shop's training frames. Nothing here computes a
window; this module only maps the data in and renames/combines spec outputs.

**Mapping.** ``CUSTOMER_ID`` → ``user``, ``TERMINAL_ID`` → ``device``,
``TX_AMOUNT`` → the order's ``paid_fen`` (``round(amount * 100)``),
``TRANSACTION_ID`` → the order key, and ``TX_FRAUD = 1`` → a reviewer label
``confirmed_fraud`` known :data:`LABEL_DELAY` (7 days) after the transaction: a ``label``
fact at ``labeled_at = tx time + 7 d`` carrying the transaction's user and device.
``TX_DATETIME`` is a naive timestamp; it is read as UTC, so every window is an exact
multiple of 86,400 s (no daylight-saving day is 23 or 25 hours long).

**Features** (windows per ``features.windows``: ``(t - o - w, t - o]``):

* customer, ``n`` ∈ {1, 7, 30}: ``count`` of orders and ``mean`` of ``paid_fen`` by user
  over ``(t - n d, t]``, the current transaction included;
* terminal: ``NB_TX`` is the ``count`` of orders by device over ``n d`` with offset
  ``7d``, i.e. ``(t - (n+7) d, t - 7 d]``; its frauds are a plain ``count`` of
  ``confirmed_fraud`` label facts by device over ``(t - n d, t]``, read by
  ``labeled_at ≤ t``. Because every label is stamped exactly 7 d after its transaction,
  labels with ``labeled_at`` in ``(t - n d, t]`` are exactly the frauds among the
  transactions in ``(t - (n+7) d, t - 7 d]`` - the book's numerator - and this is how
  orderguard's label-derived features work anyway (labels are facts with their own
  time; a feature never sees a label before it is known).

**Post-processing** (:func:`book_columns`, one SQL select over the frame, nothing else):
``TX_AMOUNT = paid_fen / 100``; ``TX_DURING_WEEKEND`` = weekday is Saturday or Sunday;
``TX_DURING_NIGHT`` = hour ≤ 6 (00:00-06:59); ``CUSTOMER_ID_AVG_AMOUNT_*`` = mean fen
/ 100; ``TERMINAL_ID_RISK_* = frauds / NB_TX``, 0 when ``NB_TX`` is 0 (the book's
``fillna(0)``); counts are renamed.

**Ties.** The book computes the customer windows with pandas ``rolling`` on rows sorted
by time, whose windows end at the *current row*: of two transactions of one customer
in the same second, the first does not count the second. orderguard's windows include
every fact at ``t`` (``features.windows``). ``TX_DATETIME`` has one-second resolution and
``TRANSACTION_ID`` is the book's canonical order, so the k-th transaction (k = 0, 1, …)
of a customer within one second is stamped k microseconds into that second: the
peer-inclusive windows then count exactly the earlier peers, as the book does. Only
same-customer, same-second transactions move (29 in the published file), by under a
millisecond, which changes no weekday, hour or day boundary; a result could differ
from the book's only if such a moved transaction were exactly a whole window length
(1, 7, 8, 14, 30 or 37 days, to the second) away from another of its customer or
terminal, which ``tests/training/test_handbook_features.py`` checks does not happen.

Output: ``TRANSACTION_ID`` plus the book's 15 columns (:data:`BOOK_COLUMNS`, in the
book's order), one row per transaction, sorted by ``TRANSACTION_ID``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from features.batch import BatchFeatures, Progress
from features.facts import FactKind
from features.specs import FeatureSet
from features.windows import to_us
from orderguard.errors import ConfigError, InvalidInputError

#: The feature set, shipped next to this module (package data).
HANDBOOK_SPECS_PATH = Path(__file__).with_name("handbook.yaml")
#: When a transaction's fraud label becomes known: the book's delay period.
LABEL_DELAY = timedelta(days=7)
#: The book's window lengths in days.
WINDOW_DAYS: tuple[int, ...] = (1, 7, 30)
#: The book's 15 feature columns, in the book's order.
BOOK_COLUMNS: tuple[str, ...] = (
    "TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT",
    *(f"CUSTOMER_ID_{what}_{n}DAY_WINDOW" for n in WINDOW_DAYS for what in ("NB_TX", "AVG_AMOUNT")),
    *(f"TERMINAL_ID_{what}_{n}DAY_WINDOW" for n in WINDOW_DAYS for what in ("NB_TX", "RISK")),
)
#: Columns of the output file.
OUTPUT_COLUMNS: tuple[str, ...] = ("TRANSACTION_ID", *BOOK_COLUMNS)

_US_PER_DAY = 86_400 * 10**6


def handbook_feature_set() -> FeatureSet:
    """The bundled FeatureSpecs of the handbook's window features (``handbook.yaml``)."""
    return FeatureSet.from_file(HANDBOOK_SPECS_PATH)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def book_columns(specs: FeatureSet) -> tuple[tuple[str, str], ...]:
    """``(book column, SQL expression)`` pairs over the frame of :class:`~features.batch.BatchFeatures`.

    The frame's columns are ``order_key``, ``ts`` (microseconds, UTC), the carried
    ``paid_fen`` and one column per spec. Every spec the expressions read must be in
    ``specs`` and every spec must be read, else a ``ConfigError`` (a renamed window in
    the YAML would otherwise silently drop or misplace a column).

    >>> dict(book_columns(handbook_feature_set()))["TERMINAL_ID_RISK_7DAY_WINDOW"]
    'CASE WHEN "count_orders_by_device_7d_lag7d" > 0 THEN "count_labels_fraud_by_device_7d" / \
"count_orders_by_device_7d_lag7d" ELSE 0.0 END'
    """
    lag = f"lag{LABEL_DELAY.days}d"
    time = "make_timestamp(ts)"
    pairs: list[tuple[str, str]] = [
        ("TX_AMOUNT", "paid_fen / 100.0"),
        ("TX_DURING_WEEKEND", f"CAST(isodow({time}) >= 6 AS BIGINT)"),
        ("TX_DURING_NIGHT", f"CAST(hour({time}) <= 6 AS BIGINT)"),
    ]
    used: list[str] = []
    for n in WINDOW_DAYS:
        count, mean = f"count_orders_by_user_{n}d", f"mean_paid_fen_by_user_{n}d"
        pairs += [(f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW", _q(count)),
                  (f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW", f"{_q(mean)} / 100.0")]
        used += [count, mean]
    for n in WINDOW_DAYS:
        count, frauds = f"count_orders_by_device_{n}d_{lag}", f"count_labels_fraud_by_device_{n}d"
        pairs += [(f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW", _q(count)),
                  (f"TERMINAL_ID_RISK_{n}DAY_WINDOW",
                   f"CASE WHEN {_q(count)} > 0 THEN {_q(frauds)} / {_q(count)} ELSE 0.0 END")]
        used += [count, frauds]
    missing = [name for name in used if name not in specs.names]
    unused = [name for name in specs.names if name not in used]
    if missing or unused:
        problem = {k: v for k, v in (("missing", missing), ("unused", unused)) if v}
        raise ConfigError.must("features", "the handbook's 12 window specs", problem)
    assert tuple(name for name, _ in pairs) == BOOK_COLUMNS
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class Period:
    """Which transactions get a row, and which must be read to compute them.

    Attributes:
        since_us: first output instant (microseconds, UTC), or ``None`` for all.
        until_us: end of output, exclusive (microseconds, UTC), or ``None`` for all.
        history_us: how far before ``since_us`` transactions are still read: the
            longest reach of a window (``offset + window``), plus the label delay for
            windows over labels (a label is stamped one delay after its transaction).
    """

    since_us: int | None
    until_us: int | None
    history_us: int

    @classmethod
    def of(cls, specs: FeatureSet, *, start: date | None, end: date | None) -> Period:
        """Output days ``start`` … ``end`` (both inclusive, UTC; ``None`` = open).

        >>> p = Period.of(handbook_feature_set(), start=date(2018, 5, 1), end=date(2018, 5, 1))
        >>> (p.until_us - p.since_us) // 86_400_000_000, p.history_us // 86_400_000_000
        (1, 37)
        """
        if start is not None and end is not None and end < start:
            raise InvalidInputError.must("end", f"on or after start {start.isoformat()}", end.isoformat())
        delay = LABEL_DELAY // timedelta(microseconds=1)
        history = max((s.frame.span_us + (delay if s.kind is FactKind.LABEL else 0) for s in specs), default=0)
        since = to_us(datetime(start.year, start.month, start.day, tzinfo=UTC)) if start is not None else None
        until = (to_us(datetime(end.year, end.month, end.day, tzinfo=UTC)) + _US_PER_DAY
                 if end is not None else None)
        return cls(since, until, history)

    def read_filter(self) -> str:
        """SQL condition on ``ts`` (whole-second microseconds) selecting the transactions to read."""
        conditions = ["TRUE"]
        if self.since_us is not None:
            conditions.append(f"ts > {self.since_us - self.history_us}")
        if self.until_us is not None:
            conditions.append(f"ts < {self.until_us}")
        return " AND ".join(conditions)

    def output_filter(self) -> str:
        """SQL condition on the frame's ``ts`` selecting the output rows."""
        conditions = ["TRUE"]
        if self.since_us is not None:
            conditions.append(f"ts >= {self.since_us}")
        if self.until_us is not None:
            conditions.append(f"ts < {self.until_us}")
        return " AND ".join(conditions)


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _read_transactions(con: duckdb.DuckDBPyConnection, data: Path, period: Period) -> int:
    """Read the CSV into the temp table ``tx`` (only the columns the features use); returns its rows."""
    if not data.is_file():
        raise InvalidInputError.must("data", "an existing transactions_raw.csv(.gz) file", str(data))
    try:
        con.execute(f"""
            CREATE TEMP TABLE tx AS
            SELECT * FROM (
              SELECT CAST(TRANSACTION_ID AS BIGINT) AS id, CAST(CUSTOMER_ID AS BIGINT) AS customer,
                     CAST(TERMINAL_ID AS BIGINT) AS terminal, CAST(round(TX_AMOUNT * 100) AS BIGINT) AS fen,
                     CAST(TX_FRAUD AS INTEGER) AS fraud,
                     epoch_us(CAST(TX_DATETIME AS TIMESTAMP)) AS ts
              FROM read_csv({_sql_path(data)}, header = true)
            ) WHERE {period.read_filter()}""")
    except duckdb.Error as e:
        raise InvalidInputError.must("data", "the handbook's transactions CSV (TRANSACTION_ID, TX_DATETIME, "
                                     "CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD, ...)",
                                     str(e).splitlines()[0]) from e
    row = con.execute("SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id IS NULL OR customer IS NULL "
                      "OR terminal IS NULL OR fen IS NULL OR fraud IS NULL OR ts IS NULL), "
                      "count(*) FILTER (WHERE fraud NOT IN (0, 1)), "
                      "count(*) FILTER (WHERE ts % 1000000 <> 0) FROM tx").fetchall()[0]
    rows, distinct, incomplete, bad_fraud, fractional = row
    if distinct != rows:
        raise InvalidInputError.must("data.TRANSACTION_ID", "unique", f"{rows - distinct} duplicate(s)")
    if incomplete:
        raise InvalidInputError.must("data", "complete rows", f"{incomplete} row(s) with empty fields")
    if bad_fraud:
        raise InvalidInputError.must("data.TX_FRAUD", "0 or 1", f"{bad_fraud} other value(s)")
    if fractional:  # the sub-second tie order needs the microseconds free (see the module docstring)
        raise InvalidInputError.must("data.TX_DATETIME", "whole seconds", f"{fractional} fractional value(s)")
    return int(rows)


def facts_sql() -> str:
    """The facts (facts-table layout of ``features.batch``) of the transactions in temp table ``tx``.

    One ``order`` fact per transaction at its time (plus the tie microseconds, see the
    module docstring) and one ``confirmed_fraud`` ``label`` fact per fraud, one label
    delay later. Keys are the book's integer ids (the engine compares them as text);
    ``fact_id`` is left out (the batch engine does not use identities: every row is a
    distinct fact).
    """
    delay_us = LABEL_DELAY // timedelta(microseconds=1)
    return f"""
        WITH peers AS (
          SELECT customer, ts FROM tx GROUP BY customer, ts HAVING count(*) > 1
        ), ties AS (
          SELECT id, row_number() OVER (PARTITION BY customer, ts ORDER BY id) - 1 AS tie
          FROM tx SEMI JOIN peers USING (customer, ts)
        ), timed AS (
          SELECT tx.id, tx.customer, tx.terminal, tx.fen, tx.fraud, tx.ts + coalesce(ties.tie, 0) AS ts
          FROM tx LEFT JOIN ties USING (id)
        )
        SELECT 'order' AS kind, ts, id AS e_order, customer AS e_user, terminal AS e_device,
               fen AS a_paid_fen, CAST(NULL AS VARCHAR) AS a_verdict
        FROM timed
        UNION ALL
        SELECT 'label', ts + {delay_us}, id, customer, terminal, NULL, 'confirmed_fraud'
        FROM timed WHERE fraud = 1"""


@contextmanager
def _book_frame(data: Path, *, start: date | None, end: date | None,
                progress: Progress | None) -> Iterator[duckdb.DuckDBPyRelation]:
    """The output rows as a lazy relation (valid inside the ``with``)."""
    feature_set = handbook_feature_set()
    columns = book_columns(feature_set)
    period = Period.of(feature_set, start=start, end=end)
    batch = BatchFeatures(feature_set, progress=progress, carry=("paid_fen",))
    try:
        with duckdb.connect() as reader:
            if progress is not None:
                progress("read transactions", 0, None)
            rows = _read_transactions(reader, data, period)
            if progress is not None:
                progress("read transactions", rows, rows)
            frauds = reader.execute("SELECT count(*) FROM tx WHERE fraud = 1").fetchall()[0][0]
            total = rows + int(frauds)
            batch.load_facts(reader.sql(facts_sql()), total=total)
        select = ",\n  ".join(["CAST(order_key AS BIGINT) AS TRANSACTION_ID",
                                *(f"{expr} AS {_q(name)}" for name, expr in columns)])
        book = batch.relation(ordered=False).query(
            "frame", f"SELECT\n  {select}\nFROM frame\nWHERE {period.output_filter()}\nORDER BY TRANSACTION_ID")
        assert book is not None  # a SELECT always gives a relation
        yield book
    finally:
        batch.close()


@dataclass(frozen=True, slots=True)
class HandbookRun:
    """What a run wrote.

    Attributes:
        path: the Parquet file.
        rows: transactions written (one row each).
    """

    path: Path
    rows: int


def write_handbook_features(data: Path, out: Path, *, start: date | None = None, end: date | None = None,
                            progress: Progress | None = None) -> HandbookRun:
    """Compute the book's 15 features of every transaction and write them to Parquet.

    Runs entirely in DuckDB/Arrow (``BatchFeatures.load_facts``): no Python object per
    transaction.

    Args:
        data: ``transactions_raw.csv.gz`` of the handbook (or a CSV with its columns).
        out: the Parquet file to write (``TRANSACTION_ID`` + :data:`BOOK_COLUMNS`).
        start: first day to output (UTC, inclusive); earlier transactions are still read
            as far back as the windows and the label delay reach.
        end: last day to output (UTC, inclusive).
        progress: ``(stage, done, total)`` callback, e.g. ``features.batch.rich_progress``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with _book_frame(data, start=start, end=end, progress=progress) as frame:
        if progress is not None:
            progress("compute features, write parquet", 0, 1)
        frame.write_parquet(str(out))
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT count(*) FROM read_parquet({_sql_path(out)})").fetchall()[0][0]
    if progress is not None:
        progress("compute features, write parquet", 1, 1)
    return HandbookRun(out, int(rows))


def handbook_features(data: Path, *, start: date | None = None, end: date | None = None,
                      progress: Progress | None = None) -> pd.DataFrame:
    """The same frame as :func:`write_handbook_features`, in memory (``TRANSACTION_ID`` + 15 columns)."""
    with _book_frame(data, start=start, end=end, progress=progress) as frame:
        result: pd.DataFrame = frame.df()
    return result
