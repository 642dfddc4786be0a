"""What orderguard tells other systems, and how each receiver wants it signed: held orders to the review team's
chat robots (DingTalk, WeCom, Feishu), reviewers' actions to the shop's order system.

Everything here is pure: a score record or an action becomes outbox messages
(:func:`alerts_for`, :func:`action_message`), and a queued message becomes the HTTP
request its receiver expects (:func:`dingtalk_request`, :func:`wecom_request`,
:func:`feishu_request`, :func:`callback_request`). Requests are built and signed when
they are *sent* (``serving.notify.sender``), not when queued: DingTalk and Feishu refuse
a timestamp more than an hour old, and a message may wait longer than that for a
receiver to come back. Secrets therefore never enter the outbox table.

The score path calls :func:`queue_decision_alerts`: one ``INSERT`` for a held order, no
database work at all for the others, and never a network call.

Signing schemes, as the platforms publish them:

* **DingTalk custom robot, 加签** (open.dingtalk.com, 自定义机器人安全设置): ``timestamp``
  in milliseconds; ``sign = urlEncode(base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}")))``;
  both as query parameters of the webhook URL; refused when the timestamp is more than an
  hour from DingTalk's clock. Success is ``{"errcode": 0}`` (failures also come with HTTP 200).
* **WeCom group robot** (developer.work.weixin.qq.com, 群机器人配置说明): no signature, the
  ``key`` in the webhook URL is the credential; ``{"msgtype": "markdown", "markdown":
  {"content": …}}``, content at most 4096 bytes; success is ``{"errcode": 0}``.
* **Feishu custom robot, 签名校验** (open.feishu.cn, 自定义机器人使用指南): ``timestamp`` in
  seconds; ``sign = base64(HmacSHA256(key=f"{timestamp}\\n{secret}", msg=b""))`` (the
  string is the *key* and the message is empty, unlike DingTalk); both in the JSON body;
  success is ``{"code": 0}`` (older answers: ``{"StatusCode": 0}``).
* **The order system** (ours): the JSON body, with headers ``X-Orderguard-Timestamp``
  (Unix seconds) and ``X-Orderguard-Signature: sha256=<hex>``, the hex HMAC-SHA256 under
  ``callback_secret`` of ``f"{timestamp}."`` followed by the body bytes. The timestamp is
  signed with the body so a captured call cannot be replayed later under a fresh one;
  :func:`verify_callback` is the reference check for the receiving side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from orderguard.errors import InvalidInputError
from orderguard.ingest.channels.signing import WebhookRejected
from orderguard.ingest.channels.site import SIGNING as ORDERGUARD_SIGNING
from orderguard.outbox import Outbox, Outgoing
from orderguard.schema import OrderKey
from orderguard.settings import AlertReceiver, AlertSettings
from scoring.policy import Decision
from scoring.records import ScoreRecord

#: Outbox topics and the order system's destination.
ALERT_TOPIC = "alert"
ACTION_TOPIC = "order_action"
NOTICE_TOPIC = "notice"  # a titled list of lines for the robots (order health)
ORDER_SYSTEM = "order-system"

#: Reasons an alert names (the strongest first), and the longest one shown (characters).
TOP_REASONS = 3
REASON_MAX = 120
#: WeCom's limit on a markdown message's content (bytes, UTF-8).
WECOM_MARKDOWN_MAX = 4096

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECISION_ZH = {Decision.HOLD.value: "拦截（暂停发货）", Decision.REVIEW.value: "人工审核"}
_HEADLINE_ZH = {Decision.HOLD.value: "订单已拦截", Decision.REVIEW.value: "订单待审核"}


def robot_destination(receiver: AlertReceiver) -> str:
    """The outbox destination of a robot: ``robot:<name>`` (its name, never its URL, which holds its token).

    >>> robot_destination(AlertReceiver(kind="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"))
    'robot:wecom'
    """
    return f"robot:{receiver.label}"


def case_url(base_url: str, key: OrderKey) -> str:
    """The review desk's page of one order.

    >>> from orderguard.schema import Channel
    >>> case_url("https://risk.example.cn/", OrderKey(Channel.JD, "A/1 2"))
    'https://risk.example.cn/desk/case/jd/A%2F1%202'
    """
    return f"{base_url.rstrip('/')}/desk/case/{key.channel.value}/{quote(key.channel_order_id, safe='')}"


def health_url(base_url: str, key: OrderKey) -> str:
    """The order-health timeline page of one order (``base_url`` empty: the path alone).

    >>> from orderguard.schema import Channel
    >>> health_url("", OrderKey(Channel.SITE, "A/1")), health_url("https://risk.example.cn/", OrderKey(Channel.JD, "9"))
    ('/health/order/site/A%2F1', 'https://risk.example.cn/health/order/jd/9')
    """
    return f"{base_url.rstrip('/')}/health/order/{key.channel.value}/{quote(key.channel_order_id, safe='')}"


# -- alerts -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    """What an alert says, as queued (the payload of an ``alert`` message)."""

    order_key: str
    score: float
    decision: str
    reasons: tuple[str, ...]
    case_url: str
    degraded: bool = False

    def payload(self) -> dict[str, Any]:
        """The JSON the outbox keeps."""
        return {"order_key": self.order_key, "score": self.score, "decision": self.decision,
                "reasons": list(self.reasons), "case_url": self.case_url, "degraded": self.degraded}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Alert:
        """The alert a queued payload holds (``KeyError`` / ``ValueError`` when it is not one)."""
        reasons = payload["reasons"]
        if not isinstance(reasons, list):
            raise ValueError("reasons must be a list")
        return cls(order_key=str(payload["order_key"]), score=float(payload["score"]),
                   decision=str(payload["decision"]), reasons=tuple(str(r) for r in reasons),
                   case_url=str(payload["case_url"]), degraded=bool(payload.get("degraded", False)))


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


def alert_of(record: ScoreRecord, *, base_url: str) -> Alert:
    """The alert of one decision: its top reasons in Chinese (English, then the code, where a reason has none)."""
    return Alert(order_key=str(record.order_key), score=round(record.score, 1), decision=record.decision.value,
                 reasons=top_reasons([r.text_zh or r.text_en or r.code for r in record.reasons]),
                 case_url=case_url(base_url, record.order_key), degraded=record.degraded)


def alerts_wanted(record: ScoreRecord, settings: AlertSettings) -> bool:
    """Whether a decision is worth a chat message: every hold; a review at or above ``review_score_at_least``."""
    if not settings.receivers:
        return False
    if record.decision is Decision.HOLD:
        return True
    threshold = settings.review_score_at_least
    return record.decision is Decision.REVIEW and threshold is not None and record.score >= threshold


def alerts_for(record: ScoreRecord, settings: AlertSettings) -> list[Outgoing]:
    """One outbox message per robot for a decision worth one (none otherwise).

    The dedup key is the order and the decision: a retried or replayed score, or a later
    version of the order with the same decision, does not alert the group again; a
    review that becomes a hold does.
    """
    if not alerts_wanted(record, settings):
        return []
    payload = alert_of(record, base_url=settings.base_url).payload()
    dedup = f"{record.order_key}:{record.decision.value}"
    return [Outgoing(ALERT_TOPIC, robot_destination(r), dedup, payload) for r in settings.receivers]


def queue_decision_alerts(outbox: Outbox, settings: AlertSettings, record: ScoreRecord, *, now: datetime) -> int:
    """Queue the alerts of one stored decision; how many were new.

    For the score path: no database work unless the decision alerts (a hold), then one
    ``INSERT``; never a network call, so a robot that is down or slow cannot slow scoring.
    """
    messages = alerts_for(record, settings)
    return outbox.enqueue_many(messages, now=now) if messages else 0


def alert_title(alert: Alert) -> str:
    """The headline; it starts with ``订单风控``, so a robot secured by keyword only needs that keyword.

    >>> alert_title(Alert("jd:1", 91.0, "hold", (), "http://x/desk/case/jd/1"))
    '订单风控：订单已拦截 jd:1'
    """
    return f"订单风控：{_HEADLINE_ZH.get(alert.decision, alert.decision)} {alert.order_key}"


def alert_markdown(alert: Alert, *, newline: str = "\n") -> str:
    """The alert in the markdown both DingTalk and WeCom render (headings, bold, links, quotes).

    DingTalk starts a new line only at a blank one: its requests join with ``"\\n\\n"``.
    """
    lines = [f"### {alert_title(alert)}",
             f"**订单**：{alert.order_key}",
             f"**风险分**：{alert.score:.1f}",
             f"**决定**：{alert.decision}（{_DECISION_ZH.get(alert.decision, alert.decision)}）",
             "**主要原因**：" + ("" if alert.reasons else "无")]
    lines += [f"{i}. {reason}" for i, reason in enumerate(alert.reasons, start=1)]
    if alert.degraded:
        lines.append("> 注意：评分时特征库不可用，仅按规则评分")
    lines.append(f"[打开案件]({alert.case_url})")
    return newline.join(lines)


# -- signing ------------------------------------------------------------------------------------------------------


def epoch_ms(now: datetime) -> int:
    """Milliseconds since the Unix epoch, exactly (no float rounding).

    >>> epoch_ms(datetime(2024, 11, 11, tzinfo=UTC))
    1731283200000
    """
    return (now - _EPOCH) // timedelta(milliseconds=1)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign`` before URL encoding: base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}"))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's ``sign``: base64(HmacSHA256(key=f"{timestamp}\\n{secret}", msg=b"")) (the string is the key)."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _with_query(url: str, extra: Mapping[str, str]) -> str:
    """``url`` with parameters added (replacing ones of the same name), each value form-encoded (``+`` → %2B)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in extra]
    return urlunsplit(parts._replace(query=urlencode([*query, *extra.items()])))


def dingtalk_request(receiver: AlertReceiver, alert: Alert, now: datetime) -> tuple[str, dict[str, Any]]:
    """URL and JSON body of a DingTalk custom robot's markdown message, signed (加签) when it has a secret."""
    body = {"msgtype": "markdown", "markdown": {"title": alert_title(alert),
                                                "text": alert_markdown(alert, newline="\n\n")}}
    if receiver.secret is None:
        return receiver.url, body
    timestamp = epoch_ms(now)
    sign = dingtalk_sign(receiver.secret.get_secret_value(), timestamp)
    return _with_query(receiver.url, {"timestamp": str(timestamp), "sign": sign}), body


def wecom_request(receiver: AlertReceiver, alert: Alert) -> tuple[str, dict[str, Any]]:
    """URL and JSON body of a WeCom group robot's markdown message (unsigned: the URL's key authenticates)."""
    content = alert_markdown(alert)
    if len(content.encode()) > WECOM_MARKDOWN_MAX:  # only absurdly long reasons get here: drop them, keep the link
        content = alert_markdown(Alert(alert.order_key, alert.score, alert.decision, (), alert.case_url,
                                       alert.degraded))
    return receiver.url, {"msgtype": "markdown", "markdown": {"content": content}}


def feishu_request(receiver: AlertReceiver, alert: Alert, now: datetime) -> tuple[str, dict[str, Any]]:
    """URL and JSON body of a Feishu custom robot's rich-text (``post``) message, signed when it has a secret."""
    rows: list[list[dict[str, str]]] = [
        [{"tag": "text", "text": f"订单：{alert.order_key}"}],
        [{"tag": "text", "text": f"风险分：{alert.score:.1f}"}],
        [{"tag": "text", "text": f"决定：{alert.decision}（{_DECISION_ZH.get(alert.decision, alert.decision)}）"}],
        [{"tag": "text", "text": "主要原因：" + ("" if alert.reasons else "无")}],
        *([{"tag": "text", "text": f"{i}. {reason}"}] for i, reason in enumerate(alert.reasons, start=1)),
    ]
    if alert.degraded:
        rows.append([{"tag": "text", "text": "注意：评分时特征库不可用，仅按规则评分"}])
    rows.append([{"tag": "a", "text": "打开案件", "href": alert.case_url}])
    body: dict[str, Any] = {"msg_type": "post",
                            "content": {"post": {"zh_cn": {"title": alert_title(alert), "content": rows}}}}
    if receiver.secret is not None:
        timestamp = (now - _EPOCH) // timedelta(seconds=1)
        body = {"timestamp": str(timestamp), "sign": feishu_sign(receiver.secret.get_secret_value(), timestamp),
                **body}
    return receiver.url, body


# -- notices ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notice:
    """A message that is a headline and lines of markdown (the order-health monitor's), as queued."""

    title: str
    lines: tuple[str, ...]

    def payload(self) -> dict[str, Any]:
        """The JSON the outbox keeps."""
        return {"title": self.title, "lines": list(self.lines)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Notice:
        """The notice a queued payload holds (``KeyError`` / ``ValueError`` when it is not one)."""
        lines = payload["lines"]
        if not isinstance(lines, list):
            raise ValueError("lines must be a list")
        return cls(title=str(payload["title"]), lines=tuple(str(x) for x in lines))


def notice_request(receiver: AlertReceiver, notice: Notice, now: datetime) -> tuple[str, dict[str, Any]]:
    """URL and JSON body of a notice for one robot, in its own message format (signed when it has a secret)."""
    if receiver.kind == "dingtalk":
        body: dict[str, Any] = {"msgtype": "markdown", "markdown": {
            "title": notice.title, "text": "\n\n".join([f"### {notice.title}", *notice.lines])}}
        if receiver.secret is None:
            return receiver.url, body
        timestamp = epoch_ms(now)
        sign = dingtalk_sign(receiver.secret.get_secret_value(), timestamp)
        return _with_query(receiver.url, {"timestamp": str(timestamp), "sign": sign}), body
    if receiver.kind == "wecom":
        lines = list(notice.lines)
        content = "\n".join([f"### {notice.title}", *lines])
        while len(content.encode()) > WECOM_MARKDOWN_MAX and lines:
            lines.pop()
            content = "\n".join([f"### {notice.title}", *lines, "…"])
        return receiver.url, {"msgtype": "markdown", "markdown": {"content": content}}
    rows = [[{"tag": "text", "text": line}] for line in notice.lines]
    feishu: dict[str, Any] = {"msg_type": "post", "content": {"post": {"zh_cn": {"title": notice.title,
                                                                                 "content": rows}}}}
    if receiver.secret is not None:
        timestamp = int(now.timestamp())
        feishu = {"timestamp": str(timestamp), "sign": feishu_sign(receiver.secret.get_secret_value(), timestamp),
                  **feishu}
    return receiver.url, feishu


# -- the order system ---------------------------------------------------------------------------------------------


class OrderAction(StrEnum):
    """What a reviewer decided the order system should do with a held order."""

    RELEASE = "release"  # ship it
    CANCEL = "cancel"  # cancel it (and refund)
    KEEP_HOLD = "keep_hold"  # keep it held, e.g. while the buyer is called
    PAUSE_FULFILMENT = "pause_fulfilment"  # stop shipping it: the order-health monitor found it red


def callback_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Orderguard-Signature`` value: ``sha256=`` + hex HMAC-SHA256(secret, f"{timestamp}." + body).

    orderguard signs its calls exactly as it asks a shop's own site to sign pushes to it:
    one scheme, ``orderguard.ingest.channels.site.SIGNING``.

    >>> callback_signature("s", 1, b"{}")[:7]
    'sha256='
    """
    signed = ORDERGUARD_SIGNING.sign(secret=secret, body=body, timestamp=datetime.fromtimestamp(timestamp, UTC))
    return signed.headers[ORDERGUARD_SIGNING.signature.name]


def verify_callback(secret: str, *, body: bytes, timestamp: str, signature: str, now: datetime,
                    tolerance: timedelta = timedelta(minutes=5)) -> bool:
    """The order system's check of a call: the signature matches and the timestamp is within ``tolerance``."""
    headers = {ORDERGUARD_SIGNING.signature.name: signature, ORDERGUARD_SIGNING.timestamp.name: timestamp}
    try:
        ORDERGUARD_SIGNING.verify(secret=secret, headers=headers, params={}, body=body, now=now, tolerance=tolerance)
    except WebhookRejected:
        return False
    return True


def callback_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes POSTed (and signed): compact JSON, keys sorted, UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def callback_request(url: str, secret: str, payload: Mapping[str, Any], now: datetime,
                     ) -> tuple[str, dict[str, str], bytes]:
    """URL, headers and body of one call to the order system."""
    body = callback_body(payload)
    signed = ORDERGUARD_SIGNING.sign(secret=secret, body=body, timestamp=now)
    return url, {"Content-Type": "application/json; charset=utf-8", **signed.headers}, body


def action_message(key: OrderKey, action: OrderAction | str, *, reviewer: str, note: str,
                   now: datetime, once: bool = False) -> Outgoing:
    """The outbox message of one reviewer action; ``event_id`` (also its dedup key) lets the order system drop a
    repeat (delivery is at least once). ``once``: the key is the order and the action alone, so the action is
    sent at most once per order whoever asks and whenever (the order-health monitor's pause)."""
    try:
        what = OrderAction(action)
    except ValueError as e:
        raise InvalidInputError.must("action", f"one of {', '.join(a.value for a in OrderAction)}", action) from e
    if now.tzinfo is None:
        raise InvalidInputError.must("now", "a tz-aware datetime", now)
    acted_at = now.astimezone(UTC).isoformat()
    event_id = f"{key}:{what.value}" if once else f"{key}:{what.value}:{acted_at}:{reviewer}"
    payload = {"event_id": event_id, "type": ACTION_TOPIC, "order_key": str(key), "channel": key.channel.value,
               "order_id": key.channel_order_id, "action": what.value, "reviewer": reviewer, "note": note,
               "acted_at": acted_at}
    return Outgoing(ACTION_TOPIC, ORDER_SYSTEM, event_id, payload)


def queue_order_action(outbox: Outbox, settings: AlertSettings, key: OrderKey, action: OrderAction | str, *,
                       reviewer: str, note: str, now: datetime) -> bool:
    """Queue a reviewer's action for the order system; ``False`` when no ``order_system_callback`` is set (nothing
    is queued) or the same action was queued already."""
    if settings.order_system_callback is None:
        return False
    return outbox.enqueue_many([action_message(key, action, reviewer=reviewer, note=note, now=now)], now=now) == 1


def receivers_by_destination(settings: AlertSettings) -> dict[str, AlertReceiver]:
    """Each configured robot by its outbox destination."""
    return {robot_destination(r): r for r in settings.receivers}


def top_reasons(texts: Sequence[str]) -> tuple[str, ...]:
    """The first :data:`TOP_REASONS` texts, each clipped to :data:`REASON_MAX` characters.

    >>> top_reasons(["a", "b", "c", "d"])
    ('a', 'b', 'c')
    """
    return tuple(_clip(t, REASON_MAX) for t in texts[:TOP_REASONS])
