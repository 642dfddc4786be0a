"""The label log on SQLite and PostgreSQL: append-only history, idempotent repeats, as-of reads, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from orderguard import labels as labels_module
from orderguard.errors import EventConflictError, InvalidInputError, NotFoundError
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import FUTURE_TOLERANCE, LabelLog, LabelOutcome
from orderguard.schema import Channel, EventKind, Label, OrderKey, Verdict
from tests.factories import BASE_TIME, EventFactory, make_event

DAY = timedelta(days=1)
NOW = BASE_TIME + 30 * DAY  # the time labels are recorded in these tests
FRAUD, FP, NI = Verdict.CONFIRMED_FRAUD, Verdict.FALSE_POSITIVE, Verdict.NEEDS_INVESTIGATION


def orders(log: OrderLog, factory: EventFactory, n: int) -> list[OrderKey]:
    """``n`` orders created at BASE_TIME + i hours."""
    events = [factory(event_time=BASE_TIME + timedelta(hours=i)) for i in range(n)]
    log.append(events)
    return [e.key for e in events]


def label(key: OrderKey, verdict: Verdict = FRAUD, *, days: float = 1, reviewer: str = "r1",
          note: str = "") -> Label:
    return Label(key, verdict, BASE_TIME + timedelta(days=days), reviewer, note)


def test_relabel_keeps_the_history_and_current_is_the_newest(order_log: OrderLog, event_factory: EventFactory) -> None:
    (key,) = orders(order_log, event_factory, 1)
    labels = LabelLog(order_log.engine)
    assert labels.history(key) == []
    first = labels.add([label(key, NI, days=1, note="待核实")], source="api", recorded_at=NOW)
    second = labels.add([label(key, FRAUD, days=3, reviewer="r2")], source="cli", recorded_at=NOW)
    assert (first.added, second.added) == (1, 1)
    history = labels.history(key)
    assert [(r.verdict, r.reviewer_id, r.source, r.note) for r in history] == [
        (NI, "r1", "api", "待核实"), (FRAUD, "r2", "cli", "")]
    assert history[0].recorded_at == NOW and history[0].labeled_at.tzinfo is not None
    assert labels.current()[key].verdict is FRAUD
    assert labels.count() == 2


def test_the_same_label_again_is_a_no_op(order_log: OrderLog, event_factory: EventFactory) -> None:
    keys = orders(order_log, event_factory, 2)
    labels = LabelLog(order_log.engine)
    batch = [label(keys[0]), label(keys[1], FP)]
    assert labels.add(batch, source="file:a.csv", recorded_at=NOW).outcomes == (LabelOutcome.ADDED,) * 2
    again = labels.add([*batch, label(keys[0], note="another note")], source="file:a.csv", recorded_at=NOW)
    assert (again.added, again.duplicates, again.stored) == (0, 3, ())
    assert labels.count() == 2
    assert labels.history(keys[0])[0].note == ""  # the first stored note is kept


def test_a_repeat_inside_one_batch_is_stored_once(order_log: OrderLog, event_factory: EventFactory) -> None:
    (key,) = orders(order_log, event_factory, 1)
    labels = LabelLog(order_log.engine)
    result = labels.add([label(key), label(key)], source="api", recorded_at=NOW)
    assert result.outcomes == (LabelOutcome.ADDED, LabelOutcome.DUPLICATE)
    assert labels.count() == 1


def test_times_are_stored_as_utc_and_equal_instants_are_the_same_label(order_log: OrderLog,
                                                                        event_factory: EventFactory) -> None:
    (key,) = orders(order_log, event_factory, 1)
    labels = LabelLog(order_log.engine)
    beijing = timezone(timedelta(hours=8))
    at = datetime(2024, 11, 12, 18, 30, 15, 123456, tzinfo=beijing)
    labels.add([Label(key, FP, at, "r1")], source="api", recorded_at=NOW)
    stored = labels.history(key)[0]
    assert stored.labeled_at == at and stored.labeled_at.utcoffset() == timedelta(0)
    assert labels.add([Label(key, FP, at.astimezone(UTC), "r1")], source="api", recorded_at=NOW).duplicates == 1


def test_another_verdict_by_the_same_reviewer_at_the_same_instant_conflicts(order_log: OrderLog,
                                                                            event_factory: EventFactory) -> None:
    (key,) = orders(order_log, event_factory, 1)
    labels = LabelLog(order_log.engine)
    labels.add([label(key, FRAUD)], source="api", recorded_at=NOW)
    with pytest.raises(EventConflictError) as caught:
        labels.add([label(key, FP)], source="api", recorded_at=NOW)
    assert caught.value.field == "verdict" and "confirmed_fraud" in caught.value.message
    labels.add([label(key, FP, reviewer="r2")], source="api", recorded_at=NOW)  # another reviewer may disagree
    assert labels.count() == 2


def test_current_as_of_only_knows_labels_by_then(order_log: OrderLog, event_factory: EventFactory) -> None:
    a, b = orders(order_log, event_factory, 2)
    labels = LabelLog(order_log.engine)
    labels.add([label(a, NI, days=1), label(a, FRAUD, days=4), label(b, FP, days=2)], source="api", recorded_at=NOW)
    at = BASE_TIME + timedelta(days=4)
    assert labels.current(as_of=BASE_TIME + timedelta(hours=23)) == {}
    assert {k: v.verdict for k, v in labels.current(as_of=at - timedelta(microseconds=1)).items()} == {a: NI, b: FP}
    assert {k: v.verdict for k, v in labels.current(as_of=at).items()} == {a: FRAUD, b: FP}  # labeled_at <= as_of
    assert labels.verdict_counts(as_of=BASE_TIME + 3 * DAY) == {NI: 1, FP: 1}
    assert labels.verdict_counts() == {FRAUD: 1, FP: 1}
    with pytest.raises(InvalidInputError):
        labels.current(as_of=datetime(2024, 11, 20))  # naive: ambiguous


@pytest.mark.parametrize("first", ["aa", "zz"])
def test_same_instant_from_two_reviewers_the_greater_reviewer_id_is_current(
        order_log: OrderLog, event_factory: EventFactory, first: str) -> None:
    (key,) = orders(order_log, event_factory, 1)
    labels = LabelLog(order_log.engine)
    verdicts = {"aa": FRAUD, "zz": FP}
    for reviewer in (first, "zz" if first == "aa" else "aa"):  # storage order does not matter
        labels.add([label(key, verdicts[reviewer], reviewer=reviewer)], source="api", recorded_at=NOW)
    assert labels.current()[key] == label(key, FP, reviewer="zz")
    assert [r.reviewer_id for r in labels.history(key)] == ["aa", "zz"]


def test_iter_labels_yields_every_version_by_labeled_at_across_pages(order_log: OrderLog, event_factory: EventFactory,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labels_module, "_PAGE", 3)  # several pages, with ties on labeled_at across page edges
    keys = orders(order_log, event_factory, 4)
    labels = LabelLog(order_log.engine)
    batch = [label(k, FP, days=d, reviewer=r) for k in reversed(keys) for d in (1, 2) for r in ("r1", "r2")]
    labels.add(batch, source="api", recorded_at=NOW)
    got = list(labels.iter_labels())
    assert len(got) == len(batch) == 16
    assert [(x.labeled_at, str(x.key)) for x in got] == sorted((x.labeled_at, str(x.key)) for x in batch)
    assert {(x.key, x.reviewer_id, x.labeled_at) for x in got} == {(x.key, x.reviewer_id, x.labeled_at) for x in batch}
    until = BASE_TIME + DAY
    assert [x.labeled_at for x in labels.iter_labels(until=until)] == [until] * 8
    assert [x.labeled_at for x in labels.iter_labels(since=until + timedelta(microseconds=1))] == [until + DAY] * 8


def test_a_label_for_an_unknown_order_is_refused_naming_it(order_log: OrderLog) -> None:
    labels = LabelLog(order_log.engine)
    with pytest.raises(NotFoundError) as caught:
        labels.add([label(OrderKey(Channel.JD, "404404"))], source="api", recorded_at=NOW)
    assert caught.value.field == "order_key" and "jd:404404" in caught.value.message
    assert labels.count() == 0


def test_an_order_known_only_by_its_refund_document_cannot_be_labelled(order_log: OrderLog) -> None:
    order_log.append([make_event(order_id="AS1", kind=EventKind.AFTER_SALE)])
    with pytest.raises(NotFoundError):
        LabelLog(order_log.engine).add([label(OrderKey(Channel.SITE, "AS1"))], source="api", recorded_at=NOW)


@pytest.mark.parametrize(("labeled_at", "reviewer", "verdict", "field"), [
    (BASE_TIME - timedelta(seconds=1), "r1", FRAUD, "labeled_at"),  # before the order was created
    (datetime(2024, 11, 12, 9, 0), "r1", FRAUD, "labeled_at"),  # naive
    (NOW + FUTURE_TOLERANCE + timedelta(seconds=1), "r1", FRAUD, "labeled_at"),  # later than its recording
    (BASE_TIME + DAY, "  ", FRAUD, "reviewer_id"),
    (BASE_TIME + DAY, "r1", "fraud", "verdict"),
])
def test_bad_labels_are_refused_naming_the_field(order_log: OrderLog, event_factory: EventFactory,
                                                 labeled_at: datetime, reviewer: str, verdict: str, field: str) -> None:
    (key,) = orders(order_log, event_factory, 1)
    bad = Label(key, verdict, labeled_at, reviewer)  # type: ignore[arg-type]  # a str verdict from a caller
    with pytest.raises(InvalidInputError) as caught:
        LabelLog(order_log.engine).add([bad], source="api", recorded_at=NOW)
    assert caught.value.field == field, caught.value.message


def test_a_label_at_the_creation_instant_and_within_the_clock_tolerance_is_accepted(
        order_log: OrderLog, event_factory: EventFactory) -> None:
    (key,) = orders(order_log, event_factory, 1)
    labels = LabelLog(order_log.engine)
    result = labels.add([Label(key, FP, BASE_TIME, "r1"), Label(key, FRAUD, NOW + FUTURE_TOLERANCE, "r1")],
                        source="api", recorded_at=NOW)
    assert result.added == 2


def test_a_partly_bad_batch_stores_nothing_and_check_lists_every_problem(order_log: OrderLog,
                                                                         event_factory: EventFactory) -> None:
    keys = orders(order_log, event_factory, 2)
    labels = LabelLog(order_log.engine)
    batch = [label(keys[0]), label(OrderKey(Channel.JD, "nope")), label(keys[1], reviewer=""),
             label(keys[1], FP)]
    with pytest.raises(NotFoundError) as caught:
        labels.add(batch, source="api", recorded_at=NOW)
    assert caught.value.field == "labels.1.order_key" and "label 1" in caught.value.message
    assert labels.count() == 0
    problems = labels.check(batch, recorded_at=NOW)
    assert [(p.index, p.error.field) for p in problems] == [(1, "order_key"), (2, "reviewer_id")]
    assert labels.check([batch[0], batch[3]], recorded_at=NOW) == ()


def test_a_conflict_inside_one_batch_is_a_problem_of_the_later_label(order_log: OrderLog,
                                                                     event_factory: EventFactory) -> None:
    (key,) = orders(order_log, event_factory, 1)
    problems = LabelLog(order_log.engine).check([label(key, FRAUD), label(key, FP)], recorded_at=NOW)
    assert [(p.index, type(p.error)) for p in problems] == [(1, EventConflictError)]


def test_source_and_recording_time_are_required(order_log: OrderLog, event_factory: EventFactory) -> None:
    (key,) = orders(order_log, event_factory, 1)
    labels = LabelLog(order_log.engine)
    with pytest.raises(InvalidInputError):
        labels.add([label(key)], source=" ", recorded_at=NOW)
    with pytest.raises(InvalidInputError):
        labels.add([label(key)], source="api", recorded_at=datetime(2024, 12, 1))
