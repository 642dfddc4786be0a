"""The point-in-time frame of a whole feature set: windowed specs in SQL, then attributes and derived features.

``features.batch`` computes the windowed specs (``FeatureSpec``) of every order in SQL.
A feature set also carries the attributes of each order and features derived from
others (``features.specs``); this module adds them to the frame with the very
functions the online engine calls: ``features.facts.order_attributes`` for attributes,
``DerivedSpec.evaluate`` (``features.specs.derive``) for derived features, row by row.
Both engines therefore share one definition of every feature, and the parity property
test holds for all of them.

Attributes are computed while the orders stream into the batch engine (one pass over
the order log); derived features once the windowed values are known.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from features.batch import BatchFeatures, Progress
from features.facts import order_attributes
from features.specs import DerivedOp, FeatureSet
from features.windows import Window
from orderguard.enrich import Gazetteer
from orderguard.errors import ConfigError
from orderguard.schema import Label, Order

#: How long after its order a refund claim or a reviewer label may still come: a partial
#: history (``history_start``) reaches this much further back than the longest window.
AFTER_SALE_ALLOWANCE = timedelta(days=60)


def history_start(feature_set: FeatureSet, start: datetime) -> datetime:
    """Earliest order creation time whose facts can matter to an order created at ``start`` or later.

    Windows reach back ``offset + window`` from each order; refund claims and labels are
    stamped after their order, by up to ``AFTER_SALE_ALLOWANCE``.

    >>> from datetime import UTC
    >>> fs = FeatureSet.from_data({"features": [{"entity": "user", "field": "orders", "agg": "count",
    ...                                          "window": "30d", "offset": "1d"}]})
    >>> history_start(fs, datetime(2024, 6, 1, tzinfo=UTC)).date().isoformat()
    '2024-03-02'
    """
    spans = [Window(s.window.us, s.offset.us if s.offset is not None else 0).span_us for s in feature_set.specs]
    return start - timedelta(microseconds=max(spans, default=0)) - AFTER_SALE_ALLOWANCE


def point_in_time_features(orders: Iterable[Order], feature_set: FeatureSet, *, labels: Iterable[Label] = (),
                           gazetteer: Gazetteer | None = None, since: datetime | None = None,
                           total: int | None = None, progress: Progress | None = None,
                           database: str = ":memory:", memory_limit: str | None = None) -> pd.DataFrame:
    """Every feature of ``feature_set`` as of every order: one row per order, ordered by time.

    Args:
        orders: every order once, in its current state (``OrderLog.iter_orders``).
        feature_set: the features; with a reference-data attribute it needs ``gazetteer``.
        labels: reviewer labels (label-derived features read those with ``labeled_at <= t``).
        gazetteer: reference data for ``phone_delivery_km``.
        since: keep only orders created at or after this time (the others are history:
            see :func:`history_start`).
        total: number of orders, if known, for the progress bar.
        progress: ``(stage, done, total)`` callback, e.g. ``features.batch.rich_progress``.
        database: DuckDB file for data larger than memory.
        memory_limit: DuckDB's memory limit while it computes the windows (it spills beyond).

    Returns:
        ``order_key``, ``event_time`` (UTC) and one float column per feature, in
        ``feature_set.names`` order; missing values are NaN.
    """
    if feature_set.needs_gazetteer and gazetteer is None:
        raise ConfigError("`gazetteer` must be given for the feature set's reference-data attributes; got None",
                          field="gazetteer")
    attrs = tuple(a.value for a in feature_set.attributes)
    declared = feature_set.declared
    rows: dict[str, tuple[float, ...]] = {}

    def with_attributes(source: Iterable[Order]) -> Iterator[Order]:
        for n, order in enumerate(source, start=1):
            values = order_attributes(order, gazetteer=gazetteer, declared=declared)
            rows[str(order.key)] = tuple(value(values) for value in attrs)
            if progress is not None and n % 1000 == 0:
                progress("read orders", n, total)
            yield order
        if progress is not None:
            progress("read orders", len(rows), len(rows))

    batch = BatchFeatures(feature_set.windowed(), database=database, progress=progress, memory_limit=memory_limit)
    try:
        batch.load(with_attributes(orders), labels=labels, total=total)
        frame = batch.frame()
    finally:
        batch.close()
    return complete_frame(frame, feature_set, attributes=rows, since=since, progress=progress)


def complete_frame(frame: pd.DataFrame, feature_set: FeatureSet, *, attributes: dict[str, tuple[float, ...]],
                   since: datetime | None = None, progress: Progress | None = None) -> pd.DataFrame:
    """Add attribute and derived columns to a frame of windowed specs (see :func:`point_in_time_features`).

    Args:
        frame: ``order_key``, ``event_time`` and the windowed specs' columns.
        feature_set: the features.
        attributes: order key → the order's attribute values, in ``feature_set.attributes`` order.
        since: drop rows of orders created before it.
        progress: ``(stage, done, total)`` callback.
    """
    if since is not None:
        frame = frame[frame["event_time"] >= pd.Timestamp(since)].reset_index(drop=True)
    keys = frame["order_key"].tolist()
    # numpy columns, not lists of Python floats: a million rows of 100 features are 0.8 GB as arrays, 3 GB as floats
    columns: dict[str, np.ndarray] = {name: frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
                                      for name in feature_set.spec_names}
    width = len(feature_set.attributes)
    missing = tuple(float("nan") for _ in range(width))
    table = np.array([attributes.get(k, missing) for k in keys], dtype=np.float64).reshape(len(keys), width)
    for i, attribute in enumerate(feature_set.attributes):
        columns[attribute.name] = table[:, i]
    del table
    derived = feature_set.derived
    for done, spec in enumerate(derived):
        columns[spec.name] = derive_columns(spec.op, [columns[a] for a in spec.args])
        if progress is not None:
            progress("derived features", done + 1, len(derived))
    out = pd.DataFrame({"order_key": keys, "event_time": frame["event_time"].reset_index(drop=True)})
    body = pd.DataFrame({name: columns[name] for name in feature_set.names}, copy=False)
    return pd.concat([out, body], axis=1)


def derive_columns(op: DerivedOp, args: Sequence[np.ndarray]) -> np.ndarray:
    """``features.specs.derive`` over whole columns at once: the same values, row by row (property tested).

    >>> nan = float("nan")
    >>> derive_columns(DerivedOp.RATIO, [np.array([150.0, 1.0, nan]), np.array([1000.0, 0.0, 2.0])]).tolist()
    [0.15, nan, nan]
    >>> derive_columns(DerivedOp.ALL, [np.array([1.0, 1.0, 1.0]), np.array([2.0, 0.0, nan])]).tolist()
    [1.0, 0.0, nan]
    """
    if op is DerivedOp.IS_MISSING:
        return np.asarray(np.isnan(args[0]), dtype=np.float64)
    any_nan = np.zeros(len(args[0]), dtype=bool)
    for a in args:
        any_nan |= np.isnan(a)
    if op is DerivedOp.RATIO:
        a, b = args
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(b != 0.0, a / np.where(b != 0.0, b, 1.0), np.nan)
    elif op is DerivedOp.IS_ZERO:
        out = (args[0] == 0.0).astype(np.float64)
    else:
        every = np.ones(len(args[0]), dtype=bool)
        for a in args:
            every &= a != 0.0
        out = every.astype(np.float64)
    out[any_nan] = np.nan
    return np.asarray(out, dtype=np.float64)
