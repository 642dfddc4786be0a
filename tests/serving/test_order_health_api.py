"""Order health over HTTP: fulfilment reports in (order system only), the health out (operations and admins),
and the live monitor end to end: a promotion's lost callbacks turn red, the order system is asked to pause them
and a DingTalk-style robot on this machine gets the top-5 message when the shop's health drops below 85."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from health.checks import load_checks
from health.store import HealthStore
from health.sweeper import Sweeper
from orderguard.access import Role
from orderguard.fulfilment import FulfilmentLog
from orderguard.ingest.orderlog import OrderLog
from serving.app import create_app
from serving.health_watch import HealthMonitor, monitor_status
from tests.factories import EventFactory, FixedClock, api_key, free_port
from tests.health.kit import T0, healthy_steps, paid_order
from tests.health.shop import NOW, Shop, fill
from tests.serving.test_notify import CALLBACK_SECRET, DING_SECRET, DING_TOKEN, Receiver

Headers = dict[Role, dict[str, str]]


def _headers(settings: Settings) -> Headers:
    return {role: {"Authorization": f"Bearer {api_key(settings.database_url, role.value, name=role.value)}"}
            for role in Role}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Headers, Shop]]:
    settings = Settings(data_dir=tmp_path, health={"enabled": False}, scoring={"warm_start": False})
    shop = fill(settings)
    headers = _headers(settings)
    with TestClient(create_app(settings, clock=FixedClock(NOW))) as client:
        yield client, headers, shop


def _report(**fields: Any) -> dict[str, Any]:
    return {"channel": "site", "order_id": "A1", "kind": "out_scan", "event_id": "wms-1",
            "time": "2024-11-11T18:02:11+08:00", "source": "wms", **fields}


def test_reports_are_stored_once_and_a_changed_repeat_is_a_conflict(
        served: tuple[TestClient, Headers, Shop]) -> None:
    client, headers, _ = served

    def post(body: object, **params: str) -> Any:
        return client.post("/v1/fulfilment", json=body, params=params, headers=headers[Role.ORDER_SYSTEM])

    first = post(_report())
    assert first.status_code == 200 and first.json()["inserted"] == 1
    again = post(_report())
    assert again.status_code == 200 and (again.json()["inserted"], again.json()["duplicates"]) == (0, 1)
    changed = post(_report(node="moved"))
    assert changed.status_code == 409 and changed.json()["field"] == "event_id"
    bad = post(_report(kind="teleported"))
    assert bad.status_code == 422 and bad.json()["field"] == "kind"
    batch = post([_report(event_id="wms-2"), _report(time="never"), _report(node="moved")])
    body = batch.json()
    assert batch.status_code == 207 and body["inserted"] == 1 and body["conflicts"] == 1
    assert [(e["position"], e["field"]) for e in body["errors"]] == [(1, "time"), (2, "event_id")]
    atomic = post([_report(event_id="wms-3"), _report(time="never")], atomic="true")
    assert atomic.status_code == 422 and atomic.json()["inserted"] == 0
    too_many = post([_report(event_id=f"x{i}") for i in range(1001)])
    assert too_many.status_code == 422 and too_many.json()["field"] == "body"
    kept = client.get("/v1/health/orders/site/A1", headers=headers[Role.OPERATIONS]).json()
    assert [(e["what"], e["detail"]) for e in kept["entries"]] == [("out_scan", ""), ("out_scan", "")]


def test_only_the_order_system_reports_and_only_operations_read(served: tuple[TestClient, Headers, Shop]) -> None:
    client, headers, shop = served
    reads = ("/v1/health", "/v1/health/findings",
             f"/v1/health/orders/{shop.lost_callback.channel.value}/{shop.lost_callback.channel_order_id}")
    for role in Role:
        wrote = client.post("/v1/fulfilment", json=_report(event_id=f"r-{role.value}"), headers=headers[role])
        assert wrote.status_code == (200 if role in (Role.ORDER_SYSTEM, Role.ADMIN) else 403), role
        for path in reads:
            read = client.get(path, headers=headers[role])
            assert read.status_code == (200 if role in (Role.OPERATIONS, Role.ADMIN) else 403), (role, path)
    assert client.get("/v1/health").status_code == 401
    assert client.post("/v1/fulfilment", json=_report()).status_code == 401


def test_the_summary_findings_and_an_orders_timeline(served: tuple[TestClient, Headers, Shop]) -> None:
    client, headers, shop = served
    ops = headers[Role.OPERATIONS]
    summary = client.get("/v1/health", headers=ops).json()
    assert summary["taken_at"] == NOW.isoformat().replace("+00:00", "Z") and summary["orders"] == 8
    assert summary["tiers"]["red"] == 1 and summary["alert_below"] == 85
    assert summary["worst"][0]["order_key"] == str(shop.lost_callback) and summary["worst"][0]["score"] == 45
    assert len(summary["history"]) > 100 and summary["history"][-1][1] == summary["overall"]
    findings = client.get("/v1/health/findings", headers=ops).json()
    assert [f["check_id"] for f in findings] == ["address_incomplete", "payment_callback", "erp_sync",
                                                  "inventory_lock", "out_scan"]
    assert findings[1]["text"] == "已付款但未收到支付网关回调"
    warehouse = client.get("/v1/health/findings", params={"stage": "warehouse"}, headers=ops).json()
    assert [(f["order_key"], f["check_id"]) for f in warehouse] == [(str(shop.stuck_in_warehouse), "out_scan")]
    stuck = shop.stuck_in_warehouse
    order = client.get(f"/v1/health/orders/site/{stuck.channel_order_id}", headers=ops).json()
    assert [e["what"] for e in order["entries"]] == ["paid", "payment_callback", "erp_sync", "inventory_lock",
                                                     "waybill_printed"]
    assert [f["check_id"] for f in order["failing"]] == ["out_scan"] and order["score"] == 90
    assert [f["check_id"] for f in order["findings"]] == ["out_scan"]
    assert client.get("/v1/health/orders/site/nope", headers=ops).status_code == 404
    assert client.get("/healthz").json()["dependencies"]["order_health"] == "off"  # disabled in this fixture
    assert client.get("/v1/health/orders/ebay/1", headers=ops).status_code == 404


def test_the_live_monitor_pauses_red_orders_and_tells_the_robot_when_health_drops(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clock = FixedClock(T0 - timedelta(minutes=1))
    settings = Settings(
        data_dir=tmp_path, scoring={"warm_start": False},
        health={"sweep_every": "1s"},
        alerts={"receivers": [{"kind": "dingtalk", "url": f"{base}/dingtalk/robot/send?access_token={DING_TOKEN}",
                               "secret": DING_SECRET}],
                "base_url": "https://risk.shop.example",
                "order_system_callback": f"{base}/orders/callback", "callback_secret": CALLBACK_SECRET,
                "delivery": {"poll_s": 0.05, "timeout_s": 2.0}})
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
    headers = _headers(settings)
    receiver = Receiver(port, now=clock.now)
    receiver.start()
    events = EventFactory(prefix="P")
    lost = [paid_order(events) for _ in range(5)]
    fine = [paid_order(events) for _ in range(7)]
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            with OrderLog.open(settings.database_url) as log:  # the orders arrive through another process
                log.append([e for order in lost + fine for e in order])
            for order in fine:
                body = [s.to_dict() for s in healthy_steps(order[0].key, T0)[:3]]
                assert client.post("/v1/fulfilment", json=body, headers=headers[Role.ORDER_SYSTEM]).json()[
                    "inserted"] == 3
            clock.current = T0 + timedelta(hours=1)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                summary = client.get("/v1/health", headers=headers[Role.OPERATIONS]).json()
                if summary["taken_at"] is not None and summary["taken_at"].startswith("2024-11-11T03:00"):
                    break
                time.sleep(0.1)
            assert client.get("/healthz").json()["dependencies"]["order_health"] == "ok"
            assert summary["tiers"]["red"] == 5 and summary["overall"] == pytest.approx((5 * 45 + 7 * 100) / 12,
                                                                                        abs=0.01)
            while time.monotonic() < deadline and len(receiver.received) < 7:
                time.sleep(0.1)
            stored = FulfilmentLog(client.app.state.services.order_log.engine).count()  # type: ignore[attr-defined]
            assert stored == 21
    finally:
        receiver.stop()
    kinds = sorted(kind for kind, _ in receiver.received)
    assert kinds == ["callback"] * 5 + ["dingtalk"] * 2, receiver.refused
    texts = [body["markdown"]["text"] for kind, body in receiver.received if kind == "dingtalk"]
    digest = next(t for t in texts if "整体健康度" in t)
    assert "低于 85" in digest and all(str(o[0].key) in digest for o in lost)
    assert not any(str(o[0].key) in digest for o in fine)
    red = next(t for t in texts if "整体健康度" not in t)
    assert "5 个订单进入红色" in red
    paused = [body for kind, body in receiver.received if kind == "callback"]
    assert {p["order_key"] for p in paused} == {str(o[0].key) for o in lost}
    assert {p["action"] for p in paused} == {"pause_fulfilment"}


def test_a_monitor_that_stopped_sweeping_makes_the_service_degraded(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, health={"sweep_every": "10s"})
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
    monitor = HealthMonitor(config=load_checks(), steps=FulfilmentLog(log.engine), store=HealthStore(log.engine),
                            sweeper=Sweeper(load_checks()))
    assert monitor_status(monitor, settings) == "starting"
    monitor.swept_monotonic = time.monotonic() - 30
    assert monitor_status(monitor, settings) == "ok"
    monitor.swept_monotonic = time.monotonic() - 61  # three intervals and half a minute
    assert monitor_status(monitor, settings) == "stale"
    assert monitor_status(None, settings) == "off"
