"""The handbook's card precision@k, with its rule for cards already detected (pure).

A plain card precision@k scores every day on its own. The handbook's
``card_precision_top_k`` (Le Borgne et al., 2022, chapter 4.2) does one thing more: a
compromised card found in a day's top ``k`` is blocked, so it is removed from every
later test day, and the next days' top ``k`` can only be filled with cards not found
yet. Its published Card Precision@100 figures are computed that way, so the benchmark
uses this function to be comparable. (The shop's own evaluation measures orders, not
cards: precision and recall at the review desk's daily capacity, ``training.metrics``.)

Per day (days taken in increasing order): the transactions of cards not detected on
an earlier day are grouped by card; a card's score is its highest transaction score and
it is compromised if any of its transactions that day is a fraud; the ``k`` highest
cards are taken (ties: the lower card id first, so the figure is repeatable); the day's
precision is the number of compromised cards among them divided by ``k`` (not by the
number of cards when a day has fewer than ``k``, as the book does); those compromised
cards are detected from then on. The result is the mean over days.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orderguard.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class CardPrecision:
    """Card precision@k of one test period.

    Attributes:
        k: cards looked at per day.
        days: the days, in increasing order.
        per_day: precision of each day (compromised cards in the top ``k`` / ``k``).
        detected: compromised cards found on each day (removed from the later days).
        mean: mean of ``per_day``; NaN when there is no day.
    """

    k: int
    days: tuple[object, ...]
    per_day: tuple[float, ...]
    detected: tuple[int, ...]
    mean: float


def card_precision_top_k(y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray,
                         day: Sequence[object] | np.ndarray, card: Sequence[object] | np.ndarray, *,
                         k: int = 100, remove_detected: bool = True) -> CardPrecision:
    """The handbook's card precision@k (see the module docstring).

    Args:
        y_true: 1 for a fraudulent transaction, else 0.
        score: the model's score of each transaction (higher = more suspicious).
        day: the test day of each transaction (any sortable value, e.g. a ``date``).
        card: the card (customer) of each transaction.
        k: cards reviewed per day (the book's 100).
        remove_detected: drop cards detected on an earlier day (the book's default);
            ``False`` scores each day on its own.

    Card ``x`` is found on day 1 and is then out of day 2, where ``z`` takes its place:

    >>> r = card_precision_top_k([1, 0, 1, 1, 0], [0.9, 0.2, 0.8, 0.1, 0.3], [1, 1, 2, 2, 2],
    ...                          ["x", "y", "x", "z", "y"], k=1)
    >>> r.per_day, r.detected, r.mean
    ((1.0, 0.0), (1, 0), 0.5)
    """
    if k < 1:
        raise InvalidInputError.must("k", "at least 1", k)
    y = np.asarray(y_true, dtype=np.int8)
    s = np.asarray(score, dtype=np.float64)
    days_of = np.asarray(day)
    cards_of = np.asarray(card)
    if not (y.shape == s.shape == days_of.shape == cards_of.shape) or y.ndim != 1:
        raise InvalidInputError.must("score", f"one value per label, day and card ({y.shape[0]})",
                                     (s.shape, days_of.shape, cards_of.shape))
    frame = pd.DataFrame({"y": y, "s": s, "day": days_of, "card": cards_of})
    per_card = frame.groupby(["day", "card"], sort=True).agg(y=("y", "max"), s=("s", "max")).reset_index()
    found: set[object] = set()
    days: list[object] = []
    precisions: list[float] = []
    detected: list[int] = []
    for value, cards in per_card.groupby("day", sort=True):
        if remove_detected and found:
            cards = cards[~cards["card"].isin(list(found))]
        top = cards.sort_values(["s", "card"], ascending=[False, True], kind="stable").head(k)
        hits = top.loc[top["y"] == 1, "card"].tolist()
        days.append(value)
        precisions.append(len(hits) / k)
        detected.append(len(hits))
        found.update(hits)
    mean = float(np.mean(precisions)) if precisions else math.nan
    return CardPrecision(k, tuple(days), tuple(precisions), tuple(detected), mean)
