"""No log line carries a whole phone number, id-card number, street address, device id or IP: a flow of ingests,
scores, labels and refused payloads is run with every logger at DEBUG and the captured text is scanned."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from features.settings import Settings
from tests.factories import api_client
from tests.serving.test_labels_api import site_order

ID_CARD = "110101199003071233"


def _order(order_id: str, minutes: int) -> dict[str, Any]:
    order = site_order(order_id, minutes=minutes, device=f"device-secret-{order_id}")
    order["payload"]["user"]["id_card"] = ID_CARD
    return order


def test_a_full_flow_logs_no_personal_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    orders = [_order(f"L{i}", i) for i in range(6)]
    secrets = {o["payload"]["user"]["phone"] for o in orders} | {ID_CARD}
    for order in orders:
        secrets |= {order["payload"]["address"]["detail"], order["payload"]["client"]["device_id"],
                    order["payload"]["client"]["ip"]}
    caplog.set_level(logging.DEBUG)
    with api_client(Settings(data_dir=tmp_path)) as client:
        for order in orders[:3]:
            assert client.post("/v1/orders/site", json=order["payload"]).status_code == 200
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
    text = caplog.text
    assert text  # the flow did log (start-up, warm start, model): the scan is not of nothing
    for secret in secrets:
        assert secret not in text, f"{secret!r} was logged"
