"""The batch engine: point-in-time values per order, SQL generated from the specs, outputs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb

from features.batch import BatchFeatures, entity_sql
from features.facts import Entity
from features.specs import FeatureSet
from orderguard.schema import Order, RefundReason
from tests.factories import BASE_TIME, at, make_label, make_order, refunded
from tests.features.batch_reference import frame_sql, point_in_time_frame


def feature_set(*specs: dict[str, Any]) -> FeatureSet:
    return FeatureSet.from_data({"features": list(specs)})


def by_order(orders: list[Order], fs: FeatureSet, **kwargs: Any) -> dict[str, dict[str, float]]:
    frame = point_in_time_frame(orders, fs, **kwargs)
    return {row["order_key"]: {n: row[n] for n in fs.names} for row in frame.to_dict("records")}


def test_each_order_sees_the_window_ending_at_itself() -> None:
    fs = feature_set({"entity": "device", "field": "orders", "agg": "count", "window": "5m"})
    orders = [make_order("a", created_at=BASE_TIME), make_order("b", created_at=at(minutes=5)),
              make_order("c", created_at=at(minutes=6)), make_order("d", created_at=at(minutes=6)),
              make_order("x", created_at=at(minutes=6), device="other")]
    values = by_order(orders, fs)
    counts = {k: v["count_orders_by_device_5m"] for k, v in values.items()}
    # b: a is exactly 5m before (open edge); c and d are peers and see each other
    assert counts == {"site:a": 1, "site:b": 1, "site:c": 3, "site:d": 3, "site:x": 1}


def test_frame_is_ordered_by_time_with_utc_event_times() -> None:
    fs = feature_set({"entity": "user", "field": "orders", "agg": "count", "window": "1h"})
    frame = point_in_time_frame([make_order("late", created_at=at(minutes=9)), make_order("early")], fs)
    assert list(frame["order_key"]) == ["site:early", "site:late"]
    assert list(frame.columns) == ["order_key", "event_time", "count_orders_by_user_1h"]
    assert frame["event_time"].iloc[1] == at(minutes=9)


def test_refunds_labels_and_delays_are_point_in_time() -> None:
    fs = feature_set(
        {"entity": "device", "field": "refunds", "agg": "count", "window": "30d", "qualifier": "damaged",
         "filter": {"reason": "damaged"}},
        {"entity": "device", "field": "orders", "agg": "distinct", "window": "90d", "qualifier": "fraud",
         "filter": {"verdict": "confirmed_fraud"}},
        {"entity": "device", "field": "orders", "agg": "count", "window": "1d", "offset": "1d"})
    first = refunded(make_order("a", created_at=BASE_TIME), when=at(days=1), reason=RefundReason.DAMAGED)
    second = make_order("b", created_at=at(days=1, hours=12))
    third = make_order("c", created_at=at(days=5))
    values = by_order([first, second, third], fs, labels=[make_label(first, when=at(days=3))])
    assert values["site:b"]["count_refunds_damaged_by_device_30d"] == 1
    assert values["site:b"]["distinct_orders_fraud_by_device_90d"] == 0  # label came on day 3
    assert values["site:c"]["distinct_orders_fraud_by_device_90d"] == 1
    assert values["site:b"]["count_orders_by_device_1d_lag1d"] == 1  # (b - 2d, b - 1d] holds a only
    assert values["site:a"]["count_orders_by_device_1d_lag1d"] == 0
    assert values["site:c"]["count_orders_by_device_1d_lag1d"] == 0  # (day 3, day 4] is empty


def test_missing_entities_and_empty_windows() -> None:
    fs = feature_set({"entity": "wifi", "field": "orders", "agg": "count", "window": "1h"},
                     {"entity": "wifi", "field": "paid_fen", "agg": "mean", "window": "1h"},
                     {"entity": "wifi", "field": "orders", "agg": "time_since", "window": "1h"})
    values = by_order([make_order("a", wifi=None), make_order("b", wifi="w", created_at=at(minutes=1))], fs)
    assert values["site:a"]["count_orders_by_wifi_1h"] == 0
    assert math.isnan(values["site:a"]["mean_paid_fen_by_wifi_1h"])
    assert math.isnan(values["site:b"]["time_since_orders_by_wifi_1h"])  # nothing strictly before


def test_sku_entities_reduce_over_the_orders_lines() -> None:
    fs = feature_set({"entity": "address_sku", "field": "units", "agg": "sum", "window": "24h"},
                     {"entity": "sku", "field": "units", "agg": "max", "window": "24h"})
    orders = [make_order("a", lines=(("s1", 3, 10),)),
              make_order("b", account="u2", created_at=at(hours=1), lines=(("s1", 2, 10), ("s2", 9, 10))),
              make_order("c", created_at=at(hours=2), lines=())]
    values = by_order(orders, fs)
    assert values["site:b"]["sum_units_by_address_sku_24h"] == 9  # max(s1: 3 + 2, s2: 9)
    assert values["site:c"]["sum_units_by_address_sku_24h"] == 0  # no lines, no SKU key
    assert math.isnan(values["site:c"]["max_units_by_sku_24h"])


def test_generated_sql_uses_range_frames_from_the_window_definition() -> None:
    fs = feature_set({"entity": "device", "field": "orders", "agg": "count", "window": "5m"},
                     {"entity": "device", "field": "orders", "agg": "time_since", "window": "1h", "offset": "5m"},
                     {"entity": "user_sku", "field": "units", "agg": "sum", "window": "1d"})
    sql = entity_sql(fs.specs, Entity.DEVICE)
    assert "RANGE BETWEEN 299999999 PRECEDING AND CURRENT ROW" in sql
    assert "RANGE BETWEEN 3899999999 PRECEDING AND 300000001 PRECEDING" in sql
    assert "GROUP BY e_order" in entity_sql(fs.specs, Entity.USER_SKU)
    full = frame_sql(fs)
    assert full.startswith("WITH feat_device AS")
    assert "count_orders_by_device_5m" in full and "sum_units_by_user_sku_1d" in full


def test_the_single_statement_gives_the_same_frame(tmp_path: Path) -> None:
    fs = feature_set({"entity": "device", "field": "orders", "agg": "count", "window": "5m"},
                     {"entity": "user_sku", "field": "units", "agg": "sum", "window": "1d"})
    orders = [make_order(str(i), created_at=at(minutes=2 * i), lines=(("s", i + 1, 10),)) for i in range(6)]
    batch = BatchFeatures(fs, database=tmp_path / "facts.duckdb")
    try:
        batch.load(orders)
        stepwise = batch.frame()
    finally:
        batch.close()
    with duckdb.connect(str(tmp_path / "facts.duckdb")) as con:
        rows = con.execute(frame_sql(fs)).fetchall()
    assert [r[0] for r in rows] == list(stepwise["order_key"])
    assert [r[2] for r in rows] == list(stepwise["count_orders_by_device_5m"])
    assert [r[3] for r in rows] == list(stepwise["sum_units_by_user_sku_1d"])


def test_parquet_output_and_progress(tmp_path: Path) -> None:
    fs = feature_set({"entity": "device", "field": "orders", "agg": "count", "window": "10m"})
    seen: list[tuple[str, int, int | None]] = []
    batch = BatchFeatures(fs, progress=lambda stage, done, total: seen.append((stage, done, total)))
    try:
        loaded = batch.load([make_order(str(i), created_at=at(minutes=i)) for i in range(4)])
        rows = batch.write_parquet(tmp_path / "frame.parquet")
    finally:
        batch.close()
    assert loaded == 4  # one order fact each (line facts are not needed by this set)
    assert rows == 4
    with duckdb.connect() as con:
        counts = con.execute(f"SELECT count_orders_by_device_10m FROM read_parquet('{tmp_path / 'frame.parquet'}')"
                             " ORDER BY ts_us").fetchall()
    assert [c[0] for c in counts] == [1, 2, 3, 4]
    stages = {s for s, _, _ in seen}
    assert stages == {"load facts", "compute features"}
    assert ("compute features", 1, 1) in seen


def test_labels_of_unknown_orders_are_ignored() -> None:
    fs = feature_set({"entity": "device", "field": "labels", "agg": "count", "window": "30d"})
    known = make_order("a")
    stray = make_label(make_order("zz", device="d1"), when=at(days=1))
    values = by_order([known, make_order("b", created_at=at(days=2))], fs,
                      labels=[stray, make_label(known, when=at(days=1))])
    assert values["site:b"]["count_labels_by_device_30d"] == 1
