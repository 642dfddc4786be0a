"""The batch engine's columnar path: facts loaded from DataFrames, Arrow and DuckDB relations."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from features.batch import BatchFeatures, frame_query
from features.facts import Entity, Fact, label_facts, order_facts
from features.specs import FeatureSet
from orderguard.errors import ConfigError, InvalidInputError
from orderguard.schema import Label, Order, RefundReason, Verdict
from tests.factories import at, make_label, make_order, refunded
from tests.features.batch_reference import frame_sql, point_in_time_frame

FEATURES = FeatureSet.from_data({"features": [
    {"entity": "device", "field": "orders", "agg": "count", "window": "1h"},
    {"entity": "user", "field": "paid_fen", "agg": "mean", "window": "1d"},
    {"entity": "wifi", "field": "users", "agg": "distinct", "window": "1d"},
    {"entity": "wifi", "field": "orders", "agg": "time_since", "window": "1d"},
    {"entity": "device", "field": "labels", "agg": "count", "window": "30d", "qualifier": "fraud",
     "filter": {"verdict": "confirmed_fraud"}},
    {"entity": "device", "field": "refunds", "agg": "count", "window": "30d"},
    {"entity": "user_sku", "field": "units", "agg": "sum", "window": "1d"},
    {"entity": "device", "field": "orders", "agg": "count", "window": "1d", "offset": "1h"},
]})


def shop() -> tuple[list[Order], list[Label]]:
    """Orders with peers, missing entities, several SKUs, a refund and labels."""
    first = make_order("a", wifi="w1", lines=(("s1", 2, 1000), ("s2", 1, 500)))
    orders = [
        refunded(first, when=at(hours=3), reason=RefundReason.DAMAGED),
        make_order("b", account="u2", wifi="w1", created_at=at(minutes=10), lines=(("s1", 1, 1000),)),
        make_order("c", account="u2", wifi=None, created_at=at(minutes=10), lines=(("s1", 4, 1000),)),
        make_order("d", device="d2", wifi="w1", created_at=at(hours=2)),
        make_order("e", device=None, account="u3", created_at=at(hours=5), lines=(("s2", 1, 990),)),
        make_order("f", created_at=at(days=1, hours=1)),
    ]
    labels = [make_label(first, when=at(hours=4)),
              make_label(orders[1], when=at(hours=6), verdict=Verdict.FALSE_POSITIVE)]
    return orders, labels


def fact_table(columns: list[str], orders: list[Order], labels: list[Label]) -> pd.DataFrame:
    """Every fact of the orders and labels as rows of the facts-table layout."""
    by_key = {o.key: o for o in orders}
    facts: list[Fact] = [f for o in orders for f in order_facts(o).facts]
    facts += [f for label in labels for f in label_facts(label, by_key[label.key]).facts]

    def value(fact: Fact, column: str) -> Any:
        if column == "kind":
            return fact.kind.value
        if column == "ts":
            return fact.ts
        if column == "fact_id":
            return fact.fact_id
        if column.startswith("e_"):
            return fact.entities.get(Entity(column[2:]))
        return fact.attrs.get(column[2:])

    return pd.DataFrame({c: [value(f, c) for f in facts] for c in columns})


def columnar_frame(source: Any, **kwargs: Any) -> pd.DataFrame:
    batch = BatchFeatures(FEATURES, **kwargs)
    try:
        batch.load_facts(source)
        return batch.frame()
    finally:
        batch.close()


def layout() -> list[str]:
    batch = BatchFeatures(FEATURES)
    try:
        return list(batch.columns)
    finally:
        batch.close()


@pytest.mark.parametrize("form", ["pandas", "arrow", "reader", "relation"])
def test_columnar_facts_give_the_frame_of_the_orders(form: str) -> None:
    orders, labels = shop()
    expected = point_in_time_frame(orders, FEATURES, labels=labels)
    table = fact_table(layout(), orders, labels)
    source: Any
    if form == "pandas":
        source = table
    elif form == "arrow":
        source = pa.Table.from_pandas(table, preserve_index=False)
    elif form == "reader":
        source = pa.Table.from_pandas(table, preserve_index=False).to_reader(max_chunksize=2)
    else:
        other = duckdb.connect()
        other.register("facts_df", table)
        source = other.sql("SELECT * FROM facts_df")
    got = columnar_frame(source)
    assert len(got) == len(orders)
    pd.testing.assert_frame_equal(got, expected)


def test_facts_without_identity_and_with_integer_keys() -> None:
    day = 86_400 * 10**6
    t0 = 1_700_000_000 * 10**6
    facts = pd.DataFrame({
        "kind": ["order", "order", "order", "label"],
        "ts": [t0, t0 + day // 2, t0 + 2 * day, t0 + day],
        "e_order": [1, 2, 3, 1],
        "e_user": [7, 7, 7, 7],
        "e_device": [5, 5, 5, 5],
        "e_wifi": [None, None, None, None],
        "e_user_sku": [None, None, None, None],
        "a_paid_fen": [100, 300, 50, None],
        "a_units": [None, None, None, None],
        "a_verdict": [None, None, None, "confirmed_fraud"],
    })
    got = columnar_frame(facts).set_index("order_key")
    assert list(got.index) == ["1", "2", "3"]  # keys are text: ordered by time, then key
    assert got["mean_paid_fen_by_user_1d"].tolist() == [100.0, 200.0, 50.0]
    assert got["count_labels_fraud_by_device_30d"].tolist() == [0.0, 0.0, 1.0]  # label known on day 1
    assert got["count_orders_by_device_1d_lag1h"].tolist() == [0.0, 1.0, 0.0]
    assert got["distinct_users_by_wifi_1d"].tolist() == [0.0] * 3
    assert all(math.isnan(v) for v in got["time_since_orders_by_wifi_1d"])


def test_a_bad_source_loads_nothing() -> None:
    orders, labels = shop()
    columns = layout()
    good = fact_table(columns, orders, labels)
    batch = BatchFeatures(FEATURES)
    try:
        with pytest.raises(InvalidInputError) as missing:
            batch.load_facts(good.drop(columns=["e_user"]))
        assert missing.value.field == "facts" and "e_user" in missing.value.message
        with pytest.raises(InvalidInputError) as unknown:
            batch.load_facts(good.assign(e_phone="p"))
        assert "e_phone" in unknown.value.message
        bad_kind = good.copy()
        bad_kind.loc[2, "kind"] = "shipment"
        with pytest.raises(InvalidInputError) as kind:
            batch.load_facts(bad_kind)
        assert kind.value.field == "facts.kind" and "shipment" in kind.value.message
        bad_ts = good.astype({"ts": object})
        bad_ts.loc[0, "ts"] = "yesterday"
        with pytest.raises(InvalidInputError):
            batch.load_facts(bad_ts)
        no_order = good.copy()
        no_order.loc[1, "e_order"] = None
        with pytest.raises(InvalidInputError) as order:
            batch.load_facts(no_order)
        assert order.value.field == "facts.e_order"
        assert batch.frame().empty  # every failed load was rolled back
        assert batch.load_facts(good) == len(good)
        assert len(batch.frame()) == len(orders)
    finally:
        batch.close()


def test_carried_order_attributes() -> None:
    orders, labels = shop()
    frame = point_in_time_frame(orders, FEATURES, labels=labels)
    batch = BatchFeatures(FEATURES, carry=("paid_fen", "units"))
    try:
        batch.load(orders, labels=labels)
        carried = batch.frame()
    finally:
        batch.close()
    assert list(carried.columns[:4]) == ["order_key", "event_time", "paid_fen", "units"]
    paid = {str(o.key): o.details.amounts.paid_fen for o in orders}
    assert carried["paid_fen"].tolist() == [paid[k] for k in carried["order_key"]]
    pd.testing.assert_frame_equal(carried.drop(columns=["paid_fen", "units"]), frame)
    for bad in ("verdict", "nope"):
        with pytest.raises(ConfigError) as e:
            BatchFeatures(FEATURES, carry=(bad,))
        assert e.value.field == "carry[0]"


def test_the_engine_plan_equals_the_per_entity_statement(tmp_path: Path) -> None:
    orders, labels = shop()
    batch = BatchFeatures(FEATURES, database=tmp_path / "facts.duckdb")
    try:
        batch.load(orders, labels=labels)
    finally:
        batch.close()
    with duckdb.connect(str(tmp_path / "facts.duckdb")) as con:
        portable = con.execute(frame_sql(FEATURES)).df()
        engine = con.execute(frame_query(FEATURES)).df()
    pd.testing.assert_frame_equal(engine, portable)
    assert engine.loc[engine["order_key"] == "site:c", "distinct_users_by_wifi_1d"].item() == 0  # no wifi
