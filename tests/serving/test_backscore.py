"""Back-scoring: each stored order is scored once, at its arrival, with features as of then — labels given
later and the order's own later life (a refund claim) do not leak in — and a second run stores nothing."""

from __future__ import annotations

from datetime import timedelta

from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog
from orderguard.schema import ClientInfo, EventKind, Label, OrderStatus, Verdict
from scoring.records import ScoreLog
from serving.backscore import backscore
from tests.factories import BASE_TIME, EventFactory, follow_up

FRAUD_BY_DEVICE = "distinct_orders_fraud_by_device_90d"


def test_orders_are_scored_at_arrival_without_later_knowledge(db_settings: Settings) -> None:
    make = EventFactory()
    device = ClientInfo(device_id="dev-ring-1", ip="10.0.0.7")
    first = make(event_time=BASE_TIME, client=device)
    claim = follow_up(first, status=OrderStatus.REFUND_REQUESTED, after=timedelta(hours=30), kind=EventKind.AFTER_SALE)
    second = make(event_time=BASE_TIME + timedelta(hours=3), client=device)
    before = make(event_time=BASE_TIME - timedelta(days=2), client=ClientInfo(device_id="dev-other"))
    with OrderLog.open(db_settings.database_url) as log:
        log.append([before, first, claim, second])
        labels = LabelLog(log.engine)
        labels.add([Label(first.key, Verdict.CONFIRMED_FRAUD, BASE_TIME + timedelta(hours=1), "alice")],
                   source="api", recorded_at=BASE_TIME + timedelta(hours=1))
        done = backscore(db_settings, log, labels, champion=None, since=BASE_TIME - timedelta(hours=1))
        assert (done.scored, done.stored, done.labels) == (2, 2, 1)  # `before` is history, not scored
        scores = ScoreLog(log.engine)
        one, two = scores.latest(first.key), scores.latest(second.key)
        assert one is not None and two is not None and scores.latest(before.key) is None
        # scored at arrival: the first order document's version and time, not the refund claim's
        assert (one.event_version, one.event_time, one.scored_at) == (first.event_version, BASE_TIME, BASE_TIME)
        assert one.features[FRAUD_BY_DEVICE] == 0  # the fraud label came an hour later
        assert two.features[FRAUD_BY_DEVICE] == 1  # ... and counts for the order after it
        assert one.rules_only and one.model_version is None
        again = backscore(db_settings, log, labels, champion=None, since=BASE_TIME - timedelta(hours=1))
        assert (again.scored, again.stored) == (2, 0)
        assert scores.count() == 2


def test_orders_of_one_instant_count_each_other_as_the_batch_frame_does(db_settings: Settings) -> None:
    from features.derived import point_in_time_features
    from features.shop import feature_set_from
    from orderguard.enrich import Gazetteer

    make = EventFactory()
    device = ClientInfo(device_id="dev-burst", ip="10.0.0.9")
    burst = [make(event_time=BASE_TIME, client=device) for _ in range(3)]  # channels stamp whole seconds
    later = make(event_time=BASE_TIME + timedelta(seconds=1), client=device)
    with OrderLog.open(db_settings.database_url) as log:
        log.append([*burst, later])
        backscore(db_settings, log, LabelLog(log.engine), champion=None, since=BASE_TIME - timedelta(hours=1))
        scores = ScoreLog(log.engine)
        served = {str(e.key): scores.latest(e.key) for e in [*burst, later]}
        frame = point_in_time_features(list(log.iter_orders()), feature_set_from(db_settings),
                                       gazetteer=Gazetteer.build())
    batch = dict(zip(frame["order_key"], frame["count_orders_by_device_5m"], strict=True))
    assert {k: r.features["count_orders_by_device_5m"] for k, r in served.items() if r is not None} == batch
    assert sorted(batch.values()) == [3, 3, 3, 4]
