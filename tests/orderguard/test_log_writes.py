"""How the order log writes on SQLite (multi-row statements) and re-derives orders (the state memo):
the bytes stored are those SQLAlchemy's own statements stored, and a memo never serves a state
the database no longer holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from orderguard.ingest import codec
from orderguard.ingest.multirow import MultiRowInsert, bind_processors, bound_rows
from orderguard.ingest.orderlog import ORDER_EVENTS, ORDERS, OrderLog
from orderguard.ingest.state import derive_order
from orderguard.ingest.state_memo import StateMemo
from orderguard.schema import EventKind, OrderEvent, OrderStatus
from tests.factories import BASE_TIME, follow_up, make_event

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
_TIMES = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 12, 31), timezones=_ZONES)
#: Whole seconds too: SQLite's DATETIME writes ``.000000`` where a generic DateTime writes nothing.
_MOMENTS = st.one_of(_TIMES, _TIMES.map(lambda t: t.replace(microsecond=0)))
_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)


def _raw_rows(url: str, table: str, order_by: str) -> list[tuple[Any, ...]]:
    """Every row as SQLite holds it: no column type decodes anything on the way out."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {order_by}")]
    finally:
        engine.dispose()


def _reference_write(url: str, events: list[OrderEvent]) -> None:
    """The same events written with SQLAlchemy's insert and upsert statements, value by value."""
    with OrderLog.open(url) as log, log.engine.begin() as conn:
        rows = [{"channel": e.key.channel.value, "channel_order_id": e.key.channel_order_id,
                 "event_version": e.event_version, "event_time": e.event_time, "received_at": e.received_at,
                 "kind": e.kind.value, "status": e.status.value, "channel_status": e.channel_status,
                 "content_hash": codec.content_hash(e), "payload": codec.event_to_dict(e)} for e in events]
        conn.execute(ORDER_EVENTS.insert(), rows)
        order = derive_order(events)
        assert order is not None
        upsert = sqlite.insert(ORDERS)
        upsert = upsert.on_conflict_do_update(
            index_elements=[ORDERS.c.channel, ORDERS.c.channel_order_id],
            set_={c.name: upsert.excluded[c.name] for c in ORDERS.c if c.name not in ("channel", "channel_order_id")})
        conn.execute(upsert, [{
            "channel": order.key.channel.value, "channel_order_id": order.key.channel_order_id,
            "status": order.status.value, "event_version": order.event_version, "updated_at": order.updated_at,
            "created_at": order.details.created_at, "shop_id": order.details.shop_id,
            "account_id": order.details.buyer.account_id, "state": codec.order_to_dict(order)}])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(created=_MOMENTS, later=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=30)),
       note=_TEXT, shop=_TEXT.filter(str.strip))
def test_multirow_writes_store_the_bytes_sqlalchemy_stored(tmp_path: Path, created: datetime, later: timedelta,
                                                            note: str, shop: str) -> None:
    first = make_event(event_time=created, shop_id=shop, raw={"note": note, "n": [1, 2.5, None]})
    events = [first, follow_up(first, status=OrderStatus.SHIPPED, after=later)]
    stamp = datetime.now(UTC).strftime("%H%M%S%f")
    ours, theirs = f"sqlite:///{tmp_path}/ours-{stamp}.db", f"sqlite:///{tmp_path}/theirs-{stamp}.db"
    with OrderLog.open(ours) as log:
        log.append(events)
    _reference_write(theirs, events)
    for table, order_by in (("order_events", "id"), ("orders", "channel, channel_order_id")):
        assert _raw_rows(ours, table, order_by) == _raw_rows(theirs, table, order_by)


def test_multirow_insert_splits_into_statements_and_returns_every_row(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/t.db")
    insert = MultiRowInsert("t", ("a", "b", "c"), " ON CONFLICT (a) DO NOTHING RETURNING a")
    rows = [(i, f"b{i}", None) for i in range(insert.rows_per_statement * 2 + 7)]
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c TEXT)")
        assert sorted(r[0] for r in insert.execute(conn, rows)) == list(range(len(rows)))
        assert insert.execute(conn, [*rows[:5], (10**6, "new", "x")]) == [(10**6,)]  # taken keys are skipped
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == len(rows) + 1
    engine.dispose()


def test_bind_processors_are_the_dialects_own(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/t.db")
    [time_of] = bind_processors(ORDER_EVENTS, ("event_time",), engine.dialect)
    assert time_of is not None
    assert time_of(datetime(2024, 11, 11, 8, tzinfo=timezone(timedelta(hours=8)))) == "2024-11-11 00:00:00.000000"
    assert bound_rows([{"event_time": BASE_TIME, "kind": "order"}], ("kind", "event_time"),
                      (None, time_of)) == [("order", time_of(BASE_TIME))]
    engine.dispose()


def _lifecycle() -> list[OrderEvent]:
    first = make_event(order_id="M1")
    return [first, follow_up(first, status=OrderStatus.SHIPPED, after=timedelta(hours=1)),
            follow_up(first, status=OrderStatus.DELIVERED, after=timedelta(days=2))]


def _remembering(order_log: OrderLog) -> OrderLog:
    """A second log on the fixture's database that keeps the states it writes, as a file import opens it."""
    return OrderLog.open(order_log.engine.url.render_as_string(hide_password=False), remembered_states=8)


def test_the_memo_serves_the_state_this_log_wrote(order_log: OrderLog) -> None:
    events = _lifecycle()
    with _remembering(order_log) as log:
        for event in events:
            log.append([event])
        assert log.memo is not None and (log.memo.hits, log.memo.misses) == (2, 0)  # no decode after the first
    assert order_log.memo is None  # the default: no states kept (the service's appends are of new orders)
    assert order_log.get(events[0].key) == derive_order(events)


def test_the_memo_is_not_trusted_when_another_writer_moved_the_order(order_log: OrderLog) -> None:
    """Two logs on one database, as two importing processes: each appends one step of the same order in turn."""
    events = _lifecycle()
    with _remembering(order_log) as log, _remembering(order_log) as other:
        log.append([events[0]])
        other.append([events[1]])  # log's memo now holds a state the database no longer has
        result = log.append([events[2]])
        assert log.memo is not None and (log.memo.hits, log.memo.misses) == (0, 1)
    expected = derive_order(events)
    assert result.orders == (expected,)
    assert expected is not None and [c.status for c in expected.timeline] == [
        OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED]
    assert order_log.get(events[0].key) == expected


def test_the_memo_forgets_the_least_recently_used() -> None:
    orders = []
    for i in range(3):
        order = derive_order([make_event(order_id=f"L{i}")])
        assert order is not None
        orders.append(order)
    texts = [codec.dumps(codec.order_to_dict(o)) for o in orders]
    memo = StateMemo(capacity=2)
    memo.keep("a", texts[0], orders[0])
    memo.keep("b", texts[1], orders[1])
    assert memo.order("a", texts[0]) is orders[0]  # "a" used: "b" is now the oldest
    memo.keep("c", texts[2], orders[2])
    assert len(memo) == 2
    assert memo.order("b", texts[1]) == orders[1] and memo.misses == 1  # decoded again
    assert memo.order("c", texts[2]) is orders[2] and memo.hits == 2
    assert memo.order("c", texts[0]) == orders[0]  # another stored form: decoded, never the kept order
    with pytest.raises(ValueError, match="capacity"):
        StateMemo(capacity=0)


def test_an_order_encoded_with_its_details_known_is_the_same_dict() -> None:
    events = [*_lifecycle(), make_event(order_id="M1", kind=EventKind.AFTER_SALE,
                                        event_time=BASE_TIME + timedelta(days=3))]
    order = derive_order(events)
    assert order is not None and order.refund is not None
    details = codec.event_to_dict(events[0])["details"]
    assert codec.order_to_dict(order, details=details) == codec.order_to_dict(order)
    assert list(codec.order_to_dict(order, details=details)) == list(codec.order_to_dict(order))  # key order too
