"""No log line carries a whole phone number, id-card number, street address, device id, IP, password, API key or
session cookie: a flow of ingests (by key and by signed push), scores, labels, sign-ins, order reads and refused
payloads is run with every logger at DEBUG and the captured text is scanned."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.ingest.webhooks import signed_request
from orderguard.settings import development_webhook_secret
from serving.web.session import SESSION_COOKIE
from tests.factories import api_client, sign_in, user
from tests.serving.test_labels_api import site_order

ID_CARD = "110101199003071233"
PASSWORD = "a password nobody logs"


def _push(client: TestClient, body: bytes, headers: dict[str, str]) -> Any:
    """``body`` pushed as the site's platform does: signed, without the client's API key."""
    anonymous = TestClient(client.app)
    return anonymous.post("/v1/orders/site", content=body, headers={"content-type": "application/json", **headers})


def _order(order_id: str, minutes: int) -> dict[str, Any]:
    order = site_order(order_id, minutes=minutes, device=f"device-secret-{order_id}")
    order["payload"]["user"]["id_card"] = ID_CARD
    return order


def test_a_full_flow_logs_no_personal_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    orders = [_order(f"L{i}", i) for i in range(6)]
    secrets = {o["payload"]["user"]["phone"] for o in orders} | {ID_CARD, PASSWORD}
    for order in orders:
        secrets |= {order["payload"]["address"]["detail"], order["payload"]["client"]["device_id"],
                    order["payload"]["client"]["ip"]}
    caplog.set_level(logging.DEBUG)
    settings = Settings(data_dir=tmp_path)
    user(settings.database_url, "alice", "reviewer", password=PASSWORD)
    with api_client(settings) as client:
        secrets.add(client.headers["Authorization"].removeprefix("Bearer "))
        for order in orders[:2]:
            assert client.post("/v1/orders/site", json=order["payload"]).status_code == 200
        body = json.dumps(orders[2]["payload"]).encode()
        headers, _ = signed_request("site", development_webhook_secret("site"), body, datetime.now(UTC))
        pushed = _push(client, body, headers)
        assert pushed.status_code == 200, pushed.text
        for order in orders[3:]:
            assert client.post("/v1/score", json=order).status_code == 200
        bad = _order("L9", 9)
        bad["payload"]["user"]["phone"] = bad["payload"]["user"]["phone"] + "12345"  # too long: refused
        bad["payload"]["user"]["id_card"] = ID_CARD[:-1] + "9"  # wrong check digit: refused
        assert client.post("/v1/orders/site", json=bad["payload"]).status_code == 422
        assert client.post("/v1/orders/site", json=[bad["payload"], orders[0]["payload"]]).status_code == 207
        label = {"order": {"channel": "site", "order_id": "L0"}, "verdict": "confirmed_fraud"}
        assert client.post("/v1/labels", json=label).status_code == 201
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/orders/site/L0").status_code == 200
        browser = TestClient(client.app, base_url="http://127.0.0.1")
        assert sign_in(browser, "alice", "a wrong password here").status_code == 401
        assert sign_in(browser, "alice", PASSWORD).status_code == 303
        secrets.add(browser.cookies[SESSION_COOKIE])
        assert browser.get("/v1/orders/site/L1").status_code == 200
    text = caplog.text
    assert text  # the flow did log (start-up, warm start, model): the scan is not of nothing
    for secret in secrets:
        assert secret not in text, f"{secret!r} was logged"
