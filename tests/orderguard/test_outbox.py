"""The outbox on both databases: idempotent queuing, due order, backoff, dead letters, claiming, restarts."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from orderguard.errors import InvalidInputError, ServiceUnavailableError
from orderguard.ingest.orderlog import OrderLog
from orderguard.outbox import Backoff, Outbox, Outgoing
from tests.factories import BASE_TIME, free_port

LEASE = timedelta(minutes=2)
BACKOFF = Backoff(first=timedelta(seconds=30), cap=timedelta(minutes=8), max_attempts=6)


def _url(log: OrderLog) -> str:
    return log.engine.url.render_as_string(hide_password=False)


def test_queuing_the_same_message_twice_stores_it_once(order_log: OrderLog) -> None:
    outbox = Outbox(order_log.engine)
    assert outbox.enqueue("alert", "robot:team", dedup_key="jd:1:hold", payload={"n": 1}, now=BASE_TIME)
    assert not outbox.enqueue("alert", "robot:team", dedup_key="jd:1:hold", payload={"n": 2}, now=BASE_TIME)
    assert outbox.enqueue("alert", "robot:other", dedup_key="jd:1:hold", payload={"n": 3}, now=BASE_TIME)
    batch = [Outgoing("alert", "robot:team", "jd:1:hold", {}), Outgoing("alert", "robot:team", "jd:2:hold", {}),
             Outgoing("alert", "robot:team", "jd:2:hold", {})]
    assert outbox.enqueue_many(batch, now=BASE_TIME) == 1  # one new; the repeat inside the batch is one message
    assert outbox.enqueue_many([], now=BASE_TIME) == 0
    assert outbox.pending_count() == 3
    first = outbox.find("robot:team", "jd:1:hold")
    assert first is not None and first.payload == {"n": 1}  # the first stored content stays
    assert (first.attempts, first.state, first.created_at, first.next_attempt_at) == (0, "pending", BASE_TIME,
                                                                                      BASE_TIME)


def test_bad_messages_are_refused_naming_the_field(order_log: OrderLog) -> None:
    outbox = Outbox(order_log.engine)
    with pytest.raises(InvalidInputError) as e:
        outbox.enqueue("alert", "x" * 65, dedup_key="k", payload={}, now=BASE_TIME)
    assert e.value.field == "destination"
    with pytest.raises(InvalidInputError) as e:
        outbox.enqueue("alert", "robot:team", dedup_key="k", payload={}, now=BASE_TIME.replace(tzinfo=None))
    assert e.value.field == "now"
    assert outbox.pending_count() == 0


def test_due_messages_come_longest_waiting_first(order_log: OrderLog) -> None:
    outbox = Outbox(order_log.engine)
    for i, minutes in enumerate([5, 0, 5, 2]):
        outbox.enqueue("alert", "robot:team", dedup_key=f"m{i}", payload={}, now=BASE_TIME + timedelta(minutes=minutes))
    assert [m.dedup_key for m in outbox.due(now=BASE_TIME + timedelta(minutes=5))] == ["m1", "m3", "m0", "m2"]
    assert [m.dedup_key for m in outbox.due(now=BASE_TIME + timedelta(minutes=3))] == ["m1", "m3"]
    assert [m.dedup_key for m in outbox.due(now=BASE_TIME + timedelta(minutes=5), limit=1)] == ["m1"]
    m1 = outbox.due(now=BASE_TIME, limit=1)[0]
    assert outbox.delivered(m1.id, now=BASE_TIME + timedelta(minutes=1))
    assert not outbox.delivered(m1.id, now=BASE_TIME + timedelta(minutes=2))  # once
    assert [m.dedup_key for m in outbox.due(now=BASE_TIME + timedelta(minutes=5))] == ["m3", "m0", "m2"]
    done = outbox.get(m1.id)
    assert done is not None and (done.state, done.attempts, done.delivered_at) == (
        "delivered", 1, BASE_TIME + timedelta(minutes=1))


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [BACKOFF.delay(n) / timedelta(seconds=1) for n in range(1, 8)] == [30, 60, 120, 240, 480, 480, 480]
    assert Backoff(first=timedelta(seconds=1), cap=timedelta(days=1)).delay(10_000) == timedelta(days=1)
    with pytest.raises(ValueError, match="at least 1"):
        BACKOFF.delay(0)


def test_each_failure_waits_longer_until_the_cap_then_the_message_is_a_dead_letter(order_log: OrderLog) -> None:
    outbox = Outbox(order_log.engine)
    outbox.enqueue("alert", "robot:team", dedup_key="jd:1:hold", payload={}, now=BASE_TIME)
    now, waits = BASE_TIME, []
    for attempt in range(1, BACKOFF.max_attempts + 1):
        [message] = outbox.claim(now=now, limit=10, lease=LEASE)
        assert message.attempts == attempt - 1
        stored = outbox.failed_attempt(message.id, now=now, error=f"HTTP 502: try {attempt}", backoff=BACKOFF)
        assert stored is not None and stored.attempts == attempt
        if attempt < BACKOFF.max_attempts:
            assert stored.state == "pending" and outbox.due(now=stored.next_attempt_at - timedelta(seconds=1)) == []
            waits.append((stored.next_attempt_at - now) / timedelta(seconds=1))
            now = stored.next_attempt_at
    assert waits == [30, 60, 120, 240, 480]  # doubling, capped at 8 minutes
    [dead] = outbox.dead_letters()
    assert (dead.state, dead.attempts, dead.failed_at, dead.last_error) == ("dead", 6, now, "HTTP 502: try 6")
    assert outbox.due(now=now + timedelta(days=365)) == [] and outbox.pending_count() == 0
    assert outbox.failed_attempt(dead.id, now=now, error="again", backoff=BACKOFF) is None  # dead stays dead


def test_a_hopeless_message_is_a_dead_letter_at_once(order_log: OrderLog) -> None:
    outbox = Outbox(order_log.engine)
    outbox.enqueue("alert", "robot:team", dedup_key="k", payload={}, now=BASE_TIME)
    [message] = outbox.claim(now=BASE_TIME, limit=1, lease=LEASE)
    stored = outbox.failed_attempt(message.id, now=BASE_TIME, error="not an alert payload", backoff=BACKOFF,
                                   final=True)
    assert stored is not None and stored.state == "dead" and outbox.dead_letters()[0].id == message.id


def test_a_claimed_message_is_nobody_elses_until_its_lease_ends(order_log: OrderLog) -> None:
    outbox = Outbox(order_log.engine)
    outbox.enqueue_many([Outgoing("alert", "robot:team", f"m{i}", {}) for i in range(3)], now=BASE_TIME)
    first = outbox.claim(now=BASE_TIME, limit=2, lease=LEASE)
    assert [m.dedup_key for m in first] == ["m0", "m1"] and all(m.next_attempt_at == BASE_TIME + LEASE for m in first)
    assert [m.dedup_key for m in outbox.claim(now=BASE_TIME, limit=10, lease=LEASE)] == ["m2"]
    assert outbox.claim(now=BASE_TIME + LEASE - timedelta(seconds=1), limit=10, lease=LEASE) == []
    assert outbox.pending_count() == 3  # being sent is still pending
    # A sender that died without reporting: its messages come back when the lease ends.
    assert [m.dedup_key for m in outbox.claim(now=BASE_TIME + LEASE, limit=10, lease=LEASE)] == ["m0", "m1", "m2"]
    # Handed back unsent: due again at the given time, attempts unchanged.
    assert outbox.postpone([first[0].id], until=BASE_TIME + timedelta(hours=1)) == 1
    again = outbox.get(first[0].id)
    assert again is not None and (again.attempts, again.next_attempt_at) == (0, BASE_TIME + timedelta(hours=1))


def test_two_claimers_never_get_the_same_message(order_log: OrderLog) -> None:
    """Two engines (as two sender processes would have) claim the same due rows at once."""
    total = 120
    Outbox(order_log.engine).enqueue_many([Outgoing("alert", "robot:team", f"m{i}", {}) for i in range(total)],
                                          now=BASE_TIME)
    logs = [OrderLog.open(_url(order_log)) for _ in range(2)]
    got: list[list[int]] = [[], []]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        outbox = Outbox(logs[n].engine)
        start.wait()
        try:
            while batch := outbox.claim(now=BASE_TIME, limit=7, lease=LEASE):
                got[n].extend(m.id for m in batch)
        except BaseException as e:  # re-raised by the test below
            errors.append(e)
            raise

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for log in logs:
            log.close()
    assert not errors, errors
    assert not set(got[0]) & set(got[1])
    assert len(got[0]) + len(got[1]) == total == len(set(got[0]) | set(got[1]))


def test_messages_outlive_a_restart(order_log: OrderLog) -> None:
    url = _url(order_log)
    outbox = Outbox(order_log.engine)
    outbox.enqueue_many([Outgoing("alert", "robot:team", f"m{i}", {"i": i}) for i in range(3)], now=BASE_TIME)
    [sent, failed, _] = outbox.claim(now=BASE_TIME, limit=10, lease=LEASE)
    outbox.delivered(sent.id, now=BASE_TIME)
    outbox.failed_attempt(failed.id, now=BASE_TIME, error="HTTP 503: busy", backoff=BACKOFF)
    # the third was claimed, then the process died before sending it
    order_log.close()
    with OrderLog.open(url) as reopened:
        again = Outbox(reopened.engine)
        assert again.pending_count() == 2
        kept = again.get(failed.id)
        assert kept is not None and (kept.attempts, kept.last_error) == (1, "HTTP 503: busy")
        later = again.claim(now=BASE_TIME + LEASE, limit=10, lease=LEASE)
        assert [(m.dedup_key, m.payload) for m in later] == [("m1", {"i": 1}), ("m2", {"i": 2})]
        assert not again.enqueue("alert", "robot:team", dedup_key="m0", payload={}, now=BASE_TIME)  # still known


def test_an_unreachable_database_is_a_service_outage() -> None:
    engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none",
                              connect_args={"connect_timeout": 2})
    try:
        with pytest.raises(ServiceUnavailableError) as e:
            Outbox(engine).pending_count()
        assert e.value.field == "database.url" and "outbox database" in e.value.message
    finally:
        engine.dispose()
