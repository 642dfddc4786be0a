"""The order log on SQLite and PostgreSQL: idempotent append, late events, conflicts,
event-time ordering, migrations and connection failures."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from features.settings import Settings
from orderguard.errors import ConfigError, EventConflictError, InvalidInputError, ServiceUnavailableError
from orderguard.ingest import codec
from orderguard.ingest.migrations import VERSION_TABLE
from orderguard.ingest.orderlog import METADATA, AppendOutcome, OrderLog, migration_config, redacted
from orderguard.ingest.state import derive_order
from orderguard.schema import Channel, EventKind, OrderEvent, OrderKey, OrderStatus
from tests.factories import BASE_TIME, EventFactory, follow_up, make_event

NEW, DUP, CONF = AppendOutcome.INSERTED, AppendOutcome.DUPLICATE, AppendOutcome.CONFLICT


def _url(log: OrderLog) -> str:
    return log.engine.url.render_as_string(hide_password=False)


def test_append_stores_events_and_derives_the_order(order_log: OrderLog, event_factory: EventFactory) -> None:
    events = event_factory.lifecycle()
    result = order_log.append(events)
    assert result.outcomes == (NEW, NEW, NEW, NEW)
    assert result.inserted == 4
    assert result.conflicts == ()
    expected = derive_order(events)
    assert expected is not None
    assert result.orders == (expected,)
    assert order_log.get(events[0].key) == expected
    assert order_log.count_events() == 4
    assert order_log.count_orders() == 1


def test_history_round_trips_every_field(order_log: OrderLog) -> None:
    event = make_event(raw={"buyer_nick": "小王", "flags": [1, 2.5, None, True], "nested": {"a": "b"}})
    order_log.append([event])
    [stored] = order_log.history(event.key)
    assert stored == event
    assert stored.raw == event.raw
    assert stored.received_at == event.received_at


def test_duplicate_is_a_no_op_and_keeps_the_first_delivery(order_log: OrderLog) -> None:
    event = make_event()
    resent = replace(event, received_at=event.received_at + timedelta(hours=3), raw={"retry": 2})
    order_log.append([event])
    before = order_log.snapshot()
    result = order_log.append([resent])
    assert result.outcomes == (DUP,)
    assert result.duplicates == 1
    assert result.orders == ()  # nothing new: no state to recompute
    assert order_log.snapshot() == before
    [stored] = order_log.history(event.key)
    assert stored.received_at == event.received_at
    assert stored.raw == {}


def test_duplicates_inside_one_batch(order_log: OrderLog) -> None:
    event = make_event()
    result = order_log.append([event, replace(event, raw={"copy": 1}), event])
    assert result.outcomes == (NEW, DUP, DUP)
    assert order_log.count_events() == 1


def test_late_older_version_does_not_overwrite_newer_state(order_log: OrderLog) -> None:
    paid = make_event(status=OrderStatus.PAID)
    shipped = follow_up(paid, status=OrderStatus.SHIPPED)
    order_log.append([shipped])
    after_shipped = order_log.get(paid.key)
    assert after_shipped is not None
    assert after_shipped.status is OrderStatus.SHIPPED

    result = order_log.append([paid])  # the older document arrives late
    assert result.outcomes == (NEW,)
    order = order_log.get(paid.key)
    assert order is not None
    assert order.status is OrderStatus.SHIPPED
    assert order.event_version == shipped.event_version
    assert order.updated_at == shipped.event_time
    assert order.details == shipped.details
    assert [step.status for step in order.timeline] == [OrderStatus.PAID, OrderStatus.SHIPPED]
    assert [e.event_version for e in order_log.history(paid.key)] == [paid.event_version, shipped.event_version]


def test_conflict_is_reported_and_the_first_is_kept(order_log: OrderLog) -> None:
    event = make_event(channel_status="WAIT_SELLER_SEND_GOODS")
    other = replace(event, channel_status="TRADE_CLOSED")  # same key and version, other content
    order_log.append([event])
    result = order_log.append([other, make_event(order_id="SO-other")])
    assert result.outcomes == (CONF, NEW)  # the batch is not failed by the conflict
    [conflict] = result.conflicts
    assert conflict.key == event.key
    assert conflict.event_version == event.event_version
    assert conflict.kept_hash == codec.content_hash(event)
    assert conflict.rejected_hash == codec.content_hash(other)
    error = conflict.to_error()
    assert isinstance(error, EventConflictError)
    assert error.http_status == 409
    assert error.field == "event_version"
    assert order_log.history(event.key) == [event]
    assert order_log.history(event.key)[0].channel_status == "WAIT_SELLER_SEND_GOODS"
    assert order_log.count_events() == 2


def test_conflict_inside_one_batch_keeps_the_first_in_the_batch(order_log: OrderLog) -> None:
    event = make_event(channel_status="A")
    other = replace(event, channel_status="B")
    result = order_log.append([event, other, replace(other, raw={"x": 1}), event])
    assert result.outcomes == (NEW, CONF, CONF, DUP)
    assert [c.rejected_hash for c in result.conflicts] == [codec.content_hash(other)] * 2
    assert order_log.history(event.key)[0].channel_status == "A"


def test_copies_of_a_rejected_event_conflict_with_the_stored_one(order_log: OrderLog) -> None:
    event = make_event(channel_status="A")
    other = replace(event, channel_status="B")
    order_log.append([event])
    result = order_log.append([other, other])
    assert result.outcomes == (CONF, CONF)
    assert all(c.kept_hash == codec.content_hash(event) for c in result.conflicts)


def test_refund_before_the_order_document(order_log: OrderLog) -> None:
    """The after-sale document overtakes the order document: events are kept, no order
    row exists until the order document arrives, then the full timeline appears."""
    paid = make_event(status=OrderStatus.PAID)
    refund = follow_up(paid, status=OrderStatus.REFUND_REQUESTED, after=timedelta(hours=2))
    assert refund.kind is EventKind.AFTER_SALE
    first = order_log.append([refund])
    assert first.outcomes == (NEW,)
    assert first.pending == (paid.key,)
    assert first.orders == ()
    assert order_log.get(paid.key) is None
    assert order_log.history(paid.key) == [refund]
    assert order_log.count_orders() == 0
    assert order_log.status_counts() == {}

    second = order_log.append([paid])
    assert second.pending == ()
    order = order_log.get(paid.key)
    assert order is not None
    assert second.orders == (order,)
    assert order.status is OrderStatus.REFUND_REQUESTED  # the newer after-sale status wins
    assert order.refund == refund.refund
    assert order.details == paid.details
    assert [s.status for s in order.timeline] == [OrderStatus.PAID, OrderStatus.REFUND_REQUESTED]


def test_iter_events_orders_by_event_time_then_key_never_by_arrival(order_log: OrderLog) -> None:
    t = BASE_TIME
    # Ids whose order differs between code-point and natural-language collations.
    ids = ["SO1", "SO-2", "so3", "B7", "a7"]
    events = [make_event(order_id=i, channel=ch, event_time=t) for i in ids for ch in (Channel.JD, Channel.SITE)]
    same_ms = make_event(order_id="SO1", channel=Channel.JD, event_time=t, status=OrderStatus.SHIPPED)
    later = [make_event(order_id=i, event_time=t + timedelta(seconds=n)) for n, i in enumerate(["Z", "A"], 1)]
    earlier = make_event(order_id="late", event_time=t - timedelta(days=1))
    everything = [*events, same_ms, *later, earlier]
    shuffled = random.Random(7).sample(everything, len(everything))
    # Arrival order and receive times run against event time.
    shuffled = [replace(e, received_at=BASE_TIME + timedelta(days=5, seconds=-n)) for n, e in enumerate(shuffled)]
    for e in shuffled:
        order_log.append([e])

    def sort_key(e: OrderEvent) -> tuple[object, ...]:
        return (e.event_time, e.key.channel.value, e.key.channel_order_id, e.event_version)

    expected = [(str(e.key), e.event_version) for e in sorted(everything, key=sort_key)]
    got = [(str(e.key), e.event_version) for e in order_log.iter_events()]
    assert got == expected
    paged = [(str(e.key), e.event_version) for e in order_log.iter_events(batch_size=2)]
    assert paged == expected
    window = [(str(e.key), e.event_version) for e in order_log.iter_events(start=t, end=t + timedelta(seconds=2),
                                                                            batch_size=3)]
    assert window == [x for x, e in zip(expected, sorted(everything, key=sort_key), strict=True)
                      if t <= e.event_time < t + timedelta(seconds=2)]
    assert (str(earlier.key), earlier.event_version) not in window
    assert (str(later[1].key), later[1].event_version) not in window


def test_iter_orders_by_creation_time_then_key(order_log: OrderLog) -> None:
    created = [BASE_TIME + timedelta(minutes=m) for m in (30, 0, 10, 10, 20)]
    events = [make_event(order_id=f"SO{n}", channel=Channel.TMALL if n % 2 else Channel.JD, event_time=c)
              for n, c in enumerate(created)]
    order_log.append(events)
    expected = sorted(events, key=lambda e: (e.event_time, e.key.channel.value, e.key.channel_order_id))
    assert [o.key for o in order_log.iter_orders(batch_size=2)] == [e.key for e in expected]
    window = list(order_log.iter_orders(start=BASE_TIME + timedelta(minutes=10),
                                        end=BASE_TIME + timedelta(minutes=30)))
    assert [o.details.created_at for o in window] == [BASE_TIME + timedelta(minutes=m) for m in (10, 10, 20)]


def test_status_counts(order_log: OrderLog, event_factory: EventFactory) -> None:
    statuses = [OrderStatus.PAID, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.CANCELLED]
    batch = [event_factory(status=s) for s in statuses]
    done = event_factory.lifecycle([OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED])
    refund_only = follow_up(event_factory(), status=OrderStatus.REFUND_REQUESTED)
    order_log.append([*batch, *done, refund_only])
    assert order_log.status_counts() == {OrderStatus.PAID: 2, OrderStatus.SHIPPED: 1,
                                         OrderStatus.CANCELLED: 1, OrderStatus.COMPLETED: 1}
    assert order_log.count_orders() == 5
    assert order_log.count_events() == 8


def test_get_and_history_of_an_unknown_order(order_log: OrderLog) -> None:
    key = OrderKey(Channel.DOUYIN, "nope")
    assert order_log.get(key) is None
    assert order_log.history(key) == []
    assert order_log.append([]).outcomes == ()


def test_large_batch_spans_several_chunks(order_log: OrderLog, event_factory: EventFactory) -> None:
    events = [event_factory(event_time=BASE_TIME + timedelta(seconds=n)) for n in range(2300)]
    first = order_log.append(events)
    assert first.inserted == 2300
    again = order_log.append([*events[:1200], *[follow_up(e, status=OrderStatus.SHIPPED) for e in events[:1100]]])
    assert again.duplicates == 1200
    assert again.inserted == 1100
    assert len(again.orders) == 1100
    assert order_log.status_counts() == {OrderStatus.SHIPPED: 1100, OrderStatus.PAID: 1200}
    assert order_log.count_events() == 3400


def test_snapshot_ignores_receive_time_and_raw_only(order_log: OrderLog) -> None:
    event = make_event()
    order_log.append([event])
    snap = order_log.snapshot()
    assert snap.events == ((str(event.key), event.event_version, codec.content_hash(event)),)
    assert [k for k, _ in snap.orders] == [str(event.key)]


def test_sqlite_and_postgres_hold_identical_content(tmp_path: Path, pg_schema_url: str,
                                                   event_factory: EventFactory) -> None:
    events = [e for _ in range(5) for e in event_factory.lifecycle()]
    events.append(follow_up(event_factory(), status=OrderStatus.REFUND_REQUESTED))
    with OrderLog.open(f"sqlite:///{tmp_path}/a.db") as lite, OrderLog.open(pg_schema_url) as pg:
        lite.append(events)
        pg.append(events)
        assert lite.snapshot() == pg.snapshot()
        assert list(lite.iter_events()) == list(pg.iter_events())
        assert list(lite.iter_orders()) == list(pg.iter_orders())


def test_migrations_are_idempotent(order_log: OrderLog) -> None:
    event = make_event()
    order_log.append([event])
    with OrderLog.open(_url(order_log)) as again:
        again.migrate()
        assert again.history(event.key) == [event]
    with order_log.engine.connect() as conn:
        versions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    assert versions == [ScriptDirectory.from_config(migration_config()).get_current_head()]


def test_migrated_schema_matches_the_table_definitions(order_log: OrderLog) -> None:
    with order_log.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(context, METADATA)
    assert diff == []


def test_unreachable_postgres_is_service_unavailable_without_the_password() -> None:
    with pytest.raises(ServiceUnavailableError) as info:
        OrderLog.open("postgresql+psycopg://orderguard:s3cret-pw@127.0.0.1:1/orderguard")
    message = str(info.value)
    assert "127.0.0.1:1/orderguard" in message
    assert "s3cret-pw" not in message
    assert info.value.http_status == 503


def test_unusable_sqlite_path_is_service_unavailable(tmp_path: Path) -> None:
    blocker = make_url(f"sqlite:///{tmp_path}/file")
    assert blocker.database is not None
    with open(blocker.database, "w") as f:
        f.write("not a directory")
    with pytest.raises(ServiceUnavailableError):
        OrderLog.open(f"sqlite:///{blocker.database}/sub/orderlog.db")


def test_sqlite_parent_directory_is_created_and_wal_is_on(tmp_path: Path) -> None:
    with OrderLog.open(f"sqlite:///{tmp_path}/deep/er/orderlog.db") as log:
        with log.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        assert mode == "wal"
        log.append([make_event()])
        assert log.count_events() == 1


def test_in_memory_sqlite_works(event_factory: EventFactory) -> None:
    with OrderLog.open("sqlite://") as log:
        log.append(event_factory.lifecycle())
        assert log.count_events() == 4


@pytest.mark.parametrize("url", ["mysql://db/orderguard", "not a url", "postgresql+psycopg2://db/x"])
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        OrderLog.open(url)
    assert info.value.field == "database.url"


def test_redacted_hides_passwords() -> None:
    assert redacted("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"
    assert redacted("sqlite:///var/orderguard.db") == "sqlite:///var/orderguard.db"


def test_settings_database_url_opens_a_log(settings: Settings) -> None:
    with OrderLog.open(settings.database_url) as log:
        log.append([make_event()])
    assert (settings.data_dir / "orderguard.db").exists()


def test_concurrent_appenders_to_the_same_orders_lose_nothing(order_log: OrderLog,
                                                              event_factory: EventFactory) -> None:
    """Two writers feed the order documents and the refund documents of the same orders
    at the same time; each order's state must reflect both (on PostgreSQL this needs
    the per-order lock around re-deriving; without it some orders lose an event)."""
    documents = [event_factory(event_time=BASE_TIME + timedelta(minutes=n)) for n in range(100)]
    refunds = [follow_up(e, status=OrderStatus.REFUND_REQUESTED, after=timedelta(seconds=1)) for e in documents]
    start = threading.Barrier(2)

    def feed(events: list[OrderEvent]) -> None:
        for i in range(0, len(events), 10):
            start.wait(timeout=30)  # both writers start each batch together: overlapping transactions
            order_log.append(events[i:i + 10])

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(feed, documents), pool.submit(feed, refunds)]:
            done.result()  # re-raises a writer's exception here
    wrong = [d.key for d, r in zip(documents, refunds, strict=True) if order_log.get(d.key) != derive_order([d, r])]
    assert wrong == []


def test_an_unencodable_event_fails_the_batch_before_anything_is_stored(order_log: OrderLog) -> None:
    good = make_event(order_id="SO-good")
    bad = make_event(order_id="SO-bad", raw={"memo": "\x00"})  # NUL: not storable on PostgreSQL
    with pytest.raises(InvalidInputError) as info:
        order_log.append([good, bad])
    assert info.value.field == "event.raw.memo"
    assert order_log.count_events() == 0


def test_query_bounds_must_be_tz_aware(order_log: OrderLog) -> None:
    with pytest.raises(InvalidInputError) as info:
        list(order_log.iter_events(start=BASE_TIME.replace(tzinfo=None)))
    assert info.value.field == "start"
    with pytest.raises(InvalidInputError) as info:
        list(order_log.iter_orders(end=BASE_TIME.replace(tzinfo=None)))
    assert info.value.field == "end"
    with pytest.raises(InvalidInputError):
        list(order_log.iter_events(batch_size=0))


def _write_pages(log: OrderLog) -> None:
    """About 3,000 new orders in batches of 100: well over SQLite's automatic checkpoint of 1,000 pages."""
    for batch in range(30):
        log.append([make_event(order_id=f"ckpt-{batch}-{i}", event_time=BASE_TIME + timedelta(minutes=i))
                    for i in range(100)])


@pytest.mark.parametrize("background", [True, False])
def test_background_checkpoints_leave_every_copy_to_the_owner(tmp_path: Path, background: bool) -> None:
    with OrderLog.open(f"sqlite:///{tmp_path / 'log.db'}", background_checkpoints=background) as log:
        _write_pages(log)
        copied = log.checkpoint().copied
        if background:  # no commit copied anything: everything written waits for the owner's checkpoint
            assert copied > 1_000
        else:  # the commits copied the log as it filled: only the pages since the last automatic copy are left
            assert copied <= 1_000
        _write_pages(log)
        assert log.count_orders() == 3_000  # the second round replays the same events: all stored once
    with OrderLog.open(f"sqlite:///{tmp_path / 'log.db'}") as again:  # nothing is lost across the close
        assert again.count_events() == 3_000


def test_the_write_ahead_log_stays_near_its_limit_under_a_steady_stream_of_commits(tmp_path: Path) -> None:
    """A passive checkpoint never catches a writer that does not pause, so the log would only grow. As in the
    service, checkpoints run on a thread of their own, and once the log outgrows its limit the writer runs one
    between two of its commits: the file then stays within a tick's writes of the limit.

    The bound is counted in commits, not in time: on a busy machine the checking thread runs late, and
    the writer commits more between two of its checks, so the allowance is the most commits seen
    between two checks, at the size one commit was measured to add."""
    limit = 256 * 1024
    path = tmp_path / "log.db"
    wal = Path(f"{path}-wal")
    with OrderLog.open(f"sqlite:///{path}", background_checkpoints=True, wal_limit_bytes=limit) as log:
        for i in range(20):
            log.append([make_event(order_id=f"warm-{i}", event_time=BASE_TIME)])
        # a commit's share of the file after 20: the schema's pages included, so ~27 % above one commit alone
        # (31.7 KB of 40.4 KB); the allowance below counts on that margin for a tick whose commits ran long
        per_commit = wal.stat().st_size // 20
        stop, outgrown = threading.Event(), threading.Event()
        committed = restarts = 0

        def write() -> None:
            nonlocal committed, restarts
            while not stop.is_set():
                log.append([make_event(order_id=f"steady-{committed}", event_time=BASE_TIME)])
                committed += 1
                if outgrown.is_set():
                    outgrown.clear()
                    log.checkpoint()
                    restarts += 1

        writer = threading.Thread(target=write)
        writer.start()
        largest = slowest = seen = 0
        try:
            while committed < 1_500:  # each commit writes several pages: many times the limit in all
                stop.wait(0.005)
                if log.checkpoint().wal_bytes > limit:
                    outgrown.set()
                largest = max(largest, wal.stat().st_size)
                slowest, seen = max(slowest, committed - seen), committed
        finally:
            stop.set()
            writer.join()
        assert log.count_orders() == committed + 20
    assert restarts > 0
    allowance = limit + 2 * (slowest + 2) * per_commit  # a tick to notice, a tick for the writer to act
    assert largest <= allowance, f"the write-ahead log reached {largest} bytes ({slowest} commits in a tick)"
    assert largest < committed * per_commit / 4  # far from what the stream wrote: the log was started over
