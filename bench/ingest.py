"""Ingest throughput: file import and HTTP, each beside a plain-executemany floor.

For each database (SQLite file; PostgreSQL when ``--pg-url`` is given) this measures,
on the same simulated shop:

* **floor** — the same event rows (already parsed and serialised) written with one
  DBAPI ``executemany`` per batch into a plain table of the same database: the cost of
  the bytes reaching the database and nothing else;
* **parse-only floors** — reading and JSON-decoding the files with no database
  (``read + decode``), then that plus the channel adapter, the shared bounds and PII
  protection (``read + parse``): what the import costs before any row is written;
* **file import** — ``orderguard ingest`` of the channel JSONL files (read, parse,
  validate, hash, idempotent insert, derive current state); then the same with
  ``--jobs N`` (``orderguard.ingest.parallel``: each file's batches dealt to N worker
  processes, each parsing and appending through its own connection), N = ``--jobs``
  (default: the machine's cores), into a fresh log;
* **HTTP** — the same payloads POSTed in batches to a running ``orderguard serve``
  (uvicorn, one worker) over loopback.

Figures are events/s and orders/s; ratios are against the floor of the same run.
Run: ``python -m bench.ingest [--days 7] [--pg-url postgresql+psycopg://postgres@127.0.0.1/postgres]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.pg import drop_database, fresh_database
from features.settings import Settings
from orderguard.access import Directory, Role
from orderguard.heap import settled_heap
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.codec import content_hash, event_to_dict
from orderguard.ingest.files import read_records
from orderguard.ingest.importer import import_file
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.ingest.orderlog import OrderLog
from orderguard.ingest.parallel import import_files
from orderguard.ingest.service import parse_items
from orderguard.ingest.state_memo import IMPORT_CAPACITY
from orderguard.schema import OrderEvent
from orderguard.settings import DatabaseSettings
from simulate import SimConfig
from simulate.export import export_shop

RESULTS = Path(__file__).parent / "results"
#: Payloads per HTTP request.
BATCH = 500
#: Rows per transaction of a file import: ``orderguard ingest``'s default.
FILE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured path."""

    name: str
    seconds: float
    events: int
    orders: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds


def _payload_files(out: Path, days: int) -> list[Path]:
    files = export_shop(SimConfig.for_period(seed=11, days=days), out, secret=b"bench")
    return sorted(files.channels.values())


def _parsed_events(files: list[Path]) -> list[OrderEvent]:
    ctx = ParseContext(received_at=datetime.now(UTC), hasher=PiiHasher(b"bench"))
    events: list[OrderEvent] = []
    for path in files:
        adapter = get_adapter(path.stem)
        with path.open(encoding="utf-8") as fh:
            events.extend(adapter.parse(json.loads(line), ctx=ctx) for line in fh if line.strip())
    return events


def _floor(url: str, events: list[OrderEvent]) -> Figure:
    """Plain executemany of the same rows (pre-serialised) into a bare table."""
    rows = [(e.key.channel.value, e.key.channel_order_id, e.event_version, e.event_time.isoformat(),
             e.received_at.isoformat(), e.kind.value, e.status.value, e.channel_status, content_hash(e),
             json.dumps(event_to_dict(e), ensure_ascii=False)) for e in events]
    table = f"floor_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {table} (channel TEXT, channel_order_id TEXT, event_version BIGINT, event_time TEXT,"
            " received_at TEXT, kind TEXT, status TEXT, channel_status TEXT, content_hash TEXT, payload TEXT)")
    marker = "?" if engine.dialect.name == "sqlite" else "%s"
    sql = f"INSERT INTO {table} VALUES ({', '.join([marker] * 10)})"
    raw = engine.raw_connection()
    try:
        start = time.perf_counter()
        for i in range(0, len(rows), FILE_BATCH):
            cursor = raw.cursor()
            cursor.executemany(sql, rows[i:i + FILE_BATCH])
            raw.commit()
        seconds = time.perf_counter() - start
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {table}")
    engine.dispose()
    orders = len({e.key for e in events})
    return Figure("floor: executemany", seconds, len(events), orders)


def _read_decode(files: list[Path], events: int, orders: int) -> Figure:
    """Floor: the files read and JSON-decoded, nothing else."""
    start = time.perf_counter()
    count = sum(1 for path in files for _, payload in read_records(path) if not isinstance(payload, Exception))
    seconds = time.perf_counter() - start
    assert count == events, (count, events)
    return Figure("floor: read + decode", seconds, events, orders)


def _read_parse(files: list[Path], events: int, orders: int) -> Figure:
    """Floor: read, decode, adapter parse, bounds and PII protection - the import without the database."""
    ctx = ParseContext(received_at=datetime.now(UTC), hasher=PiiHasher(b"bench"))
    start = time.perf_counter()
    count = 0
    with settled_heap():  # as the import below
        for path in files:
            adapter = get_adapter(path.stem)
            parsed, errors = parse_items(adapter, read_records(path), ctx=ctx)
            assert not errors, errors[:1]
            count += len(parsed)
    seconds = time.perf_counter() - start
    assert count == events, (count, events)
    return Figure("floor: read + parse", seconds, events, orders)


def _file_import(url: str, files: list[Path], events: int, orders: int, data_dir: Path) -> Figure:
    settings = Settings(data_dir=data_dir, database=DatabaseSettings(url=url))
    log = OrderLog.open(url, remembered_states=IMPORT_CAPACITY)  # as `orderguard ingest` opens it
    try:
        start = time.perf_counter()
        with settled_heap():  # as `orderguard ingest` does
            for path in files:
                import_file(path, channel=None, mapping=None, log=log, pii=settings.pii, batch_size=FILE_BATCH)
        seconds = time.perf_counter() - start
        assert log.count_orders() == orders, (log.count_orders(), orders)
    finally:
        log.close()
    return Figure("file import", seconds, events, orders)


def _file_import_jobs(url: str, files: list[Path], events: int, orders: int, jobs: int) -> Figure:
    settings = Settings(database=DatabaseSettings(url=url))
    OrderLog.open(url).close()  # created (migrated) once, before the workers connect
    start = time.perf_counter()
    import_files(files, url=url, pii=settings.pii, jobs=jobs, batch_size=FILE_BATCH)
    seconds = time.perf_counter() - start
    with OrderLog.open(url) as log:
        assert log.count_orders() == orders, (log.count_orders(), orders)
    return Figure(f"file import, {jobs} jobs", seconds, events, orders)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _server(url: str, data_dir: Path) -> Iterator[str]:
    port = _free_port()
    env = {"ORDERGUARD_DATABASE__URL": url, "ORDERGUARD_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError("bench server did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _http(url: str, files: list[Path], events: int, orders: int, data_dir: Path) -> Figure:
    batches: list[tuple[str, list[dict[str, Any]]]] = []
    for path in files:
        payloads = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        batches.extend((path.stem, payloads[i:i + BATCH]) for i in range(0, len(payloads), BATCH))
    with OrderLog.open(url) as log:  # the order system's key, made before the server reads its keys
        _, key = Directory(log.engine).create_key("bench", frozenset({Role.ORDER_SYSTEM}), now=datetime.now(UTC))
    with _server(url, data_dir) as base, httpx.Client(base_url=base, timeout=60,
                                                      headers={"Authorization": f"Bearer {key}"}) as client:
        start = time.perf_counter()
        for channel, batch in batches:
            response = client.post(f"/v1/orders/{channel}", json=batch)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP ingest failed: {response.status_code} {response.text[:300]}")
        seconds = time.perf_counter() - start
        served_orders = client.get("/healthz").json()["orders"]
        assert served_orders == orders, (served_orders, orders)
    return Figure(f"HTTP batches of {BATCH}", seconds, events, orders)


def _report(backend: str, figures: list[Figure]) -> list[dict[str, Any]]:
    floor = figures[0]
    print(f"\n{backend}: {floor.events} events, {floor.orders} orders")
    print(f"  {'path':<24}{'seconds':>9}{'events/s':>11}{'orders/s':>11}{'vs floor':>10}")
    rows = []
    for f in figures:
        ratio = f.events_per_s / floor.events_per_s
        print(f"  {f.name:<24}{f.seconds:>9.2f}{f.events_per_s:>11,.0f}{f.orders_per_s:>11,.0f}{ratio:>9.2f}x")
        rows.append({"backend": backend, "path": f.name, "seconds": round(f.seconds, 3), "events": f.events,
                     "orders": f.orders, "events_per_s": round(f.events_per_s, 1),
                     "orders_per_s": round(f.orders_per_s, 1), "ratio_to_floor": round(ratio, 4)})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--pg-url", default=None, help="admin URL of a PostgreSQL server to bench as well")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="worker processes of the parallel import")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = _payload_files(root / "shop", args.days)
        events = _parsed_events(files)
        n_events, n_orders = len(events), len({e.key for e in events})
        backends: list[str] = ["sqlite"] + (["postgresql"] if args.pg_url else [])
        for backend in backends:
            urls: list[tuple[str, str | None]] = []
            for run in ("file", "jobs", "http"):
                if backend == "sqlite":
                    urls.append((f"sqlite:///{root / f'{run}.db'}", None))
                else:
                    urls.append(fresh_database(args.pg_url))
            try:
                figures = [_floor(urls[0][0], events), _read_decode(files, n_events, n_orders),
                           _read_parse(files, n_events, n_orders),
                           _file_import(urls[0][0], files, n_events, n_orders, root),
                           _file_import_jobs(urls[1][0], files, n_events, n_orders, args.jobs),
                           _http(urls[2][0], files, n_events, n_orders, root)]
            finally:
                for _, name in urls:
                    if name:
                        drop_database(args.pg_url, name)
            results.extend(_report(backend, figures))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "ingest.json"
    out.write_text(json.dumps({"days": args.days, "results": results}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
