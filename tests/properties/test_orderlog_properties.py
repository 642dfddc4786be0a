"""Order log properties, on SQLite and PostgreSQL (DESIGN.md §5):

* ingesting a stream twice leaves the log exactly as ingesting it once;
* any arrival order and any cut into batches give the same final state and history;
* both agree with a plain in-memory model: keep the first copy of each event key,
  fold each order's events with ``derive_order``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderguard.ingest.orderlog import ORDER_EVENTS, ORDERS, OrderLog
from orderguard.ingest.state import derive_order
from orderguard.schema import OrderEvent, OrderKey
from tests.factories import batches, event_streams

# One log per test function (per backend), emptied before every example.
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _clear(log: OrderLog) -> None:
    with log.engine.begin() as conn:
        conn.execute(ORDERS.delete())
        conn.execute(ORDER_EVENTS.delete())


def _ingest(log: OrderLog, parts: Sequence[Sequence[OrderEvent]]) -> None:
    for part in parts:
        log.append(part)


def _first_copies(stream: Sequence[OrderEvent]) -> dict[OrderKey, list[OrderEvent]]:
    """The model: the first arrival of each (key, version) wins; per order, by version."""
    kept: dict[tuple[OrderKey, int], OrderEvent] = {}
    for event in stream:
        kept.setdefault((event.key, event.event_version), event)
    by_key: dict[OrderKey, list[OrderEvent]] = {}
    for (key, _), event in sorted(kept.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        by_key.setdefault(key, []).append(event)
    return by_key


def _assert_matches_model(log: OrderLog, stream: Sequence[OrderEvent]) -> None:
    model = _first_copies(stream)
    expected_orders = {key: derive_order(events) for key, events in model.items()}
    for key, events in model.items():
        history = log.history(key)
        assert history == events
        assert [(e.received_at, dict(e.raw)) for e in history] == [(e.received_at, dict(e.raw)) for e in events]
        assert log.get(key) == expected_orders[key]
    present = [o for o in expected_orders.values() if o is not None]
    assert log.count_orders() == len(present)
    assert log.count_events() == sum(len(v) for v in model.values())
    assert log.status_counts() == dict(Counter(o.status for o in present))
    everything = sorted((e for events in model.values() for e in events),
                        key=lambda e: (e.event_time, e.key.channel.value, e.key.channel_order_id, e.event_version))
    assert [(e.key, e.event_version) for e in log.iter_events(batch_size=3)] == [
        (e.key, e.event_version) for e in everything]


@PROPERTY_SETTINGS
@given(stream=event_streams(conflicts=True), data=st.data())
def test_ingesting_twice_equals_ingesting_once(order_log: OrderLog, stream: list[OrderEvent],
                                               data: st.DataObject) -> None:
    _clear(order_log)
    _ingest(order_log, data.draw(batches(stream), label="first cut"))
    once = order_log.snapshot()
    _assert_matches_model(order_log, stream)

    for part in data.draw(batches(stream), label="second cut"):
        result = order_log.append(part)
        assert result.inserted == 0
        assert result.orders == ()
    assert order_log.snapshot() == once
    _assert_matches_model(order_log, stream)


@PROPERTY_SETTINGS
@given(stream=event_streams(), data=st.data())
def test_arrival_order_and_batching_do_not_change_the_result(order_log: OrderLog, stream: list[OrderEvent],
                                                             data: st.DataObject) -> None:
    _clear(order_log)
    _ingest(order_log, data.draw(batches(stream), label="first cut"))
    first = order_log.snapshot()
    _assert_matches_model(order_log, stream)

    other = data.draw(st.permutations(stream), label="other arrival order")
    _clear(order_log)
    _ingest(order_log, data.draw(batches(other), label="second cut"))
    assert order_log.snapshot() == first
    orders = list(order_log.iter_orders())
    assert orders == sorted(orders, key=lambda o: (o.details.created_at, o.key))
