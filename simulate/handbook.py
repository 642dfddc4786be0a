"""Card transactions in the fraud-detection handbook's format, generated the way its simulator does.

The handbook benchmark (``orderguard handbook features | evaluate``) reads the book's own
``transactions_raw.csv.gz``, a public file that is not part of the repository. This module
writes a file of the same shape - same columns, same calendar (from 2018-04-01), same three
fraud scenarios - from a seed, so the benchmark's code paths run on a fresh clone, and so
tests can hold exact expectations without the public file. It follows the book's generator
(chapter 2, "Transaction data simulator"):

* customers at random points of a 100 x 100 square, each with a mean amount (uniform
  5-100, standard deviation half of it) and a mean number of transactions per day
  (uniform 0-4); terminals at random points; a customer uses the terminals within
  ``radius`` of it;
* each day a Poisson number of transactions per customer, at a normal time of day around
  noon (times outside the day are dropped), amounts normal (negative ones redrawn
  uniformly below twice the mean);
* scenario 1: every amount above 220 is a fraud; scenario 2: compromised terminals - every
  transaction on the terminal in the next 28 days is a fraud; scenario 3: leaked cards -
  a third of the customer's transactions in the next 14 days become frauds with five
  times the amount.

The book compromises 2 of 10,000 terminals and 3 of 4,990 customers a day; the rates here
are per day too, drawn as Poisson counts, so a small population can be given a useful
number of frauds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from orderguard.errors import InvalidInputError

#: The file's columns, in the book's order.
COLUMNS = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_TIME_SECONDS",
           "TX_TIME_DAYS", "TX_FRAUD", "TX_FRAUD_SCENARIO")
#: The first day of the book's calendar.
BOOK_START = date(2018, 4, 1)
_DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class HandbookShape:
    """How big the generated data set is and how much fraud it holds.

    Attributes:
        seed: the only source of randomness; same shape, same rows.
        customers, terminals: population sizes (the book: 4,990 and 10,000).
        days: calendar days from ``start`` (the book: 183, 2018-04-01 ... 09-30).
        radius: a customer uses the terminals within this distance (the book: 5 on a
            100 x 100 square).
        compromised_terminals_per_day, leaked_cards_per_day: mean number of terminals
            (scenario 2) and customers (scenario 3) compromised each day.
    """

    seed: int = 7
    customers: int = 400
    terminals: int = 800
    days: int = 183
    start: date = BOOK_START
    radius: float = 10.0
    compromised_terminals_per_day: float = 0.25
    leaked_cards_per_day: float = 0.5

    def __post_init__(self) -> None:
        for name, most in (("customers", 50_000), ("terminals", 100_000), ("days", 3_660)):
            if not 1 <= getattr(self, name) <= most:
                raise InvalidInputError.must(name, f"between 1 and {most:,}", getattr(self, name))
        for name in ("radius", "compromised_terminals_per_day", "leaked_cards_per_day"):
            value = getattr(self, name)
            if not (value >= 0 and np.isfinite(value)):
                raise InvalidInputError.must(name, "a finite number >= 0", value)


def _transactions(shape: HandbookShape, rng: np.random.Generator) -> pd.DataFrame:
    """Genuine transactions, unsorted: customer, terminal, second of the period, amount."""
    n_c, n_t = shape.customers, shape.terminals
    customer_xy = rng.uniform(0, 100, (n_c, 2))
    terminal_xy = rng.uniform(0, 100, (n_t, 2))
    mean_amount = rng.uniform(5, 100, n_c)
    per_day = rng.uniform(0, 4, n_c)
    near = np.concatenate([np.hypot(*(block[:, None, :] - terminal_xy[None, :, :]).transpose(2, 0, 1)) < shape.radius
                           for block in np.array_split(customer_xy, max(1, n_c // 256))])
    counts = rng.poisson(np.broadcast_to(per_day, (shape.days, n_c)))  # (day, customer)
    day, customer = np.nonzero(counts)
    repeats = counts[day, customer]
    day, customer = np.repeat(day, repeats), np.repeat(customer, repeats)
    seconds = np.rint(rng.normal(_DAY_SECONDS / 2, 20_000, len(day))).astype(np.int64)
    amount = rng.normal(mean_amount[customer], mean_amount[customer] / 2)
    negative = amount < 0
    amount[negative] = rng.uniform(0, mean_amount[customer[negative]] * 2)
    pick = rng.random(len(day))
    keep = (seconds > 0) & (seconds < _DAY_SECONDS) & near[customer].any(axis=1)
    day, customer, seconds, amount, pick = day[keep], customer[keep], seconds[keep], amount[keep], pick[keep]
    # a uniformly chosen terminal among the customer's near ones: the k-th of its row of ``near``
    options = near.sum(axis=1)
    first = np.concatenate(([0], np.cumsum(options)[:-1]))
    near_terminals = np.nonzero(near)[1]  # row-major: grouped by customer, in customer order
    terminal = near_terminals[first[customer] + (pick * options[customer]).astype(np.int64)]
    return pd.DataFrame({"CUSTOMER_ID": customer, "TERMINAL_ID": terminal,
                         "TX_TIME_SECONDS": day.astype(np.int64) * _DAY_SECONDS + seconds,
                         "TX_AMOUNT": np.round(amount, 2)})


def _compromised(count_per_day: float, population: int, days: int, rng: np.random.Generator,
                 ) -> list[tuple[int, int]]:
    """``(day, member)`` compromise events: a Poisson number per day, members drawn without repeat that day."""
    events: list[tuple[int, int]] = []
    for day, n in enumerate(rng.poisson(count_per_day, days)):
        events.extend((day, int(m)) for m in rng.choice(population, min(int(n), population), replace=False))
    return events


def _rows_by(key: np.ndarray, size: int) -> list[np.ndarray]:
    """Row numbers per key value ``0 .. size - 1``, ascending (so a scenario's draws do not depend on memory layout)."""
    order = np.argsort(key, kind="stable")
    return np.split(order, np.searchsorted(key[order], np.arange(1, size)))


def _add_frauds(tx: pd.DataFrame, shape: HandbookShape, rng: np.random.Generator) -> None:
    """The book's three scenarios, applied in its order (a later scenario overwrites an earlier one)."""
    fraud = np.zeros(len(tx), dtype=np.int64)
    scenario = np.zeros(len(tx), dtype=np.int64)
    amount = tx["TX_AMOUNT"].to_numpy().copy()
    day = tx["TX_TIME_SECONDS"].to_numpy() // _DAY_SECONDS
    big = amount > 220
    fraud[big], scenario[big] = 1, 1
    by_terminal = _rows_by(tx["TERMINAL_ID"].to_numpy(), shape.terminals)
    for start, member in _compromised(shape.compromised_terminals_per_day, shape.terminals, shape.days, rng):
        rows = by_terminal[member]
        hit = rows[(day[rows] >= start) & (day[rows] < start + 28)]
        fraud[hit], scenario[hit] = 1, 2
    by_customer = _rows_by(tx["CUSTOMER_ID"].to_numpy(), shape.customers)
    for start, member in _compromised(shape.leaked_cards_per_day, shape.customers, shape.days, rng):
        rows = by_customer[member]
        rows = rows[(day[rows] >= start) & (day[rows] < start + 14)]
        leaked = rng.choice(rows, len(rows) // 3, replace=False) if len(rows) else rows
        amount[leaked] = np.round(amount[leaked] * 5, 2)
        fraud[leaked], scenario[leaked] = 1, 3
    tx["TX_AMOUNT"], tx["TX_FRAUD"], tx["TX_FRAUD_SCENARIO"] = amount, fraud, scenario


def handbook_transactions(shape: HandbookShape | None = None) -> pd.DataFrame:
    """The generated transactions in canonical order: ``TRANSACTION_ID`` follows time, as in the book's file."""
    shape = shape or HandbookShape()
    rng = np.random.default_rng(shape.seed)
    tx = _transactions(shape, rng)
    tx = tx.sort_values("TX_TIME_SECONDS", kind="stable").reset_index(drop=True)
    _add_frauds(tx, shape, rng)
    return with_calendar(tx, shape.start)


def with_calendar(tx: pd.DataFrame, start: date = BOOK_START) -> pd.DataFrame:
    """Renumber rows in time order and derive the calendar columns from ``TX_TIME_SECONDS``.

    Rows with the same second keep their order, so callers that add rows (say, a copy of a
    transaction exactly n days later) get the book's numbering back.
    """
    tx = tx.sort_values("TX_TIME_SECONDS", kind="stable").reset_index(drop=True)
    tx["TRANSACTION_ID"] = np.arange(len(tx), dtype=np.int64)
    tx["TX_DATETIME"] = pd.Timestamp(start) + pd.to_timedelta(tx["TX_TIME_SECONDS"], unit="s")
    tx["TX_TIME_DAYS"] = tx["TX_TIME_SECONDS"] // _DAY_SECONDS
    return tx[list(COLUMNS)]


def write_handbook_transactions(out: Path, shape: HandbookShape | None = None) -> int:
    """Write the generated transactions as CSV (gzip when ``out`` ends in ``.gz``); returns the row count."""
    tx = handbook_transactions(shape)
    out.parent.mkdir(parents=True, exist_ok=True)
    tx.to_csv(out, index=False, date_format="%Y-%m-%d %H:%M:%S", float_format="%.2f")
    return len(tx)
