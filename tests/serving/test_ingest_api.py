"""HTTP ingest: single payloads, batches, idempotency and error shapes."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.schema import Amounts, Channel, EventKind, OrderLine, OrderStatus
from simulate.channels import encode
from simulate.plain import PlainAddress, PlainBuyer, PlainEvent
from tests.factories import api_client

T0 = datetime(2024, 11, 11, 2, 30, tzinfo=UTC)
enc = functools.partial(encode, secret=b"api-test")


def plain(channel: Channel, order_id: str, status: OrderStatus = OrderStatus.PAID,
          minutes: int = 0) -> PlainEvent:
    return PlainEvent(
        channel=channel, order_id=order_id, shop_id="shop-1", kind=EventKind.ORDER, status=status,
        update_time=T0 + timedelta(minutes=minutes), created_at=T0, paid_at=T0,
        buyer=PlainBuyer(account_id=f"buyer-{order_id}", phone="13800138000"),
        lines=(OrderLine(sku_id="LITTER-01", qty=2, unit_price_fen=5990, title="豆腐猫砂"),),
        amounts=Amounts(goods_fen=11980, paid_fen=11980),
        address=PlainAddress("浙江省", "杭州市", "西湖区", "文三路 100 号", "张三"),
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with api_client(settings) as c:
        yield c


@pytest.mark.parametrize("channel", list(Channel))
def test_single_payload_is_stored_once_and_resending_is_a_no_op(client: TestClient, channel: Channel) -> None:
    payload = enc(plain(channel, "1001"))
    first = client.post(f"/v1/orders/{channel.value}", json=payload)
    assert first.status_code == 200, first.text
    assert first.json()["items"][0]["outcome"] == "inserted"
    assert first.json()["items"][0]["order_key"] == f"{channel.value}:1001"
    again = client.post(f"/v1/orders/{channel.value}", json=payload)
    assert again.json()["items"][0]["outcome"] == "duplicate"
    assert client.get("/healthz").json()["orders"] == 1


def test_newer_state_wins_whatever_the_arrival_order(client: TestClient) -> None:
    shipped = enc(plain(Channel.DOUYIN, "77", OrderStatus.SHIPPED, minutes=60))
    paid = enc(plain(Channel.DOUYIN, "77", OrderStatus.PAID, minutes=0))
    assert client.post("/v1/orders/douyin", json=[shipped, paid]).status_code == 200
    assert client.get("/healthz").json()["orders_by_status"] == {"shipped": 1}


def test_batch_keeps_good_payloads_and_lists_bad_ones(client: TestClient) -> None:
    good = enc(plain(Channel.JD, "5"))
    bad: dict[str, Any] = dict(enc(plain(Channel.JD, "6")))
    bad.pop(next(iter(k for k in bad if k.lower().endswith("orderid"))))
    response = client.post("/v1/orders/jd", json=[good, bad, "not an object"])
    assert response.status_code == 207
    body = response.json()
    assert body["inserted"] == 1
    assert [e["position"] for e in body["errors"]] == [1, 2]
    assert body["errors"][0]["field"] and "orderid" in body["errors"][0]["field"].lower()
    assert client.get("/healthz").json()["orders"] == 1


def test_atomic_batch_stores_nothing_when_one_payload_is_bad(client: TestClient) -> None:
    good = enc(plain(Channel.SITE, "9"))
    response = client.post("/v1/orders/site?atomic=true", json=[good, {"version": 1}])
    assert response.status_code == 207 or response.status_code == 422
    assert response.json()["inserted"] == 0
    assert client.get("/healthz").json()["orders"] == 0


@pytest.mark.parametrize(("path", "body", "status", "field"), [
    ("/v1/orders/ebay", {}, 404, "channel"),
    ("/v1/orders/tmall", "{not json", 422, "body"),
    ("/v1/orders/tmall", 42, 422, "body"),
])
def test_malformed_requests_name_the_field(client: TestClient, path: str, body: Any, status: int,
                                           field: str) -> None:
    if isinstance(body, str):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert set(response.json()) == {"code", "message", "field"}


def test_unknown_status_code_and_wrong_type_are_refused_with_the_field(client: TestClient) -> None:
    payload = enc(plain(Channel.TMALL, "31"))
    payload["status"] = "NO_SUCH_STATUS"
    response = client.post("/v1/orders/tmall", json=payload)
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_status"
    assert response.json()["field"] == "status"
    wrong = enc(plain(Channel.TMALL, "32"))
    wrong["created"] = ["not", "a", "time"]
    response = client.post("/v1/orders/tmall", json=wrong)
    assert response.status_code == 422
    assert response.json()["field"] == "created"


def test_accepted_orders_survive_a_later_bad_request(client: TestClient) -> None:
    assert client.post("/v1/orders/kuaishou", json=enc(plain(Channel.KUAISHOU, "1"))).status_code == 200
    assert client.post("/v1/orders/kuaishou", json={"oid": None}).status_code == 422
    assert client.get("/healthz").json()["orders"] == 1


def test_openapi_documents_the_ingest_route_of_every_channel(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for channel in Channel:
        op = spec["paths"][f"/v1/orders/{channel.value}"]["post"]
        assert {"200", "207", "404", "422"} <= set(op["responses"])
