"""Publishing a rule pack under load: requests per second and latency before, during and after the swap.

A real ``orderguard serve`` (one process, SQLite order log, memory online store, rules
only) in a temporary data folder takes ``POST /v1/score`` from ``--threads`` client
threads in a closed loop (keep-alive connections, a distinct new order per request).
After ``--phase`` seconds a new pack (the default pack with one rule's points changed)
is published over HTTP (``POST /v1/rules``); the load goes on for ``--phase`` seconds
after it. Each request is attributed to a phase by when it was sent: *before* the
publish was sent, *during* (from the publish until ``--phase`` / 2 s after it
answered: the swap and its aftermath), and *after*. Every request counts: a transport
error or any status but 200 is an error. The pack version each answer names shows the
swap: answers sent after the publish answered must all name the new version.

First, in-process (no HTTP): ``Scorer.score`` on three engines fed the same orders in
turn, without a versioned pack, with a served live pack, and with a shadow candidate,
so the cost of versioning and of a shadow run shows beside the unchanged path.

The machine is shared: absolute figures move with its load; compare the phases of one
run with each other.

Run: ``python -m bench.rules_reload [--phase 4] [--threads 4] [--port 8650]``; figures
print as a table and go to ``bench/results/rules_reload.json``.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from orderguard.heap import settled_heap
from orderguard.schema import Amounts, Channel, EventKind, OrderLine, OrderStatus
from scoring.rules import default_rules_path
from simulate.channels import encode
from simulate.plain import PlainAddress, PlainBuyer, PlainClient, PlainEvent

RESULTS = Path(__file__).parent / "results" / "rules_reload.json"
T0 = datetime(2024, 11, 12, 6, 0, tzinfo=UTC)
_encode = functools.partial(encode, secret=b"rules-reload")


def score_request(order_id: str, *, minutes: float = 0) -> dict[str, Any]:
    """``POST /v1/score``'s body for a new own-site order with its own phone, address and IP."""
    at = T0 + timedelta(minutes=minutes)
    n = zlib.crc32(order_id.encode())
    event = PlainEvent(
        channel=Channel.SITE, order_id=order_id, shop_id="shop-1", kind=EventKind.ORDER, status=OrderStatus.PAID,
        update_time=at, created_at=at, paid_at=at,
        buyer=PlainBuyer(account_id=f"acct-{order_id}", phone=f"139{n % 10**8:08d}",
                         registered_at=T0 - timedelta(days=400)),
        lines=(OrderLine(sku_id="LITTER-01", qty=1, unit_price_fen=5990, title="豆腐猫砂"),),
        amounts=Amounts(goods_fen=5990, paid_fen=5990),
        address=PlainAddress("浙江省", "杭州市", "西湖区", f"文三路 {order_id} 号", "张三"),
        client=PlainClient(device_id=f"dev-{n % 97}", ip=f"10.0.{n % 250}.{n // 250 % 250}"))
    return {"channel": "site", "payload": _encode(event)}


def changed_pack(points: int = 45) -> str:
    """The default pack with DEVICE_BURST_5M's points set to ``points`` (a typical edit)."""
    text = default_rules_path().read_text(encoding="utf-8")
    changed, n = re.subn(r"(- code: DEVICE_BURST_5M\n\s+points: )\d+", rf"\g<1>{points}", text)
    assert n == 1
    return changed


@dataclass(frozen=True, slots=True)
class Sample:
    """One request: when it was sent and answered (monotonic seconds), its status (None: transport error)."""

    order_id: str
    sent: float
    done: float
    status: int | None
    rules_version: str | None


@dataclass
class Load:
    """``threads`` client threads scoring new orders in a closed loop until :meth:`stop`."""

    base: str
    headers: dict[str, str]
    threads: int = 2
    prefix: str = "L"
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._workers = [threading.Thread(target=self._run, args=(w,), daemon=True) for w in range(self.threads)]
        for w in self._workers:
            w.start()

    def stop(self) -> list[Sample]:
        self._stop.set()
        for w in self._workers:
            w.join()
        return sorted(self.samples, key=lambda s: s.sent)

    def _run(self, worker: int) -> None:
        mine: list[Sample] = []
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=10) as client:
            i = 0
            while not self._stop.is_set():
                order_id = f"{self.prefix}{worker}x{i}"
                body = score_request(order_id, minutes=i / 10)
                i += 1
                sent = time.monotonic()
                try:
                    response = client.post("/v1/score", json=body)
                    status: int | None = response.status_code
                    version = response.json().get("rules_version") if status == 200 else None
                except httpx.HTTPError:
                    status, version = None, None
                mine.append(Sample(order_id, sent, time.monotonic(), status, version))
        with self._lock:
            self.samples.extend(mine)


def port_in(first: int = 8600, last: int = 8699) -> int:
    """A free local port in ``[first, last]``."""
    for port in range(first, last + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


@contextmanager
def serving(data: Path, port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``orderguard --data-dir data serve --port port`` in its own process group, ready; killed afterwards."""
    process = subprocess.Popen([sys.executable, "-c", "from cli import main; main()", "--data-dir", str(data),
                                "serve", "--port", str(port)], env={**os.environ, **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def make_key(data: Path, *roles: str) -> str:
    """An API key in the data folder's order log (as ``orderguard keys create`` makes it)."""
    from orderguard.access import Directory, parse_roles
    from orderguard.ingest.orderlog import OrderLog

    data.mkdir(parents=True, exist_ok=True)
    with OrderLog.open(f"sqlite:///{data}/orderguard.db") as log:
        _, secret = Directory(log.engine).create_key("bench", parse_roles(roles), now=datetime.now(UTC))
    return secret


def phase_stats(samples: list[Sample]) -> dict[str, float | int]:
    """Requests, requests per second (by send times), p50 / p99 latency in ms, errors."""
    if not samples:
        return {"requests": 0, "rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "errors": 0}
    latencies = sorted((s.done - s.sent) * 1000 for s in samples)
    span = max(max(s.done for s in samples) - min(s.sent for s in samples), 1e-9)
    return {"requests": len(samples), "rps": len(samples) / span,
            "p50_ms": latencies[len(latencies) // 2],
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "errors": sum(1 for s in samples if s.status != 200)}


def scorer_overhead(orders: int = 2000) -> dict[str, dict[str, float]]:
    """``Scorer.score`` in-process (memory store, rules only) on three engines fed the same new orders, in turn:
    no versioned pack (as before packs were versioned), a served live pack, and a served live pack with a shadow
    candidate (the live pack with one rule changed and its own bands). p50 / p99 in microseconds."""
    from dataclasses import replace

    from features.settings import Settings
    from orderguard.clock import SystemClock
    from orderguard.ingest.channels import get_adapter
    from orderguard.ingest.normalize import ParseContext, PiiHasher
    from orderguard.ingest.service import parse_payload
    from orderguard.ingest.state import derive_order
    from scoring.policy import Bands
    from scoring.rules import load_rules_text
    from scoring.scorer import ServedRules, ShadowCandidate
    from serving.engine import build_engine

    with tempfile.TemporaryDirectory(prefix="orderguard-scorer-") as folder:
        settings = Settings(data_dir=Path(folder))
        ctx = ParseContext(received_at=datetime.now(UTC), hasher=PiiHasher(b"bench"), limits=settings.ingest)
        adapter = get_adapter("site")
        stream = []
        for i in range(orders):
            order = derive_order([parse_payload(adapter, score_request(f"S{i}", minutes=i / 20)["payload"],
                                                ctx=ctx)])
            assert order is not None
            stream.append(order)
        engines = {name: build_engine(settings, clock=SystemClock()) for name in ("unversioned", "live", "shadow")}
        names = engines["live"].online.specs.names
        text = default_rules_path().read_text(encoding="utf-8")
        live = ServedRules(load_rules_text(text, source="live", known_features=names), "v1:live")
        engines["live"].scorer.served = live
        candidate = ShadowCandidate(load_rules_text(changed_pack(80), source="shadow", known_features=names),
                                    "v2:shadow", replace(engines["shadow"].scorer.policy, bands=Bands(30, 50, 75)))
        engines["shadow"].scorer.served = replace(live, shadow=candidate)
        timings: dict[str, list[float]] = {name: [] for name in engines}
        try:
            with settled_heap():  # as the service does after its warm start
                for order in stream:
                    for name, engine in engines.items():
                        started = time.perf_counter()
                        engine.scorer.score(order)
                        timings[name].append((time.perf_counter() - started) * 1e6)
        finally:
            for engine in engines.values():
                engine.close()
    warm = orders // 10  # the first orders fill caches and windows: not counted
    out = {}
    for name, values in timings.items():
        kept = sorted(values[warm:])
        out[name] = {"p50_us": kept[len(kept) // 2], "p99_us": kept[int(len(kept) * 0.99)]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", type=float, default=4.0, help="seconds of load before and after the publish")
    parser.add_argument("--threads", type=int, default=4, help="client threads (closed loop)")
    parser.add_argument("--port", type=int, default=None, help="port in 8600-8699 (default: a free one)")
    parser.add_argument("--scorer-orders", type=int, default=2000,
                        help="orders of the in-process Scorer.score comparison (0: skip it)")
    args = parser.parse_args()
    import json

    overhead = scorer_overhead(args.scorer_orders) if args.scorer_orders else {}
    for name, figures in overhead.items():
        print(f"Scorer.score, {name:<12} p50 {figures['p50_us']:8.1f} us   p99 {figures['p99_us']:8.1f} us")

    with tempfile.TemporaryDirectory(prefix="orderguard-rules-reload-") as folder:
        data = Path(folder)
        key = make_key(data, "order_system", "data_scientist")
        port = args.port or port_in()
        base = f"http://127.0.0.1:{port}"
        with serving(data, port):
            headers = {"Authorization": f"Bearer {key}"}
            before = httpx.get(f"{base}/v1/rules", headers=headers).json()["live"]["label"]
            load = Load(base, headers, threads=args.threads)
            load.start()
            time.sleep(args.phase)
            sent = time.monotonic()
            published = httpx.post(f"{base}/v1/rules", headers=headers, timeout=30,
                                   json={"text": changed_pack(), "note": "bench"})
            answered = time.monotonic()
            time.sleep(args.phase)
            samples = load.stop()
    assert published.status_code == 201, published.text
    after = published.json()["pack"]["label"]
    settle = answered + args.phase / 2
    phases = {"before": [s for s in samples if s.sent < sent],
              "during": [s for s in samples if sent <= s.sent < settle],
              "after": [s for s in samples if s.sent >= settle]}
    late_old = sum(1 for s in samples if s.sent >= answered and s.rules_version != after)
    result = {"scorer": overhead, "threads": args.threads, "publish_ms": (answered - sent) * 1000,
              "old": before, "new": after,
              "answers_after_publish_naming_the_old_version": late_old,
              "phases": {name: phase_stats(group) for name, group in phases.items()}}
    print(f"publish {before} -> {after} answered in {result['publish_ms']:.1f} ms; answers sent after it naming "
          f"the old version: {late_old}")
    print(f"{'phase':<8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, stats in result["phases"].items():
        print(f"{name:<8} {stats['requests']:>9} {stats['rps']:>8.1f} {stats['p50_ms']:>8.2f} "
              f"{stats['p99_ms']:>8.2f} {stats['errors']:>7}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
