"""An acknowledged order is stored and applied to the online features, or kept until the store answers;
a retry gets to the same state as a first success.

The failure is injected between the two steps (the online store fails once while the
order log has already committed), as a stalled or restarted Redis would. A real
Redis outage is in ``test_redis_outage``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from features.facts import Entity
from features.settings import Settings
from orderguard.errors import ServiceUnavailableError
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.ingest.orderlog import OrderLog
from orderguard.ingest.service import parse_payload
from orderguard.labels import LabelLog
from serving.engine import build_engine
from serving.services import warm_start
from tests.factories import FixedClock, api_client, stored
from tests.serving.test_labels_api import NOW, T0, site_order

DEVICE_COUNT = "count_orders_by_device_1h"
DEV_1 = stored("device", "dev-1")  # the device as ingest stores it
FRAUD_ON_DEVICE = "distinct_orders_fraud_by_device_90d"


def _fail_once(target: Any, name: str) -> Callable[[], None]:
    """Make ``target.name`` raise once (the online store is unavailable), then behave again."""
    real = getattr(target, name)
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ServiceUnavailableError("the online feature store is unavailable", field=None)
        return real(*args, **kwargs)

    setattr(target, name, flaky)
    return lambda: setattr(target, name, real)


def test_an_ingest_retried_after_a_store_failure_counts_once(settings: Settings) -> None:
    with api_client(settings, clock=FixedClock(NOW), raise_server_exceptions=False) as client:
        online = client.app.state.services.engine.online  # type: ignore[attr-defined]
        for i in range(5):
            assert client.post("/v1/orders/site", json=site_order(f"D{i}", minutes=i)["payload"]).status_code == 200
        sixth = site_order("D5", minutes=5)["payload"]
        restore = _fail_once(online.store, "apply")
        failed = client.post("/v1/orders/site", json=sixth)
        restore()
        assert failed.status_code == 200, failed.text  # stored, and kept for the store by the engine
        assert failed.json()["degraded"] is True and "degraded" in failed.json()["note"]
        assert online.pending == 1
        retried = client.post("/v1/orders/site", json=sixth)
        assert retried.status_code == 200, retried.text
        assert retried.json()["items"][0]["outcome"] == "duplicate"  # the log kept it the first time
        assert client.post("/v1/orders/site", json=sixth).status_code == 200  # and again: still once
        assert online.pending == 0
        at = T0.replace(minute=10)
        assert online.lookup({Entity.DEVICE: [DEV_1]}, as_of=at)[DEVICE_COUNT] == 6


def test_a_label_posted_during_a_store_failure_counts_once_the_store_answers(settings: Settings) -> None:
    with api_client(settings, clock=FixedClock(NOW), raise_server_exceptions=False) as client:
        online = client.app.state.services.engine.online  # type: ignore[attr-defined]
        for i in range(2):
            assert client.post("/v1/orders/site", json=site_order(f"L{i}", minutes=i)["payload"]).status_code == 200
        verdict = {"order": {"channel": "site", "order_id": "L0"}, "verdict": "confirmed_fraud",
                   "labeled_at": (T0 + timedelta(minutes=3)).isoformat()}
        restore = _fail_once(online.store, "apply")
        posted = client.post("/v1/labels", json=verdict)
        restore()
        assert posted.status_code == 201, posted.text
        assert posted.json()["degraded"] is True
        again = client.post("/v1/labels", json=verdict)  # a retry: stored once, and now applied
        assert again.status_code == 200 and again.json()["duplicates"] == 1 and again.json()["degraded"] is False
        at = T0.replace(minute=10)
        assert online.pending == 0
        assert online.lookup({Entity.DEVICE: [DEV_1]}, as_of=at)[FRAUD_ON_DEVICE] == 1


def test_a_score_retried_after_a_store_failure_counts_once(settings: Settings) -> None:
    with api_client(settings, clock=FixedClock(NOW), raise_server_exceptions=False) as client:
        online = client.app.state.services.engine.online  # type: ignore[attr-defined]
        for i in range(5):
            assert client.post("/v1/score", json=site_order(f"S{i}", minutes=i)).status_code == 200
        restore = _fail_once(online.store, "apply")
        degraded = client.post("/v1/score", json=site_order("S5", minutes=5))
        restore()
        assert degraded.status_code == 200, degraded.text
        assert degraded.json()["degraded"] is True  # answered by the rules, without the device's history
        retried = client.post("/v1/score", json=site_order("S5", minutes=5))
        assert retried.status_code == 200 and retried.json()["replayed"] is True
        normal = client.post("/v1/score", json=site_order("S6", minutes=6)).json()
        assert normal["replayed"] is False and normal["degraded"] is False
        at = T0.replace(minute=10)
        assert online.lookup({Entity.DEVICE: [DEV_1]}, as_of=at)[DEVICE_COUNT] == 7  # S5 caught up, once


def test_a_restart_applies_what_a_crash_stored_but_did_not_apply(tmp_path: Path) -> None:
    """The order log committed the last order, the persistent store never saw it (killed in between)."""
    settings = Settings(data_dir=tmp_path, features={"store": {"type": "sqlite"}})
    log = OrderLog.open(settings.database_url)
    engine = build_engine(settings, clock=FixedClock(NOW))
    try:
        payloads = [site_order(f"C{i}", minutes=i)["payload"] for i in range(4)]
        with api_client(settings, clock=FixedClock(NOW)) as client:
            for payload in payloads[:3]:
                assert client.post("/v1/orders/site", json=payload).status_code == 200
        ctx = ParseContext(received_at=NOW, hasher=PiiHasher(settings.pii.hash_key.get_secret_value().encode()))
        log.append([parse_payload(get_adapter("site"), payloads[3], ctx=ctx)])  # stored, never applied
        at = T0.replace(minute=10)
        assert engine.online.lookup({Entity.DEVICE: [DEV_1]}, as_of=at)[DEVICE_COUNT] == 3
        warmed = warm_start(engine, log, LabelLog(log.engine))
        assert warmed.orders >= 1
        assert engine.online.lookup({Entity.DEVICE: [DEV_1]}, as_of=at)[DEVICE_COUNT] == 4
        warm_start(engine, log, LabelLog(log.engine))  # again: nothing counts twice
        assert engine.online.lookup({Entity.DEVICE: [DEV_1]}, as_of=at)[DEVICE_COUNT] == 4
    finally:
        engine.close()
        log.close()
