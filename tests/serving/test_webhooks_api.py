"""Signed channel pushes over HTTP: a platform pushes to ``POST /v1/orders/{channel}`` without an API key.

Against the real app and order log (each database backend): a push signed with the shop's
webhook secret for its channel is stored; the same request again, a changed body, a stale
time, no signature at all, or a channel without a configured secret are refused with 401
naming the reason; the order system's API key keeps working, and a key without the
``order_system`` role is still 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from features.settings import Settings
from orderguard.ingest.channels import ADAPTERS
from orderguard.ingest.webhooks import signed_request
from orderguard.schema import Channel
from orderguard.settings import WebhookSettings, development_webhook_secret
from serving.api.ingest import channel_path
from serving.app import create_app
from tests.factories import api_key

SAMPLES_DIR = Path(__file__).parents[1] / "contracts" / "samples"


def sample(channel: Channel) -> bytes:
    """The channel's literal order document, byte for byte as a platform would push it."""
    return (SAMPLES_DIR / f"{channel.value}_order.json").read_bytes()


def send(client: TestClient, channel: Channel, body: bytes, *, at: datetime | None = None, path: str | None = None,
         secret: str | None = None, app_key: str | None = None) -> httpx.Response:
    """POST ``body`` as ``channel``'s platform pushes it: signed with ``secret`` (the development one) at ``at``."""
    headers, params = signed_request(channel, secret or development_webhook_secret(channel.value), body,
                                     at or datetime.now(UTC), app_key=app_key)
    response: httpx.Response = client.post(path or channel_path(channel), content=body, params=params,
                                           headers={"content-type": "application/json", **headers})
    return response


def refusal(response: httpx.Response, reason: str) -> dict[str, str]:
    assert response.status_code == 401, response.text
    body: dict[str, str] = response.json()
    assert body["code"] == "webhook_rejected" and body["message"].startswith(f"{reason}: "), body
    return body


@pytest.fixture
def client(db_settings: Settings) -> Iterator[TestClient]:
    """The service with no credentials on its requests (a platform has no API key)."""
    with TestClient(create_app(db_settings)) as c:
        yield c


def stored(client: TestClient) -> int:
    orders: int = client.get("/healthz").json()["orders"]
    return orders


@pytest.mark.parametrize("channel", list(ADAPTERS))
def test_a_signed_push_is_stored_and_the_same_request_again_is_refused_as_replayed(
        client: TestClient, channel: Channel) -> None:
    body = sample(channel)
    headers, params = signed_request(channel, development_webhook_secret(channel.value), body, datetime.now(UTC))
    request = {"content": body, "params": params, "headers": {"content-type": "application/json", **headers}}
    first = client.post(channel_path(channel), **request)
    assert first.status_code == 200, first.text
    assert first.json()["items"][0]["outcome"] == "inserted"
    assert stored(client) == 1
    again = client.post(channel_path(channel), **request)
    assert refusal(again, "replayed")["field"] == ADAPTERS[channel].signing.signature.name
    assert stored(client) == 1


def test_a_push_that_is_not_stored_may_be_sent_again(client: TestClient) -> None:
    """A refused payload is no replay: the platform's retry of the very same signed request is checked again."""
    body = sample(Channel.SITE).replace(b'"order_id"', b'"order_no"', 1)  # the adapter refuses it (422)
    headers, params = signed_request(Channel.SITE, development_webhook_secret("site"), body, datetime.now(UTC))
    request = {"content": body, "params": params, "headers": {"content-type": "application/json", **headers}}
    first = client.post(channel_path(Channel.SITE), **request)
    assert first.status_code == 422, first.text
    again = client.post(channel_path(Channel.SITE), **request)
    assert again.status_code == 422 and again.json()["code"] != "webhook_rejected", again.text
    assert stored(client) == 0


@pytest.mark.parametrize("channel", [Channel.TMALL, Channel.DOUYIN, Channel.WECHAT, Channel.SITE])
def test_a_changed_body_is_a_bad_signature_and_stores_nothing(client: TestClient, channel: Channel) -> None:
    body = sample(channel)
    headers, params = signed_request(channel, development_webhook_secret(channel.value), body, datetime.now(UTC))
    tampered = body.replace(b"1", b"2", 1)
    assert tampered != body
    response = client.post(channel_path(channel), content=tampered, params=params,
                           headers={"content-type": "application/json", **headers})
    assert refusal(response, "bad signature")["field"] == ADAPTERS[channel].signing.signature.name
    assert stored(client) == 0


def test_a_stale_or_wrongly_signed_push_is_refused_naming_why(client: TestClient) -> None:
    body = sample(Channel.JD)
    stale = send(client, Channel.JD, body, at=datetime.now(UTC) - timedelta(minutes=6))
    assert refusal(stale, "stale timestamp")["field"] == "timestamp"
    assert "5 min 0 s tolerance" in stale.json()["message"]
    assert refusal(send(client, Channel.JD, body, secret="not-the-shops-secret"), "bad signature")
    assert stored(client) == 0


def test_an_unsigned_push_without_a_key_is_unauthenticated_naming_both_ways_in(client: TestClient) -> None:
    response = client.post(channel_path(Channel.KUAISHOU), content=sample(Channel.KUAISHOU),
                           headers={"content-type": "application/json"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated" and response.json()["field"] == "Authorization"
    message = response.json()["message"]
    assert "Bearer <API key>" in message and "`sign` (query parameter)" in message and "`timestamp`" in message
    assert stored(client) == 0


def test_a_channel_without_a_webhook_secret_refuses_signed_pushes(db_settings: Settings) -> None:
    only_site = db_settings.model_copy(update={"webhooks": WebhookSettings(secrets={"site": SecretStr("s1")})})
    with TestClient(create_app(only_site)) as client:
        assert send(client, Channel.SITE, sample(Channel.SITE), secret="s1").status_code == 200
        response = send(client, Channel.JD, sample(Channel.JD))
        body = refusal(response, "no webhook secret")
        assert "no webhook secret is configured for channel jd" in body["message"] and body["field"] == "channel"
        assert stored(client) == 1


def test_a_configured_app_key_must_match(db_settings: Settings) -> None:
    keyed = db_settings.model_copy(update={"webhooks": WebhookSettings(app_keys={"douyin": "7001"})})
    with TestClient(create_app(keyed)) as client:
        assert refusal(send(client, Channel.DOUYIN, sample(Channel.DOUYIN), app_key="6666"),
                       "app key mismatch")["field"] == "app-id"
        assert send(client, Channel.DOUYIN, sample(Channel.DOUYIN), app_key="7001").status_code == 200


def test_the_generic_route_verifies_the_channel_named_in_its_path(client: TestClient) -> None:
    body = sample(Channel.JD)
    response = send(client, Channel.JD, body, path="/v1/orders/JD")
    assert response.status_code == 200, response.text
    assert response.json()["channel"] == "jd"
    assert send(client, Channel.JD, body, path="/v1/orders/ebay").status_code == 404
    # a JD-signed push sent as another channel carries none of that channel's signature
    wrong = send(client, Channel.SITE, sample(Channel.SITE), path=channel_path(Channel.JD))
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthenticated"


def test_the_order_systems_key_still_works_and_other_roles_are_still_forbidden(db_settings: Settings) -> None:
    order_system = api_key(db_settings.database_url, "order_system", name="order system")
    reviewer = api_key(db_settings.database_url, "reviewer", name="reviewer")
    with TestClient(create_app(db_settings)) as client:
        body = sample(Channel.TMALL)
        forwarded = client.post(channel_path(Channel.TMALL), content=body,
                                headers={"content-type": "application/json", "Authorization": f"Bearer {order_system}"})
        assert forwarded.status_code == 200, forwarded.text
        refused = client.post(channel_path(Channel.TMALL), content=body,
                              headers={"content-type": "application/json", "Authorization": f"Bearer {reviewer}"})
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        # a key that is present decides, even on a signed push: a wrong key is not rescued by a signature
        headers, params = signed_request(Channel.TMALL, development_webhook_secret("tmall"), body, datetime.now(UTC))
        mixed = client.post(channel_path(Channel.TMALL), content=body, params=params,
                            headers={"content-type": "application/json", "Authorization": f"Bearer {reviewer}",
                                     **headers})
        assert mixed.status_code == 403


def test_every_channel_route_documents_how_to_sign(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for channel, adapter in ADAPTERS.items():
        operation = spec["paths"][channel_path(channel)]["post"]
        for field in adapter.signing.fields:
            assert f"`{field.name}`" in operation["description"], (channel, field.name)
        assert "webhook_rejected" in operation["responses"]["401"]["description"]
        assert operation["security"] == [{"ApiKey": []}, {"Session": []}]
