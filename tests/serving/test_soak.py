"""A soak: a real ``orderguard serve`` under a fixed open-loop rate of mixed requests for a minute, 0 errors.

Open loop: requests leave on a fixed schedule whatever the answers' speed (as an order
system's traffic does), so a slow service shows up as queueing, not as a politely
slower client. The rate and the latencies are printed for the record, never asserted;
what is asserted is that every request got a 2xx and every acknowledged order is
stored once. ``ORDERGUARD_TEST_SOAK_S`` and ``ORDERGUARD_TEST_SOAK_RATE`` change the
length (default 60 s) and the rate (default 40 requests/s, well below capacity).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx

from tests.factories import api_key, free_port
from tests.processes import serve_process
from tests.serving.test_labels_api import T0, site_order


def _request(i: int) -> tuple[str, object]:
    """The i-th request of the mix: 7 in 10 scores, 2 ingests, 1 label on an earlier order."""
    order = site_order(f"S{i}", minutes=(i % 6000) / 100, device=f"dev-{i % 37}")
    kind = i % 10
    if kind < 7:
        return "/v1/score", order
    if kind < 9:
        return "/v1/orders/site", order["payload"]
    return "/v1/labels", {"order": {"channel": "site", "order_id": f"S{i - 1}"}, "verdict": "false_positive",
                          "labeled_at": (T0 + timedelta(hours=2)).isoformat()}


async def _soak(base: str, *, key: str, rate: float, seconds: float
                ) -> tuple[Counter[int], list[float], float, list[str]]:
    statuses: Counter[int] = Counter()
    failures: list[str] = []  # what each request that got no answer met, for the assertion's message
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits,
                                 headers={"Authorization": f"Bearer {key}"}) as client:

        async def one(i: int) -> None:
            path, body = _request(i)
            if path == "/v1/labels":  # a reviewer labels an order the service has answered for, never before
                await asyncio.shield(tasks[i - 1])
            sent = time.perf_counter()
            try:
                response = await client.post(path, json=body)
                statuses[response.status_code] += 1
            except httpx.HTTPError as e:
                statuses[0] += 1
                failures.append(f"{path} #{i}: {type(e).__name__}: {e}")
            latencies.append(time.perf_counter() - sent)

        start = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return statuses, latencies, elapsed, failures


def test_a_minute_at_a_fixed_open_loop_rate_answers_every_request(tmp_path: Path) -> None:
    seconds = float(os.environ.get("ORDERGUARD_TEST_SOAK_S", "60"))
    rate = float(os.environ.get("ORDERGUARD_TEST_SOAK_RATE", "40"))
    port = free_port()
    key = api_key(f"sqlite:///{tmp_path}/orderguard.db", "order_system", "reviewer")
    with serve_process(tmp_path, port):
        statuses, latencies, elapsed, failures = asyncio.run(_soak(f"http://127.0.0.1:{port}", key=key, rate=rate,
                                                         seconds=seconds))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            health = client.get("/healthz").json()
    sent = int(rate * seconds)
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"soak: {sent} requests at {rate:g}/s over {elapsed:.1f} s; answers {dict(statuses)}; "
          f"p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    assert set(statuses) <= {200, 201}, (statuses, failures)
    orders = sum(1 for i in range(sent) if i % 10 < 9)
    assert health["orders"] == health["events"] == orders  # every acknowledged order, once
