"""``verify_push`` and the replay guard: the shop's secret per channel, one acceptance per push, bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from orderguard.errors import UnknownChannelError
from orderguard.ingest.channels import ADAPTERS
from orderguard.ingest.webhooks import ReplayGuard, WebhookRejected, signed_request, verify_push
from orderguard.schema import Channel
from orderguard.settings import WebhookSettings, development_webhook_secret

NOW = datetime(2024, 11, 11, 2, 0, 0, tzinfo=UTC)
BODY = b'{"type": "order"}'


def push(settings: WebhookSettings, channel: Channel, *, body: bytes = BODY, at: datetime = NOW,
         now: datetime = NOW, replays: ReplayGuard | None = None, secret: str | None = None) -> None:
    headers, params = signed_request(channel, secret or development_webhook_secret(channel.value), body, at)
    verify_push(channel, settings, headers=headers, query=params, body=body, now=now,
                replays=replays if replays is not None else ReplayGuard())


@pytest.mark.parametrize("channel", list(ADAPTERS))
def test_a_push_is_accepted_once_within_the_window_and_not_again(channel: Channel) -> None:
    settings, replays = WebhookSettings(), ReplayGuard()
    push(settings, channel, replays=replays)
    with pytest.raises(WebhookRejected) as caught:
        push(settings, channel, replays=replays, now=NOW + timedelta(minutes=4))
    assert caught.value.reason == "replayed" and caught.value.field == ADAPTERS[channel].signing.signature.name
    assert caught.value.message.startswith(f"replayed: this {channel.value} push was received already")
    push(settings, channel, replays=replays, body=BODY + b" ")  # another push is not a replay
    assert len(replays) == 2


def test_a_channel_without_a_secret_refuses_its_pushes_naming_the_setting() -> None:
    settings = WebhookSettings(secrets={"site": SecretStr("only-the-site")})
    push(settings, Channel.SITE, secret="only-the-site")
    with pytest.raises(WebhookRejected) as caught:
        push(settings, Channel.JD)
    assert caught.value.reason == "no webhook secret" and caught.value.field == "channel"
    assert "no webhook secret is configured for channel jd" in caught.value.message
    assert "ORDERGUARD_WEBHOOKS__SECRETS__JD" in caught.value.message


def test_the_configured_app_key_and_tolerance_apply() -> None:
    settings = WebhookSettings(app_keys={"douyin": "7001"}, tolerance=timedelta(seconds=30))
    with pytest.raises(WebhookRejected, match="app key mismatch"):
        push(settings, Channel.DOUYIN)
    with pytest.raises(WebhookRejected, match="stale timestamp"):
        push(settings, Channel.SITE, now=NOW + timedelta(seconds=31))


def test_an_unknown_channel_is_a_404() -> None:
    with pytest.raises(UnknownChannelError):
        verify_push("ebay", WebhookSettings(), headers={}, query={}, body=BODY, now=NOW, replays=ReplayGuard())


def test_the_guard_forgets_a_push_once_it_would_be_stale_anyway() -> None:
    guard = ReplayGuard()
    assert guard.admit("a", expires_at=NOW + timedelta(minutes=5), now=NOW)
    assert not guard.admit("a", expires_at=NOW + timedelta(minutes=5), now=NOW + timedelta(minutes=4, seconds=59))
    assert guard.admit("b", expires_at=NOW + timedelta(minutes=10), now=NOW + timedelta(minutes=5))
    assert len(guard) == 1  # "a" dropped at its expiry
    assert guard.admit("a", expires_at=NOW + timedelta(minutes=10), now=NOW + timedelta(minutes=5))


def test_the_guard_is_bounded_and_forgets_the_entry_closest_to_expiry_first() -> None:
    guard = ReplayGuard(capacity=3)
    for i, minutes in enumerate([5, 2, 4, 3]):
        assert guard.admit(f"p{i}", expires_at=NOW + timedelta(minutes=minutes), now=NOW)
    assert len(guard) == 3 and guard.evicted == 1
    assert guard.admit("p1", expires_at=NOW + timedelta(minutes=2), now=NOW)  # the evicted one (expiring first)
    assert not guard.admit("p0", expires_at=NOW + timedelta(minutes=5), now=NOW)
    with pytest.raises(ValueError):
        ReplayGuard(capacity=0)
