"""GET /v1/orders/{channel}/{order_id}: the stored order, its buyer's personal data shown by the caller's roles —
the phone masked for all, the id card never, the street's first characters for reviewers and admins only."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.access import Role
from orderguard.schema import Amounts, Channel, EventKind, OrderLine, OrderStatus
from serving.app import create_app
from simulate.channels import encode
from simulate.plain import PlainAddress, PlainBuyer, PlainClient, PlainEvent
from tests.factories import FixedClock, api_key

T0 = datetime(2024, 11, 12, 6, 0, tzinfo=UTC)
PHONE, ID_CARD, STREET = "13912345678", "11010519491231002X", "文三路 88 号 3 幢 2 单元 301 室"
MASKED = "139******78"  # the form ingest keeps (orderguard.ingest.normalize.phone_from)
SECRETS = (PHONE, ID_CARD, "88 号", "dev-1", "10.1.2.3", "张三")
enc = functools.partial(encode, secret=b"orders-test")


def order(order_id: str) -> dict[str, object]:
    event = PlainEvent(
        channel=Channel.SITE, order_id=order_id, shop_id="shop-1", kind=EventKind.ORDER, status=OrderStatus.PAID,
        update_time=T0, created_at=T0, paid_at=T0,
        buyer=PlainBuyer(account_id="acct-7", phone=PHONE, id_card=ID_CARD, registered_at=T0 - timedelta(days=9)),
        lines=(OrderLine(sku_id="LITTER-01", qty=2, unit_price_fen=5990, title="豆腐猫砂"),),
        amounts=Amounts(goods_fen=11980, paid_fen=11980),
        address=PlainAddress("浙江省", "杭州市", "西湖区", STREET, "张三"),
        client=PlainClient(device_id="dev-1", ip="10.1.2.3"))
    return enc(event)


@pytest.fixture
def served(db_settings: Settings) -> Iterator[tuple[TestClient, dict[Role, dict[str, str]]]]:
    headers = {role: {"Authorization": f"Bearer {api_key(db_settings.database_url, role.value, name=role.value)}"}
               for role in Role}
    with TestClient(create_app(db_settings, clock=FixedClock(T0 + timedelta(hours=1)))) as client:
        stored = client.post("/v1/orders/site", json=order("P1"), headers=headers[Role.ORDER_SYSTEM])
        assert stored.status_code == 200, stored.text
        yield client, headers


def test_a_reviewer_sees_the_masked_street_and_phone_never_the_clear_values(
        served: tuple[TestClient, dict[Role, dict[str, str]]]) -> None:
    client, headers = served
    response = client.get("/v1/orders/site/P1", headers=headers[Role.REVIEWER])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["disclosure"] == "case" and body["status"] == "paid" and body["paid_fen"] == 11980
    assert body["buyer"]["phone"] == MASKED and body["buyer"]["id_card_on_file"] is True
    assert body["address"] == {"province": "浙江省", "city": "杭州市", "district": "西湖区", "street": "文三路 ****",
                               "pickup": None}
    assert [step["status"] for step in body["timeline"]] == ["paid"]
    assert [s for s in SECRETS if s in response.text] == []


@pytest.mark.parametrize("role", [Role.OPERATIONS, Role.DATA_SCIENTIST])
def test_other_roles_see_the_district_only(served: tuple[TestClient, dict[Role, dict[str, str]]], role: Role) -> None:
    client, headers = served
    body = client.get("/v1/orders/site/P1", headers=headers[role]).json()
    assert body["disclosure"] == "summary" and body["address"]["district"] == "西湖区"
    assert body["address"]["street"] is None and "文三路" not in str(body)
    assert body["buyer"]["phone"] == MASKED


def test_marketing_and_the_order_system_may_not_read_orders(
        served: tuple[TestClient, dict[Role, dict[str, str]]]) -> None:
    client, headers = served
    for role in (Role.MARKETING, Role.ORDER_SYSTEM):
        assert client.get("/v1/orders/site/P1", headers=headers[role]).status_code == 403
    assert client.get("/v1/orders/site/NOPE", headers=headers[Role.REVIEWER]).status_code == 404
    assert client.get("/v1/orders/ebay/P1", headers=headers[Role.REVIEWER]).json()["field"] == "channel"

