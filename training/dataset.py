"""The training set: point-in-time features, targets as known at a cutoff, and a leak-free time split.

Features are rebuilt by the batch engine (``features.derived.point_in_time_features``),
one row per order as of its creation, from the orders of the order log created at or
before the cutoff; reviewer labels reach the label-derived features only when
``labeled_at <= cutoff`` (and, point-in-time, only those labelled by each row's own time).

Target policy (what each row learns from), all judged *as known at the cutoff*:

==========================================  ===========================================  ==============
order at the cutoff                         target                                       ``target_source``
==========================================  ===========================================  ==============
newest label ``confirmed_fraud``            1                                            ``label``
newest label ``false_positive``             0                                            ``label``
newest label ``needs_investigation``        left out (``drop``) or 1 (``positive``),     ``label``
                                            per ``settings.needs_investigation``
no label, created ``<= cutoff - maturity``  0: it had time to show abuse and did not     ``matured``
and no refund claim known at the cutoff
no label, younger than ``maturity``         left out: its outcome is not known yet       -
no label, with a refund claim               left out: a claim is not a verdict           -
created after the cutoff                    left out: not yet placed                     -
==========================================  ===========================================  ==============

"Newest label" is the one with the latest ``labeled_at <= cutoff`` (ties: reviewer id),
so a reviewer who changes their mind overrides the first verdict, but only from the
moment they did. Left-out orders are counted by reason in :attr:`Dataset.excluded`.

:func:`time_split` keeps the newest ``holdout_days`` of *matured* orders (ending at
``cutoff - maturity``, so the holdout's honest orders are known, not only its frauds)
for evaluation and trains on the orders placed more than ``gap`` before them, with the
targets *as they were known at the end of the training period*: a label or a refund
claim that arrived later, or an order that only matured later, must not teach the model
what it could not have known when it was trained. :func:`assert_no_leakage` checks
exactly that on a split.

Known bias, kept on purpose: frauds are labelled within days but honest orders count
only once matured, so the newest ``maturity`` of a training period holds its labelled
orders only and is richer in fraud than the rest. Dropping those rows loses the newest
confirmed patterns; on the simulated shop neither choice ranked better, so the recent
labels stay.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

import numpy as np
import pandas as pd

from features.derived import point_in_time_features
from features.specs import FeatureSet
from orderguard.clock import SHOP_TZ
from orderguard.durations import to_timedelta
from orderguard.enrich import Gazetteer
from orderguard.errors import InvalidInputError
from orderguard.labels import precedence
from orderguard.schema import Label, Order, OrderStatus, Verdict
from orderguard.settings import TrainingSettings

#: Columns every dataset frame carries besides the features.
META_COLUMNS: tuple[str, ...] = ("order_key", "event_time", "day", "target", "target_source", "verdict",
                                 "label_time")
_AFTER_SALE = frozenset({OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED, OrderStatus.REFUND_REJECTED})


class TargetSource(StrEnum):
    """Where a row's target came from."""

    LABEL = "label"  # the newest reviewer verdict known at the cutoff
    MATURED = "matured"  # no label, old enough, no refund claim: counted honest


class Exclusion(StrEnum):
    """Why an order has no row."""

    AFTER_CUTOFF = "after_cutoff"
    BEFORE_START = "before_start"
    NEEDS_INVESTIGATION = "needs_investigation"
    IMMATURE = "immature"
    REFUND_CLAIM = "refund_claim"


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """How unlabelled and undecided orders are treated (from ``TrainingSettings``).

    Attributes:
        maturity: an unlabelled order at least this old at the cutoff, with no refund
            claim known by then, is honest.
        needs_investigation: ``drop`` or ``positive``.
    """

    maturity: timedelta
    needs_investigation: Literal["drop", "positive"] = "drop"

    @classmethod
    def from_settings(cls, settings: TrainingSettings) -> TargetPolicy:
        """The policy configured in ``settings.training``."""
        return cls(to_timedelta(settings.maturity), settings.needs_investigation)


@dataclass(frozen=True, slots=True)
class Target:
    """The target of one order as known at one moment, or why it has none.

    Exactly one of ``value`` / ``exclusion`` is set. ``label_time`` is the ``labeled_at``
    of the label used (None for matured orders).
    """

    value: int | None
    source: TargetSource | None = None
    exclusion: Exclusion | None = None
    verdict: Verdict | None = None
    label_time: datetime | None = None


def claim_known(order: Order, at: datetime) -> bool:
    """Whether a refund claim on ``order`` was known at ``at``: its claim time, or any after-sale
    status in its timeline by then (a channel may skip ``refund_requested`` or a newer claim may
    have replaced an older one)."""
    if order.refund is not None and order.refund.requested_at <= at:
        return True
    return any(step.status in _AFTER_SALE and step.at <= at for step in order.timeline)


def newest_label(labels: Iterable[Label], at: datetime) -> Label | None:
    """The label in force at ``at``: latest ``labeled_at <= at``, ties broken by reviewer id.

    >>> from datetime import UTC
    >>> from orderguard.schema import Channel, OrderKey
    >>> k, t = OrderKey(Channel.JD, "1"), datetime(2024, 11, 1, tzinfo=UTC)
    >>> ls = [Label(k, Verdict.CONFIRMED_FRAUD, t, "r1"), Label(k, Verdict.FALSE_POSITIVE, t + timedelta(days=2), "r2")]
    >>> newest_label(ls, t + timedelta(days=1)).verdict.value, newest_label(ls, t + timedelta(days=3)).verdict.value
    ('confirmed_fraud', 'false_positive')
    >>> newest_label(ls, t - timedelta(days=1)) is None
    True
    """
    known = [label for label in labels if label.labeled_at <= at]
    return max(known, key=precedence) if known else None


def target_at(order: Order, labels: Iterable[Label], *, at: datetime, policy: TargetPolicy) -> Target:
    """The target of ``order`` as known at ``at`` (see the module's policy table).

    Args:
        order: the order, in any later state (only facts stamped ``<= at`` are read).
        labels: the labels of this order, any time (later ones are ignored).
        at: the moment of knowledge (a dataset cutoff or the end of a training period).
        policy: maturity and the ``needs_investigation`` treatment.
    """
    created = order.details.created_at
    if created > at:
        return Target(None, exclusion=Exclusion.AFTER_CUTOFF)
    label = newest_label(labels, at)
    if label is not None:
        if label.verdict is Verdict.CONFIRMED_FRAUD:
            return Target(1, TargetSource.LABEL, verdict=label.verdict, label_time=label.labeled_at)
        if label.verdict is Verdict.FALSE_POSITIVE:
            return Target(0, TargetSource.LABEL, verdict=label.verdict, label_time=label.labeled_at)
        if policy.needs_investigation == "positive":
            return Target(1, TargetSource.LABEL, verdict=label.verdict, label_time=label.labeled_at)
        return Target(None, exclusion=Exclusion.NEEDS_INVESTIGATION)
    if claim_known(order, at):
        return Target(None, exclusion=Exclusion.REFUND_CLAIM)
    if created > at - policy.maturity:
        return Target(None, exclusion=Exclusion.IMMATURE)
    return Target(0, TargetSource.MATURED)


@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """Rows with a target, as known at ``cutoff``, plus what is needed to relabel and to replay them.

    Attributes:
        frame: one row per order with a target, oldest first: ``order_key``, ``event_time``
            (creation, UTC), ``day`` (Beijing date), ``target`` (0/1), ``target_source``,
            ``verdict`` (label verdict, "" for matured rows), ``label_time`` (UTC, NaT for
            matured rows), then one float column per feature (NaN = missing).
        feature_names: the feature columns, in feature-set order.
        cutoff: the moment of knowledge: no order, label or claim after it was used.
        policy: the target policy.
        orders: order key → order, for every order that has a row in ``candidates``
            (``scoring.judge.judge`` needs the order for allow and deny lists).
        labels: the labels known at the cutoff, oldest first.
        candidates: every order created in ``[start, cutoff]`` with its features, labelled
            or not (a time split relabels them as of an earlier moment).
        excluded: left-out orders by :class:`Exclusion` value.
        start: first creation time with a row (older orders are history only), or None.
    """

    frame: pd.DataFrame
    feature_names: tuple[str, ...]
    cutoff: datetime
    policy: TargetPolicy
    orders: Mapping[str, Order] = field(repr=False)
    labels: tuple[Label, ...] = field(repr=False)
    candidates: pd.DataFrame = field(repr=False)
    excluded: Mapping[str, int] = field(default_factory=dict)
    start: datetime | None = None

    def with_frame(self, frame: pd.DataFrame) -> Dataset:
        """The same dataset with another frame (e.g. permuted targets for a sanity check)."""
        return replace(self, frame=frame)

    @property
    def target(self) -> np.ndarray:
        """The targets as an int8 array."""
        return np.asarray(self.frame["target"].to_numpy(dtype=np.int8), dtype=np.int8)

    @property
    def positives(self) -> int:
        """Rows with target 1."""
        return int(self.frame["target"].sum())

    def vectors(self) -> list[dict[str, float]]:
        """Each row's feature values by name, as the served decision step reads them."""
        values = self.frame[list(self.feature_names)].to_numpy(dtype=np.float64)
        names = self.feature_names
        return [dict(zip(names, row.tolist(), strict=True)) for row in values]

    def source_counts(self) -> dict[str, int]:
        """Rows per ``target_source`` and target, e.g. ``{"label/1": 40, "matured/0": 900}``."""
        counts = Counter(f"{s}/{t}" for s, t in zip(self.frame["target_source"], self.frame["target"], strict=True))
        return dict(sorted(counts.items()))


def beijing_day(times: pd.Series) -> pd.Series:
    """The Asia/Shanghai calendar date of UTC timestamps.

    >>> beijing_day(pd.Series(pd.to_datetime(["2024-11-10T16:30:00Z"]))).tolist()
    [datetime.date(2024, 11, 11)]
    """
    return times.dt.tz_convert(SHOP_TZ).dt.date


def build_dataset(orders: Iterable[Order], labels: Iterable[Label], feature_set: FeatureSet, *, cutoff: datetime,
                  gazetteer: Gazetteer | None, settings: TrainingSettings, start: datetime | None = None) -> Dataset:
    """Features point-in-time and targets as known at ``cutoff`` (see the module docstring).

    Args:
        orders: every order of the log once, in its current state (``OrderLog.iter_orders``);
            those created after ``cutoff`` are ignored.
        labels: reviewer labels, any time; those with ``labeled_at > cutoff`` are ignored.
        feature_set: the features to compute (``features.shop.feature_set_from``).
        cutoff: tz-aware moment of knowledge.
        gazetteer: reference data, needed by a feature set with reference-data attributes.
        settings: ``maturity`` and ``needs_investigation`` of the target policy.
        start: keep rows for orders created at or after it; older orders still feed the
            windows of later ones.
    """
    if cutoff.tzinfo is None:
        raise InvalidInputError.must("cutoff", "tz-aware", cutoff)
    every = list(orders)
    placed = [o for o in every if o.details.created_at <= cutoff]
    known = sorted((label for label in labels if label.labeled_at <= cutoff),
                   key=lambda label: (label.labeled_at, str(label.key), label.reviewer_id))
    candidates = point_in_time_features(placed, feature_set, labels=known, gazetteer=gazetteer, since=start,
                                        memory_limit=settings.features_memory_limit)
    by_key = {str(o.key): o for o in placed}
    keep = set(candidates["order_key"])
    dataset = Dataset(frame=candidates.iloc[0:0], feature_names=tuple(feature_set.names), cutoff=cutoff,
                      policy=TargetPolicy.from_settings(settings),
                      orders={k: o for k, o in by_key.items() if k in keep},
                      labels=tuple(known), candidates=candidates, start=start)
    dataset = relabel(dataset, at=cutoff)
    excluded = Counter(dataset.excluded)
    excluded[Exclusion.AFTER_CUTOFF.value] += len(every) - len(placed)
    excluded[Exclusion.BEFORE_START.value] += len(placed) - len(keep)
    return replace(dataset, excluded={k: v for k, v in sorted(excluded.items()) if v})


def relabel(dataset: Dataset, *, at: datetime, before: datetime | None = None) -> Dataset:
    """The dataset as it would have been built at ``at`` (``<= dataset.cutoff``): candidates created by
    then (strictly before ``before`` if given), labels known by then, targets judged then.

    Features need no rebuild: a row as of its creation time ``t <= at`` reads only facts
    and labels stamped ``<= t``, so the frame's feature values are the ones a build at
    ``at`` would give (the split tests check this).
    """
    if at > dataset.cutoff:
        raise InvalidInputError.must("at", f"at or before the dataset cutoff {dataset.cutoff.isoformat()}",
                                     at.isoformat())
    candidates = dataset.candidates
    times = candidates["event_time"]
    mask = times <= pd.Timestamp(at)
    if before is not None:
        mask &= times < pd.Timestamp(before)
    candidates = candidates[mask].reset_index(drop=True)
    labels = tuple(label for label in dataset.labels if label.labeled_at <= at)
    by_order: dict[str, list[Label]] = {}
    for label in labels:
        by_order.setdefault(str(label.key), []).append(label)
    targets = [target_at(dataset.orders[key], by_order.get(key, ()), at=at, policy=dataset.policy)
               for key in candidates["order_key"]]
    excluded = Counter(t.exclusion.value for t in targets if t.exclusion is not None)
    kept = [i for i, t in enumerate(targets) if t.value is not None]
    rows = candidates.iloc[kept].reset_index(drop=True)
    chosen = [targets[i] for i in kept]
    meta = pd.DataFrame({
        "order_key": rows["order_key"],
        "event_time": rows["event_time"],
        "day": beijing_day(rows["event_time"]),
        "target": pd.Series([t.value for t in chosen], dtype="int8"),
        "target_source": pd.Series([t.source.value if t.source else "" for t in chosen], dtype="object"),
        "verdict": pd.Series([t.verdict.value if t.verdict else "" for t in chosen], dtype="object"),
        "label_time": pd.Series(pd.to_datetime([t.label_time for t in chosen], utc=True), dtype=times.dtype),
    })
    frame = pd.concat([meta, rows[list(dataset.feature_names)]], axis=1)
    keys = set(candidates["order_key"])
    return replace(dataset, frame=frame, cutoff=at, labels=labels, candidates=candidates,
                   orders={k: o for k, o in dataset.orders.items() if k in keys},
                   excluded=dict(sorted(excluded.items())))


@dataclass(frozen=True, slots=True)
class Split:
    """A time split: train on the old part (targets known at ``train_end``), evaluate on the new.

    Attributes:
        train: orders created before ``train_end``, relabelled as known at ``train_end``.
        holdout: orders created in ``[holdout_start, holdout_end]``, targets known at the dataset cutoff.
        train_end: ``holdout_start - gap``; also the training set's moment of knowledge.
        holdout_start: first creation time of the holdout.
        holdout_end: last creation time of the holdout (by default ``cutoff - maturity``).
        cutoff: the dataset's moment of knowledge.
        gap: the delay between the two parts.
    """

    train: Dataset
    holdout: Dataset
    train_end: datetime
    holdout_start: datetime
    holdout_end: datetime
    cutoff: datetime
    gap: timedelta


def time_split(dataset: Dataset, *, holdout_days: int, gap: timedelta, holdout_end: datetime | None = None,
               holdout_start: datetime | None = None) -> Split:
    """Hold out the newest ``holdout_days`` of matured orders and train on what is more than ``gap`` older.

    Args:
        dataset: built at its cutoff.
        holdout_days: length of the holdout, ending at ``holdout_end``.
        gap: no training order is created within ``gap`` before the holdout, so the
            features of the newest training orders and the labels that come in shortly
            after them stay on their side of the split.
        holdout_end: last creation time of the holdout. Default ``dataset.cutoff - maturity``:
            every holdout order has then matured, so its honest orders are all the
            unlabelled ones without a claim, not only those reviewers happened to clear.
            Ending the holdout at the cutoff itself (``holdout_end=dataset.cutoff``) is
            allowed, but with ``maturity >= holdout_days`` such a holdout holds labelled
            orders only (mostly frauds) and its metrics say nothing about false positives.
        holdout_start: first creation time of the holdout; given, it replaces ``holdout_days``
            (explicit dates: ``orderguard train --holdout-from --holdout-to``).

    The holdout's targets are those known at the dataset cutoff; the training rows are
    relabelled as known at ``train_end`` (see :func:`relabel`). Orders newer than
    ``holdout_end`` are in neither part.
    """
    if holdout_days < 1:
        raise InvalidInputError.must("holdout_days", ">= 1", holdout_days)
    if gap < timedelta(0):
        raise InvalidInputError.must("gap", ">= 0", gap)
    end = dataset.cutoff - dataset.policy.maturity if holdout_end is None else holdout_end
    if end > dataset.cutoff:
        raise InvalidInputError.must("holdout_end", "at or before the dataset cutoff", end.isoformat())
    if holdout_start is None:
        holdout_start = end - timedelta(days=holdout_days)
    elif holdout_start >= end:
        raise InvalidInputError.must("holdout_start", f"before the holdout's end ({end.isoformat()})",
                                     holdout_start.isoformat())
    train_end = holdout_start - gap
    times = dataset.frame["event_time"]
    in_holdout = (times >= pd.Timestamp(holdout_start)) & (times <= pd.Timestamp(end))
    holdout = dataset.with_frame(dataset.frame[in_holdout].reset_index(drop=True))
    train = relabel(dataset, at=train_end, before=train_end)
    return Split(train=train, holdout=holdout, train_end=train_end, holdout_start=holdout_start, holdout_end=end,
                 cutoff=dataset.cutoff, gap=gap)


class LeakageError(InvalidInputError):
    """A split uses something (an order, a label, a claim) after the moment it claims to know."""

    code = "leakage"


def leakage(split: Split) -> list[str]:
    """Every leakage found in ``split`` (empty when clean); see :func:`assert_no_leakage`."""
    problems: list[str] = []
    problems += _dataset_leaks("train", split.train, known_at=split.train_end, rows_before=split.train_end)
    problems += _dataset_leaks("holdout", split.holdout, known_at=split.cutoff, rows_before=None)
    if split.train.cutoff > split.train_end:
        problems.append(f"train: targets judged at {split.train.cutoff.isoformat()}, after the train end "
                        f"{split.train_end.isoformat()}")
    if split.train_end > split.holdout_start - split.gap:
        problems.append(f"gap: train end {split.train_end.isoformat()} is within {split.gap} of the holdout")
    train_times = split.train.frame["event_time"]
    if len(train_times) and train_times.max() >= pd.Timestamp(split.holdout_start - split.gap):
        problems.append(f"gap: a training order at {train_times.max().isoformat()} is within {split.gap} of the "
                        f"holdout start {split.holdout_start.isoformat()}")
    holdout_times = split.holdout.frame["event_time"]
    if len(holdout_times) and (holdout_times.min() < pd.Timestamp(split.holdout_start)
                               or holdout_times.max() > pd.Timestamp(split.holdout_end)):
        problems.append("holdout: an order outside [holdout_start, holdout_end]")
    shared = set(split.train.frame["order_key"]) & set(split.holdout.frame["order_key"])
    if shared:
        problems.append(f"{len(shared)} orders in both train and holdout, e.g. {sorted(shared)[0]}")
    return problems


def _dataset_leaks(name: str, dataset: Dataset, *, known_at: datetime, rows_before: datetime | None) -> list[str]:
    problems: list[str] = []
    frame = dataset.frame
    limit = pd.Timestamp(known_at)
    late_rows = frame["event_time"] > limit
    if rows_before is not None:
        late_rows |= frame["event_time"] >= pd.Timestamp(rows_before)
    if late_rows.any():
        problems.append(f"{name}: {int(late_rows.sum())} rows with a feature time after {known_at.isoformat()}")
    late_targets = frame["label_time"].notna() & (frame["label_time"] > limit)
    if late_targets.any():
        problems.append(f"{name}: {int(late_targets.sum())} targets from labels after {known_at.isoformat()}")
    late_labels = [label for label in dataset.labels if label.labeled_at > known_at]
    if late_labels:
        problems.append(f"{name}: {len(late_labels)} labels after {known_at.isoformat()} feed its features")
    matured = frame[frame["target_source"] == TargetSource.MATURED.value]
    young = matured["event_time"] > pd.Timestamp(known_at - dataset.policy.maturity)
    if young.any():
        problems.append(f"{name}: {int(young.sum())} orders counted honest before maturing at "
                        f"{known_at.isoformat()}")
    unknown = [k for k in frame["order_key"] if k not in dataset.orders]
    if unknown:
        problems.append(f"{name}: {len(unknown)} rows whose order the dataset does not hold, e.g. {unknown[0]}")
    claimed = [k for k in matured["order_key"] if k in dataset.orders and claim_known(dataset.orders[k], known_at)]
    if claimed:
        problems.append(f"{name}: {len(claimed)} orders counted honest despite a refund claim known at "
                        f"{known_at.isoformat()}")
    return problems


def assert_no_leakage(split: Split) -> None:
    """Raise :class:`LeakageError` if the split uses anything from after the moment it claims to know.

    Checked for the train part against ``train_end`` and for the holdout against the
    dataset cutoff: row (feature) times, the labels behind targets, the labels recorded
    as known, matured orders that were not yet mature or had a claim by then; plus the
    gap between the parts and no order in both. Label-derived features need no separate
    check: a row reads only labels stamped at or before its own time, which the row-time
    check bounds (``tests/training/test_dataset.py`` checks that train rows equal a
    rebuild at ``train_end``).

    Meant to run in the training pipeline before fitting; cheap (vectorised comparisons
    and one pass over the matured rows).
    """
    problems = leakage(split)
    if problems:
        raise LeakageError("`split` must not use anything after its cutoffs; " + "; ".join(problems),
                           field="split")


def time_ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by ``(event_time, order_key)``, the project's one ordering of events.

    >>> f = pd.DataFrame({"event_time": pd.to_datetime(["2024-11-11T02:00Z", "2024-11-11T01:00Z",
    ...                                                 "2024-11-11T01:00Z"]), "order_key": ["c", "b", "a"]})
    >>> time_ordered(f)["order_key"].tolist()
    ['a', 'b', 'c']
    """
    return frame.sort_values(["event_time", "order_key"], kind="stable").reset_index(drop=True)


def feature_matrix(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """The named columns as a float64 matrix (NaN for missing), the layout the model reads.

    >>> feature_matrix(pd.DataFrame({"a": [1, None], "b": [2.5, 3]}), ["b", "a"]).tolist()
    [[2.5, 1.0], [3.0, nan]]
    """
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InvalidInputError.must("frame", "a column for every feature", missing[:10])
    return np.asarray(frame[list(names)].to_numpy(dtype=np.float64, na_value=math.nan), dtype=np.float64)
