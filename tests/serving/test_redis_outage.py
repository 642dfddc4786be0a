"""A real Redis feature store paused, killed and restarted under a running service.

The service keeps answering: scores by the rules (``degraded``), writes stored and
kept by the engine; a stall holds neither the event loop nor ``/healthz``; once Redis
answers again everything accepted during the outage counts exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from features.facts import Entity
from features.settings import Settings
from features.stores import RedisStoreConfig
from tests.factories import FixedClock, api_client, stored
from tests.processes import RedisProcess, redis_process
from tests.serving.test_labels_api import NOW, T0, site_order

DEVICE_COUNT = "count_orders_by_device_1h"
DEV_1 = stored("device", "dev-1")  # the device as ingest stores it
FRAUD_ON_DEVICE = "distinct_orders_fraud_by_device_90d"


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    with redis_process() as server:
        yield server


def _client(tmp_path: Path, server: RedisProcess, **store: float) -> TestClient:
    settings = Settings(data_dir=tmp_path, features={"store": RedisStoreConfig(url=server.url, **store),
                                                     "state_check_s": 0.1})
    return api_client(settings, clock=FixedClock(NOW), raise_server_exceptions=False)


def _until(condition: Callable[[], bool], *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the service did not get there in time"
        time.sleep(0.05)


def _store_ok(client: TestClient) -> bool:
    return bool(client.get("/healthz").json()["dependencies"]["feature_store"] == "ok")


def test_a_stalled_redis_holds_neither_the_event_loop_nor_other_requests(tmp_path: Path,
                                                                          redis_server: RedisProcess) -> None:
    with _client(tmp_path, redis_server, timeout_s=3, cooldown_s=30) as client:
        assert client.post("/v1/score", json=site_order("P0")).json()["degraded"] is False
        redis_server.pause()
        try:
            waiting = threading.Event()
            slow: dict[str, httpx.Response] = {}

            def score() -> None:
                slow["response"] = client.post("/v1/score", json=site_order("P1", minutes=1))
                waiting.set()

            worker = threading.Thread(target=score)
            worker.start()
            time.sleep(0.3)  # the score now waits on the paused server, up to its 3 s timeout
            model = client.get("/v1/model")
            answered_meanwhile = not waiting.is_set()
            worker.join()
        finally:
            redis_server.resume()
        assert model.status_code == 200
        assert answered_meanwhile, "a request that needs no Redis waited for the stalled one"
        assert slow["response"].status_code == 200
        assert slow["response"].json()["degraded"] is True


def test_what_an_outage_accepted_counts_once_redis_answers_again(tmp_path: Path,
                                                                 redis_server: RedisProcess) -> None:
    with _client(tmp_path, redis_server, timeout_s=0.3, cooldown_s=0.2) as client:
        for i in range(3):
            assert client.post("/v1/orders/site", json=site_order(f"O{i}", minutes=i)["payload"]).json()[
                "degraded"] is False
        redis_server.pause()
        try:
            for i in range(3, 6):
                ingested = client.post("/v1/orders/site", json=site_order(f"O{i}", minutes=i)["payload"])
                assert ingested.status_code == 200, ingested.text
                assert ingested.json()["degraded"] is True
            scored = client.post("/v1/score", json=site_order("O6", minutes=6))
            assert scored.status_code == 200 and scored.json()["degraded"] is True
            labelled = client.post("/v1/labels", json={
                "order": {"channel": "site", "order_id": "O0"}, "verdict": "confirmed_fraud",
                "labeled_at": (T0 + timedelta(minutes=7)).isoformat()})
            assert labelled.status_code == 201 and labelled.json()["degraded"] is True
            health = client.get("/healthz").json()
            assert health["status"] == "degraded"
            assert "wait to be applied" in health["dependencies"]["feature_store"]
        finally:
            redis_server.resume()
        _until(lambda: _store_ok(client))  # the service's watcher applies what it kept
        online = client.app.state.services.engine.online  # type: ignore[attr-defined]
        features = online.lookup({Entity.DEVICE: [DEV_1]}, as_of=T0 + timedelta(minutes=10))
        assert features[DEVICE_COUNT] == 7
        assert features[FRAUD_ON_DEVICE] == 1


def test_a_redis_killed_and_restarted_empty_is_refilled_with_what_came_meanwhile(
        tmp_path: Path, redis_server: RedisProcess) -> None:
    with _client(tmp_path, redis_server, timeout_s=0.3, cooldown_s=0.2) as client:
        for i in range(3):
            assert client.post("/v1/orders/site", json=site_order(f"K{i}", minutes=i)["payload"]).status_code == 200
        redis_server.kill()
        for i in range(3, 5):
            ingested = client.post("/v1/orders/site", json=site_order(f"K{i}", minutes=i)["payload"])
            assert ingested.status_code == 200 and ingested.json()["degraded"] is True
        assert client.get("/healthz").json()["status"] == "degraded"
        redis_server.start()  # empty: no persistence
        _until(lambda: _store_ok(client) and client.app.state.services.store_state.rewarms == 1)  # type: ignore[attr-defined]
        online = client.app.state.services.engine.online  # type: ignore[attr-defined]
        assert online.lookup({Entity.DEVICE: [DEV_1]}, as_of=T0 + timedelta(minutes=10))[DEVICE_COUNT] == 5
        assert client.post("/v1/score", json=site_order("K5", minutes=5)).json()["degraded"] is False


def test_a_service_started_while_redis_is_down_warms_it_once_it_answers(tmp_path: Path,
                                                                        redis_server: RedisProcess) -> None:
    with _client(tmp_path, redis_server) as client:
        for i in range(3):
            assert client.post("/v1/orders/site", json=site_order(f"C{i}", minutes=i)["payload"]).status_code == 200
    redis_server.kill()
    with _client(tmp_path, redis_server, timeout_s=0.3, cooldown_s=0.2) as client:
        assert client.get("/healthz").json()["status"] == "degraded"
        assert client.post("/v1/score", json=site_order("C3", minutes=3)).json()["degraded"] is True
        redis_server.start()
        _until(lambda: _store_ok(client) and client.app.state.services.store_state.rewarms == 1)  # type: ignore[attr-defined]
        online = client.app.state.services.engine.online  # type: ignore[attr-defined]
        assert online.lookup({Entity.DEVICE: [DEV_1]}, as_of=T0 + timedelta(minutes=10))[DEVICE_COUNT] == 4
