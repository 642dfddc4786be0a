"""What a backtest replays: a period's orders, their point-in-time features, outcomes and model probabilities.

Built once per backtest and shared by every policy compared on it, so live and candidate
are judged on exactly the same rows: the feature frame comes from the batch engine in one
pass (``features.derived.point_in_time_features``: DuckDB windows over the order log, each
row as of its order's creation, labels only where ``labeled_at <= t``), the model's
probabilities from one batch prediction of the whole frame.

**Which label counts.** The verdict in force *now* (the newest of each order's labels by
``orderguard.labels.current_labels``): a backtest asks how a policy does on what the team
knows today, not on what it knew when each order came in. (The features, by contrast,
read only labels known at each order's creation, as serving did.)

**How orders count** (:class:`Outcome`):

* ``fraud``: newest verdict ``confirmed_fraud``;
* ``honest``: newest verdict ``false_positive``;
* ``unlabelled``: no verdict, or ``needs_investigation`` (not a verdict on the order).

Precision reads labelled orders only (frauds among flagged frauds and flagged honest
orders): an unlabelled flagged order has not been judged and would otherwise count as a
false alarm. Recall is over frauds. The false-positive rate counts unlabelled orders as
honest (nearly all of them are: abuse is what reviewers label), so its denominator is
every order but the frauds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.derived import history_start, point_in_time_features
from features.specs import FeatureSet
from orderguard.clock import SHOP_TZ, shop_day
from orderguard.enrich import Gazetteer
from orderguard.errors import InvalidInputError
from orderguard.labels import current_labels
from orderguard.schema import Label, Order, Verdict
from training.dataset import feature_matrix

if TYPE_CHECKING:
    import lightgbm as lgb

    from orderguard.ingest.orderlog import OrderLog
    from orderguard.labels import LabelLog
    from scoring.blend_weights import BlendWeights

#: Default length of a backtest: the newest days of the order log.
DEFAULT_DAYS = 90


class Outcome(IntEnum):
    """What an order turned out to be, by the newest verdict known now (see the module docstring)."""

    UNLABELLED = -1
    HONEST = 0
    FRAUD = 1


@dataclass(frozen=True, slots=True)
class Period:
    """Orders created in ``[start, end)`` (UTC), whole Beijing calendar days.

    >>> p = Period.of_days(date(2026, 11, 1), date(2026, 11, 30))
    >>> p.start.isoformat(), p.days, p.first_day.isoformat(), p.last_day.isoformat()
    ('2026-10-31T16:00:00+00:00', 30, '2026-11-01', '2026-11-30')
    """

    start: datetime
    end: datetime

    @classmethod
    def of_days(cls, first: date, last: date) -> Period:
        """From Beijing midnight of ``first`` to Beijing midnight after ``last``."""
        if last < first:
            raise InvalidInputError.must("to", f"on or after --from ({first.isoformat()})", last.isoformat())
        start = datetime.combine(first, time(), tzinfo=SHOP_TZ)
        end = datetime.combine(last + timedelta(days=1), time(), tzinfo=SHOP_TZ)
        return cls(_utc(start), _utc(end))

    @classmethod
    def month(cls, text: str) -> Period:
        """``YYYY-MM`` as a period of whole days.

        >>> Period.month("2026-02").days
        28
        """
        try:
            first = date.fromisoformat(f"{text.strip()}-01")
        except ValueError as e:
            raise InvalidInputError(f"`--month` must be a month YYYY-MM; got {text[:20]!r}", field="month") from e
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return cls.of_days(first, following - timedelta(days=1))

    @property
    def first_day(self) -> date:
        return shop_day(self.start)

    @property
    def last_day(self) -> date:
        return shop_day(self.end - timedelta(microseconds=1))

    @property
    def days(self) -> int:
        """Calendar days covered (the divisor of every "per day" figure)."""
        return (self.last_day - self.first_day).days + 1


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def default_period(newest: datetime, *, days: int = DEFAULT_DAYS, first: date | None = None,
                   last: date | None = None) -> Period:
    """``days`` whole days ending on the Beijing day of ``newest`` (the newest order), unless bounds are given."""
    end_day = last or shop_day(newest)
    start_day = first or end_day - timedelta(days=days - 1)
    return Period.of_days(start_day, end_day)


@dataclass(frozen=True, slots=True)
class LiveModel:
    """The champion as serving runs it: its registry label, booster and learned blend weights."""

    version: str
    booster: lgb.Booster
    weights: BlendWeights | None


@dataclass(frozen=True, slots=True, eq=False)
class History:
    """The period's orders, one row each, in frame order (creation time, then order key).

    Attributes:
        period: the orders' creation window.
        frame: ``order_key``, ``event_time`` and one column per feature, as of each order's creation.
        feature_names: the feature columns.
        orders: the order of each row (judge needs it for allow and deny lists).
        outcome: :class:`Outcome` value per row.
        verdict: the newest verdict per row ("" when none).
        paid_fen: what the buyer paid, per row.
        day: Beijing calendar day of creation, per row.
        channel: channel per row.
        probability: the model's P(fraud) per row (None without a model).
        model: the model the probabilities came from.
    """

    period: Period
    frame: pd.DataFrame
    feature_names: tuple[str, ...]
    orders: tuple[Order, ...] = field(repr=False)
    outcome: np.ndarray = field(repr=False)
    verdict: tuple[str, ...] = field(repr=False)
    paid_fen: np.ndarray = field(repr=False)
    day: np.ndarray = field(repr=False)
    channel: np.ndarray = field(repr=False)
    probability: np.ndarray | None = field(default=None, repr=False)
    model: LiveModel | None = None

    def __len__(self) -> int:
        return len(self.orders)

    def vectors(self) -> list[dict[str, float]]:
        """Each row's features by name, as the served decision step reads them."""
        values = self.frame[list(self.feature_names)].to_numpy(dtype=np.float64, na_value=np.nan)
        names = self.feature_names
        return [dict(zip(names, row, strict=True)) for row in values.tolist()]


def outcomes(keys: Sequence[str], labels: Sequence[Label]) -> tuple[np.ndarray, tuple[str, ...]]:
    """The :class:`Outcome` and newest verdict of each order key (see the module docstring).

    >>> from datetime import UTC
    >>> from orderguard.schema import Channel, OrderKey
    >>> t = datetime(2026, 11, 1, tzinfo=UTC)
    >>> ls = [Label(OrderKey(Channel.JD, "1"), Verdict.CONFIRMED_FRAUD, t, "a"),
    ...       Label(OrderKey(Channel.JD, "1"), Verdict.FALSE_POSITIVE, t + timedelta(days=1), "a"),
    ...       Label(OrderKey(Channel.JD, "2"), Verdict.CONFIRMED_FRAUD, t, "a"),
    ...       Label(OrderKey(Channel.JD, "3"), Verdict.NEEDS_INVESTIGATION, t, "a")]
    >>> o, v = outcomes(["jd:1", "jd:2", "jd:3", "jd:4"], ls)
    >>> o.tolist(), v
    ([0, 1, -1, -1], ('false_positive', 'confirmed_fraud', 'needs_investigation', ''))
    """
    newest = {str(k): label.verdict for k, label in current_labels(labels).items()}
    value = {Verdict.CONFIRMED_FRAUD: Outcome.FRAUD, Verdict.FALSE_POSITIVE: Outcome.HONEST}
    verdicts = tuple(newest[k].value if k in newest else "" for k in keys)
    out = np.array([value.get(newest[k], Outcome.UNLABELLED) if k in newest else Outcome.UNLABELLED for k in keys],
                   dtype=np.int8)
    return out, verdicts


def batch_probability(booster: lgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """P(fraud) of every row in one native call, reading the booster's own columns by name (a feature the
    frame lacks is missing, as in serving); the same trees and iteration as the served single-row predictor."""
    names = list(booster.feature_name())
    present = frame.reindex(columns=names)
    matrix = feature_matrix(present, names)
    iteration = booster.best_iteration if booster.best_iteration > 0 else None
    return np.asarray(booster.predict(matrix, num_iteration=iteration), dtype=np.float64)


def build_history(orders: Sequence[Order], labels: Sequence[Label], feature_set: FeatureSet, *, period: Period,
                  model: LiveModel | None = None, gazetteer: Gazetteer | None = None,
                  memory_limit: str | None = None) -> History:
    """The period's rows from ``orders`` (every order that can matter: at least those created since
    :func:`features.derived.history_start` of the period) and every label known now."""
    placed = [o for o in orders if o.details.created_at < period.end]
    frame = point_in_time_features(placed, feature_set, labels=labels, gazetteer=gazetteer or Gazetteer.build(),
                                   since=period.start, memory_limit=memory_limit)
    by_key = {str(o.key): o for o in placed}
    keys = frame["order_key"].tolist()
    rows = tuple(by_key[k] for k in keys)
    outcome, verdict = outcomes(keys, labels)
    probability = batch_probability(model.booster, frame) if model is not None and len(frame) else None
    if model is not None and probability is None:
        probability = np.zeros(0, dtype=np.float64)
    return History(
        period=period, frame=frame, feature_names=tuple(feature_set.names), orders=rows, outcome=outcome,
        verdict=verdict, paid_fen=np.array([o.details.amounts.paid_fen for o in rows], dtype=np.int64),
        day=np.array([shop_day(o.details.created_at) for o in rows], dtype=object),
        channel=np.array([o.key.channel.value for o in rows], dtype=object), probability=probability, model=model)


def load_history(log: OrderLog, labels: LabelLog, feature_set: FeatureSet, *, period: Period,
                 model: LiveModel | None = None, memory_limit: str | None = None,
                 gazetteer: Gazetteer | None = None) -> History:
    """:func:`build_history` from the order log: the period's orders plus the history their windows reach."""
    orders = list(log.iter_orders(start=history_start(feature_set, period.start), end=period.end))
    return build_history(orders, list(labels.iter_labels()), feature_set, period=period, model=model,
                         memory_limit=memory_limit, gazetteer=gazetteer)


def newest_order_time(log: OrderLog) -> datetime | None:
    """Creation time of the newest order in the log (the default period ends on its day)."""
    import sqlalchemy as sa

    from orderguard.ingest.orderlog import ORDERS

    with log.engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(ORDERS.c.created_at))).scalar_one()
    if value is None:
        return None
    moment: datetime = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return moment
