"""The multi-channel shop simulator: determinism, labels, life cycles, realism, files."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cpca
import phonenumbers
import pytest

from orderguard.clock import SHOP_TZ
from orderguard.errors import InvalidInputError
from orderguard.schema import LIFECYCLE_RANK, Channel, EventKind, OrderStatus, RefundReason
from orderguard.settings import URGENT_NOTE_KEYWORDS
from simulate.account_abuse import FAR_PREFIXES
from simulate.catalog import NEW_USER_COUPON, SKUS
from simulate.config import SimConfig
from simulate.engine import Simulation, simulate
from simulate.fulfilment import Fault
from simulate.geo import PICKUP_KEYWORDS
from simulate.identity import VIRTUAL_SEGMENTS, id_card_check_digit
from simulate.plain import PlainEvent
from simulate.truth import ABUSE_PATTERNS, LOOKALIKE_PATTERNS, OpsIssue, Pattern, TruthRow
from simulate.writer import TRUTH_COLUMNS, write_simulation

WEEK = SimConfig(seed=4242, days=7, promo_day=3)
SMALL = SimConfig(seed=7, days=3, orders_per_day=150, promo_day=None)


def plain_encode(event: PlainEvent) -> dict[str, Any]:
    """Stand-in channel encoder: every PlainEvent field, JSON-ready."""

    def jsonable(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: jsonable(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [jsonable(v) for v in value]
        return value

    result: dict[str, Any] = jsonable(dataclasses.asdict(event))
    return result


@pytest.fixture(scope="module")
def week() -> Simulation:
    return simulate(WEEK)


@pytest.fixture(scope="module")
def by_order(week: Simulation) -> dict[str, list[PlainEvent]]:
    grouped: dict[str, list[PlainEvent]] = defaultdict(list)
    for event in week.events:
        grouped[f"{event.channel.value}:{event.order_id}"].append(event)
    return grouped


def _groups(sim: Simulation, pattern: Pattern) -> dict[str, list[TruthRow]]:
    groups: dict[str, list[TruthRow]] = defaultdict(list)
    for row in sim.truth:
        if row.pattern is pattern:
            groups[row.group_id].append(row)
    return groups


def _last(by_order: dict[str, list[PlainEvent]], row: TruthRow) -> PlainEvent:
    return by_order[row.order_key][-1]


def _digest(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# --- configuration -------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "kwargs"), [
    ("days", {"days": 0}),
    ("promo_day", {"days": 5, "promo_day": 5}),
    ("abnormal_share", {"abnormal_share": 0.9}),
    ("orders_per_day", {"orders_per_day": 1}),
])
def test_config_rejects_out_of_range_values(field: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        SimConfig(**kwargs)
    assert caught.value.field == field


def test_period_starts_at_beijing_midnight() -> None:
    start = WEEK.start_at.astimezone(SHOP_TZ)
    assert (start.hour, start.minute, start.date()) == (0, 0, WEEK.start)
    assert WEEK.start_at.utcoffset() == timedelta(0)


# --- determinism ---------------------------------------------------------------------------------

def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = write_simulation(simulate(SMALL), tmp_path / "a", encode=plain_encode)
    second = write_simulation(simulate(SMALL), tmp_path / "b", encode=plain_encode)
    assert _digest(first.out_dir) == _digest(second.out_dir)


def test_different_seed_gives_different_data() -> None:
    one, other = simulate(SMALL), simulate(dataclasses.replace(SMALL, seed=8))
    assert [r.order_key for r in one.truth] != [r.order_key for r in other.truth]
    assert {e.buyer.account_id for e in one.events} != {e.buyer.account_id for e in other.events}


_HASHSEED_SCRIPT = """
import dataclasses, hashlib, json, sys
from simulate.config import SimConfig
from simulate.engine import simulate
sim = simulate(SimConfig(seed=3, days=2, orders_per_day=120, promo_day=1))
h = hashlib.sha256()
for e in sim.events:
    h.update(json.dumps(dataclasses.asdict(e), default=str, sort_keys=True, ensure_ascii=False).encode())
for r in sim.truth:
    h.update(repr(r).encode())
print(h.hexdigest())
"""


def test_output_does_not_depend_on_string_hash_seed() -> None:
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", _HASHSEED_SCRIPT], env=env, capture_output=True, text=True,
                              check=True, timeout=300)
        digests.add(done.stdout.strip())
    assert len(digests) == 1


# --- labels --------------------------------------------------------------------------------------

def test_abnormal_share_is_within_five_to_eight_percent(week: Simulation) -> None:
    share = sum(r.is_abnormal for r in week.truth) / len(week.truth)
    assert 0.05 <= share <= 0.08


def test_every_pattern_is_present_and_labelled(week: Simulation) -> None:
    counts = Counter(r.pattern for r in week.truth)
    assert set(counts) == set(Pattern)
    for row in week.truth:
        assert row.is_abnormal is (row.pattern in ABUSE_PATTERNS)
        assert (row.group_id == "") is (row.pattern is Pattern.NORMAL)
    assert LOOKALIKE_PATTERNS.isdisjoint(ABUSE_PATTERNS)


def test_truth_rows_match_orders_one_to_one(week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    keys = [r.order_key for r in week.truth]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(by_order)
    for row in week.truth:
        channel, _, order_id = row.order_key.partition(":")
        assert (channel, order_id) == (row.channel.value, row.order_id)


def test_promotion_day_has_about_ten_times_the_volume(week: Simulation) -> None:
    per_day = Counter(r.created_at.astimezone(SHOP_TZ).date() for r in week.truth)
    promo = WEEK.start + timedelta(days=WEEK.promo_day or 0)
    others = [n for day, n in per_day.items() if day != promo]
    ratio = per_day[promo] / statistics.median(others)
    assert 8.0 <= ratio <= 12.0
    promo_rows = [r for r in week.truth if r.created_at.astimezone(SHOP_TZ).date() == promo]
    assert Counter(r.pattern for r in promo_rows).most_common(1)[0][0] is Pattern.PROMOTION_SPIKE


# --- life cycles ---------------------------------------------------------------------------------

def test_events_are_sorted_by_update_time_then_order_id(week: Simulation) -> None:
    keys = [(e.update_time, e.order_id) for e in week.events]
    assert keys == sorted(keys)


def test_each_order_moves_forward_in_status_and_time(week: Simulation,
                                                     by_order: dict[str, list[PlainEvent]]) -> None:
    for key, events in by_order.items():
        assert events[0].status is OrderStatus.CREATED, key
        assert events[0].update_time == events[0].created_at
        for before, after in itertools.pairwise(events):
            assert after.update_time > before.update_time, key
            assert LIFECYCLE_RANK[after.status] >= LIFECYCLE_RANK[before.status], key
        assert all(e.update_time < WEEK.end_at for e in events)
        assert WEEK.start_at <= events[0].created_at < WEEK.end_at


def test_accounts_exist_before_they_order(week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    for events in by_order.values():
        registered = events[0].buyer.registered_at
        assert registered is not None and registered < events[0].created_at


def test_snapshots_fill_in_as_the_order_progresses(by_order: dict[str, list[PlainEvent]]) -> None:
    for events in by_order.values():
        for event in events:
            if event.status is OrderStatus.CREATED:
                assert event.paid_at is None and event.tracking_no is None
            if event.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED):
                assert event.paid_at is not None and event.tracking_no is not None
            assert (event.kind is EventKind.AFTER_SALE) is (event.refund is not None)
            assert (event.kind is EventKind.AFTER_SALE) is (event.status in (
                OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED, OrderStatus.REFUND_REJECTED))


def test_group_buys_wait_for_their_group_on_douyin_and_kuaishou(by_order: dict[str, list[PlainEvent]]) -> None:
    waiting = [events for events in by_order.values()
               if any(e.status is OrderStatus.AWAITING_GROUP for e in events)]
    assert waiting
    for events in waiting:
        assert events[0].channel in (Channel.DOUYIN, Channel.KUAISHOU)
        assert events[1].status is OrderStatus.AWAITING_GROUP and events[1].paid_at is not None


def test_unpaid_cancelled_and_honest_refunds_exist(week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    finals = Counter(events[-1].status for events in by_order.values())
    assert finals[OrderStatus.CLOSED] and finals[OrderStatus.CANCELLED]
    honest_refunds = {_last(by_order, r).refund.reason for r in week.truth  # type: ignore[union-attr]
                      if not r.is_abnormal and _last(by_order, r).refund is not None}
    assert {RefundReason.DAMAGED, RefundReason.NO_REASON} <= honest_refunds


def test_grey_states_are_stuck_where_labelled(week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    issues = Counter(r.ops_issue for r in week.truth)
    assert issues[OpsIssue.STUCK_UNSHIPPED] and issues[OpsIssue.LOGISTICS_SILENT]
    for row in week.truth:
        statuses = {e.status for e in by_order[row.order_key]}
        if row.ops_issue is OpsIssue.STUCK_UNSHIPPED:
            assert OrderStatus.SHIPPED not in statuses
        if row.ops_issue is OpsIssue.LOGISTICS_SILENT:
            assert OrderStatus.DELIVERED not in statuses


def test_refund_abuse_claims_come_after_delivery_within_48_hours(
        week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    groups = _groups(week, Pattern.REFUND_ABUSE)
    assert groups
    for rows in groups.values():
        claims = []
        for row in rows:
            events = by_order[row.order_key]
            delivered = [e.update_time for e in events if e.status is OrderStatus.DELIVERED]
            after_sale = [e for e in events if e.kind is EventKind.AFTER_SALE]
            assert delivered and after_sale
            assert all(e.update_time > delivered[0] for e in after_sale)
            refund = after_sale[0].refund
            assert refund is not None and refund.reason in (RefundReason.DAMAGED, RefundReason.NOT_RECEIVED)
            assert refund.requested_at > delivered[0]
            claims.append(refund.requested_at)
        assert max(claims) - min(claims) <= timedelta(hours=48)
        last = [_last(by_order, r) for r in rows]
        assert len(rows) >= 4
        assert len({e.client.wifi_bssid for e in last if e.client}) == 1
        assert len({e.buyer.account_id for e in last}) == len(rows)
        assert len({e.lines[0].sku_id for e in last}) == 1 and last[0].lines[0].sku_id.startswith("PH-LB-")


# --- patterns carry the signal they are named after ------------------------------------------------

def test_shared_entity_rings_share_their_entity(week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    def entity_sets(pattern: Pattern, entity: Any) -> list[tuple[set[Any], set[str]]]:
        out = []
        for rows in _groups(week, pattern).values():
            last = [_last(by_order, r) for r in rows]
            out.append(({entity(e) for e in last}, {e.buyer.account_id for e in last}))
        return out

    for values, accounts in entity_sets(Pattern.DEVICE_RING, lambda e: e.client.device_id):
        assert len(values) == 1 and len(accounts) >= 3
    for values, accounts in entity_sets(Pattern.WIFI_RING, lambda e: e.client.wifi_bssid):
        assert len(values) == 1 and None not in values and len(accounts) >= 3
    for values, accounts in entity_sets(Pattern.ADDRESS_RING,
                                        lambda e: (e.address.province, e.address.city, e.address.district)):
        assert len(values) == 1 and len(accounts) >= 3
    for values, accounts in entity_sets(Pattern.OFFICE_IP, lambda e: e.client.ip):
        assert len(values) == 1 and len(accounts) >= 3
    for values, _ in entity_sets(Pattern.ID_CARD_REUSE, lambda e: e.buyer.id_card):
        assert len(values) == 1 and None not in values
    for rows in _groups(week, Pattern.ID_CARD_REUSE).values():
        assert len({r.channel for r in rows}) >= 2


def test_address_ring_details_are_one_flat_written_differently(
        week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    for rows in _groups(week, Pattern.ADDRESS_RING).values():
        details = [_last(by_order, r).address.detail for r in rows]  # type: ignore[union-attr]
        first, last = min(details), max(details)
        prefix = first[: next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b),
                              len(first))]
        assert re.search(r"\d+号", prefix), details


def test_bot_bursts_fire_from_one_device_within_minutes(
        week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    for rows in _groups(week, Pattern.BOT_BURST).values():
        assert len(rows) >= 6
        devices = {_last(by_order, r).client.device_id for r in rows}  # type: ignore[union-attr]
        times = [r.created_at for r in rows]
        assert len(devices) == 1
        assert max(times) - min(times) <= timedelta(minutes=20)


def test_abuse_details(week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    for row in week.truth:
        event = _last(by_order, row)
        if row.pattern is Pattern.VIRTUAL_PHONE:
            assert event.buyer.phone is not None and event.buyer.phone[:3] in VIRTUAL_SEGMENTS
        elif row.pattern is Pattern.PICKUP_ADDRESS:
            assert event.address is not None and any(k in event.address.detail for k in PICKUP_KEYWORDS)
        elif row.pattern is Pattern.SCALPER:
            assert all(SKUS[line.sku_id].limited and line.qty == SKUS[line.sku_id].max_qty
                       for line in event.lines)
        elif row.pattern is Pattern.BELOW_PRICE:
            assert all(line.unit_price_fen * 4 < SKUS[line.sku_id].price_fen for line in event.lines)
        elif row.pattern is Pattern.COUPON_FARMING:
            registered = event.buyer.registered_at
            assert registered is not None and timedelta(0) < row.created_at - registered <= timedelta(hours=1)
            assert event.coupon_ids == (NEW_USER_COUPON.coupon_id,)
    for rows in _groups(week, Pattern.VIRTUAL_PHONE).values():
        phones = {_last(by_order, r).buyer.phone for r in rows}
        assert len({p[:4] for p in phones if p}) == 1


def _events(by_order: dict[str, list[PlainEvent]], rows: list[TruthRow]) -> list[list[PlainEvent]]:
    return [by_order[r.order_key] for r in rows]


def _cart(event: PlainEvent) -> list[tuple[str, int]]:
    return sorted((line.sku_id, line.qty) for line in event.lines)


def _claims(events: list[list[PlainEvent]], *reasons: RefundReason, delivered: bool = False) -> int:
    """Orders whose refund claim has one of ``reasons`` (any when none), filed after delivery if asked."""
    count = 0
    for history in events:
        claim = next((e.refund for e in history if e.refund is not None), None)
        if claim is None or (reasons and claim.reason not in reasons):
            continue
        delivered_at = next((e.update_time for e in history if e.status is OrderStatus.DELIVERED), None)
        count += not delivered or (delivered_at is not None and delivered_at <= claim.requested_at)
    return count


def test_account_level_abuse_leaves_its_own_history(week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    for rows in _groups(week, Pattern.ACCOUNT_BURST).values():
        last = [_last(by_order, r) for r in rows]
        assert len(rows) >= 5 and len({e.buyer.account_id for e in last}) == 1
        assert all(e.channel in (Channel.TMALL, Channel.JD, Channel.DOUYIN, Channel.KUAISHOU) for e in last)
        assert max(r.created_at for r in rows) - min(r.created_at for r in rows) <= timedelta(minutes=10)
    returns = [_claims(_events(by_order, rows)) for rows in _groups(week, Pattern.RETURN_ABUSE).values()]
    assert max(returns) >= 3
    damaged = 0
    for rows in _groups(week, Pattern.DAMAGED_CLAIMS).values():  # claims after the week's end are not rendered
        events = _events(by_order, rows)
        assert len(rows) >= 2 and len({_last(by_order, r).buyer.account_id for r in rows}) == 1
        assert _claims(events, RefundReason.DAMAGED, delivered=True) == _claims(events)
        damaged += _claims(events)
    assert damaged >= 2
    for rows in _groups(week, Pattern.ID_CARD_SHOPS).values():
        last = [_last(by_order, r) for r in rows]
        assert len(rows) >= 5 and len({e.buyer.id_card for e in last}) == 1 and len({e.shop_id for e in last}) == 2
        assert max(r.created_at for r in rows) - min(r.created_at for r in rows) <= timedelta(days=3)
    for rows in _groups(week, Pattern.NEW_DEVICE_BIG_TICKET).values():
        *warmups, big = [_last(by_order, r) for r in rows]
        assert big.amounts.paid_fen >= 60_000 and big.client is not None
        assert big.client.device_id not in {e.client.device_id for e in warmups if e.client is not None}
    for row in week.truth:
        if row.pattern is Pattern.FAR_WAREHOUSE:
            phone = _last(by_order, row).buyer.phone
            assert phone is not None and phone[:7] in FAR_PREFIXES
        elif row.pattern is Pattern.URGENT_RUSH:
            assert any(word in _last(by_order, row).buyer_message for word in URGENT_NOTE_KEYWORDS)
    for rows in _groups(week, Pattern.DUPLICATE_ORDERS).values():
        last = [_last(by_order, r) for r in rows]
        assert len(rows) >= 3 and len({e.buyer.account_id for e in last}) == 1
        assert all(_cart(e) == _cart(last[0]) for e in last)


def test_account_level_lookalikes_stay_below_the_abuse(week: Simulation,
                                                       by_order: dict[str, list[PlainEvent]]) -> None:
    for rows in _groups(week, Pattern.DOUBLE_SUBMIT).values():
        last = [_last(by_order, r) for r in rows]
        assert len(rows) == 2 and _cart(last[0]) == _cart(last[1])
        assert [e.status for e in last].count(OrderStatus.CANCELLED) == 1
    for rows in _groups(week, Pattern.SPLIT_CART).values():
        assert 2 <= len(rows) <= 4 and len({_last(by_order, r).buyer.account_id for r in rows}) == 1
    for rows in _groups(week, Pattern.BIRTHDAY_NOTE).values():
        assert all(any(w in _last(by_order, r).buyer_message for w in URGENT_NOTE_KEYWORDS) for r in rows)
    for rows in _groups(week, Pattern.DEVICE_SWITCH).values():
        last = [_last(by_order, r) for r in rows]
        assert len({e.client.device_id for e in last if e.client is not None}) == 2
    for rows in _groups(week, Pattern.FAR_GIFTS).values():
        assert all((_last(by_order, r).buyer.phone or "")[:7] in FAR_PREFIXES for r in rows)
    for rows in _groups(week, Pattern.SIZE_RETURNER).values():
        assert _claims(_events(by_order, rows), RefundReason.NO_REASON) <= len(rows)


def _range(event: PlainEvent) -> str:
    assert event.client is not None and event.client.ip is not None
    return event.client.ip.rsplit(".", 1)[0]


def test_stock_holding_bots_and_a_campus_share_one_range_but_only_bots_leave_every_order_unpaid(
        week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    bots, campus = _groups(week, Pattern.STOCK_HOLDING), _groups(week, Pattern.CAMPUS_RANGE)
    assert bots and campus
    assert all(r.is_abnormal for g in bots.values() for r in g)
    assert not any(r.is_abnormal for g in campus.values() for r in g)
    for rows in bots.values():
        last = [_last(by_order, r) for r in rows]
        assert len(rows) >= 8 and len({_range(e) for e in last}) == 1 and len({e.buyer.account_id for e in last}) > 1
        # closed at the payment timeout (or still open when the period ends), never paid
        assert all(e.status in (OrderStatus.CLOSED, OrderStatus.CREATED) and e.paid_at is None for e in last)
        assert len({line.sku_id for e in last for line in e.lines}) == 1
        # the stock stays held: a bot locks it again within 90 s of the timeout closing its last order
        closes = [e.update_time for e in last if e.status is OrderStatus.CLOSED]
        relocked = [e for e in last if any(timedelta(0) <= e.created_at - c <= timedelta(seconds=90) for c in closes)]
        assert len(relocked) >= len(rows) // 4
    for rows in campus.values():
        last = [_last(by_order, r) for r in rows]
        assert len({_range(e) for e in last}) == 1
        assert sum(e.paid_at is None for e in last) < len(last) / 2


def test_honest_orders_rarely_carry_abuse_signals(week: Simulation,
                                                  by_order: dict[str, list[PlainEvent]]) -> None:
    honest = [_last(by_order, r) for r in week.truth if r.pattern is Pattern.NORMAL]
    below = sum(any(line.unit_price_fen * 4 < SKUS[line.sku_id].price_fen for line in e.lines) for e in honest)
    limited = sum(any(SKUS[line.sku_id].limited for line in e.lines) for e in honest)
    assert below == 0
    assert 0 < limited < len(honest) * 0.15  # honest fans do buy the drops


def test_lookalikes_look_like_abuse_but_are_not(week: Simulation, by_order: dict[str, list[PlainEvent]]) -> None:
    for rows in _groups(week, Pattern.FAMILY_GIFTS).values():
        last = [_last(by_order, r) for r in rows]
        assert len({e.buyer.account_id for e in last}) == 1
        assert len({(e.address.city, e.address.detail) for e in last if e.address}) >= 3
    for rows in _groups(week, Pattern.LOYAL_CUSTOMER).values():
        assert len(rows) >= 3 and len({_last(by_order, r).buyer.account_id for r in rows}) == 1
    assert not any(r.is_abnormal for r in week.truth if r.pattern in LOOKALIKE_PATTERNS)


# --- realism of identifiers ------------------------------------------------------------------------

def test_phones_are_valid_mainland_mobile_numbers(week: Simulation) -> None:
    planted = {r.order_key for r in week.fulfilment_truth if r.fault is Fault.INVALID_PHONE}
    phones = {e.buyer.phone for e in week.events if e.buyer.phone and f"{e.channel.value}:{e.order_id}" not in planted}
    for number in phones:
        parsed = phonenumbers.parse(number, "CN")
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE


def test_id_cards_have_valid_check_digits_and_birth_dates(week: Simulation) -> None:
    cards = {e.buyer.id_card for e in week.events if e.buyer.id_card}
    assert cards
    for card in cards:
        assert re.fullmatch(r"\d{17}[\dX]", card), card
        assert id_card_check_digit(card[:17]) == card[17]
        datetime.strptime(card[6:14], "%Y%m%d")


def test_addresses_are_real_province_city_district_triples(week: Simulation) -> None:
    triples = sorted({(e.address.province, e.address.city, e.address.district)
                      for e in week.events if e.address})
    parsed = cpca.transform([f"{p}{c}{d}" for p, c, d in triples])
    for (province, city, district), (_, row) in zip(triples, parsed.iterrows(), strict=True):
        assert row["省"] == province
        assert row["市"] in (city, "市辖区")
        assert row["区"] == district


def test_kuaishou_orders_hold_one_sku_and_amounts_add_up(week: Simulation) -> None:
    for event in week.events:
        if event.channel is Channel.KUAISHOU:
            assert len(event.lines) == 1
        a = event.amounts
        assert a.goods_fen == sum(line.unit_price_fen * line.qty for line in event.lines)
        assert a.paid_fen == max(1, a.goods_fen - a.discount_fen - a.coupon_fen + a.shipping_fen)


# --- channel vocabulary ----------------------------------------------------------------------------

def test_can_state_restates_closed_and_drops_unstateable_events() -> None:
    def no_delivered_no_closed(channel: Channel, kind: EventKind) -> frozenset[OrderStatus]:
        return frozenset(OrderStatus) - {OrderStatus.DELIVERED, OrderStatus.CLOSED}

    full = simulate(SMALL)
    narrow = simulate(SMALL, can_state=no_delivered_no_closed)
    statuses = Counter(e.status for e in narrow.events)
    assert not statuses[OrderStatus.DELIVERED] and not statuses[OrderStatus.CLOSED]
    full_statuses = Counter(e.status for e in full.events)
    assert statuses[OrderStatus.CANCELLED] == full_statuses[OrderStatus.CANCELLED] + sum(
        1 for e in full.events if e.status is OrderStatus.CLOSED and e.kind is EventKind.ORDER)
    assert narrow.truth == full.truth


# --- files -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Simulation, Path]:
    sim = simulate(dataclasses.replace(SMALL, days=4, orders_per_day=400))
    files = write_simulation(sim, tmp_path_factory.mktemp("sim"), encode=plain_encode)
    return sim, files.out_dir


def test_channel_files_hold_each_event_once_plus_resent_copies(written: tuple[Simulation, Path]) -> None:
    sim, out = written
    duplicates = out_of_order = 0
    for channel in Channel:
        lines = (out / f"{channel.value}.jsonl").read_text(encoding="utf-8").splitlines()
        expected = [json.dumps(plain_encode(e), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
                    for e in sim.events if e.channel is channel]
        assert sorted(set(lines)) == sorted(expected)
        duplicates += len(lines) - len(set(lines))
        times = [json.loads(line)["update_time"] for line in lines]
        out_of_order += sum(b < a for a, b in itertools.pairwise(times))
        restored = sorted(set(lines), key=lambda s: (json.loads(s)["update_time"], json.loads(s)["order_id"]))
        assert restored == expected
    assert duplicates > 0 and out_of_order > 0


def test_payload_lines_are_sorted_utf8_json(written: tuple[Simulation, Path]) -> None:
    _, out = written
    line = (out / "tmall.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert line == json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert "爪印家" in line


def test_ground_truth_never_appears_in_payloads(written: tuple[Simulation, Path]) -> None:
    sim, out = written
    payloads = "\n".join((out / f"{c.value}.jsonl").read_text(encoding="utf-8") for c in Channel)
    for pattern in Pattern:
        if pattern is not Pattern.NORMAL:
            assert pattern.value not in payloads
    for group in {r.group_id for r in sim.truth if r.group_id}:
        assert group not in payloads
    assert "is_abnormal" not in payloads


def test_ground_truth_csv_and_manifest_match_the_simulation(written: tuple[Simulation, Path]) -> None:
    sim, out = written
    with (out / "ground_truth.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == TRUTH_COLUMNS
    assert [r["order_key"] for r in rows] == [t.order_key for t in sim.truth]
    assert sum(r["is_abnormal"] == "true" for r in rows) == sum(t.is_abnormal for t in sim.truth)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["seed"] == sim.config.seed
    assert manifest["orders"]["total"] == len(sim.truth)
    assert sum(manifest["events"]["by_channel"].values()) == len(sim.events)
    for channel in Channel:
        lines = (out / f"{channel.value}.jsonl").read_text(encoding="utf-8").splitlines()
        assert manifest["delivery"]["lines"][channel.value] == len(lines)
    assert manifest["patterns"]["scalper"]["abnormal"] is True
    assert manifest["patterns"]["office_ip"]["abnormal"] is False
    assert manifest["abnormal_share"] == pytest.approx(sum(t.is_abnormal for t in sim.truth) / len(sim.truth),
                                                       abs=1e-6)
