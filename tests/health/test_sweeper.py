"""The sweeper flags each grey state the first sweep after its deadline, even when no event ever comes, and
leaves a healthy order alone from payment to delivery."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from health.checks import load_checks
from health.sweeper import Sweeper, SweepResult
from orderguard.fulfilment import StepKind
from orderguard.schema import Address, Amounts, EventKind, OrderKey, OrderStatus, Phone, RefundReason
from tests.factories import DEFAULT_BUYER, EventFactory, follow_up, make_refund
from tests.health.kit import T0, healthy_steps, paid_order, step

EVERY = timedelta(minutes=1)


def run(sweeper: Sweeper, start: datetime, end: datetime) -> list[SweepResult]:
    """Sweep every minute from ``start`` to ``end``."""
    out = []
    at = start
    while at <= end:
        out.append(sweeper.sweep(at))
        at += EVERY
    return out


def first_flagged(results: list[SweepResult]) -> dict[tuple[str, str], datetime]:
    return {(f.order_key, f.check_id): f.flagged_at for r in results for f in r.opened}


@pytest.fixture
def sweeper() -> Sweeper:
    return Sweeper(load_checks())


def test_a_healthy_order_is_never_flagged(sweeper: Sweeper) -> None:
    events = EventFactory()
    order = paid_order(events)
    key = order[0].key
    sweeper.add_order_events(order)
    sweeper.add_order_events([follow_up(order[0], status=OrderStatus.SHIPPED, after=timedelta(hours=7))])
    steps = healthy_steps(key, T0)
    results = []
    at = T0
    for s in sorted(steps, key=lambda s: s.event_time):  # reports arrive as they happen
        results += run(sweeper, at, s.event_time - EVERY)
        sweeper.add_steps([s])
        at = s.event_time
    results += run(sweeper, at, T0 + timedelta(days=3))
    assert first_flagged(results) == {}
    assert results[-1].orders == 0  # delivered and quiet: out of the pipeline
    assert sweeper.health_of(str(key)) is not None


def test_a_lost_payment_callback_is_flagged_after_each_deadline_without_any_event(sweeper: Sweeper) -> None:
    events = EventFactory()
    order = paid_order(events)
    text = str(order[0].key)
    sweeper.add_order_events(order)
    results = run(sweeper, T0, T0 + timedelta(hours=49))
    flagged = first_flagged(results)
    assert flagged[(text, "payment_callback")] == T0 + timedelta(minutes=10)
    assert flagged[(text, "erp_sync")] == T0 + timedelta(minutes=15)
    assert flagged[(text, "inventory_lock")] == T0 + timedelta(minutes=45)
    assert flagged[(text, "ship_promise")] == T0 + timedelta(hours=48)
    assert (text, "out_scan") not in flagged  # never printed: nothing to out-scan
    health = sweeper.health_of(text)
    assert health is not None and health.score == 35 and health.tier == "red"
    red = [r for r in results if r.escalated]
    assert [(r.as_of, [o.tier for o in r.escalated]) for r in red] == [(T0 + timedelta(minutes=45), ["red"])]
    assert results[-1].overall == 35 and results[-1].worst[0].order_key == text


def test_late_steps_resolve_the_finding_and_the_order_recovers(sweeper: Sweeper) -> None:
    events = EventFactory()
    order = paid_order(events)
    key = order[0].key
    sweeper.add_order_events(order)
    run(sweeper, T0, T0 + timedelta(minutes=20))
    sweeper.add_steps(healthy_steps(key, T0)[:3])
    after = sweeper.sweep(T0 + timedelta(minutes=21))
    assert sorted(c for _, c in after.resolved) == ["erp_sync", "payment_callback"]
    health = sweeper.health_of(str(key))
    assert health is not None and (health.score, health.tier, health.checks) == (100, "ok", ())


def test_a_printed_parcel_that_never_leaves_and_a_silent_carrier(sweeper: Sweeper) -> None:
    events = EventFactory()
    backlog, outage = paid_order(events), paid_order(events)
    sweeper.add_order_events(backlog + outage)
    sweeper.add_steps(healthy_steps(backlog[0].key, T0)[:4])  # printed at +5 h, then nothing
    sweeper.add_steps(healthy_steps(outage[0].key, T0)[:6])  # last tracking node at +12 h
    flagged = first_flagged(run(sweeper, T0, T0 + timedelta(hours=40)))
    assert flagged == {(str(backlog[0].key), "out_scan"): T0 + timedelta(hours=9),
                       (str(outage[0].key), "tracking_silent"): T0 + timedelta(hours=36)}
    sweeper.add_steps([step(outage[0].key, StepKind.TRACKING, T0 + timedelta(hours=40, minutes=30))])
    assert (str(outage[0].key), "tracking_silent") in sweeper.sweep(T0 + timedelta(hours=41)).resolved


def test_delivered_but_not_received_is_flagged_at_the_complaint(sweeper: Sweeper) -> None:
    events = EventFactory()
    order = paid_order(events)
    key = order[0].key
    sweeper.add_order_events(order)
    sweeper.add_steps(healthy_steps(key, T0))
    run(sweeper, T0, T0 + timedelta(hours=35))
    complaint_at = T0 + timedelta(hours=40)
    sweeper.add_steps([step(key, StepKind.COMPLAINT, complaint_at, reason="not_received", source="cs")])
    result = sweeper.sweep(complaint_at + EVERY)
    assert [(f.check_id, f.due_at) for f in result.opened] == [("false_delivery", complaint_at)]
    assert result.orders == 1  # a delivered order with a failing check is back in the pipeline


def test_a_channel_refund_claim_not_received_counts_as_the_complaint(sweeper: Sweeper) -> None:
    events = EventFactory()
    order = paid_order(events)
    key = order[0].key
    sweeper.add_steps(healthy_steps(key, T0))
    claim_at = T0 + timedelta(hours=50)
    refund = make_refund(order_id=key.channel_order_id, requested_at=claim_at, reason=RefundReason.NOT_RECEIVED)
    claim = follow_up(order[0], status=OrderStatus.REFUND_REQUESTED, after=timedelta(hours=50),
                      kind=EventKind.AFTER_SALE, refund=refund)
    sweeper.add_order_events([*order, claim])
    result = sweeper.sweep(claim_at)
    assert [f.check_id for f in result.opened] == ["false_delivery"]


def test_facts_of_the_order_document_are_flagged_when_it_arrives(sweeper: Sweeper) -> None:
    events = EventFactory()
    bad_address = paid_order(events, address=Address("浙江省", "杭州市", "西湖区", "翠湖花园东门"))
    bad_phone = paid_order(events, buyer=replace(DEFAULT_BUYER, account_id="b2",
                                                 phone=Phone(hash="p", prefix="1201234")))
    sweeper.add_order_events(bad_address + bad_phone)
    for order in (bad_address, bad_phone):
        sweeper.add_steps(healthy_steps(order[0].key, T0))
    result = sweeper.sweep(T0)
    assert sorted((f.order_key, f.check_id) for f in result.opened) == sorted(
        [(str(bad_address[0].key), "address_incomplete"), (str(bad_phone[0].key), "phone_invalid")])
    assert {o.score for o in sweeper.worst(5)} == {80}


def test_price_out_of_bounds(sweeper: Sweeper) -> None:
    events = EventFactory()
    order = paid_order(events)
    details = order[0].details
    assert details is not None
    cheap = replace(order[0], details=replace(details, amounts=Amounts(goods_fen=10_000, paid_fen=1_000,
                                                                      discount_fen=9_000)))
    sweeper.add_order_events([cheap])
    sweeper.add_steps(healthy_steps(cheap.key, T0))
    assert [f.check_id for f in sweeper.sweep(T0).opened] == ["price_bounds"]


def test_the_same_cart_again_minutes_later_is_a_duplicate_in_any_arrival_order(sweeper: Sweeper) -> None:
    events = EventFactory()
    first = paid_order(events, at=T0, buyer=DEFAULT_BUYER)
    again = paid_order(events, at=T0 + timedelta(minutes=4), buyer=DEFAULT_BUYER)
    later = paid_order(events, at=T0 + timedelta(minutes=40), buyer=DEFAULT_BUYER)  # 40 minutes on: a new order
    sweeper.add_order_events(again + later)  # the repeat arrives first
    sweeper.add_order_events(first)
    for order in (first, again, later):
        sweeper.add_steps(healthy_steps(order[0].key, order[0].event_time))
    result = sweeper.sweep(T0 + timedelta(minutes=45))
    assert [(f.order_key, f.check_id) for f in result.opened] == [(str(again[0].key), "duplicate_order")]
    assert "repeats " + str(first[0].key) in result.opened[0].detail


def test_presale_balance_due_by_the_deposits_deadline(sweeper: Sweeper) -> None:
    events = EventFactory()
    order = paid_order(events)
    key = order[0].key
    sweeper.add_order_events(order)
    due = T0 + timedelta(hours=30)
    sweeper.add_steps([*healthy_steps(key, T0)[:3],
                       step(key, StepKind.DEPOSIT_PAID, T0 - timedelta(minutes=1), due_at=due)])
    flagged = first_flagged(run(sweeper, T0, T0 + timedelta(hours=31)))
    assert flagged == {(str(key), "presale_balance"): due}


def test_cancelled_and_refunded_before_shipping_owe_nothing(sweeper: Sweeper) -> None:
    events = EventFactory()
    cancelled = paid_order(events)
    refund = paid_order(events)
    sweeper.add_order_events([*cancelled, follow_up(cancelled[0], status=OrderStatus.CANCELLED,
                                                    after=timedelta(minutes=5))])
    sweeper.add_order_events([*refund, follow_up(refund[0], status=OrderStatus.REFUND_REQUESTED,
                                                 after=timedelta(minutes=5))])
    results = run(sweeper, T0, T0 + timedelta(hours=50))
    assert first_flagged(results) == {}
    assert sweeper.track(str(cancelled[0].key)) is None  # finished: forgotten
    assert results[-1].orders == 0


def test_a_sweep_only_evaluates_what_changed_or_fell_due(sweeper: Sweeper) -> None:
    events = EventFactory()
    orders = [paid_order(events, at=T0 + timedelta(seconds=i)) for i in range(50)]
    for order in orders:
        sweeper.add_order_events(order)
        sweeper.add_steps(healthy_steps(order[0].key, order[0].event_time)[:3])
    assert sweeper.sweep(T0 + timedelta(minutes=5)).evaluated == 50
    assert sweeper.sweep(T0 + timedelta(minutes=6)).evaluated == 0  # nothing new, no deadline passed
    assert sweeper.sweep(T0 + timedelta(hours=49)).evaluated == 50  # the ship promise fell due for all
    assert sweeper.tracked == 50


def test_counts_by_tier_stage_and_channel_add_up(sweeper: Sweeper) -> None:
    events = EventFactory()
    lost = [paid_order(events) for _ in range(3)]
    fine = [paid_order(events) for _ in range(7)]
    for order in lost + fine:
        sweeper.add_order_events(order)
    for order in fine:
        sweeper.add_steps(healthy_steps(order[0].key, T0, deliver=False)[:5])
    result = sweeper.sweep(T0 + timedelta(hours=1))
    assert result.orders == 10 and result.tiers["red"] == 3 and result.tiers["ok"] == 7
    assert result.stages == {"payment": 3, "sync": 3, "inventory": 3}
    assert result.channels == {"site": {"ok": 7, "red": 3}}
    assert result.overall == pytest.approx((3 * 45 + 7 * 100) / 10)  # payment 30 + inventory 25 lost
    assert OrderKey.parse(result.worst[0].order_key).channel.value == "site"
