"""``/health``: the operations team's order-health dashboard, and ``/health/order/{channel}/{order_id}``.

Whoever is on duty opens it on a phone in the middle of the night, so the page answers
three questions first and fits a phone's width: is the shop healthy (the latest sweep's
overall health, red when below the check file's alert bar), which orders are in danger
(the sweep's riskiest orders, each with its failing checks in Chinese and a link to its
timeline) and which steps are missing longest (the open findings, the longest overdue
first, filterable by channel and stage). Then the day's chart (inline SVG drawn here:
no script, no CDN), and the counts by tier, lifecycle stage and channel.

An order's page shows its steps across systems in time order, its score and tier now,
the checks failing now with the steps they miss, and every finding the sweeper recorded
(flagged, resolved). Everything is read from the store the sweeper of any service
process writes (``health.store``), never from this process's memory, and every time is
Beijing time, the shop's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from health.checks import STAGES, TIER_ORDER, HealthConfig
from health.timeline import STEP_ZH, order_timeline
from orderguard.access import Role
from orderguard.clock import SHOP_TZ
from orderguard.errors import NotFoundError, ServiceUnavailableError, UnknownChannelError
from orderguard.schema import Channel, OrderKey
from serving.api.deps import services
from serving.api.order_health import monitor_of, summary_out
from serving.api.orders import path_order_key
from serving.api.schemas import HealthOrderOut
from serving.health_watch import HealthMonitor
from serving.notify.messages import health_url
from serving.services import Services
from serving.web.pages import PageCaller, page_user, render

router = APIRouter(include_in_schema=False)
Svc = Annotated[Services, Depends(services)]
Operations = Annotated[PageCaller, Depends(page_user(Role.OPERATIONS))]

#: Stuck findings the dashboard lists (the oldest; the API pages through the rest).
STUCK_ROWS = 50
#: Orders of each list shown open; the rest fold under "more" so the chart and counts stay near the top on a phone.
SHOWN = 10
#: Hours of snapshots the chart spans, up to the latest sweep.
CHART_HOURS = 24
#: Tiers as the page names them: in words as well as in colour (a red-green blind reader, a grey screen).
TIER_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色", "watch": "观察", "ok": "正常"}
#: Tiers from most to least urgent, the order the page lists them.
TIERS = tuple(t.value for t in reversed(TIER_ORDER))
STAGE_ZH = {"order": "下单", "payment": "支付", "sync": "同步", "inventory": "库存", "warehouse": "仓库",
            "logistics": "物流", "after_sale": "售后"}

# The chart's drawing box (SVG user units; the image scales to the screen's width).
_W, _H = 480, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 12, 10, 24


def local(moment: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    """``moment`` on the shop's clock (Beijing time); a naive time is taken as UTC, as the store keeps it.

    >>> local(datetime(2024, 11, 11, 2, 0, tzinfo=UTC)), local(None)
    ('11-11 10:00', '–')
    """
    if moment is None:
        return "–"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHOP_TZ).strftime(fmt)


def overdue(delta: timedelta) -> str:
    """How long past its deadline a step is, in the words a person on duty reads at a glance.

    >>> overdue(timedelta(seconds=20)), overdue(timedelta(minutes=95)), overdue(timedelta(hours=50))
    ('不到 1 分钟', '1 小时 35 分', '2 天 2 小时')
    """
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "不到 1 分钟"
    if minutes < 60:
        return f"{minutes} 分钟"
    if minutes < 48 * 60:
        return f"{minutes // 60} 小时 {minutes % 60} 分"
    return f"{minutes // 1440} 天 {minutes % 1440 // 60} 小时"


def _missing(config: HealthConfig, check_id: str) -> str:
    """The steps a check waits for, in Chinese ("" for a check on the order document itself)."""
    check = config.get(check_id)
    return "" if check is None else " / ".join(STEP_ZH.get(step, step) for step in check.expect)


def order_url(order_key: str) -> str:
    """The timeline page of an order named ``'<channel>:<order id>'``.

    >>> order_url("site:A/1")
    '/health/order/site/A%2F1'
    """
    return health_url("", OrderKey.parse(order_key))


def chart(history: Sequence[tuple[datetime, float]], alert_below: float) -> dict[str, Any] | None:
    """The overall-health chart's geometry: a polyline of the snapshots, the alert line, axis ticks in Beijing time.

    >>> t = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)
    >>> c = chart([(t, 100.0), (t + timedelta(hours=2), 80.0)], 85)
    >>> c["points"], c["x_ticks"][0][1], c["x_ticks"][-1][1], c["below"]
    ('40.0,10.0 468.0,120.7', '10:00', '12:00', True)
    """
    if not history:
        return None
    start, end = history[0][0], history[-1][0]
    span = max((end - start).total_seconds(), 60.0)
    low = min([alert_below, *(v for _, v in history)])
    y_min = max(0.0, (low - 5) // 10 * 10)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(at: datetime) -> float:
        return round(_LEFT + (at - start).total_seconds() / span * plot_w, 1)

    def y(value: float) -> float:
        return round(_TOP + (100 - value) / (100 - y_min) * plot_h, 1)

    ticks = 4
    anchors = ["start", *["middle"] * (ticks - 1), "end"]  # the end labels stay inside the picture
    x_ticks = [(x(start + timedelta(seconds=span * i / ticks)),
                local(start + timedelta(seconds=span * i / ticks), "%H:%M"), anchors[i]) for i in range(ticks + 1)]
    y_values = sorted({100.0, y_min, (100 + y_min) / 2})
    last_at, last = history[-1]
    return {"width": _W, "height": _H, "left": _LEFT, "right": _W - _RIGHT, "top": _TOP, "bottom": _H - _BOTTOM,
            "points": " ".join(f"{x(at)},{y(v)}" for at, v in history),
            "alert": alert_below, "alert_y": y(alert_below), "last_x": x(last_at), "last_y": y(last), "last": last,
            "below": last < alert_below, "x_ticks": x_ticks,
            "y_ticks": [(y(v), f"{v:g}") for v in y_values if abs(v - alert_below) > 3],
            "first": local(start), "end": local(end),
            "low": min(v for _, v in history)}


def _worst(config: HealthConfig, worst: Iterable[HealthOrderOut]) -> list[dict[str, Any]]:
    """The sweep's riskiest orders, each with its failing checks in Chinese and the steps they wait for."""
    return [{"key": w.order_key, "url": order_url(w.order_key), "score": w.score, "tier": w.tier,
             "tier_zh": TIER_ZH.get(w.tier, w.tier), "oldest_due": local(w.oldest_due),
             "checks": [{"id": c, "zh": config.texts(c)[0], "missing": _missing(config, c)} for c in w.checks]}
            for w in worst]


def _dashboard(svc: Services, monitor: HealthMonitor, channel: str | None, stage: str | None) -> dict[str, Any]:
    """Everything ``/health`` shows (database reads: on a worker thread)."""
    now, config = svc.clock.now(), monitor.config
    summary = summary_out(svc, monitor, hours=CHART_HOURS)
    found = monitor.store.open_findings(limit=STUCK_ROWS, channel=channel, stage=stage)
    stuck = [{"key": f.order_key, "url": order_url(f.order_key), "check_id": f.check_id,
              **dict(zip(("zh", "en"), config.texts(f.check_id), strict=True)),
              "missing": _missing(config, f.check_id), "channel": f.channel, "stage": f.stage,
              "stage_zh": STAGE_ZH.get(f.stage, f.stage), "due_at": local(f.due_at), "flagged_at": local(f.flagged_at),
              "overdue": overdue(now - f.due_at), "detail": f.detail} for f in found]
    channels = [(name, sum(counts.values()), [counts.get(t, 0) for t in TIERS])
                for name, counts in sorted(summary.channels.items())]
    return {
        "swept": summary.taken_at is not None, "taken_at": local(summary.taken_at), "overall": summary.overall,
        "orders": summary.orders, "alert_below": summary.alert_below,
        "low": summary.overall is not None and summary.overall < summary.alert_below,
        "tiers": [(t, TIER_ZH[t], summary.tiers.get(t, 0)) for t in TIERS],
        "stages": [(s, STAGE_ZH[s], summary.stages.get(s, 0)) for s in STAGES],
        "channels": channels, "worst": _worst(config, summary.worst), "shown": SHOWN,
        "chart": chart(summary.history, summary.alert_below),
        "stuck": stuck, "open_total": monitor.store.count_open(), "now": local(now)}


def _unavailable(request: Request, caller: PageCaller, e: ServiceUnavailableError) -> Response:
    return render(request, "message.html", {"user": caller.user, "csrf_token": caller.session.csrf,
                                            "heading": "订单健康监控未运行 Order health is off", "message": e.message},
                  status_code=503)


@router.get("/health")
async def health_page(request: Request, svc: Svc, caller: Operations, channel: str = "", stage: str = "") -> Response:
    """The shop's order health now, the orders in danger, the steps missing longest, the day's chart."""
    try:
        monitor = monitor_of(svc)
    except ServiceUnavailableError as e:
        return _unavailable(request, caller, e)
    errors = []
    if channel and channel not in {c.value for c in Channel}:
        errors.append(f"渠道 channel must be one of {', '.join(c.value for c in Channel)}; got {channel[:32]!r}")
        channel = ""
    if stage and stage not in STAGES:
        errors.append(f"环节 stage must be one of {', '.join(STAGES)}; got {stage[:32]!r}")
        stage = ""
    view = await asyncio.to_thread(_dashboard, svc, monitor, channel or None, stage or None)
    return render(request, "health.html", {
        "user": caller.user, "csrf_token": caller.session.csrf, "errors": errors, "channel": channel,
        "stage": stage, "channel_choices": [c.value for c in Channel],
        "stage_choices": [(s, STAGE_ZH[s]) for s in STAGES], "tier_zh": TIER_ZH, **view},
        status_code=422 if errors else 200)


def _order_view(svc: Services, monitor: HealthMonitor, channel: str, order_id: str) -> dict[str, Any]:
    """Everything an order's page shows (``NotFoundError`` when neither log knows the order)."""
    key = path_order_key(channel, order_id)
    now, config = svc.clock.now(), monitor.config
    timeline = order_timeline(key, log=svc.order_log, steps=monitor.steps, store=monitor.store, config=config,
                              now=now)
    if timeline is None:
        raise NotFoundError(f"No event of order {key} is stored: neither its channel nor any system reported it.",
                            field="order_id")
    failing = [{"id": f.check.id, "zh": f.check.text_zh, "en": f.check.text_en, "stage": f.check.stage,
                "stage_zh": STAGE_ZH.get(f.check.stage, f.check.stage),
                "missing": " / ".join(STEP_ZH.get(s, s) for s in f.check.expect), "due_at": local(f.due_at),
                "overdue": overdue(now - f.due_at), "detail": f.detail} for f in timeline.failing]
    entries = [{"at": local(e.at, "%m-%d %H:%M:%S"), "iso": e.at.isoformat(), "system": e.system, "what": e.what,
                "label": e.label, "detail": e.detail} for e in timeline.entries]
    findings = [{"id": f.check_id, "zh": config.texts(f.check_id)[0], "due_at": local(f.due_at),
                 "flagged_at": local(f.flagged_at), "resolved_at": local(f.resolved_at) if f.resolved_at else None,
                 "stage_zh": STAGE_ZH.get(f.stage, f.stage)} for f in timeline.findings]
    return {"key": str(key), "score": timeline.score, "tier": timeline.tier,
            "tier_zh": TIER_ZH.get(timeline.tier, timeline.tier), "failing": failing, "entries": entries,
            "findings": findings, "now": local(now)}


@router.get("/health/order/{channel}/{order_id}")
async def order_page(request: Request, channel: str, order_id: str, svc: Svc, caller: Operations) -> Response:
    """One order's steps across systems, its health now and its findings history."""
    try:
        monitor = monitor_of(svc)
    except ServiceUnavailableError as e:
        return _unavailable(request, caller, e)
    try:
        view = await asyncio.to_thread(_order_view, svc, monitor, channel, order_id)
    except (NotFoundError, UnknownChannelError) as e:
        return render(request, "message.html", {"user": caller.user, "csrf_token": caller.session.csrf,
                                                "heading": "没有这个订单 Unknown order", "message": e.message},
                      status_code=404)
    return render(request, "health_order.html", {"user": caller.user, "csrf_token": caller.session.csrf, **view})
