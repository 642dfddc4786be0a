"""Score records round-trip on every backend and the first record of an order version wins."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Channel, OrderKey
from scoring.policy import Decision, Reason, RiskLevel
from scoring.records import ScoreLog, ScoreRecord
from scoring.rules import RuleHit

T = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)


def record(**overrides: object) -> ScoreRecord:
    base = ScoreRecord(
        order_key=OrderKey(Channel.DOUYIN, "123"), event_version=7, event_time=T, scored_at=T + timedelta(seconds=1),
        score=56.5, risk_level=RiskLevel.HIGH, decision=Decision.REVIEW, rules_only=True, model_version=None,
        settings_hash="abc", feature_set_hash="def", latency_ms=0.4,
        features={"count_orders_by_device_5m": 6.0, "time_since_orders_by_user_30d": math.nan},
        hits=(RuleHit("DEVICE_BURST_5M", 50.0, "同一设备5分钟内下单6次", "6 orders from one device in 5 min",
                      {"count_orders_by_device_5m": 6.0}),),
        reasons=(Reason("DEVICE_BURST_5M", 50.0, "同一设备5分钟内下单6次", "6 orders from one device in 5 min",
                        "rule"),))
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
    assert loaded.reasons == stored.reasons and loaded.risk_level is RiskLevel.HIGH


def test_first_record_of_an_order_version_wins(order_log: OrderLog) -> None:
    scores = ScoreLog(order_log.engine)
    first = scores.put(record())
    again = scores.put(record(score=99.0, decision=Decision.HOLD))
    assert again.score == first.score and scores.count() == 1
    scores.put(record(event_version=8, score=10.0, decision=Decision.APPROVE))
    latest = scores.latest(first.order_key)
    assert latest is not None and latest.event_version == 8
    assert [r.decision for r in scores.iter_records(decisions=(Decision.REVIEW,))] == ["review"]


def test_put_all_and_put_many_keep_the_first_record_of_each_version(order_log: OrderLog) -> None:
    scores = ScoreLog(order_log.engine)
    scores.put(record())  # version 7 is stored already
    batch = [record(score=99.0), record(event_version=8, score=10.0), record(event_version=8, score=20.0)]
    kept = {r.event_version: r.score for r in scores.put_all(batch)}
    assert kept == {7: 56.5, 8: 10.0} and scores.count() == 2
    assert scores.put_many([record(event_version=8), record(event_version=9), record(event_version=9)]) == 1
    assert scores.count() == 3


def test_two_writers_storing_overlapping_batches_each_answer_the_one_stored_record(order_log: OrderLog) -> None:
    """Two processes (two engines) store batches sharing versions at the same moment: neither fails, every
    version keeps one record, and both are answered with that record, whoever stored it."""
    other = OrderLog.open(order_log.engine.url.render_as_string(hide_password=False))
    try:
        logs = (ScoreLog(order_log.engine), ScoreLog(other.engine))
        for round_ in range(15):
            versions = range(100 * round_, 100 * round_ + 6)
            batches = ([record(event_version=v, score=1.0) for v in versions],
                       [record(event_version=v, score=2.0) for v in reversed(versions)])
            start = threading.Barrier(2)

            def store(log: ScoreLog, batch: list[ScoreRecord], start: threading.Barrier = start) -> dict[int, float]:
                start.wait()
                return {r.event_version: r.score for r in log.put_all(batch)}

            with ThreadPoolExecutor(2) as pool:
                first, second = pool.map(store, logs, batches)
            stored = {v: logs[0].get(OrderKey(Channel.DOUYIN, "123"), v) for v in versions}
            assert first == second == {v: r.score for v, r in stored.items() if r is not None}
            assert set(first) == set(versions)
        assert logs[0].count() == 15 * 6
    finally:
        other.close()
