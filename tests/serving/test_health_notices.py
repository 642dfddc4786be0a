"""What a sweep tells whom: one message per tier per sweep to the robots that asked for it, a pause call per red
order (only with a callback), the digest only when due; each robot's format within its limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from health.checks import load_checks
from health.sweeper import OrderHealth, SweepResult
from orderguard.settings import AlertReceiver, AlertSettings, HealthSettings
from serving.notify.health import digest_notice, health_messages, tier_notice
from serving.notify.messages import ACTION_TOPIC, NOTICE_TOPIC, Notice, notice_request

AT = datetime(2024, 11, 11, 3, 0, tzinfo=UTC)
CONFIG = load_checks()


def _order(i: int, score: float, tier: str) -> OrderHealth:
    return OrderHealth(f"jd:{i}", "jd", score, tier, ("payment_callback", "inventory_lock"), AT)


def _result(escalated: list[OrderHealth]) -> SweepResult:
    return SweepResult(as_of=AT, evaluated=len(escalated), opened=(), resolved=(), escalated=tuple(escalated),
                       overall=72.5, orders=40, tiers={"red": 3}, stages={}, channels={},
                       worst=tuple(sorted(escalated, key=lambda o: o.score)))


def _alerts(**overrides: object) -> AlertSettings:
    values: dict[str, object] = {"receivers": [
        {"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t", "health": ["red"]},
        {"kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
         "health": ["yellow", "digest"]}],
        "base_url": "https://risk.example.cn", **overrides}
    return AlertSettings.model_validate(values)


def test_each_tier_goes_to_the_robots_that_asked_for_it_once_per_sweep() -> None:
    result = _result([_order(1, 45, "red"), _order(2, 35, "red"), _order(3, 65, "yellow")])
    messages = health_messages(CONFIG, result, _alerts(), HealthSettings(), digest=False)
    assert sorted((m.topic, m.destination, m.dedup_key.split(":")[1]) for m in messages) == [
        (NOTICE_TOPIC, "robot:dingtalk", "red"), (NOTICE_TOPIC, "robot:wecom", "yellow")]
    red = Notice.from_payload(next(m.payload for m in messages if m.destination == "robot:dingtalk"))
    assert "2 个订单进入红色" in red.lines[0] and "jd:2" in red.lines[1]  # the worst first
    assert "https://risk.example.cn/health/order/jd/2" in red.lines[1] and "已付款但未锁定库存" in red.lines[1]


def test_red_orders_are_paused_only_when_the_order_system_listens() -> None:
    result = _result([_order(1, 45, "red")])
    with_callback = _alerts(order_system_callback="https://erp.example.cn/cb", callback_secret="s")
    messages = health_messages(CONFIG, result, with_callback, HealthSettings(), digest=False)
    paused = [m for m in messages if m.topic == ACTION_TOPIC]
    assert [(m.payload["action"], m.dedup_key) for m in paused] == [("pause_fulfilment", "jd:1:pause_fulfilment")]
    assert not [m for m in health_messages(CONFIG, result, _alerts(), HealthSettings(), digest=False)
                if m.topic == ACTION_TOPIC]
    assert not [m for m in health_messages(CONFIG, result, with_callback, HealthSettings(pause_on_red=False),
                                           digest=False) if m.topic == ACTION_TOPIC]


def test_the_digest_names_the_top_five_and_goes_only_when_due() -> None:
    orders = [_order(i, 40 + i, "red") for i in range(8)]
    result = _result(orders)
    notice = digest_notice(CONFIG, result, base_url="https://risk.example.cn")
    listed = [line for line in notice.lines if line.startswith("- [")]
    assert len(listed) == 5 and "jd:0" in listed[0] and "低于 85" in notice.lines[0]
    digests = [m for m in health_messages(CONFIG, result, _alerts(), HealthSettings(), digest=True)
               if m.dedup_key.startswith("health-digest")]
    assert [m.destination for m in digests] == ["robot:wecom"]
    assert not [m for m in health_messages(CONFIG, result, _alerts(), HealthSettings(), digest=False)
                if m.dedup_key.startswith("health-digest")]


def test_each_robot_gets_its_own_format_within_its_limits() -> None:
    many = tier_notice(CONFIG, "red", [_order(i, 45, "red") for i in range(400)], base_url="https://x.cn", as_of=AT)
    long = Notice(many.title, many.lines * 20)
    wecom = AlertReceiver(kind="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    _, body = notice_request(wecom, long, AT)
    assert len(body["markdown"]["content"].encode()) <= 4096 and body["markdown"]["content"].endswith("…")
    ding = AlertReceiver(kind="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=t", secret="SECx")
    url, body = notice_request(ding, many, AT)
    assert "timestamp=" in url and "sign=" in url and body["markdown"]["title"] == many.title
    feishu = AlertReceiver(kind="feishu", url="https://open.feishu.cn/open-apis/bot/v2/hook/h", secret="s")
    _, body = notice_request(feishu, many, AT)
    assert body["sign"] and body["content"]["post"]["zh_cn"]["title"] == many.title


def test_two_processes_sweeping_the_same_minute_queue_one_message() -> None:
    first = _result([_order(1, 45, "red")])
    second = replace(first, as_of=AT + timedelta(seconds=41))
    keys = [{m.dedup_key for m in health_messages(CONFIG, r, _alerts(), HealthSettings(), digest=True)}
            for r in (first, second)]
    assert keys[0] == keys[1] and "health:red:2024-11-11T03:00:00+00:00" in keys[0]
    later = replace(first, as_of=AT + timedelta(minutes=1))
    again = {m.dedup_key for m in health_messages(CONFIG, later, _alerts(), HealthSettings(), digest=True)}
    assert again & keys[0] == {"health-digest:2024-11-11T03:00:00+00:00"}  # a new tier message; the digest's slot
    # is half an hour
