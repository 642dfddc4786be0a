"""POST /v1/labels and GET /v1/labels/...: round trips, atomic batches, error shapes, fresh label features."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.schema import Amounts, Channel, EventKind, OrderKey, OrderLine, OrderStatus
from simulate.channels import encode
from simulate.plain import PlainAddress, PlainBuyer, PlainClient, PlainEvent
from tests.factories import FixedClock, api_client, api_key

T0 = datetime(2024, 11, 12, 6, 0, tzinfo=UTC)  # orders are created from here on
NOW = T0 + timedelta(days=2)  # the service clock
enc = functools.partial(encode, secret=b"labels-test")
FRAUD_FEATURE = "distinct_orders_fraud_by_device_90d"


def site_order(order_id: str, *, minutes: float = 0, device: str = "dev-1") -> dict[str, Any]:
    """An own-site order document created ``minutes`` after T0, on ``device``, with its own phone and address."""
    at = T0 + timedelta(minutes=minutes)
    n = zlib.crc32(order_id.encode())
    event = PlainEvent(
        channel=Channel.SITE, order_id=order_id, shop_id="shop-1", kind=EventKind.ORDER, status=OrderStatus.PAID,
        update_time=at, created_at=at, paid_at=at,
        buyer=PlainBuyer(account_id=f"acct-{order_id}", phone=f"139{n % 10**8:08d}",
                         registered_at=T0 - timedelta(days=400)),
        lines=(OrderLine(sku_id="LITTER-01", qty=1, unit_price_fen=5990, title="豆腐猫砂"),),
        amounts=Amounts(goods_fen=5990, paid_fen=5990),
        address=PlainAddress("浙江省", "杭州市", "西湖区", f"文三路 {order_id} 号", "张三"),
        client=PlainClient(device_id=device, ip=f"10.0.{n % 250}.{n // 250 % 250}"),
    )
    return {"channel": "site", "payload": enc(event)}


@pytest.fixture
def second_reviewer(settings: Settings) -> dict[str, str]:
    """Headers that call as another reviewer (a key named ``desk-2``, made before the app starts)."""
    return {"Authorization": f"Bearer {api_key(settings.database_url, 'reviewer', name='desk-2')}"}


@pytest.fixture
def client(settings: Settings, second_reviewer: dict[str, str]) -> Iterator[TestClient]:
    with api_client(settings, clock=FixedClock(NOW)) as c:
        for i in range(3):
            response = c.post("/v1/orders/site", json=site_order(f"A{i}", minutes=i)["payload"])
            assert response.status_code == 200, response.text
        yield c


def label(order_id: str, verdict: str = "confirmed_fraud", **extra: Any) -> dict[str, Any]:
    return {"order": {"channel": "site", "order_id": order_id}, "verdict": verdict, **extra}



def test_a_label_round_trips_and_a_repeat_is_a_no_op(client: TestClient) -> None:
    response = client.post("/v1/labels", json=label("A0", note="同设备多账号"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["received"], body["added"], body["duplicates"]) == (1, 1, 0)
    assert body["items"][0]["outcome"] == "added" and body["items"][0]["order_key"] == "site:A0"
    assert datetime.fromisoformat(body["items"][0]["labeled_at"]) == NOW  # defaults to the service clock
    again = client.post("/v1/labels", json=label("A0", note="同设备多账号"))
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    history = client.get("/v1/labels/site/A0").json()
    assert history["order_key"] == "site:A0" and len(history["history"]) == 1
    assert history["history"][0]["source"] == "api" and history["history"][0]["note"] == "同设备多账号"
    assert history["current"]["verdict"] == "confirmed_fraud"


def test_a_relabel_keeps_the_history_and_changes_the_current_verdict(client: TestClient,
                                                                     second_reviewer: dict[str, str]) -> None:
    first = label("A1", "needs_investigation", labeled_at=(T0 + timedelta(hours=5)).isoformat())
    second = {"order_key": "site:A1", "verdict": "false_positive", "labeled_at": "2024-11-13T09:00:00+08:00"}
    assert client.post("/v1/labels", json=first).status_code == 201
    assert client.post("/v1/labels", json=second, headers=second_reviewer).status_code == 201
    body = client.get("/v1/labels/site/A1").json()
    assert [h["verdict"] for h in body["history"]] == ["needs_investigation", "false_positive"]
    assert body["current"]["verdict"] == "false_positive"
    # the reviewer is the caller: each key's name, never a field of the request
    assert [h["reviewer_id"].split(" (")[0] for h in body["history"]] == ["key:tests", "key:desk-2"]


def test_an_order_without_labels_has_an_empty_history(client: TestClient) -> None:
    body = client.get("/v1/labels/site/A2").json()
    assert body == {"order_key": "site:A2", "current": None, "history": []}


@pytest.mark.parametrize(("payload", "status", "field"), [
    (label("NOPE"), 404, "order_key"),
    (label("A0", "fraud"), 422, "verdict"),
    (label("A0", reviewer_id="someone-else"), 422, "reviewer_id"),  # nobody labels in another's name
    (label("A0", labeled_at="2024-11-12T09:00:00"), 422, "labeled_at"),  # no offset
    (label("A0", labeled_at=(T0 - timedelta(minutes=1)).isoformat()), 422, "labeled_at"),  # before the order
    (label("A0", labeled_at=(NOW + timedelta(hours=1)).isoformat()), 422, "labeled_at"),  # in the future
    (label("A0", colour="red"), 422, "colour"),
    ({**label("A0"), "order_key": "site:A0"}, 422, "order"),  # both ways of naming the order
    ({"order_key": "ebay:1", "verdict": "false_positive"}, 422, "order_key"),
    ({"order": {"channel": "ebay", "order_id": "1"}, "verdict": "false_positive"}, 404,
     "order.channel"),
])
def test_a_bad_label_gets_the_error_naming_its_field(client: TestClient, payload: dict[str, Any], status: int,
                                                     field: str) -> None:
    response = client.post("/v1/labels", json=payload)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert client.get("/v1/labels/site/A0").json()["history"] == []


def test_a_conflicting_verdict_is_409(client: TestClient) -> None:
    at = (T0 + timedelta(hours=1)).isoformat()
    assert client.post("/v1/labels", json=label("A0", labeled_at=at)).status_code == 201
    response = client.post("/v1/labels", json=label("A0", "false_positive", labeled_at=at))
    assert response.status_code == 409 and response.json()["field"] == "verdict"


def test_a_partly_bad_batch_is_refused_whole_listing_every_bad_label(client: TestClient) -> None:
    batch = {"labels": [label("A0"), label("A1", "fraud"), label("NOPE"), label("A2", reviewer_id="r9")]}
    response = client.post("/v1/labels", json=batch)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_input" and body["field"] == "labels.1.verdict"
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [
        (1, "labels.1.verdict", "invalid_input"), (2, "labels.2.order_key", "not_found"),
        (3, "labels.3.reviewer_id", "invalid_input")]
    assert client.get("/v1/labels/site/A0").json()["history"] == []  # the good label was not stored either


@pytest.mark.parametrize(("payload", "field"), [
    ({"labels": []}, "labels"),
    ({"labels": "A0"}, "labels"),
    ({"labels": [label("A0")], "atomic": True}, "atomic"),
])
def test_a_malformed_batch_names_the_field(client: TestClient, payload: dict[str, Any], field: str) -> None:
    response = client.post("/v1/labels", json=payload)
    assert response.status_code == 422 and response.json()["field"] == field


def test_history_of_unknown_orders_and_channels_is_404(client: TestClient) -> None:
    assert client.get("/v1/labels/site/NOPE").json()["field"] == "order_key"
    response = client.get("/v1/labels/ebay/1")
    assert response.status_code == 404 and response.json()["field"] == "channel"


def _device_fraud(client: TestClient, order_id: str, minutes: float) -> tuple[float, list[str]]:
    """Score a new order on dev-1; the served fraud-on-device feature and the reason codes."""
    response = client.post("/v1/score", json=site_order(order_id, minutes=minutes))
    assert response.status_code == 200, response.text
    services = client.app.state.services  # type: ignore[attr-defined]
    stored = services.scores.latest(OrderKey(Channel.SITE, order_id))
    return stored.features[FRAUD_FEATURE], [r["code"] for r in response.json()["reasons"]]


def test_a_confirmed_fraud_reaches_the_online_features_at_its_labeled_at(client: TestClient) -> None:
    assert _device_fraud(client, "B0", minutes=60)[0] == 0
    labeled_at = T0 + timedelta(minutes=90)
    response = client.post("/v1/labels", json=label("A0", labeled_at=labeled_at.isoformat()))
    assert response.status_code == 201
    value, reasons = _device_fraud(client, "B1", minutes=120)
    assert value == 1 and "DEVICE_CONFIRMED_FRAUD" in reasons
    before, reasons = _device_fraud(client, "B2", minutes=80)  # created before the verdict: not known then
    assert before == 0 and "DEVICE_CONFIRMED_FRAUD" not in reasons
    other = client.post("/v1/score", json=site_order("C1", minutes=121, device="dev-2")).json()
    assert "DEVICE_CONFIRMED_FRAUD" not in [r["code"] for r in other["reasons"]]


def test_labels_are_replayed_into_a_fresh_store_on_restart(settings: Settings) -> None:
    with api_client(settings, clock=FixedClock(NOW)) as first:
        assert first.post("/v1/orders/site", json=site_order("A0")["payload"]).status_code == 200
        labeled_at = (T0 + timedelta(minutes=30)).isoformat()
        assert first.post("/v1/labels", json=label("A0", labeled_at=labeled_at)).status_code == 201
    with api_client(settings, clock=FixedClock(NOW)) as restarted:  # memory store: starts empty
        value, reasons = _device_fraud(restarted, "B9", minutes=60)
    assert value == 1 and "DEVICE_CONFIRMED_FRAUD" in reasons


def test_openapi_documents_both_request_shapes_and_the_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/labels"]["post"]
    assert post["summary"] and post["description"]
    schema = post["requestBody"]["content"]["application/json"]
    assert {"one", "batch"} <= set(schema["examples"])
    refs = {s["$ref"].rsplit("/", 1)[-1] for s in spec["components"]["schemas"]["LabelsRequest"]["anyOf"]}
    assert refs == {"LabelIn", "LabelBatchIn"}
    assert {"200", "201", "404", "409", "422"} <= set(post["responses"])
    assert "LabelHistory" in str(spec["paths"]["/v1/labels/{channel}/{order_id}"]["get"]["responses"]["200"])


def test_a_label_sent_again_without_a_time_is_stored_once(settings: Settings, second_reviewer: dict[str, str]) -> None:
    clock = FixedClock(NOW)
    with api_client(settings, clock=clock) as client:
        assert client.post("/v1/orders/site", json=site_order("A1")["payload"]).status_code == 200
        earlier = (NOW - timedelta(hours=1)).isoformat()
        assert client.post("/v1/labels", json=label("A1", "false_positive", labeled_at=earlier)).status_code == 201
        # the reviewer's latest verdict says something else: a new label, stamped now
        first = client.post("/v1/labels", json=label("A1", note="驿站地址"))
        assert first.status_code == 201 and first.json()["added"] == 1, first.text
        clock.advance(minutes=3)  # a retry a little later
        retry = client.post("/v1/labels", json=label("A1", note="驿站地址"))
        assert retry.status_code == 200, retry.text
        assert retry.json()["duplicates"] == 1 and retry.json()["added"] == 0
        assert retry.json()["items"][0]["labeled_at"] == first.json()["items"][0]["labeled_at"]
        assert len(client.get("/v1/labels/site/A1").json()["history"]) == 2
        # another reviewer saying the same is their own label
        other = client.post("/v1/labels", json=label("A1", note="驿站地址"), headers=second_reviewer)
        assert other.json()["added"] == 1


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-12:00"])
def test_label_times_outside_the_calendar_are_field_errors(client: TestClient, when: str) -> None:
    response = client.post("/v1/labels", json=label("A0", labeled_at=when))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "labeled_at"
