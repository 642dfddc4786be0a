"""POST /v1/score: decisions with readable reasons, idempotent re-scoring, clear errors."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.schema import Amounts, Channel, EventKind, OrderLine, OrderStatus, RefundReason
from scoring.rules import default_rules_path
from simulate.channels import encode
from simulate.plain import PlainAddress, PlainBuyer, PlainClient, PlainEvent, PlainRefund
from tests.factories import api_client, stored

T0 = datetime(2024, 11, 12, 6, 0, tzinfo=UTC)
enc = functools.partial(encode, secret=b"score-test")


def site_order(order_id: str, *, minutes: float = 0, device: str = "dev-1", account: str | None = None,
               member_level: int = 0, status: OrderStatus = OrderStatus.PAID) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minutes)
    event = PlainEvent(
        channel=Channel.SITE, order_id=order_id, shop_id="shop-1", kind=EventKind.ORDER, status=status,
        update_time=at, created_at=at, paid_at=at,
        buyer=PlainBuyer(account_id=account or f"acct-{order_id}", phone="13800138000", member_level=member_level,
                         registered_at=T0 - timedelta(days=400)),
        lines=(OrderLine(sku_id="LITTER-01", qty=1, unit_price_fen=5990, title="豆腐猫砂"),),
        amounts=Amounts(goods_fen=5990, paid_fen=5990),
        address=PlainAddress("浙江省", "杭州市", "西湖区", f"文三路 {order_id} 号", "张三"),
        client=PlainClient(device_id=device, ip="10.1.2.3"),
    )
    return {"channel": "site", "payload": enc(event)}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with api_client(settings) as c:
        yield c


def test_a_plain_order_is_approved_rules_only_and_says_so(client: TestClient) -> None:
    response = client.post("/v1/score", json=site_order("1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "approve" and body["risk_level"] == "low"
    assert body["rules_only"] is True and "no champion model" in body["note"]
    assert body["order_key"] == "site:1" and body["replayed"] is False


def test_device_burst_fires_with_its_values_and_rescoring_never_double_counts(client: TestClient) -> None:
    bodies = [client.post("/v1/score", json=site_order(str(i), minutes=i)).json() for i in range(5)]
    fifth = bodies[-1]
    assert fifth["reasons"][0]["code"] == "DEVICE_BURST_5M"
    assert fifth["reasons"][0]["text_zh"] == "同一设备5分钟内下单5次（阈值5）"
    assert fifth["decision"] in {"review", "hold"} and fifth["score"] > bodies[0]["score"]
    again = client.post("/v1/score", json=site_order("4", minutes=4)).json()
    assert again["replayed"] is True and again["score"] == fifth["score"]
    client.post("/v1/score", json=site_order("2", minutes=2))  # a retry of an older order
    sixth = client.post("/v1/score", json=site_order("5", minutes=4.5)).json()
    assert sixth["reasons"][0]["text_zh"] == "同一设备5分钟内下单6次（阈值5）"


def test_ingested_orders_count_for_later_scores(client: TestClient) -> None:
    for i in range(4):
        assert client.post("/v1/orders/site", json=site_order(f"in{i}", minutes=i)["payload"]).status_code == 200
    body = client.post("/v1/score", json=site_order("scored", minutes=4)).json()
    assert body["reasons"] and body["reasons"][0]["code"] == "DEVICE_BURST_5M"


def test_bad_payloads_get_4xx_naming_the_field(client: TestClient) -> None:
    payload = site_order("9")
    payload["payload"].pop("order_id")
    response = client.post("/v1/score", json=payload)
    assert response.status_code == 422 and response.json()["field"] == "order_id"
    assert client.post("/v1/score", json={"channel": "ebay", "payload": {}}).json()["field"] == "channel"
    response = client.post("/v1/score", json={"channel": "site", "payload": {}, "extra": 1})
    assert response.status_code == 422 and response.json()["field"] == "extra"


def test_refund_claim_before_its_order_is_409(client: TestClient) -> None:
    at = T0 + timedelta(days=3)
    claim = PlainEvent(
        channel=Channel.SITE, order_id="77", shop_id="shop-1", kind=EventKind.AFTER_SALE,
        status=OrderStatus.REFUND_REQUESTED, update_time=at, created_at=T0, buyer=PlainBuyer(account_id="a"),
        lines=(OrderLine(sku_id="LITTER-01", qty=1, unit_price_fen=5990),), amounts=Amounts(5990, 5990),
        refund=PlainRefund("r1", RefundReason.NOT_RECEIVED, 5990, at))
    response = client.post("/v1/score", json={"channel": "site", "payload": enc(claim)})
    assert response.status_code == 409 and response.json()["code"] == "order_not_ready"


def test_batch_scores_each_item_independently(client: TestClient) -> None:
    bad = site_order("b")
    bad["payload"]["version"] = "x"
    body = client.post("/v1/score/batch", json={"items": [site_order("a"), bad]}).json()
    assert body["items"][0]["result"]["order_key"] == "site:a"
    assert body["items"][1]["error"]["field"] == "version"


def test_allow_listed_and_released_vips_are_not_held_unless_a_hard_hit_fires(settings: Settings,
                                                                             tmp_path: Path) -> None:
    pack = yaml.safe_load(default_rules_path().read_text(encoding="utf-8"))
    pack["deny"]["devices"] = [stored("device", "bad-device")]
    pack["allow"]["vip_min_member_level"] = 2
    pack["rules"].append({"code": "ANY_ORDER", "points": 200, "when": {"feature": "order_paid_fen", "op": "ge",
                                                                      "value": 0},
                          "reason": {"zh": "任何订单", "en": "any order"}})
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(pack, allow_unicode=True), encoding="utf-8")
    custom = settings.model_copy(update={"scoring": settings.scoring.model_copy(update={"rules_path": rules})})
    with api_client(custom) as c:  # the default policy releases members of level 4 and above
        plain = c.post("/v1/score", json=site_order("p", member_level=0)).json()
        allowed = c.post("/v1/score", json=site_order("a", member_level=3)).json()
        released = c.post("/v1/score", json=site_order("r", member_level=5)).json()
        denied = c.post("/v1/score", json=site_order("d", device="bad-device", member_level=5)).json()
    assert plain["decision"] == "hold"
    assert allowed["decision"] == "review" and allowed["allow_listed"] is True
    assert released["decision"] == "approve" and released["score"] >= 80  # the score still says hold
    assert released["released"] is True and released["reasons"][0]["code"] == "VIP_RELEASE"
    assert plain["released"] is False and denied["released"] is False
    assert denied["decision"] == "hold" and "DENY_DEVICE" in [r["code"] for r in denied["reasons"]]


def test_a_later_update_is_judged_at_the_orders_creation(client: TestClient) -> None:
    for i in range(5):
        client.post("/v1/score", json=site_order(str(i), minutes=i))
    shipped = site_order("4", minutes=4)
    shipped["payload"]["status"] = "shipped"
    shipped["payload"]["version"] += 1
    shipped["payload"]["updated_at"] = (T0 + timedelta(days=2)).isoformat()
    body = client.post("/v1/score", json=shipped).json()
    assert body["replayed"] is False and body["event_version"] > 0
    assert body["reasons"][0]["code"] == "DEVICE_BURST_5M"  # the 5-minute window sits at creation


def _served_features(settings: Settings, order_id: str) -> dict[str, float]:
    import sqlalchemy as sa

    from orderguard.schema import OrderKey
    from scoring.records import ScoreLog

    engine = sa.create_engine(settings.database_url)
    try:
        record = ScoreLog(engine).latest(OrderKey(Channel.SITE, order_id))
    finally:
        engine.dispose()
    assert record is not None
    return dict(record.features)


def test_the_service_reads_the_shops_warehouse_from_the_settings(settings: Settings) -> None:
    from orderguard.settings import ReferenceSettings, WarehouseSettings

    with api_client(settings) as c:
        assert c.post("/v1/score", json=site_order("hz")).status_code == 200
    from_hangzhou = _served_features(settings, "hz")["order_phone_warehouse_km"]
    beijing = ReferenceSettings(warehouses={"shop-1": WarehouseSettings(province="北京市", city="北京市")})
    with api_client(settings.model_copy(update={"reference": beijing})) as c:
        assert c.post("/v1/score", json=site_order("bj")).status_code == 200
    from_beijing = _served_features(settings, "bj")["order_phone_warehouse_km"]
    assert from_hangzhou > 1_000 > 100 > from_beijing  # 138-0013 is a Beijing number


def test_a_warehouse_the_gazetteer_cannot_place_stops_the_start_naming_it(settings: Settings) -> None:
    from orderguard.errors import ConfigError
    from orderguard.settings import ReferenceSettings, WarehouseSettings

    nowhere = ReferenceSettings(warehouses={"shop-1": WarehouseSettings(province="火星")})
    with pytest.raises(ConfigError) as info, api_client(settings.model_copy(update={"reference": nowhere})):
        pass
    assert info.value.field == "reference.warehouses.shop-1.province"
