"""Degraded, not down: with the Redis feature store unreachable the service starts, scores by the rules
on the order's own attributes (flagged), and says so in /healthz; the store's breaker fails fast.

The unreachable server is real: a port on this machine where nothing listens.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from features.facts import Entity
from features.online import OnlineFeatures
from features.settings import Settings
from features.specs import FeatureSet
from features.stores import RedisStore, RedisStoreConfig
from orderguard.errors import ServiceUnavailableError
from tests.factories import FixedClock, api_client, free_port, make_order, stored
from tests.serving.test_labels_api import NOW, T0, site_order

DEVICE_COUNT = "count_orders_by_device_1h"
DEV_1 = stored("device", "dev-1")  # the device as ingest stores it


def dead_redis_url() -> str:
    """A Redis URL on a local port nobody listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


def test_the_breaker_fails_fast_after_a_failure_and_tries_again_after_its_cooldown(redis_url: str) -> None:
    dead = RedisStore(dead_redis_url(), timeout_s=0.5, cooldown_s=60)
    with pytest.raises(ServiceUnavailableError, match="failed"):
        dead.size()
    with pytest.raises(ServiceUnavailableError, match="is unavailable \\(last error"):
        dead.size()  # the breaker answers; the network is not tried
    eager = RedisStore(dead_redis_url(), timeout_s=0.5, cooldown_s=0)
    for _ in range(2):
        with pytest.raises(ServiceUnavailableError, match="failed"):
            eager.size()  # no cooldown: every call tries the server
    alive = RedisStore(redis_url, prefix=f"og:test:breaker:{uuid.uuid4().hex}")
    try:
        assert alive.size() == 0
    finally:
        alive.close()


def test_an_unreachable_store_degrades_scoring_instead_of_failing_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path,
                        features={"store": RedisStoreConfig(url=dead_redis_url(), timeout_s=0.2, cooldown_s=30)})
    with api_client(settings, clock=FixedClock(NOW), raise_server_exceptions=False) as client:
        health = client.get("/healthz").json()
        assert health["status"] == "degraded"
        assert health["dependencies"]["order_log"] == "ok"
        assert health["dependencies"]["feature_store"].startswith("unavailable: Redis feature store")
        for i in range(3):
            scored = client.post("/v1/score", json=site_order(f"G{i}", minutes=i))
            assert scored.status_code == 200, scored.text
            body = scored.json()
            assert body["degraded"] is True and body["rules_only"] is True
            assert "degraded" in body["note"]
        # ingest is stored and answered; the engine keeps the order until the store answers (test_redis_outage)
        ingested = client.post("/v1/orders/site", json=site_order("G9")["payload"])
        assert ingested.status_code == 200, ingested.text
        assert ingested.json()["degraded"] is True
        health = client.get("/healthz").json()
        assert health["orders"] == 4  # the log kept every order
        assert health["dependencies"]["feature_store"].endswith("; 4 orders and labels wait to be applied")


def test_a_redis_that_comes_back_empty_is_noticed_and_re_warmed(tmp_path: Path, redis_url: str) -> None:
    prefix = f"og:test:rewarm:{uuid.uuid4().hex}"
    settings = Settings(data_dir=tmp_path, features={"store": RedisStoreConfig(url=redis_url, prefix=prefix),
                                                     "state_check_s": 0.1})
    try:
        with api_client(settings, clock=FixedClock(NOW)) as client:
            for i in range(4):
                assert client.post("/v1/orders/site", json=site_order(f"W{i}", minutes=i)["payload"]).status_code == 200
            services = client.app.state.services  # type: ignore[attr-defined]
            at = T0.replace(minute=10)
            assert services.engine.online.lookup({Entity.DEVICE: [DEV_1]}, as_of=at)[DEVICE_COUNT] == 4
            time.sleep(0.3)  # the watcher has met the store's generation marker
            wiper = RedisStore(redis_url, prefix=prefix)  # what a Redis restarted without persistence looks like
            wiper.clear()
            wiper.close()
            deadline = time.monotonic() + 10
            while services.store_state.rewarms == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert services.store_state.rewarms == 1
            assert services.engine.online.lookup({Entity.DEVICE: [DEV_1]}, as_of=at)[DEVICE_COUNT] == 4
            assert client.get("/healthz").json()["dependencies"]["feature_store"] == "ok"
    finally:
        cleaner = RedisStore(redis_url, prefix=prefix)
        cleaner.clear()
        cleaner.close()


def test_a_batch_the_store_cannot_take_waits_whole_in_the_backlog_and_moves_no_watermark() -> None:
    """Scoring a batch plans each order's watermark before the store is called; when the store fails,
    nothing of that plan stays, and every order of the batch waits to be applied."""
    engine = OnlineFeatures(RedisStore(dead_redis_url(), timeout_s=0.2, cooldown_s=30),
                            FeatureSet.from_data({"features": [
                                {"entity": "device", "field": "orders", "agg": "count", "window": "1h"}]}))
    orders = [make_order(f"B{i}", created_at=T0 + timedelta(minutes=i)) for i in range(3)]
    got = engine.apply_and_lookup_many([(o, o.details.created_at) for o in orders])
    assert all(isinstance(outcome, ServiceUnavailableError) for outcome in got)
    assert engine.watermark is None
    assert engine.pending == 3
