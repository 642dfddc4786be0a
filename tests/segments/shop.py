"""A small shop whose every customer is in the pool or out of it for one known reason.

Built through the order log's own ``append``, ``LabelLog.add`` and ``ScoreLog.put``, with
the identity keys set the way ingest stores them (phone and address as keyed hashes).
``EXPECTED_POOL`` and ``FAILS`` are what the standard criteria must conclude at
``AS_OF``; ``BEFORE_LABEL`` is a moment before the fraud verdict that taints the ring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog
from orderguard.schema import (
    Address,
    Channel,
    ClientInfo,
    EventKind,
    Label,
    OrderEvent,
    OrderKey,
    OrderStatus,
    Party,
    Phone,
    RefundReason,
    Verdict,
)
from scoring.policy import Decision, RiskLevel
from scoring.records import ScoreLog, ScoreRecord
from tests.factories import follow_up, make_event, make_refund

#: The close of 2024-11-30 in shop time (Beijing).
AS_OF = datetime(2024, 11, 30, 16, 0, tzinfo=UTC)
LABELED_AT = AS_OF - timedelta(days=3)
BEFORE_LABEL = AS_OF - timedelta(days=4)
OFFICE_IP = "203.0.113.9"


@dataclass(frozen=True)
class Buy:
    """One order: who, when (days before ``AS_OF``), with which keys, how it ended."""

    order_id: str
    account: str
    days_before: float
    channel: Channel = Channel.SITE
    phone: str | None = None
    id_card: str | None = None
    device: str | None = None
    ip: str | None = None
    status: OrderStatus = OrderStatus.COMPLETED
    refund: RefundReason | None = None
    paid_fen: int = 19_900


def _buys() -> list[Buy]:
    buys: list[Buy] = []

    def three(account: str, prefix: str, **keys: object) -> None:
        for i, days in enumerate((80.0, 50.0, 20.0)):
            buys.append(Buy(f"{prefix}{i}", account, days, **keys))  # type: ignore[arg-type]

    # alice: loyal, and the same person on JD (shared phone): one customer, two accounts
    three("alice", "A", phone="ph-alice", device="dev-alice")
    buys.append(Buy("AJ1", "alice-jd", 30, channel=Channel.JD, phone="ph-alice"))
    # bob: a confirmed fraudster; carol: a long-standing customer sharing bob's handset (a ring member)
    buys.append(Buy("B1", "bob", 10, device="dev-ring"))
    three("carol", "C", device="dev-ring", phone="ph-carol")
    # dave: loyal, behind an office IP that 25 accounts share, bob among them: a crowded key links nobody
    three("dave", "D", ip=OFFICE_IP, phone="ph-dave")
    buys.extend(Buy(f"O{i}", f"office{i}", 5, ip=OFFICE_IP) for i in range(24))
    buys.append(Buy("B2", "bob", 9, ip=OFFICE_IP))
    # erin: a damaged-goods claim on a delivered parcel
    three("erin", "E", phone="ph-erin")
    buys.append(Buy("E9", "erin", 15, phone="ph-erin", status=OrderStatus.REFUND_REQUESTED,
                    refund=RefundReason.DAMAGED))
    # fay: new (first order 10 days ago)
    buys.extend(Buy(f"F{i}", "fay", days, phone="ph-fay") for i, days in enumerate((10.0, 6.0, 2.0)))
    # gus: an order held by the scorer; hal: held too, but a reviewer cleared it as a false positive
    three("gus", "G", phone="ph-gus")
    three("hal", "H", phone="ph-hal")
    # ivy: her phone is on the deny list; kim: a reviewer is still investigating one of her orders
    three("ivy", "I", phone="ph-ivy")
    three("kim", "K", phone="ph-kim")
    return buys


BUYS = _buys()
EXPECTED_POOL = {"site:alice", "site:dave", "site:hal"}
# bob's and fay's orders are too fresh to count as completed (a false claim may still come)
FAILS = {"site:bob": {"fraud_labels", "tenure_days", "completed_orders"}, "site:carol": {"links"},
         "site:erin": {"refund_claims"}, "site:fay": {"tenure_days", "completed_orders"},
         "site:gus": {"holds", "max_score"}, "site:ivy": {"deny_listed"}, "site:kim": {"investigations"}}
DENY = [("phone", "ph-ivy")]


def _events(buy: Buy) -> list[OrderEvent]:
    created = AS_OF - timedelta(days=buy.days_before)
    buyer = Party(account_id=buy.account, phone=Phone(buy.phone, prefix="138", masked="138****0000")
                  if buy.phone else None, id_card_hash=buy.id_card)
    address = Address("浙江省", "杭州市", "西湖区", "***", key=f"addr-{buy.account}")
    client = ClientInfo(device_id=buy.device, ip=buy.ip) if buy.device or buy.ip else None
    first = make_event(order_id=buy.order_id, channel=buy.channel, event_time=created, buyer=buyer, address=address,
                       client=client)
    events = [first]
    if buy.status is OrderStatus.COMPLETED:
        events.append(follow_up(first, status=OrderStatus.COMPLETED, after=timedelta(days=1)))
    elif buy.refund is not None:
        delivered = follow_up(first, status=OrderStatus.DELIVERED, after=timedelta(days=1))
        claim = make_refund(order_id=buy.order_id, requested_at=delivered.event_time + timedelta(hours=2),
                            reason=buy.refund)
        events += [delivered, follow_up(delivered, status=buy.status, after=timedelta(hours=2),
                                        kind=EventKind.AFTER_SALE, refund=claim)]
    return events


def _record(key: OrderKey, version: int, when: datetime, score: float, decision: Decision) -> ScoreRecord:
    return ScoreRecord(order_key=key, event_version=version, event_time=when, scored_at=when, score=score,
                       risk_level=RiskLevel.CRITICAL if decision is Decision.HOLD else RiskLevel.LOW,
                       decision=decision, rules_only=True, model_version=None, settings_hash="t",
                       feature_set_hash="t", latency_ms=1.0)


def fill(log: OrderLog) -> None:
    """Store the shop: events, the verdicts, and a score record for every first event."""
    events = [e for buy in BUYS for e in _events(buy)]
    log.append(events)
    firsts = {e.key: e for e in sorted(events, key=lambda e: e.event_version, reverse=True)}
    held = {OrderKey(Channel.SITE, "G2"), OrderKey(Channel.SITE, "H2")}
    ScoreLog(log.engine).put_many([
        _record(key, e.event_version, e.event_time, 90.0 if key in held else 5.0,
                Decision.HOLD if key in held else Decision.APPROVE) for key, e in sorted(firsts.items(), key=str)])
    LabelLog(log.engine).add([
        Label(OrderKey(Channel.SITE, "B1"), Verdict.CONFIRMED_FRAUD, LABELED_AT, "rev"),
        Label(OrderKey(Channel.SITE, "H2"), Verdict.FALSE_POSITIVE, LABELED_AT, "rev"),
        Label(OrderKey(Channel.SITE, "K1"), Verdict.NEEDS_INVESTIGATION, LABELED_AT, "rev"),
    ], source="test", recorded_at=AS_OF)
