"""Crash consistency with real processes: kill -9 under load, restart, nothing acknowledged is lost.

A real ``orderguard serve`` (SQLite order log, SQLite online store) takes a mixed
load of ingests, scores and labels from a few threads; it is killed with SIGKILL
mid-load and started again on the same data. Every acknowledged order must be in the
order log exactly once and applied to the online features exactly once after the
restart (the warm start replays the log); every acknowledged label must be in its history.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from features.facts import Entity, FactKind
from features.stores import RangeQuery, SqliteStoreConfig
from tests.factories import api_key, free_port, stored
from tests.processes import serve_process
from tests.serving.test_labels_api import site_order


def serving(data: Path, port: int) -> AbstractContextManager[subprocess.Popen[bytes]]:
    return serve_process(data, port, env={"ORDERGUARD_FEATURES__STORE__TYPE": "sqlite"})


def test_kill_9_under_load_loses_and_duplicates_nothing_acknowledged(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {api_key(f'sqlite:///{tmp_path}/orderguard.db', 'order_system', 'reviewer')}"}
    acked_orders: set[str] = set()
    acked_labels: set[str] = set()
    stop = threading.Event()
    lock = threading.Lock()

    def load(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=5, headers=auth) as client:
            i = 0
            while not stop.is_set():
                order_id = f"K{worker}x{i}"
                i += 1
                try:
                    if i % 2:
                        response = client.post("/v1/orders/site", json=site_order(order_id, minutes=i)["payload"])
                    else:
                        response = client.post("/v1/score", json=site_order(order_id, minutes=i))
                    if response.status_code == 200:
                        with lock:
                            acked_orders.add(order_id)
                        if i % 5 == 0:
                            labelled = client.post("/v1/labels", json={
                                "order": {"channel": "site", "order_id": order_id}, "verdict": "confirmed_fraud",
                                "labeled_at": "2024-11-14T06:00:00Z"})
                            if labelled.status_code == 201:
                                with lock:
                                    acked_labels.add(order_id)
                except httpx.HTTPError:
                    return  # the server died under us

    with serving(tmp_path, port) as process:
        workers = [threading.Thread(target=load, args=(w,)) for w in range(3)]
        for w in workers:
            w.start()
        time.sleep(4)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        stop.set()
        for w in workers:
            w.join()
    assert len(acked_orders) > 20 and acked_labels
    with serving(tmp_path, port), httpx.Client(base_url=base, timeout=5, headers=auth) as client:
        health = client.get("/healthz").json()
        assert health["status"] == "ok"
        # every acknowledged order is there, once (an order has one row; events are per version)
        assert health["orders"] >= len(acked_orders) and health["events"] == health["orders"]
        for order_id in sorted(acked_orders):
            history = client.get(f"/v1/labels/site/{order_id}")
            assert history.status_code == 200, (order_id, history.text)
            if order_id in acked_labels:
                assert len(history.json()["history"]) == 1
        orders = health["orders"]
    # every stored order is applied to the durable online store, once: one order fact per order on the device
    store = SqliteStoreConfig().open(tmp_path)
    try:
        (device,) = store.fetch([RangeQuery(Entity.DEVICE, stored("device", "dev-1"), FactKind.ORDER, 0, 2**62)])
        assert len(device.facts) == len({f.fact_id for f in device.facts}) == orders
    finally:
        store.close()
