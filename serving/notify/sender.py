"""The outbox sender: delivers queued messages to the chat robots and the order system, with retries.

One asyncio task per service process (:func:`deliver_outbox`, run by the app's lifespan
through :func:`sending`). Each round claims the due messages (``orderguard.outbox``: leased, so two
processes never send one message at the same time), groups them by destination and
sends each destination's messages in queue order, destinations side by side: a robot
that is slow or down delays its own messages only, and scoring, which only queues,
not at all. When a destination fails, its other messages of the round are handed back
unsent, due with the failed one: a dead robot costs one timeout per backoff step, not
one per message.

Database calls run in threads (``asyncio.to_thread``), never on the event loop that
serves requests. A round that fails (the database is down, a bug) is logged and the
loop goes on: the sender never ends but by ``stop`` or cancellation. Robot URLs carry
their tokens, so logs and stored errors name a destination (``robot:<name>``), never a
URL, and every error text is scrubbed of the receiver's URL and secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import SecretStr

from orderguard.clock import Clock
from orderguard.errors import ServiceUnavailableError
from orderguard.outbox import Backoff, Message, Outbox
from orderguard.settings import AlertSettings, OutboxSettings
from serving.notify.messages import (
    ACTION_TOPIC,
    ALERT_TOPIC,
    NOTICE_TOPIC,
    ORDER_SYSTEM,
    Alert,
    Notice,
    callback_request,
    dingtalk_request,
    feishu_request,
    notice_request,
    receivers_by_destination,
    wecom_request,
)

logger = logging.getLogger("orderguard.outbox")

#: The part of a receiver's answer kept in an error (characters).
_SNIPPET = 200
#: Shortest text scrubbed from errors as a secret, and shortest URL part taken for a token (shorter ones would
#: blank ordinary words such as a path's ``robot``).
_SECRET_MIN = 4
_TOKEN_MIN = 12

JSON_UTF8 = "application/json; charset=utf-8"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One delivery, ready to POST; ``secrets`` are texts that must never reach a log line or ``last_error``."""

    kind: str  # dingtalk | wecom | feishu | callback
    url: str
    headers: Mapping[str, str]
    body: bytes
    secrets: tuple[str, ...] = ()


class UndeliverableError(Exception):
    """No request can be built for a message: its receiver is not configured (``final=False``: the settings may
    come back) or its payload is not what its topic needs (``final=True``: retrying cannot help)."""

    def __init__(self, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _secrets_of(url: str, secret: SecretStr | None) -> tuple[str, ...]:
    """What must not be shown of a receiver: its signing secret, its URL, and the parts of the URL robots keep their
    tokens in (query values: DingTalk ``access_token``, WeCom ``key``; the last path segment: Feishu's hook id)."""
    parts = urlsplit(url)
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    found = [url, parts.query, *(v for _, v in parse_qsl(parts.query) if len(v) >= _TOKEN_MIN),
             last if len(last) >= _TOKEN_MIN else "", secret.get_secret_value() if secret is not None else ""]
    return tuple(sorted({s for s in found if len(s) >= _SECRET_MIN}, key=len, reverse=True))


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***``.

    >>> scrub("GET https://x/send?key=abcdef123 failed", ["https://x/send?key=abcdef123", "abcdef123"])
    'GET *** failed'
    """
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def build_request(message: Message, settings: AlertSettings, now: datetime) -> HttpRequest:
    """The signed HTTP request of a queued message, signed at ``now``.

    Raises:
        UndeliverableError: see its ``final``.
    """
    if message.topic in (ALERT_TOPIC, NOTICE_TOPIC):
        receiver = receivers_by_destination(settings).get(message.destination)
        if receiver is None:
            raise UndeliverableError(f"no robot {message.destination!r} in alerts.receivers", final=False)
        try:
            if message.topic == NOTICE_TOPIC:
                url, body = notice_request(receiver, Notice.from_payload(message.payload), now)
            else:
                alert = Alert.from_payload(message.payload)
                if receiver.kind == "dingtalk":
                    url, body = dingtalk_request(receiver, alert, now)
                elif receiver.kind == "wecom":
                    url, body = wecom_request(receiver, alert)
                else:
                    url, body = feishu_request(receiver, alert, now)
        except (KeyError, TypeError, ValueError) as e:
            raise UndeliverableError(f"not an {message.topic} payload: {e!r}", final=True) from e
        return HttpRequest(receiver.kind, url, {"Content-Type": JSON_UTF8}, _json(body),
                           _secrets_of(receiver.url, receiver.secret))
    if message.topic == ACTION_TOPIC and message.destination == ORDER_SYSTEM:
        target, secret = settings.order_system_callback, settings.callback_secret
        if target is None or secret is None:
            raise UndeliverableError("alerts.order_system_callback is not set", final=False)
        url, headers, raw = callback_request(target, secret.get_secret_value(), message.payload, now)
        return HttpRequest("callback", url, headers, raw, _secrets_of(target, secret))
    raise UndeliverableError(f"nothing sends topic {message.topic!r} to {message.destination!r}", final=True)


def refusal(kind: str, response: httpx.Response) -> str | None:
    """Why the receiver did not take the message, or ``None`` when it did.

    The robots answer HTTP 200 to refusals too (a bad signature, a rate limit): only their
    code says so (``errcode`` for DingTalk and WeCom, ``code`` / ``StatusCode`` for Feishu).
    The order system's 2xx is its acceptance.
    """
    snippet = " ".join(response.text[:_SNIPPET].split())
    if not response.is_success:
        return f"HTTP {response.status_code}: {snippet}"
    if kind == "callback":
        return None
    try:
        answer = response.json()
    except ValueError:
        return f"HTTP {response.status_code} without a JSON answer: {snippet}"
    if not isinstance(answer, dict):
        return f"unexpected answer: {snippet}"
    code = answer.get("errcode") if kind in ("dingtalk", "wecom") else answer.get("code", answer.get("StatusCode"))
    if code == 0:
        return None
    text = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or snippet
    return f"{kind} refused the message: code {code}: {text}"


def backoff_of(delivery: OutboxSettings) -> Backoff:
    """The retry schedule of the settings."""
    return Backoff(first=delivery.backoff_first, cap=delivery.backoff_cap, max_attempts=delivery.max_attempts)


def lease_of(delivery: OutboxSettings) -> timedelta:
    """How long a round holds its messages: longer than sending a whole batch to one receiver can take."""
    return timedelta(seconds=2 * delivery.timeout_s * delivery.batch + 30)


@dataclass(frozen=True, slots=True)
class Round:
    """What one round of :func:`deliver_due` did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0  # failed, due again later
    dead: int = 0  # failed for the last time: dead letters
    postponed: int = 0  # handed back unsent after their destination failed

    def __add__(self, other: Round) -> Round:
        return Round(self.claimed + other.claimed, self.delivered + other.delivered, self.retried + other.retried,
                     self.dead + other.dead, self.postponed + other.postponed)


async def _attempt(message: Message, settings: AlertSettings, *, clock: Clock,
                   client: httpx.AsyncClient) -> tuple[str | None, bool]:
    """Send one message: ``(None, _)`` when delivered, else ``(why, final)``."""
    try:
        request = build_request(message, settings, clock.now())
    except UndeliverableError as e:
        return e.reason, e.final
    limit = 2 * settings.delivery.timeout_s  # httpx's timeout is per phase; this bounds the whole call
    try:
        response = await asyncio.wait_for(client.post(request.url, content=request.body,
                                                      headers=dict(request.headers)), timeout=limit)
    except TimeoutError:
        return f"no answer within {limit:g} s", False
    except httpx.HTTPError as e:
        return scrub(f"{type(e).__name__}: {e}".rstrip(": "), request.secrets), False
    refused = refusal(request.kind, response)
    return (None if refused is None else scrub(refused, request.secrets)), False


async def _deliver_to(outbox: Outbox, settings: AlertSettings, messages: Sequence[Message], *, clock: Clock,
                      client: httpx.AsyncClient, stop: asyncio.Event | None) -> Round:
    """One destination's messages, in order, until one fails (the rest are postponed with it) or ``stop`` is set
    (the rest are handed back, due at once, for the next sender)."""
    backoff = backoff_of(settings.delivery)
    delivered = retried = dead = postponed = 0
    for i, message in enumerate(messages):
        if stop is not None and stop.is_set():
            postponed = await asyncio.to_thread(outbox.postpone, [m.id for m in messages[i:]], until=clock.now())
            break
        error, final = await _attempt(message, settings, clock=clock, client=client)
        if error is None:
            await asyncio.to_thread(outbox.delivered, message.id, now=clock.now())
            delivered += 1
            continue
        stored = await asyncio.to_thread(outbox.failed_attempt, message.id, now=clock.now(), error=error,
                                         backoff=backoff, final=final)
        if stored is None:
            continue
        if stored.failed_at is not None:
            dead += 1
            logger.error("outbox message %d to %s is a dead letter after %d attempts: %s", message.id,
                         message.destination, stored.attempts, stored.last_error)
        else:
            retried += 1
            logger.warning("outbox message %d to %s failed (attempt %d), next at %s: %s", message.id,
                           message.destination, stored.attempts, stored.next_attempt_at.isoformat(),
                           stored.last_error)
        rest = [m.id for m in messages[i + 1:]]
        if rest and not final:
            postponed = await asyncio.to_thread(outbox.postpone, rest, until=stored.next_attempt_at)
            break
    return Round(len(messages), delivered, retried, dead, postponed)


async def deliver_due(outbox: Outbox, settings: AlertSettings, *, clock: Clock, client: httpx.AsyncClient,
                      stop: asyncio.Event | None = None) -> Round:
    """One round: claim what is due at ``clock.now()`` and try to deliver it (see the module); once ``stop`` is
    set, no further message is sent."""
    delivery = settings.delivery
    claimed = await asyncio.to_thread(outbox.claim, now=clock.now(), limit=delivery.batch, lease=lease_of(delivery))
    groups: dict[str, list[Message]] = {}
    for message in claimed:
        groups.setdefault(message.destination, []).append(message)
    results = await asyncio.gather(*(_deliver_to(outbox, settings, group, clock=clock, client=client, stop=stop)
                                     for group in groups.values()), return_exceptions=True)
    total = Round()
    for destination, result in zip(groups, results, strict=True):
        if isinstance(result, Round):
            total += result
        elif isinstance(result, Exception):  # its messages stay leased: they come back when the lease ends
            logger.error("outbox delivery to %s stopped: %s", destination,
                         result.message if isinstance(result, ServiceUnavailableError) else repr(result))
            total += Round(claimed=len(groups[destination]))
        else:
            raise result
    return total


def default_client(delivery: OutboxSettings) -> httpx.AsyncClient:
    """The HTTP client of the sender: the settings' timeout, no redirects (a webhook that moves is a failure to
    see, not to follow with a signed request)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(delivery.timeout_s), follow_redirects=False)


async def _rest(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def deliver_outbox(outbox: Outbox, settings: AlertSettings, *, clock: Clock,
                         http_client_factory: Callable[[], httpx.AsyncClient] | None = None,
                         stop: asyncio.Event | None = None) -> None:
    """Deliver due messages every ``delivery.poll_s`` until ``stop`` is set (or the task is cancelled).

    A full batch is followed at once by the next round; a failing round is logged and
    retried at the next poll. A message being sent when the task is cancelled keeps its
    lease and is sent again after it (delivery is at least once).
    """
    delivery = settings.delivery
    async with (http_client_factory or (lambda: default_client(delivery)))() as client:
        while stop is None or not stop.is_set():
            busy = False
            try:
                done = await deliver_due(outbox, settings, clock=clock, client=client, stop=stop)
                busy = done.claimed >= delivery.batch
            except ServiceUnavailableError as e:
                logger.error("outbox not read, the order-log database is unavailable: %s", e.message)
            except Exception:
                logger.exception("outbox round failed; the sender goes on")
            if not busy:
                await _rest(stop, delivery.poll_s)


@asynccontextmanager
async def sending(outbox: Outbox, settings: AlertSettings, *, clock: Clock,
                  http_client_factory: Callable[[], httpx.AsyncClient] | None = None) -> AsyncIterator[None]:
    """Run :func:`deliver_outbox` for the duration of the block (the service's lifespan), then stop it gently.

    Leaving the block lets a message being sent finish and be recorded (at most one
    send's timeout, twice over); only a sender still busy after that is cancelled.
    Cancelling it outright could cut a request the receiver has already taken and
    leave the message to be sent again when its lease ends.
    """
    stop = asyncio.Event()
    task = asyncio.create_task(deliver_outbox(outbox, settings, clock=clock, http_client_factory=http_client_factory,
                                              stop=stop), name="orderguard-outbox")
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=2 * settings.delivery.timeout_s + 1)
        except TimeoutError:  # wait_for cancelled it: what it was sending is sent again after its lease
            logger.warning("the outbox sender did not stop in time and was cancelled")
