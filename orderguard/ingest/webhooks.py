"""Verification of channel pushes to ``POST /v1/orders/{channel}``: secret, freshness, replays.

A platform pushes an order change signed with the shop's secret for that channel
(``settings.webhooks.secrets``); :func:`verify_push` checks it with the scheme the
channel's adapter states (``orderguard.ingest.channels.signing``), refuses a push whose
time lies further than ``settings.webhooks.tolerance`` from now, and refuses one seen
before within that window (:class:`ReplayGuard`). Every refusal is a
:class:`~orderguard.ingest.channels.signing.WebhookRejected` (401) naming its reason.

The replay guard is in memory and per process: a replay reaching another process (or
arriving after a restart) within the window is let through. That is harmless, because
ingest is idempotent — a re-sent event is a duplicate and changes nothing — so the guard
only spares the work and keeps a captured request from being answered twice by one
process. A push is remembered once its signature holds, before it is ingested, so two
copies arriving together are not both processed; if its ingest then fails (a 4xx or a
503), it is forgotten again (:meth:`ReplayGuard.forget`), so the platform's retry of the
very same signed request is let in.

:func:`signed_request` is the sending side, for tests, the demo and the simulator.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Mapping
from datetime import datetime

from orderguard.ingest.channels import get_adapter
from orderguard.ingest.channels.signing import VerifiedPush, WebhookRejected, span
from orderguard.schema import Channel
from orderguard.settings import WebhookSettings

__all__ = ["DEFAULT_REPLAY_CAPACITY", "ReplayGuard", "WebhookRejected", "replay_key", "signed_request",
           "verify_push"]

#: How many accepted pushes a process remembers at most (about 200 bytes each).
DEFAULT_REPLAY_CAPACITY = 100_000


class ReplayGuard:
    """The replay ids of pushes accepted by this process, each kept until its push would be stale anyway.

    Bounded: beyond ``capacity`` live entries the one closest to expiry is forgotten
    (the least protection lost; a replay let through is still harmless, see the module
    docstring), so a flood of validly signed pushes cannot grow it without limit.
    Thread-safe.

    >>> from datetime import UTC, timedelta
    >>> guard, t = ReplayGuard(capacity=2), datetime(2024, 11, 11, tzinfo=UTC)
    >>> guard.admit("a", expires_at=t + timedelta(minutes=5), now=t)
    True
    >>> guard.admit("a", expires_at=t + timedelta(minutes=5), now=t + timedelta(minutes=1))
    False
    >>> guard.admit("a", expires_at=t + timedelta(minutes=11), now=t + timedelta(minutes=6))
    True
    """

    def __init__(self, *, capacity: int = DEFAULT_REPLAY_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be positive; got {capacity}")
        self.capacity = capacity
        self._expiry: dict[str, datetime] = {}
        self._queue: list[tuple[datetime, str]] = []  # a heap of (expires_at, replay id), one per live entry
        self._lock = threading.Lock()
        #: Entries forgotten before their expiry because the guard was full.
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._expiry)

    def admit(self, replay_id: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record ``replay_id`` until ``expires_at``; ``False`` (and nothing recorded) when it is live already."""
        with self._lock:
            self._drop_expired(now)
            if replay_id in self._expiry:
                return False
            while len(self._expiry) >= self.capacity:
                at, oldest = heapq.heappop(self._queue)
                if self._expiry.get(oldest) == at:  # else forgotten already: a stale heap entry
                    del self._expiry[oldest]
                    self.evicted += 1
            self._expiry[replay_id] = expires_at
            heapq.heappush(self._queue, (expires_at, replay_id))
            return True

    def forget(self, replay_id: str) -> None:
        """Let ``replay_id`` in again (its push was not stored after all: the sender's retry is no replay)."""
        with self._lock:
            self._expiry.pop(replay_id, None)  # its heap entry is skipped when it comes up

    def _drop_expired(self, now: datetime) -> None:
        while self._queue and self._queue[0][0] <= now:
            at, expired = heapq.heappop(self._queue)
            if self._expiry.get(expired) == at:
                del self._expiry[expired]


def verify_push(channel: str | Channel, settings: WebhookSettings, *, headers: Mapping[str, str],
                query: Mapping[str, str], body: bytes, now: datetime, replays: ReplayGuard) -> VerifiedPush:
    """Check one push to ``channel`` and remember it; the verified push (its time and replay id).

    Args:
        channel: the channel named by the route (any spelling ``get_adapter`` takes).
        settings: the shop's webhook secrets, app keys and tolerance.
        headers: the request headers.
        query: the request's query parameters.
        body: the raw request body, as received (before any JSON parsing).
        now: the receiving time (aware UTC).
        replays: the process's replay guard.

    Raises:
        UnknownChannelError: no adapter for ``channel`` (404).
        WebhookRejected: no secret configured for the channel, or the push's signature, app
            key, time or novelty does not hold (401, naming the reason and the field).
    """
    adapter = get_adapter(str(channel))
    name = adapter.channel.value
    secret = settings.secrets.get(name)
    if secret is None or not secret.get_secret_value():
        raise WebhookRejected.because(
            "no webhook secret", f"no webhook secret is configured for channel {name}, so its pushes cannot be "
                                 f"verified (set ORDERGUARD_WEBHOOKS__SECRETS__{name.upper()})", field="channel")
    signing = adapter.signing
    verified = signing.verify(secret=secret.get_secret_value(), headers=headers, params=query, body=body, now=now,
                              tolerance=settings.tolerance, app_key=settings.app_keys.get(name))
    expires_at = verified.timestamp + settings.tolerance
    if not replays.admit(replay_key(name, verified.replay_id), expires_at=expires_at, now=now):
        raise WebhookRejected.because(
            "replayed", f"this {name} push was received already (same {signing.signature.label}) within the "
                        f"{span(settings.tolerance)} window", field=signing.signature.name)
    return verified


def replay_key(channel: str, replay_id: str) -> str:
    """The key under which a channel's push is remembered by :class:`ReplayGuard`."""
    return f"{channel}:{replay_id}"


def signed_request(channel: str | Channel, secret: str, body: bytes, now: datetime, *, app_key: str | None = None,
                   params: Mapping[str, str] | None = None,
                   nonce: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query parameters a ``channel`` platform sends with ``body``, signed with ``secret`` at ``now``.

    ``params`` are further query parameters (``atomic``), signed where the platform signs its
    parameters; send the body bytes exactly as given.

    >>> from datetime import UTC
    >>> headers, params = signed_request("site", "s3cret", b"{}", datetime(2024, 11, 11, 2, tzinfo=UTC))
    >>> headers["X-Orderguard-Timestamp"], headers["X-Orderguard-Signature"][:15], params
    ('1731290400', 'sha256=054ae814', {})
    """
    signed = get_adapter(str(channel)).signing.sign(secret=secret, body=body, timestamp=now, app_key=app_key,
                                                    params=params, nonce=nonce)
    return signed.headers, signed.params
