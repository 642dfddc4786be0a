"""Score records round-trip on every backend and the first record of an order version wins."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Channel, OrderKey
from scoring.records import ScoreLog, ScoreRecord

T = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)


def record(**overrides: object) -> ScoreRecord:
    base = ScoreRecord(
        order_key=OrderKey(Channel.DOUYIN, "123"), event_version=7, event_time=T, scored_at=T + timedelta(seconds=1),
        score=56.5, risk_level="high", decision="review", rules_only=True, model_version=None,
        settings_hash="abc", feature_set_hash="def", latency_ms=0.4,
        features={"count_orders_by_device_5m": 6.0, "time_since_orders_by_user_30d": math.nan},
        hits=({"code": "DEVICE_BURST_5M", "points": 50.0},), reasons=({"code": "DEVICE_BURST_5M", "weight": 50.0},))
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_round_trip_keeps_times_aware_and_nan_missing(order_log: OrderLog) -> None:
    scores = ScoreLog(order_log.engine)
    stored = scores.put(record())
    loaded = scores.get(stored.order_key, 7)
    assert loaded is not None
    assert loaded.event_time == T and loaded.event_time.tzinfo is not None
    assert loaded.features["count_orders_by_device_5m"] == 6.0
    assert math.isnan(loaded.features["time_since_orders_by_user_30d"])
    assert loaded.hits == stored.hits and loaded.decision == "review"


def test_first_record_of_an_order_version_wins(order_log: OrderLog) -> None:
    scores = ScoreLog(order_log.engine)
    first = scores.put(record())
    again = scores.put(record(score=99.0, decision="hold"))
    assert again.score == first.score and scores.count() == 1
    scores.put(record(event_version=8, score=10.0, decision="approve"))
    latest = scores.latest(first.order_key)
    assert latest is not None and latest.event_version == 8
    assert [r.decision for r in scores.iter_records(decisions=("review",))] == ["review"]
