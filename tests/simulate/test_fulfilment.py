"""The simulated fulfilment reports: wire format, determinism, honest timing, planted faults and their truth.

The truth is checked against an independent reading of the order-health table: the
channel documents as the ingest adapters parse them (what the monitor knows of address,
phone, price and cart), the channel's own statuses, and the reports as
``orderguard.fulfilment.parse_event`` reads them.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from orderguard.clock import SHOP_TZ
from orderguard.enrich import address_defects, phone_problem
from orderguard.fulfilment import FulfilmentEvent, StepKind, parse_event
from orderguard.ingest.channels import ADAPTERS
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.schema import EventKind, OrderStatus
from simulate.channels import encode
from simulate.config import SimConfig
from simulate.engine import Simulation, simulate
from simulate.export import export_shop
from simulate.fulfilment import INJECTED, TRUTH_COLUMNS, Fault, carrier_of, carrier_outage
from simulate.plain import PlainEvent
from simulate.writer import write_simulation

CONFIG = SimConfig(seed=11, days=3, promo_day=1, orders_per_day=200)
SECRET = b"fulfilment-tests"
H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def steps(sim: Simulation) -> dict[str, list[FulfilmentEvent]]:
    grouped: dict[str, list[FulfilmentEvent]] = defaultdict(list)
    for event in sim.fulfilment:
        parsed = parse_event(event, received_at=CONFIG.end_at)
        grouped[str(parsed.key)].append(parsed)
    return grouped


@pytest.fixture(scope="module")
def channel_events(sim: Simulation) -> dict[str, list[PlainEvent]]:
    grouped: dict[str, list[PlainEvent]] = defaultdict(list)
    for event in sim.events:
        grouped[f"{event.channel.value}:{event.order_id}"].append(event)
    return grouped


def _digest(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# --- wire format ----------------------------------------------------------------------------------

def test_every_report_parses_and_is_unique_and_in_time_order(sim: Simulation) -> None:
    assert sim.fulfilment
    idents = set()
    times = []
    for event in sim.fulfilment:
        parsed = parse_event(event, received_at=CONFIG.end_at)
        assert parsed.to_dict()["time"] == parsed.event_time.isoformat()
        assert event["time"].endswith("+08:00")
        assert CONFIG.start_at <= parsed.event_time < CONFIG.end_at
        idents.add((str(parsed.key), parsed.kind, parsed.event_id))
        times.append(parsed.event_time)
    assert len(idents) == len(sim.fulfilment)
    assert times == sorted(times)
    assert set(Counter(e["kind"] for e in sim.fulfilment)) == {k.value for k in StepKind}
    known = {r.order_key for r in sim.truth}
    assert {f"{e['channel']}:{e['order_id']}" for e in sim.fulfilment} <= known


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, orders_per_day=60)
    first = export_shop(config, tmp_path / "a", secret=SECRET)
    second = export_shop(config, tmp_path / "b", secret=SECRET)
    assert _digest(first.out_dir) == _digest(second.out_dir)
    assert first.fulfilment.read_bytes() and first.fulfilment_truth.read_bytes()
    assert not list(first.out_dir.glob("fulfilment*.jsonl"))  # top-level *.jsonl stay channel files


def test_orders_no_fault_touches_render_exactly_as_without_faults(sim: Simulation) -> None:
    plain = simulate(CONFIG, faults=False)
    assert [r.order_key for r in plain.truth] == [r.order_key for r in sim.truth]
    assert plain.altered == frozenset() and sim.altered
    untouched = [e for e in sim.events if f"{e.channel.value}:{e.order_id}" not in sim.altered]
    baseline = [e for e in plain.events if f"{e.channel.value}:{e.order_id}" not in sim.altered]
    assert untouched == baseline
    assert not any(r.fault in INJECTED - {Fault.INCOMPLETE_ADDRESS, Fault.DUPLICATE_ORDER}
                   for r in plain.fulfilment_truth)


# --- honest timing --------------------------------------------------------------------------------

def test_healthy_orders_follow_the_shops_timing(sim: Simulation, steps: dict[str, list[FulfilmentEvent]],
                                                channel_events: dict[str, list[PlainEvent]]) -> None:
    faulty = {r.order_key for r in sim.fulfilment_truth}
    checked = 0
    for key, events in channel_events.items():
        if key in faulty or key in sim.altered:
            continue
        at: dict[StepKind, list[datetime]] = defaultdict(list)
        for step in steps.get(key, []):
            at[step.kind].append(step.event_time)
        paid = next((e.paid_at for e in events if e.paid_at is not None), None)
        if paid is None:
            assert not set(at) - {StepKind.DEPOSIT_PAID}, key
            continue
        chain = [paid, *at[StepKind.PAYMENT_CALLBACK], *at[StepKind.ERP_SYNC], *at[StepKind.INVENTORY_LOCK]]
        if paid + 20 * M < CONFIG.end_at:  # later, the period's end may cut the chain short
            assert len(chain) == 4, key
        for (low, high), (before, after) in zip(((2 * S, 3 * M), (10 * S, 5 * M), (5 * S, 10 * M)),
                                                itertools.pairwise(chain), strict=False):
            assert low <= after - before <= high, key
        shipped = [e.update_time for e in events if e.status is OrderStatus.SHIPPED]
        assert at[StepKind.OUT_SCAN] == shipped, key
        if shipped and at[StepKind.WAYBILL_PRINTED]:
            assert timedelta(0) < shipped[0] - at[StepKind.WAYBILL_PRINTED][0] <= timedelta(hours=3, minutes=30)
            assert at[StepKind.INVENTORY_LOCK][0] < at[StepKind.WAYBILL_PRINTED][0], key
        delivered = [e.update_time for e in events if e.status is OrderStatus.DELIVERED]
        assert at[StepKind.DELIVERED] == delivered, key
        nodes = sorted(at[StepKind.OUT_SCAN] + at[StepKind.TRACKING] + at[StepKind.DELIVERED])
        assert all(b - a <= 12 * H + 20 * M for a, b in itertools.pairwise(nodes)), key
        checked += 1
    assert checked > 500


def test_tracking_nodes_name_the_parcels_carrier_and_waybill(sim: Simulation) -> None:
    waybills = {f"{e.channel.value}:{e.order_id}": e.tracking_no for e in sim.events if e.tracking_no}
    carriers: Counter[str] = Counter()
    for event in sim.fulfilment:
        if event["kind"] in ("waybill_printed", "out_scan", "tracking", "delivered"):
            key = f"{event['channel']}:{event['order_id']}"
            assert event["waybill"] == waybills.get(key, event["waybill"])
            assert event["carrier"] == carrier_of(event["waybill"])
            if event["kind"] == "tracking":
                assert event["source"] == event["carrier"] and event["node"]
            carriers[event["carrier"]] += 1
            if event["channel"] == "jd":
                assert event["carrier"] == "jd"
    assert {"sf", "zto", "yto", "jd"} <= set(carriers)


# --- planted faults -------------------------------------------------------------------------------

def test_every_fault_is_planted_on_the_promotion_day(sim: Simulation) -> None:
    promo = CONFIG.start + timedelta(days=CONFIG.promo_day or 0)
    created = {r.order_key: r.created_at for r in sim.truth}
    on_promo = Counter(r.fault for r in sim.fulfilment_truth
                       if created[r.order_key].astimezone(SHOP_TZ).date() == promo)
    assert set(on_promo) >= INJECTED, INJECTED - set(on_promo)
    assert Fault.UNEXPLAINED not in {r.fault for r in sim.fulfilment_truth}


def test_carrier_outage_silences_one_carrier(sim: Simulation) -> None:
    outage = carrier_outage(CONFIG)
    assert outage is not None and timedelta(hours=30) <= outage.end - outage.start <= timedelta(hours=40)
    assert outage.start.astimezone(SHOP_TZ).date() == CONFIG.start + timedelta(days=(CONFIG.promo_day or 0) + 1)
    inside = [e for e in sim.fulfilment if e["kind"] in ("tracking", "delivered") and e["carrier"] == outage.carrier
              and outage.start <= datetime.fromisoformat(e["time"]) < outage.end]
    assert not inside
    others = [e for e in sim.fulfilment if e["kind"] == "tracking" and e["carrier"] != outage.carrier
              and outage.start <= datetime.fromisoformat(e["time"]) < outage.end]
    assert others


def test_lost_callbacks_leave_the_order_paid_and_unshipped(
        sim: Simulation, steps: dict[str, list[FulfilmentEvent]], channel_events: dict[str, list[PlainEvent]]) -> None:
    lost = {r.order_key for r in sim.fulfilment_truth if r.fault is Fault.LOST_PAYMENT_CALLBACK}
    assert lost
    for key in lost:
        assert not steps.get(key)
        statuses = {e.status for e in channel_events[key]}
        assert OrderStatus.PAID in statuses and OrderStatus.SHIPPED not in statuses
    checks = Counter(r.check.value for r in sim.fulfilment_truth if r.fault is Fault.LOST_PAYMENT_CALLBACK)
    assert checks["payment_callback"] == checks["erp_sync"] == len(lost)


def test_presales_without_balance_are_still_open_at_their_deadline(
        sim: Simulation, steps: dict[str, list[FulfilmentEvent]], channel_events: dict[str, list[PlainEvent]]) -> None:
    rows = [r for r in sim.fulfilment_truth if r.fault is Fault.PRESALE_NO_BALANCE]
    assert rows
    for row in rows:
        (deposit,) = [s for s in steps[row.order_key] if s.kind is StepKind.DEPOSIT_PAID]
        assert deposit.due_at == row.anchor_at == deposit.event_time + timedelta(hours=48)
        assert not [s for s in steps[row.order_key] if s.kind is StepKind.BALANCE_PAID]
        ended = [e.update_time for e in channel_events[row.order_key] if e.status is OrderStatus.CLOSED]
        assert all(t > row.anchor_at for t in ended)
    honest = [k for k, ss in steps.items() if any(s.kind is StepKind.BALANCE_PAID for s in ss)]
    assert honest


def test_truth_file_and_manifest(sim: Simulation, tmp_path: Path) -> None:
    files = write_simulation(sim, tmp_path, encode=lambda e: {"order_id": e.order_id, "status": e.status.value})
    lines = files.fulfilment.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == sim.fulfilment
    with files.fulfilment_truth.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == TRUTH_COLUMNS
    assert [(r["order_key"], r["fault"], r["check"], datetime.fromisoformat(r["anchor_at"])) for r in rows] == [
        (t.order_key, t.fault.value, t.check.value, t.anchor_at) for t in sim.fulfilment_truth]
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))["fulfilment"]
    assert manifest["events"] == len(lines) and manifest["truth_rows"] == len(rows)
    assert sum(manifest["by_fault"].values()) == len(rows)


# --- the truth is what the checks would find --------------------------------------------------------

def _cart(event: PlainEvent) -> tuple[tuple[str, int], ...]:
    qty: Counter[str] = Counter()
    for line in event.lines:
        qty[line.sku_id] += line.qty
    return tuple(sorted(qty.items()))


def independent_truth(sim: Simulation, steps: dict[str, list[FulfilmentEvent]],
                      channel_events: dict[str, list[PlainEvent]]) -> set[tuple[str, str, datetime]]:
    """The order-health table evaluated at the period's end from the channel documents and the reports."""
    end = sim.config.end_at
    ctx = ParseContext(received_at=end, hasher=PiiHasher(b"checker"))
    found: set[tuple[str, str, datetime]] = set()
    buyers: dict[tuple[str, str], list[tuple[datetime, str, tuple[tuple[str, int], ...], datetime | None]]] = (
        defaultdict(list))

    def missing(key: str, check: str, anchor: datetime, within: timedelta, expect: list[datetime]) -> None:
        if anchor + within < end and not any(anchor <= t <= anchor + within for t in expect):
            found.add((key, check, anchor))

    for key, events in channel_events.items():
        first = events[0]
        details = ADAPTERS[first.channel].parse(encode(first, secret=SECRET), ctx=ctx).details
        assert details is not None
        created = details.created_at
        if address_defects(details.address):
            found.add((key, "address_incomplete", created))
        if phone_problem(details.buyer.phone) is not None:
            found.add((key, "phone_invalid", created))
        a = details.amounts
        listed = (sum(line.list_price_fen * line.qty for line in details.lines if line.list_price_fen is not None)
                  if all(line.list_price_fen is not None for line in details.lines) else a.goods_fen)
        if a.paid_fen < 0.3 * listed or a.discount_fen + a.coupon_fen > 0.7 * a.goods_fen:
            found.add((key, "price_bounds", created))
        ended = min((e.update_time for e in events if e.status in (OrderStatus.CANCELLED, OrderStatus.CLOSED)),
                    default=None)
        buyers[(first.channel.value, details.buyer.account_id)].append((created, key, _cart(first), ended))

        at: dict[StepKind, list[datetime]] = defaultdict(list)
        for step in steps.get(key, []):
            at[step.kind].append(step.event_time)
        paid = next((e.paid_at for e in events if e.paid_at is not None), None)
        if paid is not None:
            missing(key, "payment_callback", paid, 10 * M, at[StepKind.PAYMENT_CALLBACK])
            missing(key, "erp_sync", paid, 15 * M, at[StepKind.ERP_SYNC])
            shipped = min((e.update_time for e in events if e.status is OrderStatus.SHIPPED), default=None)
            refunded_first = any(e.kind is EventKind.AFTER_SALE and (shipped is None or e.update_time < shipped)
                                 for e in events)
            if ended is None and not refunded_first:
                missing(key, "ship_promise", paid, 48 * H, at[StepKind.OUT_SCAN])
        if at[StepKind.ERP_SYNC]:
            missing(key, "inventory_lock", min(at[StepKind.ERP_SYNC]), 30 * M, at[StepKind.INVENTORY_LOCK])
        if at[StepKind.WAYBILL_PRINTED]:
            missing(key, "out_scan", min(at[StepKind.WAYBILL_PRINTED]), 4 * H, at[StepKind.OUT_SCAN])
        delivered = min(at[StepKind.DELIVERED], default=None)
        anchors = sorted(t for t in at[StepKind.OUT_SCAN] + at[StepKind.TRACKING] if delivered is None or t < delivered)
        answers = sorted(at[StepKind.TRACKING] + at[StepKind.DELIVERED])
        for anchor in anchors:
            following = next((t for t in answers if t > anchor), end)
            if following - anchor > 24 * H and anchor + 24 * H < end:
                found.add((key, "tracking_silent", anchor))
                break
        if delivered is not None:
            complaints = [s.event_time for s in steps.get(key, []) if s.kind is StepKind.COMPLAINT
                          and s.reason == "not_received" and s.event_time >= delivered]
            if complaints:
                found.add((key, "false_delivery", min(complaints)))
        for step in steps.get(key, []):
            if step.kind is StepKind.DEPOSIT_PAID:
                assert step.due_at is not None
                if step.due_at < end and not any(t <= step.due_at for t in at[StepKind.BALANCE_PAID]):
                    found.add((key, "presale_balance", step.due_at))

    for orders in buyers.values():
        for created, key, cart, _ in orders:
            if any(other != key and timedelta(0) <= created - at <= 10 * M and c == cart
                   and (ended is None or ended > created) for at, other, c, ended in orders):
                found.add((key, "duplicate_order", created))
    return found


def test_truth_lists_exactly_the_checks_that_fail(sim: Simulation, steps: dict[str, list[FulfilmentEvent]],
                                                  channel_events: dict[str, list[PlainEvent]]) -> None:
    truth = {(r.order_key, r.check.value, r.anchor_at) for r in sim.fulfilment_truth}
    found = independent_truth(sim, steps, channel_events)
    assert len(truth) == len(sim.fulfilment_truth)
    assert found - truth == set(), sorted(found - truth)[:5]
    assert truth - found == set(), sorted(truth - found)[:5]
    checks = Counter(check for _, check, _ in truth)
    assert {"payment_callback", "erp_sync", "out_scan", "tracking_silent", "false_delivery", "address_incomplete",
            "phone_invalid", "price_bounds", "duplicate_order", "presale_balance"} <= set(checks)
