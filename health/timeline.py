"""One order's status timeline across systems, with its health now: what a person on duty opens first.

The channel's status changes (from the order log) and every fulfilment report, merged by
event time, each with the system that said it; then the order's checks evaluated now on
exactly those events (the sweeper's own rules, :func:`health.evaluate.evaluate`), and the
findings history the sweeper recorded (when each was due, flagged, resolved).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from health.checks import HealthConfig
from health.evaluate import Failing, evaluate
from health.store import HealthStore, StoredFinding
from health.track import Track
from orderguard.fulfilment import FulfilmentLog, StepKind
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import OrderKey

#: Chinese names of the steps and statuses a timeline shows.
STEP_ZH = {
    StepKind.PAYMENT_CALLBACK.value: "支付回调", StepKind.DEPOSIT_PAID.value: "定金已付",
    StepKind.BALANCE_PAID.value: "尾款已付", StepKind.ERP_SYNC.value: "ERP 已同步",
    StepKind.INVENTORY_LOCK.value: "库存已锁定", StepKind.WAYBILL_PRINTED.value: "面单已打印",
    StepKind.OUT_SCAN.value: "出库扫描", StepKind.TRACKING.value: "物流轨迹", StepKind.DELIVERED.value: "已签收",
    StepKind.COMPLAINT.value: "买家投诉",
    "created": "已下单", "awaiting_group": "待成团", "paid": "已付款", "shipped": "已发货", "delivered": "已送达",
    "completed": "已完成", "cancelled": "已取消", "refund_requested": "申请退款", "refunded": "已退款",
    "refund_rejected": "退款被拒", "closed": "已关闭",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline: when, which system, what (step or status), and its details."""

    at: datetime
    system: str
    what: str
    label: str
    detail: str


@dataclass(frozen=True, slots=True)
class OrderTimeline:
    """An order's merged timeline, its health now, and its findings history."""

    key: OrderKey
    entries: tuple[Entry, ...]
    score: float
    tier: str
    failing: tuple[Failing, ...]
    findings: tuple[StoredFinding, ...]


def order_timeline(key: OrderKey, *, log: OrderLog, steps: FulfilmentLog, store: HealthStore,
                   config: HealthConfig, now: datetime) -> OrderTimeline | None:
    """The timeline of ``key``, or ``None`` when neither log knows the order."""
    events = log.history(key)
    reports = steps.of_order(key)
    if not events and not reports:
        return None
    track = Track(key=key, text=str(key))
    entries: list[Entry] = []
    last_status = None
    for event in sorted(events, key=lambda e: (e.event_time, e.event_version)):
        track.add_order_event(event)
        if event.status != last_status:
            entries.append(Entry(event.event_time, f"channel:{key.channel.value}", event.status.value,
                                 STEP_ZH.get(event.status.value, event.status.value), event.channel_status))
            last_status = event.status
    for report in reports:
        track.add_step(report)
        detail = " ".join(x for x in (report.carrier, report.waybill, report.node, report.reason) if x)
        if report.due_at is not None:
            detail = f"{detail} due {report.due_at.isoformat()}".strip()
        entries.append(Entry(report.event_time, report.source or report.kind.value, report.kind.value,
                             STEP_ZH.get(report.kind.value, report.kind.value), detail))
    entries.sort(key=lambda e: e.at)
    verdict = evaluate(track, config, now)
    score, tier = verdict.grade(config)
    return OrderTimeline(key, tuple(entries), score, tier.value,
                         verdict.failing, tuple(store.findings_of(key)))
