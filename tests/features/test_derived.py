"""The whole feature set in batch: windowed specs in SQL, then the orders' attributes and derived features."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.derived import AFTER_SALE_ALLOWANCE, derive_columns, history_start, point_in_time_features
from features.specs import DerivedOp, FeatureSet, derive
from orderguard.enrich import Gazetteer
from orderguard.errors import ConfigError
from tests.factories import BASE_TIME, at, make_order

SET = FeatureSet.from_data({
    "features": [{"entity": "user", "field": "orders", "agg": "time_since", "window": "30d"},
                 {"entity": "user", "field": "orders", "agg": "count", "window": "1h", "offset": "1d"}],
    "attributes": ["has_coupon", "pickup_address", "night"],
    "derived": [{"op": "is_missing", "of": ["time_since_orders_by_user_30d"]},
                {"op": "all", "of": ["order_has_coupon", "is_missing_time_since_orders_by_user_30d"]}],
})


def rows(**kwargs: Any) -> dict[str, dict[str, float]]:
    frame = point_in_time_features(kwargs.pop("orders"), SET, **kwargs)
    assert list(frame.columns) == ["order_key", "event_time", *SET.names]
    return {row["order_key"]: row for row in frame.to_dict("records")}


def test_attributes_and_derived_columns_follow_the_windowed_ones() -> None:
    first = make_order("a", coupon_ids=("new",), address=("浙江省", "杭州市", "西湖区", "丰巢快递柜"))
    second = make_order("b", created_at=at(minutes=30))
    got = rows(orders=[second, first])
    assert got["site:a"]["order_has_coupon"] == 1 and got["site:a"]["order_pickup_address"] == 1
    assert got["site:a"]["is_missing_time_since_orders_by_user_30d"] == 1
    assert got["site:a"]["all_order_has_coupon_and_is_missing_time_since_orders_by_user_30d"] == 1
    assert got["site:b"]["order_has_coupon"] == 0 and got["site:b"]["order_pickup_address"] == 0
    assert got["site:b"]["time_since_orders_by_user_30d"] == 1800
    assert got["site:b"]["is_missing_time_since_orders_by_user_30d"] == 0
    assert got["site:b"]["order_night"] == 0  # 16:30 in Beijing


def test_since_keeps_later_rows_but_their_windows_still_see_the_history() -> None:
    history = make_order("old", created_at=BASE_TIME)
    later = make_order("new", created_at=at(days=1, minutes=20))
    got = rows(orders=[history, later], since=at(hours=12))
    assert list(got) == ["site:new"]
    assert got["site:new"]["count_orders_by_user_1h_lag1d"] == 1  # (new - 1d - 1h, new - 1d] holds "old"


def test_history_reaches_back_the_longest_window_and_the_after_sale_allowance() -> None:
    start = datetime(2024, 6, 1, tzinfo=UTC)
    assert history_start(SET, start) == start - timedelta(days=30) - AFTER_SALE_ALLOWANCE  # 30d beats 1h lag 1d


def test_reference_data_is_required_for_the_distance() -> None:
    with_distance = FeatureSet.from_data({"features": [], "attributes": ["phone_delivery_km"]})
    with pytest.raises(ConfigError) as info:
        point_in_time_features([make_order()], with_distance)
    assert info.value.field == "gazetteer"
    frame = point_in_time_features([make_order()], with_distance, gazetteer=Gazetteer.build())
    assert math.isnan(frame["order_phone_delivery_km"].iloc[0])  # no phone on this order


@settings(max_examples=200, deadline=None)
@given(op=st.sampled_from(list(DerivedOp)), rows=st.lists(st.lists(
    st.sampled_from([0.0, 1.0, -2.5, 3.0, 1e-300, float("nan"), float("inf")]), min_size=8, max_size=8),
    min_size=1, max_size=30))
def test_whole_columns_derive_exactly_what_one_row_does(op: DerivedOp, rows: list[list[float]]) -> None:
    """The batch frame derives column-wise; the online engine row by row: the same values, NaN where NaN."""
    arity = {DerivedOp.RATIO: 2, DerivedOp.IS_ZERO: 1, DerivedOp.IS_MISSING: 1, DerivedOp.ALL: 3}[op]
    columns = [np.array([row[i] for row in rows]) for i in range(arity)]
    batch = derive_columns(op, columns)
    for r, row in enumerate(rows):
        one = derive(op, row[:arity])
        assert (math.isnan(one) and math.isnan(batch[r])) or one == batch[r], (op, row[:arity], batch[r])
