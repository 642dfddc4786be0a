"""PostgreSQL restarted under load: requests answered 503 (with Retry-After) while it is down succeed on retry,
and every acknowledged order is stored once and counted once.

Real processes: a throwaway PostgreSQL cluster of the test's own (the shared one serves
other tests), a real ``orderguard serve`` on it, client threads retrying as an order
system would.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Channel, OrderKey
from scoring.records import ScoreLog
from tests.factories import api_key, free_port
from tests.processes import postgres_process, serve_process
from tests.serving.test_labels_api import site_order

DEVICE_COUNT = "count_orders_by_device_1h"
WORKERS = 3
ORDERS_EACH = 60


def _post_until_done(client: httpx.Client, path: str, body: object, statuses: Counter[int]) -> httpx.Response:
    """POST, retrying a 503 or a refused connection for up to 60 s, as the order system's client does."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = client.post(path, json=body)
        except httpx.TransportError:
            statuses[0] += 1
        else:
            statuses[response.status_code] += 1
            if response.status_code != 503:
                return response
            assert response.headers.get("retry-after") == "1"
        assert time.monotonic() < deadline, f"{path} did not succeed within 60 s"
        time.sleep(0.1)


def test_a_postgres_restart_mid_load_is_retried_and_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    started = threading.Barrier(WORKERS + 1)

    failures: list[str] = []

    def load(worker: int) -> None:
        local: Counter[int] = Counter()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=auth) as client:
                started.wait()
                for i in range(ORDERS_EACH):
                    order = site_order(f"P{worker}x{i}", minutes=i * 0.5, device=f"dev-{worker}")
                    if i % 2:
                        response = _post_until_done(client, "/v1/orders/site", order["payload"], local)
                    else:
                        response = _post_until_done(client, "/v1/score", order, local)
                    assert response.status_code == 200, response.text
                    time.sleep(0.02)
        except BaseException as e:  # noqa: BLE001 - a thread's failure must fail the test, not just end the thread
            with lock:
                failures.append(f"worker {worker}: {e!r}")
        finally:
            with lock:
                statuses.update(local)

    auth: dict[str, str] = {}
    with postgres_process() as pg:
        auth["Authorization"] = f"Bearer {api_key(pg.url, 'order_system')}"  # before the service reads its keys
        with serve_process(tmp_path / "data", port, env={"ORDERGUARD_DATABASE__URL": pg.url}):
            workers = [threading.Thread(target=load, args=(w,)) for w in range(WORKERS)]
            for w in workers:
                w.start()
            started.wait()
            time.sleep(0.5)
            pg.stop("fast")  # open transactions roll back, connections drop
            time.sleep(1.5)
            pg.start()
            for w in workers:
                w.join()
            assert not failures, failures
            assert statuses[503] + statuses[0] > 0, "the restart never met a request: the test proved nothing"
            assert set(statuses) <= {200, 503, 0}, statuses  # never a 500
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=auth) as client:
                finals = [_post_until_done(client, "/v1/score", site_order(f"P{w}xEND", minutes=40, device=f"dev-{w}"),
                                           Counter()) for w in range(WORKERS)]
                assert all(f.status_code == 200 for f in finals)
            log = OrderLog.open(pg.url)
            try:
                assert log.count_orders() == log.count_events() == WORKERS * (ORDERS_EACH + 1)  # each stored once
                scores = ScoreLog(log.engine)
                for n in range(WORKERS):
                    record = scores.latest(OrderKey(Channel.SITE, f"P{n}xEND"))
                    assert record is not None
                    # every order of the device within the hour counted once: the load's and the final one
                    in_hour = sum(1 for i in range(ORDERS_EACH) if i * 0.5 > 40 - 60) + 1
                    assert record.features[DEVICE_COUNT] == in_hour
            finally:
                log.close()
        print(f"answers during the restart (0 = connection refused): {dict(statuses)}")
