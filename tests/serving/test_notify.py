"""Alerts to chat robots and actions to the order system, through the outbox.

The signatures are checked against values computed independently with OpenSSL
(``openssl dgst -sha256 -hmac …``) from the platforms' published recipes, and against
those recipes' own Python samples transcribed. The end-to-end tests deliver to a real
HTTP server on this machine that checks every signature the way the platform does and
answers the way it does (HTTP 200 with an error code for a refusal).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from features.settings import Settings
from orderguard.clock import Clock
from orderguard.ingest.orderlog import OrderLog
from orderguard.outbox import Outbox
from orderguard.schema import Channel, OrderKey
from orderguard.settings import AlertReceiver, AlertSettings
from scoring.policy import Decision, Reason, RiskLevel
from scoring.records import ScoreRecord
from serving.notify.messages import (
    ALERT_TOPIC,
    ORDER_SYSTEM,
    Alert,
    OrderAction,
    alert_markdown,
    alerts_for,
    callback_request,
    callback_signature,
    dingtalk_request,
    dingtalk_sign,
    feishu_request,
    feishu_sign,
    queue_decision_alerts,
    queue_order_action,
    verify_callback,
    wecom_request,
)
from serving.notify.sender import (
    Round,
    UndeliverableError,
    build_request,
    default_client,
    deliver_due,
    deliver_outbox,
    sending,
)
from tests.factories import BASE_TIME, FixedClock, free_port

KEY = OrderKey(Channel.TMALL, "T2024111100017")
DING_SECRET = "SECc0ffee5ecret0123456789abcdef"
FEISHU_SECRET = "feishu-signing-secret"
CALLBACK_SECRET = "callback-secret"
DING_TOKEN = "ding0token0abcdef"
WECOM_KEY = "wecom-key-0123456789"
FEISHU_HOOK = "feishu-hook-0123456789"

REASONS = (Reason("DEVICE_BURST_5M", 50.0, "同一设备5分钟内下单6次", "6 orders from one device in 5 min", "rule"),
           Reason("NEW_ACCOUNT_HIGH_VALUE", 30.0, "新注册账号下高额订单", "new account, high value", "rule"),
           Reason("model:ip_orders", 12.0, "", "many orders from this IP", "model"),
           Reason("ADDRESS_SHARED", 5.0, "收货地址被多个账号使用", "shared address", "rule"))


def _record(**overrides: Any) -> ScoreRecord:
    base = ScoreRecord(order_key=KEY, event_version=3, event_time=BASE_TIME, scored_at=BASE_TIME, score=87.46,
                       risk_level=RiskLevel.CRITICAL, decision=Decision.HOLD, rules_only=False, model_version="7",
                       settings_hash="abc", feature_set_hash="def", latency_ms=0.5, reasons=REASONS)
    return replace(base, **overrides)


def _settings(port: int, **overrides: Any) -> AlertSettings:
    base = f"http://127.0.0.1:{port}"
    values: dict[str, Any] = {
        "receivers": [
            {"kind": "dingtalk", "url": f"{base}/dingtalk/robot/send?access_token={DING_TOKEN}",
             "secret": DING_SECRET},
            {"kind": "wecom", "url": f"{base}/wecom/send?key={WECOM_KEY}"},
            {"kind": "feishu", "url": f"{base}/feishu/hook/{FEISHU_HOOK}", "secret": FEISHU_SECRET}],
        "base_url": "https://risk.shop.example/",
        "order_system_callback": f"{base}/orders/callback", "callback_secret": CALLBACK_SECRET,
        "delivery": {"backoff_first": "30s", "backoff_cap": "2m", "max_attempts": 10, "timeout_s": 1.0}}
    return AlertSettings.model_validate({**values, **overrides})


# -- signing ------------------------------------------------------------------------------------------------------


def test_dingtalk_sign_follows_the_published_recipe() -> None:
    # printf '1577836800000\nthis is secret' | openssl dgst -sha256 -hmac 'this is secret' -binary | base64
    assert dingtalk_sign("this is secret", 1577836800000) == "fFV9t5lBS7KH4+5B0JjR99ab+AJkXFauQXycgTkS/tc="
    # DingTalk's Python sample (自定义机器人安全设置, 加签), transcribed
    timestamp, secret = "1731290400123", DING_SECRET
    string_to_sign = f"{timestamp}\n{secret}"
    hmac_code = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    sample = urllib.parse.quote_plus(base64.b64encode(hmac_code))
    assert urllib.parse.quote_plus(dingtalk_sign(secret, int(timestamp))) == sample


def test_dingtalk_request_puts_millisecond_timestamp_and_encoded_sign_beside_the_token() -> None:
    receiver = AlertReceiver(kind="dingtalk", url=f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}",
                             secret=DING_SECRET)
    now = datetime(2024, 11, 11, 2, 0, 0, 123456, tzinfo=UTC)
    url, body = dingtalk_request(receiver, Alert("jd:1", 90.0, "hold", ("r",), "http://x"), now)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["access_token"] == [DING_TOKEN] and query["timestamp"] == ["1731290400123"]
    assert query["sign"] == [dingtalk_sign(DING_SECRET, 1731290400123)]  # '+', '/', '=' survive the URL
    assert url.startswith("https://oapi.dingtalk.com/robot/send?") and body["msgtype"] == "markdown"
    unsigned, _ = dingtalk_request(AlertReceiver(kind="dingtalk", url=receiver.url), Alert("jd:1", 90.0, "hold", (),
                                                                                          "http://x"), now)
    assert unsigned == receiver.url


def test_feishu_sign_uses_the_string_as_key_and_signs_nothing() -> None:
    # printf '' | openssl dgst -sha256 -hmac "$(printf '1599360473\nthis is secret')" -binary | base64
    assert feishu_sign("this is secret", 1599360473) == "/eYKrXQBzTjUZJ3s6NX16VxGbTwmK7AEs8/FnvC1CSw="
    # Feishu's Python sample (自定义机器人使用指南, 签名校验), transcribed
    timestamp, secret = "1599360473", FEISHU_SECRET
    string_to_sign = f"{timestamp}\n{secret}"
    hmac_code = hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    assert feishu_sign(secret, int(timestamp)) == base64.b64encode(hmac_code).decode("utf-8")
    receiver = AlertReceiver(kind="feishu", url=f"https://open.feishu.cn/open-apis/bot/v2/hook/{FEISHU_HOOK}",
                             secret=FEISHU_SECRET)
    _, body = feishu_request(receiver, Alert("jd:1", 90.0, "hold", (), "http://x"),
                             datetime.fromtimestamp(1599360473, tz=UTC))
    assert (body["timestamp"], body["sign"], body["msg_type"]) == ("1599360473", feishu_sign(FEISHU_SECRET,
                                                                                             1599360473), "post")


def test_the_order_system_call_signs_timestamp_and_body() -> None:
    # printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'callback-secret'
    assert callback_signature(CALLBACK_SECRET, 1700000000, b'{"a":1}') == (
        "sha256=0caef4947256abab87416659717181767cfbcb71d768ad417309af229fedc1b7")
    now = datetime.fromtimestamp(1700000000, tz=UTC)
    url, headers, body = callback_request("https://oms.example/hook", CALLBACK_SECRET, {"b": "放行", "a": 1}, now)
    assert url == "https://oms.example/hook" and body == '{"a":1,"b":"放行"}'.encode()
    timestamp, signature = headers["X-Orderguard-Timestamp"], headers["X-Orderguard-Signature"]
    assert timestamp == "1700000000"

    def ok(secret: str = CALLBACK_SECRET, sent: bytes = body, at: str = timestamp, when: datetime = now) -> bool:
        return verify_callback(secret, body=sent, timestamp=at, signature=signature, now=when)

    assert ok(when=now + timedelta(minutes=4))
    assert not ok(when=now + timedelta(minutes=6))  # too old: a replay
    assert not ok(secret="other")
    assert not ok(sent=body.replace(b"1", b"2"))
    assert not ok(at="1700000001")  # the timestamp is signed too
    assert not ok(at="soon")


def test_wecom_markdown_stays_within_its_limit() -> None:
    receiver = AlertReceiver(kind="wecom", url=f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}")
    url, body = wecom_request(receiver, Alert("jd:1", 90.0, "hold", ("风" * 3000,), "http://x/desk/case/jd/1"))
    content = body["markdown"]["content"]
    assert url == receiver.url and body["msgtype"] == "markdown"
    assert len(content.encode()) <= 4096 and "http://x/desk/case/jd/1" in content


# -- what is queued -----------------------------------------------------------------------------------------------


def test_a_hold_alerts_every_robot_with_its_top_three_reasons_and_case_link() -> None:
    settings = _settings(8000)
    messages = alerts_for(_record(), settings)
    assert [(m.topic, m.destination) for m in messages] == [(ALERT_TOPIC, "robot:dingtalk"),
                                                             (ALERT_TOPIC, "robot:wecom"),
                                                             (ALERT_TOPIC, "robot:feishu")]
    payload = messages[0].payload
    assert messages[0].dedup_key == "tmall:T2024111100017:hold"
    assert payload == {"order_key": "tmall:T2024111100017", "score": 87.5, "decision": "hold",
                       "reasons": ["同一设备5分钟内下单6次", "新注册账号下高额订单", "many orders from this IP"],
                       "case_url": "https://risk.shop.example/desk/case/tmall/T2024111100017", "degraded": False}
    text = alert_markdown(Alert.from_payload(payload))
    for part in ("订单风控", "tmall:T2024111100017", "87.5", "hold", "1. 同一设备5分钟内下单6次",
                 "3. many orders from this IP", "(https://risk.shop.example/desk/case/tmall/T2024111100017)"):
        assert part in text
    assert "收货地址" not in text  # the fourth reason is left out


def test_which_decisions_alert() -> None:
    settings = _settings(8000)
    assert alerts_for(_record(decision=Decision.REVIEW, score=70.0), settings) == []
    assert alerts_for(_record(decision=Decision.APPROVE, score=5.0), settings) == []
    with_reviews = _settings(8000, review_score_at_least=70.0)
    assert len(alerts_for(_record(decision=Decision.REVIEW, score=70.0), with_reviews)) == 3
    assert alerts_for(_record(decision=Decision.REVIEW, score=69.9), with_reviews) == []
    assert alerts_for(_record(), AlertSettings()) == []  # no robots, nothing queued


def test_scoring_queues_once_and_only_for_alerts(order_log: OrderLog) -> None:
    outbox, settings = Outbox(order_log.engine), _settings(8000)
    assert queue_decision_alerts(outbox, settings, _record(decision=Decision.APPROVE), now=BASE_TIME) == 0
    assert queue_decision_alerts(outbox, settings, _record(), now=BASE_TIME) == 3
    assert queue_decision_alerts(outbox, settings, _record(event_version=4), now=BASE_TIME) == 0  # same decision
    assert outbox.pending_count() == 3


def test_reviewer_actions_go_to_the_order_system_once(order_log: OrderLog) -> None:
    outbox, settings = Outbox(order_log.engine), _settings(8000)
    args: dict[str, Any] = {"reviewer": "li.na", "note": "买家电话确认", "now": BASE_TIME}
    assert queue_order_action(outbox, settings, KEY, OrderAction.RELEASE, **args)
    assert not queue_order_action(outbox, settings, KEY, "release", **args)  # a double submit
    assert queue_order_action(outbox, settings, KEY, OrderAction.CANCEL, **{**args, "now": BASE_TIME + timedelta(1)})
    assert not queue_order_action(outbox, AlertSettings(), KEY, OrderAction.RELEASE, **args)  # no callback set
    [first, _] = outbox.due(now=BASE_TIME + timedelta(days=1))
    assert first.destination == ORDER_SYSTEM and first.payload["action"] == "release"
    assert first.payload["event_id"] == first.dedup_key and first.payload["order_id"] == "T2024111100017"


def test_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(ValidationError, match="wecom robot takes no `secret`"):
        AlertReceiver(kind="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", secret="s")
    with pytest.raises(ValidationError, match="distinct names"):
        AlertSettings(receivers=[AlertReceiver(kind="wecom", url="https://a.example/1"),
                                 AlertReceiver(kind="wecom", url="https://a.example/2")])
    AlertSettings(receivers=[AlertReceiver(kind="wecom", url="https://a.example/1"),
                             AlertReceiver(kind="wecom", url="https://a.example/2", name="night-shift")])
    with pytest.raises(ValidationError, match="callback_secret"):
        AlertSettings(order_system_callback="https://oms.example/hook")
    with pytest.raises(ValidationError, match="http:// or https://"):
        AlertReceiver(kind="dingtalk", url="oapi.dingtalk.com/robot/send")
    with pytest.raises(ValidationError, match="backoff_cap"):
        AlertSettings(delivery={"backoff_first": "10m", "backoff_cap": "1m"})


def test_robots_come_from_the_environment_and_stay_out_of_the_settings_hash(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    plain = Settings(data_dir=tmp_path).settings_hash()
    monkeypatch.setenv("ORDERGUARD_ALERTS__RECEIVERS", json.dumps(
        [{"kind": "dingtalk", "url": f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}",
          "secret": DING_SECRET}]))
    monkeypatch.setenv("ORDERGUARD_ALERTS__DELIVERY__BACKOFF_FIRST", "1m")
    settings = Settings(data_dir=tmp_path)
    [robot] = settings.alerts.receivers
    assert robot.secret is not None and robot.secret.get_secret_value() == DING_SECRET
    assert settings.alerts.delivery.backoff_first == timedelta(minutes=1)
    monkeypatch.delenv("ORDERGUARD_ALERTS__DELIVERY__BACKOFF_FIRST")
    assert Settings(data_dir=tmp_path).settings_hash() == plain  # robots' tokens are secrets, not scoring settings


def test_a_message_without_its_receiver_waits_and_a_broken_one_is_given_up(order_log: OrderLog) -> None:
    outbox, settings, clock = Outbox(order_log.engine), _settings(free_port()), FixedClock(BASE_TIME)
    queue_decision_alerts(outbox, settings, _record(), now=BASE_TIME)
    [message, *_] = outbox.due(now=BASE_TIME)
    with pytest.raises(UndeliverableError) as e:
        build_request(message, AlertSettings(), BASE_TIME)
    assert not e.value.final and "robot:dingtalk" in e.value.reason
    # The robots were taken out of the settings: their messages wait (the settings may come back).
    done = _round(outbox, AlertSettings(), clock)
    assert (done.retried, done.dead, outbox.pending_count()) == (3, 0, 3)
    clock.advance(seconds=10)  # the three wait until 30 s
    outbox.enqueue(ALERT_TOPIC, "robot:dingtalk", dedup_key="broken", payload={"order_key": "x"}, now=clock.now())
    broken = outbox.find("robot:dingtalk", "broken")
    assert broken is not None
    with pytest.raises(UndeliverableError) as e:
        build_request(broken, settings, clock.now())
    assert e.value.final
    done = _round(outbox, settings, clock)  # only the broken one is due, and no retry can fix it
    assert (done.claimed, done.dead) == (1, 1) and outbox.dead_letters()[0].dedup_key == "broken"
    assert "not an alert payload" in (outbox.dead_letters()[0].last_error or "")


# -- delivery to a real receiver ----------------------------------------------------------------------------------


@dataclass
class Receiver:
    """The three robots and the order system on one local port, checking signatures as the platforms do."""

    port: int
    now: Callable[[], datetime]
    delay_s: float = 0.0
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _closing: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._closing.wait(receiver.delay_s)
                status, answer = receiver.handle(self.path, dict(self.headers.items()), raw)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the sender gave up waiting (a timeout test) and closed the connection
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = False  # stop() waits for every handler, so none outlives its test
            block_on_close = True

        self._closing.clear()
        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._closing.set()  # a slow answer is cut short
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _fresh(self, sent: datetime) -> bool:
        return abs(self.now() - sent) <= timedelta(hours=1)

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parts.query)
        if parts.path == "/dingtalk/robot/send":  # 加签: HmacSHA256(secret, "timestamp\nsecret"), ms
            timestamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
            expected = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(),
                                                 hashlib.sha256).digest()).decode()
            if (query.get("access_token") != [DING_TOKEN] or not hmac.compare_digest(sign, expected)
                    or not self._fresh(datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC))):
                return self._refuse("dingtalk", 200, {"errcode": 310000, "errmsg": "sign not match"})
            return self._take("dingtalk", raw, {"errcode": 0, "errmsg": "ok"})
        if parts.path == "/wecom/send":
            if query.get("key") != [WECOM_KEY]:
                return self._refuse("wecom", 200, {"errcode": 93000, "errmsg": "invalid webhook url"})
            return self._take("wecom", raw, {"errcode": 0, "errmsg": "ok"})
        if parts.path == f"/feishu/hook/{FEISHU_HOOK}":  # 签名校验: HmacSHA256(key="timestamp\nsecret", ""), s
            body = json.loads(raw)
            key = f"{body.get('timestamp')}\n{FEISHU_SECRET}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if (not hmac.compare_digest(str(body.get("sign")), expected)
                    or not self._fresh(datetime.fromtimestamp(int(body["timestamp"]), tz=UTC))):
                return self._refuse("feishu", 200, {"code": 19021, "msg": "sign match fail"})
            return self._take("feishu", raw, {"code": 0, "msg": "success", "data": {}})
        if parts.path == "/orders/callback":
            lower = {k.lower(): v for k, v in headers.items()}
            if not verify_callback(CALLBACK_SECRET, body=raw, timestamp=lower.get("x-orderguard-timestamp", ""),
                                   signature=lower.get("x-orderguard-signature", ""), now=self.now()):
                return self._refuse("callback", 401, {"error": "bad signature"})
            return self._take("callback", raw, {})
        return self._refuse(path, 404, {"error": "no such hook"})

    def _take(self, kind: str, raw: bytes, answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.received.append((kind, json.loads(raw)))
        return 200, answer

    def _refuse(self, kind: str, status: int, answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.refused.append(kind)
        return status, answer


@pytest.fixture
def receiver_port() -> Iterator[int]:
    yield free_port()


def _round(outbox: Outbox, settings: AlertSettings, clock: Clock) -> Round:
    async def go() -> Round:
        async with default_client(settings.delivery) as client:
            return await deliver_due(outbox, settings, clock=clock, client=client)

    return asyncio.run(go())


def _queue_all(outbox: Outbox, settings: AlertSettings, now: datetime) -> None:
    assert queue_decision_alerts(outbox, settings, _record(), now=now) == 3
    assert queue_order_action(outbox, settings, KEY, OrderAction.KEEP_HOLD, reviewer="li.na", note="", now=now)


def test_messages_wait_for_a_receiver_that_is_down_and_arrive_signed_when_it_is_back(
        order_log: OrderLog, receiver_port: int) -> None:
    clock = FixedClock(BASE_TIME)
    settings = _settings(receiver_port)
    outbox = Outbox(order_log.engine)
    _queue_all(outbox, settings, clock.now())

    # The receiver is down: every destination fails once per round, and waits longer each time.
    for wait in (30, 60, 120, 120):
        done = _round(outbox, settings, clock)
        assert (done.claimed, done.delivered, done.retried) == (4, 0, 4)
        for message in outbox.due(now=clock.now() + timedelta(days=1)):
            assert message.next_attempt_at == clock.now() + timedelta(seconds=wait)
            assert message.last_error is not None and "Connect" in message.last_error
            for secret in (DING_TOKEN, WECOM_KEY, FEISHU_HOOK, DING_SECRET):
                assert secret not in message.last_error
        assert _round(outbox, settings, clock).claimed == 0  # nothing due before its time
        clock.advance(seconds=wait)
    assert outbox.pending_count() == 4

    # A restart: the same database, a new outbox; nothing was lost.
    url = order_log.engine.url.render_as_string(hide_password=False)
    order_log.close()
    receiver = Receiver(receiver_port, now=clock.now)
    receiver.start()
    try:
        with OrderLog.open(url) as reopened:
            again = Outbox(reopened.engine)
            assert again.pending_count() == 4
            done = _round(again, settings, clock)
            assert (done.delivered, again.pending_count(), receiver.refused) == (4, 0, [])
            assert _round(again, settings, clock).claimed == 0  # delivered once
            delivered = again.find("robot:dingtalk", "tmall:T2024111100017:hold")
            assert delivered is not None and (delivered.attempts, delivered.delivered_at) == (5, clock.now())
    finally:
        receiver.stop()
    got = dict(receiver.received)
    assert sorted(got) == ["callback", "dingtalk", "feishu", "wecom"]
    text = got["dingtalk"]["markdown"]["text"]
    assert "tmall:T2024111100017" in text and "87.5" in text and "同一设备5分钟内下单6次" in text
    assert "https://risk.shop.example/desk/case/tmall/T2024111100017" in text
    assert "新注册账号下高额订单" in got["wecom"]["markdown"]["content"]
    assert got["feishu"]["content"]["post"]["zh_cn"]["content"][-1] == [
        {"tag": "a", "text": "打开案件", "href": "https://risk.shop.example/desk/case/tmall/T2024111100017"}]
    assert got["callback"]["action"] == "keep_hold" and got["callback"]["order_key"] == "tmall:T2024111100017"


def test_a_refused_signature_is_a_failed_delivery(order_log: OrderLog, receiver_port: int) -> None:
    clock = FixedClock(BASE_TIME)
    settings = _settings(receiver_port, receivers=[
        {"kind": "dingtalk", "url": f"http://127.0.0.1:{receiver_port}/dingtalk/robot/send?access_token={DING_TOKEN}",
         "secret": "SECwrong-secret"}])
    outbox = Outbox(order_log.engine)
    queue_decision_alerts(outbox, settings, _record(), now=clock.now())
    receiver = Receiver(receiver_port, now=clock.now)
    receiver.start()
    try:
        done = _round(outbox, settings, clock)
    finally:
        receiver.stop()
    assert (done.delivered, done.retried, receiver.refused) == (0, 1, ["dingtalk"])
    [message] = outbox.due(now=clock.now() + timedelta(minutes=1))
    assert message.last_error == "dingtalk refused the message: code 310000: sign not match"


def test_a_slow_receiver_times_out_and_only_delays_its_own_messages(order_log: OrderLog, receiver_port: int) -> None:
    clock = FixedClock(BASE_TIME)
    settings = _settings(receiver_port, delivery={"timeout_s": 0.2})
    outbox = Outbox(order_log.engine)
    receiver = Receiver(receiver_port, now=clock.now, delay_s=2.0)
    receiver.start()
    try:
        started = time.monotonic()
        assert queue_decision_alerts(outbox, settings, _record(), now=clock.now()) == 3  # no network on the way
        queued = time.monotonic() - started
        done = _round(outbox, settings, clock)
        sent = time.monotonic() - started
    finally:
        receiver.stop()
    assert queued < 1.0 and sent < 1.9  # each robot gave up after its timeout, all three side by side
    assert (done.delivered, done.retried) == (0, 3) and outbox.pending_count() == 3


def test_the_sender_delivers_while_the_service_runs_and_stops_with_it(order_log: OrderLog, receiver_port: int) -> None:
    class Now:
        def now(self) -> datetime:
            return datetime.now(UTC)

    settings = _settings(receiver_port, delivery={"poll_s": 0.05, "timeout_s": 1.0})
    outbox = Outbox(order_log.engine)
    receiver = Receiver(receiver_port, now=Now().now)
    receiver.start()

    async def go() -> None:
        async with sending(outbox, settings, clock=Now()):  # as the service's lifespan runs it
            await asyncio.sleep(0.1)  # the sender is polling an empty outbox
            _queue_all(outbox, settings, Now().now())
            deadline = time.monotonic() + 10
            while len(receiver.received) < 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            tasks = {t.get_name() for t in asyncio.all_tasks()}
            assert "orderguard-outbox" in tasks
        assert "orderguard-outbox" not in {t.get_name() for t in asyncio.all_tasks()}

    try:
        asyncio.run(go())
    finally:
        receiver.stop()
    assert sorted(kind for kind, _ in receiver.received) == ["callback", "dingtalk", "feishu", "wecom"]
    assert outbox.pending_count() == 0


def test_a_stopping_sender_sends_nothing_more_and_hands_its_messages_back(order_log: OrderLog) -> None:
    clock = FixedClock(BASE_TIME)
    settings = _settings(free_port())
    outbox = Outbox(order_log.engine)
    _queue_all(outbox, settings, clock.now())

    async def go() -> Round:
        stop = asyncio.Event()
        stop.set()
        async with default_client(settings.delivery) as client:
            return await deliver_due(outbox, settings, clock=clock, client=client, stop=stop)

    done = asyncio.run(go())
    assert (done.claimed, done.postponed, done.retried) == (4, 4, 0)
    assert len(outbox.due(now=clock.now())) == 4  # due again at once, for whoever sends next

    async def stopped() -> None:  # a stop set before the first round: the loop ends at once
        stop = asyncio.Event()
        stop.set()
        await asyncio.wait_for(deliver_outbox(outbox, settings, clock=clock, stop=stop), timeout=5)

    asyncio.run(stopped())
    assert outbox.pending_count() == 4
