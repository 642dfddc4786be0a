"""What the order-health monitor tells people and the order system after a sweep.

* Orders that became **yellow, orange or red** in a sweep: one message per tier per sweep
  to the robots subscribed to that tier (``alerts.receivers[].health``), naming how many
  and the first few with their missing steps, so a promotion day's backlog is one message
  a minute, not thousands.
* A **red** order: a ``pause_fulfilment`` call to the order system (one per order ever:
  the dedup key is the order), when ``health.pause_on_red`` and a callback are set.
* The shop's **overall health below the bar** (``overall_alert_below``, 85): the top 5
  riskiest orders to the robots subscribed to ``digest``, at most once per
  ``health.digest_every`` while it stays low.

Everything is queued in the outbox (durable, retried, never on the request path).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from health.checks import HealthConfig
from health.sweeper import OrderHealth, SweepResult
from orderguard.outbox import Outgoing
from orderguard.schema import OrderKey
from orderguard.settings import AlertSettings, HealthSettings
from serving.notify.messages import NOTICE_TOPIC, Notice, OrderAction, action_message, health_url, robot_destination

#: Orders named in one tier message (the rest are counted).
SHOWN = 10
#: Orders in the low-health digest.
TOP = 5
_TIER_ZH = {"yellow": "黄色（值班客服处理）", "orange": "橙色（主管与技术支持）", "red": "红色（已请求暂停发货）"}
_TIER_ICON = {"yellow": "🟡", "orange": "🟠", "red": "🔴"}


def _line(config: HealthConfig, order: OrderHealth, base_url: str) -> str:
    texts = [config.texts(check_id)[0] for check_id in order.checks]
    link = health_url(base_url, OrderKey.parse(order.order_key))
    return f"- [{order.order_key}]({link}) 健康分 {order.score:.0f}：{'；'.join(texts) or '无'}"


def tier_notice(config: HealthConfig, tier: str, orders: Sequence[OrderHealth], *, base_url: str,
                as_of: datetime) -> Notice:
    """The message of one tier's newly escalated orders."""
    local = as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"**{len(orders)} 个订单进入{_TIER_ZH.get(tier, tier)}**（{local}）",
             *(_line(config, o, base_url) for o in orders[:SHOWN])]
    if len(orders) > SHOWN:
        lines.append(f"…… 另有 {len(orders) - SHOWN} 个，见 [订单健康]({base_url}/health)")
    return Notice(f"订单健康：{_TIER_ICON.get(tier, '')}{tier} {len(orders)} 单", tuple(lines))


def digest_notice(config: HealthConfig, result: SweepResult, *, base_url: str) -> Notice:
    """The low-health message: overall health, the bar, the top 5 riskiest orders."""
    lines = [f"**店铺整体健康度 {result.overall:.1f}，低于 {config.overall_alert_below:.0f}**",
             f"在途订单 {result.orders}：红 {result.tiers.get('red', 0)}，橙 {result.tiers.get('orange', 0)}，"
             f"黄 {result.tiers.get('yellow', 0)}",
             "**风险最高的 5 个订单**：",
             *(_line(config, o, base_url) for o in result.worst[:TOP]),
             f"[打开订单健康看板]({base_url}/health)"]
    return Notice(f"订单健康：整体健康度 {result.overall:.1f}", tuple(lines))


def pause_message(order: OrderHealth, *, as_of: datetime) -> Outgoing:
    """The order system's ``pause_fulfilment`` call for a red order (dedup: the order, so one ever)."""
    return action_message(OrderKey.parse(order.order_key), OrderAction.PAUSE_FULFILMENT, reviewer="order-health",
                          note="health score {:.0f}: {}".format(order.score, ", ".join(order.checks)), now=as_of,
                          once=True)


def _slot(at: datetime, every: timedelta) -> str:
    """The start of the ``every``-long slot holding ``at`` (UTC ISO): one dedup key per slot.

    >>> _slot(datetime(2024, 11, 11, 3, 0, 41, tzinfo=UTC), timedelta(minutes=1))
    '2024-11-11T03:00:00+00:00'
    """
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return (epoch + (at - epoch) // every * every).isoformat()


def health_messages(config: HealthConfig, result: SweepResult, alerts: AlertSettings, health: HealthSettings, *,
                    digest: bool) -> list[Outgoing]:
    """Every message a sweep owes (``digest``: whether a low-health digest is due now)."""
    out: list[Outgoing] = []
    # keyed by the sweep interval (the digest by its own): several service processes sweeping the same minute
    # queue one message, not one each
    stamp = _slot(result.as_of, health.sweep_every)
    by_tier: dict[str, list[OrderHealth]] = {}
    for order in result.escalated:
        by_tier.setdefault(order.tier, []).append(order)
    for tier, orders in by_tier.items():
        orders.sort(key=lambda o: (o.score, o.order_key))
        notice = tier_notice(config, tier, orders, base_url=alerts.base_url, as_of=result.as_of).payload()
        out.extend(Outgoing(NOTICE_TOPIC, robot_destination(r), f"health:{tier}:{stamp}", notice)
                   for r in alerts.receivers if tier in r.health)
    if health.pause_on_red and alerts.order_system_callback is not None:
        out.extend(pause_message(o, as_of=result.as_of) for o in by_tier.get("red", []))
    if digest:
        notice = digest_notice(config, result, base_url=alerts.base_url).payload()
        key = f"health-digest:{_slot(result.as_of, health.digest_every)}"
        out.extend(Outgoing(NOTICE_TOPIC, robot_destination(r), key, notice)
                   for r in alerts.receivers if "digest" in r.health)
    return out
