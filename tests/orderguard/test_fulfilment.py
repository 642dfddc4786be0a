"""Fulfilment reports: parsed with a clear error per field, stored idempotently on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orderguard.errors import EventConflictError, InvalidInputError
from orderguard.fulfilment import FulfilmentLog, StepKind, conflict_error, parse_event
from orderguard.ingest.orderlog import AppendOutcome, OrderLog
from orderguard.schema import Channel, OrderKey

NOW = datetime(2024, 11, 11, 12, 0, tzinfo=UTC)


def report(**fields: Any) -> dict[str, Any]:
    base = {"channel": "douyin", "order_id": "6920001", "kind": "out_scan", "event_id": "wms-1",
            "time": "2024-11-11T18:02:11+08:00", "source": "wms"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def test_a_report_is_parsed_with_shop_time_as_the_default_zone() -> None:
    event = parse_event(report(time="2024-11-11T18:02:11"), received_at=NOW)
    assert event.key == OrderKey(Channel.DOUYIN, "6920001") and event.kind is StepKind.OUT_SCAN
    assert event.event_time == datetime(2024, 11, 11, 10, 2, 11, tzinfo=UTC)
    tracked = parse_event(report(kind="TRACKING", carrier="sf", waybill="SF123", node="到达杭州转运中心"),
                          received_at=NOW)
    assert (tracked.kind, tracked.carrier, tracked.node) == (StepKind.TRACKING, "sf", "到达杭州转运中心")
    assert parse_event(tracked.to_dict(), received_at=NOW) == tracked  # the stored form reads back the same


@pytest.mark.parametrize(("fields", "field"), [
    ({"channel": "ebay"}, "channel"),
    ({"kind": "teleported"}, "kind"),
    ({"event_id": None}, "event_id"),
    ({"order_id": "x" * 129}, "order_id"),
    ({"time": "yesterday"}, "time"),
    ({"time": "1970-01-01T00:00:00Z"}, "time"),
    ({"node": "a\x00b"}, "node"),
    ({"node": ["list"]}, "node"),
    ({"due_at": "soon"}, "due_at"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_report_names_its_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_event(report(**fields), received_at=NOW)
    assert caught.value.field == field and f"`{field}`" in caught.value.message


def test_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_event(["out_scan"], received_at=NOW)
    assert caught.value.field == "body"


def test_append_is_idempotent_and_refuses_a_changed_repeat(order_log: OrderLog) -> None:
    steps = FulfilmentLog(order_log.engine)
    first = parse_event(report(), received_at=NOW)
    other = parse_event(report(event_id="wms-2", time="2024-11-11T18:30:00+08:00"), received_at=NOW)
    assert steps.append([first, other]).outcomes == (AppendOutcome.INSERTED, AppendOutcome.INSERTED)
    retried = parse_event(report(), received_at=NOW + timedelta(minutes=5))  # the same report, sent again
    changed = parse_event(report(node="changed"), received_at=NOW)
    result = steps.append([retried, changed, retried])
    assert result.outcomes == (AppendOutcome.DUPLICATE, AppendOutcome.CONFLICT, AppendOutcome.DUPLICATE)
    assert (result.inserted, result.duplicates, result.conflicts) == (0, 2, 1)
    assert steps.count() == 2
    assert [e.event_id for e in steps.of_order(first.key)] == ["wms-1", "wms-2"]
    assert steps.of_order(first.key)[0].node == ""  # the first accepted content is kept
    error = conflict_error(changed)
    assert isinstance(error, EventConflictError) and error.field == "event_id" and error.http_status == 409


def test_the_feed_reads_forward_by_row_and_by_event_time(order_log: OrderLog) -> None:
    steps = FulfilmentLog(order_log.engine)
    late = parse_event(report(event_id="a", time="2024-11-11T20:00:00+08:00"), received_at=NOW)
    early = parse_event(report(event_id="b", time="2024-11-11T08:00:00+08:00"), received_at=NOW)
    steps.append([late])
    cursor = steps.last_id()
    steps.append([early])
    assert [s.event.event_id for s in steps.after(cursor)] == ["b"]
    assert [s.event.event_id for s in steps.after(0)] == ["a", "b"]
    window = steps.iter_range(start=datetime(2024, 11, 11, tzinfo=UTC), end=datetime(2024, 11, 11, 6, tzinfo=UTC))
    assert [s.event.event_id for s in window] == ["b"]
    assert [s.event.event_id for s in steps.iter_range(page=1)] == ["b", "a"]  # by event time
    assert [e.event_id for e in steps.of_order(early.key)] == ["b", "a"]  # by event time, not arrival
