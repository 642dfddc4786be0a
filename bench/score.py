"""Scoring latency with the LightGBM model: in-process, over HTTP, and where the time goes.

Set-up (not timed): a simulated shop (``simulate``, two weeks by default,
the promotion day included) is split at a cut-off day. Every channel document sent
before the cut-off is encoded as its channel sends it, parsed by the channel adapters
and appended to a SQLite order log, as ingest does. A LightGBM model (300 trees, fixed
seed, LightGBM called directly) is trained on the point-in-time features of those
orders (``features.derived.point_in_time_features``) against the simulator's ground
truth. The engine is the one the service runs: ``serving.engine.build_engine`` with
the default settings (memory store, shop feature set, default rules and policy) and the
model (``scoring.model.LightGBMModel``), warm-started from the order log
(``serving.services.warm_start``). The orders created after the cut-off are the held-out
stream: each is scored once, at its creation, in creation order, as its first channel
document (a distinct order per score).

**(a) In-process.** ``Scorer.score`` per held-out order (apply + lookup of 81
features, rules, model probability and reasons, blend, decision, ScoreRecord), after a
warm-up of 500 orders and ``orderguard.heap.settle_heap()`` (as the service after its warm
start), which moves the warm state out of the cyclic collector's way and makes its young
collections rarer; a second run without the freeze shows what the collector costs a
process that does not freeze. Beside it, on the very feature vectors served: the
scorer without a model (rules only); the model alone (decision-path reasons, on every
order and on the orders at verify or above, and exact TreeSHAP on a sample); and two
floors of the same booster, ``Booster.predict`` of one row and LightGBM's native
single-row fast path. Ratios are to the native floor.

**(b) HTTP.** The real app (``serving.app.create_app``) runs under uvicorn in a
subprocess: 1 worker, uvloop, httptools, no access log, log level warning; the model
is the app's champion through the ``create_app(champion_source=...)`` seam: a fixed
booster file installed by the champion slot at start-up, as a registry champion is. Beside it two
floors with the same server settings: a bare FastAPI app that parses the same JSON body and returns a
constant, and the *compute floor*: the same request model, channel parse and ``Scorer.score`` on the
same warm engine and model, with no storage, authentication or middleware (what the real app costs
beyond it is what durability and its other duties cost). An open-loop load generator in another
process (uvloop, raw HTTP/1.1 over keep-alive connections, at most 256, its cyclic collector off
while it sends) sends requests on a fixed schedule (200, 500, 1000, 2000 req/s, 3 s each)
and measures each latency from the request's *scheduled* send time, so a stalled server
is charged for the requests it delayed (no coordinated omission); requests still
unanswered 3 s after the last scheduled send are counted as timeouts and the run ends
there. Each request to the real app is a different held-out order (scoring ingests it).
Between runs the bench waits until the server answers a health check promptly. Then the
maximum throughput of each, closed-loop with 64 connections. Each run prints the CPU each
party used (cores busy, from ``/proc``: the service's processes, Redis, PostgreSQL, the
load generator, the whole machine), which says what bounds it: the service's one core,
or the machine.

**(c) Profile.** cProfile over ``Scorer.score`` and over the score route's work
without the HTTP server (``serving.services.score_and_store`` inside the real app's
lifespan), split into the steps that own the time. cProfile inflates small calls:
read the shares, not the microseconds.

The machine is shared: figures move with its load. Every floor is measured in the same
run, so ratios are the figures to compare between runs.

The real app's goals are printed against each run: p99 within 10 ms at 500 req/s and 25 ms at 1000,
no error or timeout, and a maximum throughput of 0.7x the compute floor and 1,500 req/s.

Run: ``python -m bench.score [--days 14] [--skip-http | --only-http]``; figures print as tables and
go to ``bench/results/score.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import math
import multiprocessing
import os
import platform
import pstats
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.pg import drop_database, fresh_database
from bench.report import write_results
from features.derived import point_in_time_features
from features.online import OnlineFeatures
from features.settings import Settings
from features.shop import feature_set_from
from features.stores import MemoryStore
from orderguard.access import KeyRing, Principal, Role, key_hash
from orderguard.clock import SystemClock
from orderguard.enrich import Gazetteer
from orderguard.heap import release_heap, settle_heap, settled_heap
from orderguard.ingest import codec
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.channels.kit import DocumentAdapter
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.ingest.orderlog import OrderLog
from orderguard.ingest.state import derive_order
from orderguard.labels import LabelLog
from orderguard.schema import Order, OrderEvent
from scoring.blend_weights import BlendWeights
from scoring.judge import judge, list_keys
from scoring.model import Attribution, LightGBMModel, _NativeRow
from scoring.policy import Decision, order_reasons, policy_from
from scoring.records import ScoreLog
from scoring.registry import ModelRef
from scoring.scorer import Scorer
from serving.api.schemas import ScoreRequest, ScoreResponse
from serving.engine import Engine, build_engine
from serving.group_commit import current_states
from serving.notify.messages import queue_decision_alerts
from serving.services import score_and_store, warm_start
from simulate import SimConfig, simulate
from simulate.channels import ENCODERS, encode
from training.metrics import pr_auc, roc_auc

RESULTS = Path(__file__).parent / "results" / "score.json"
REPO = Path(__file__).resolve().parent.parent
SECRET = b"bench-score"
MODEL_VERSION = "bench/1"
WARMUP = 500
#: Uvicorn settings of both servers (reported with the figures).
SERVER = {"workers": 1, "loop": "uvloop", "http": "httptools", "access_log": False, "log_level": "warning"}
#: Closed-loop connections of the maximum-throughput runs. Enough to keep a group-committing server's batches
#: full: with 16, a batch held at most the 16 requests in flight (8 per worker with two), and the closed loop
#: measured the batch cycle's latency, not the server's capacity (two workers sustained 483 req/s in the open
#: loop at 500/s but "maxed" at 212/s with 16 connections).
MAX_CONNECTIONS = 64
#: Most keep-alive connections the open-loop generator opens (beyond, requests queue for one).
OPEN_LOOP_CONNECTIONS = 256
#: Requests sent before the timed runs (imports, caches, first connections).
WARMUP_REQUESTS = 300
console = Console(width=140)


# -- the shop --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shop:
    """The simulated shop, split at ``cutoff``.

    Attributes:
        history: parsed channel documents sent before the cut-off, in event-time order.
        stream: the held-out orders' first documents, in creation order: (channel, payload, parsed).
        truth: order key → abnormal.
    """

    cutoff: datetime
    history: list[OrderEvent]
    stream: list[tuple[str, dict[str, Any], OrderEvent]]
    truth: Mapping[str, bool]


def simulated_shop(*, days: int, seed: int, orders_per_day: int, train_days: int, settings: Settings) -> Shop:
    """Simulate, encode and parse (see the module docstring); the PII key is the served one."""
    config = SimConfig.for_period(seed=seed, days=days, orders_per_day=orders_per_day)
    sim = simulate(config, can_state=lambda channel, kind: ENCODERS[channel].statuses(kind))
    cutoff = config.start_at + timedelta(days=train_days)
    ctx = ParseContext(received_at=datetime.now(UTC),
                       hasher=PiiHasher(settings.pii.hash_key.get_secret_value().encode()))
    history: list[OrderEvent] = []
    stream: list[tuple[str, dict[str, Any], OrderEvent]] = []
    seen: set[tuple[str, str]] = set()
    for event in sim.events:  # sorted by update time
        ident = (event.channel.value, event.order_id)
        if event.created_at < cutoff:
            if event.update_time < cutoff:
                payload = encode(event, secret=SECRET)
                history.append(get_adapter(event.channel.value).parse(payload, ctx=ctx))
        elif ident not in seen:
            seen.add(ident)
            payload = encode(event, secret=SECRET)
            stream.append((event.channel.value, payload, get_adapter(event.channel.value).parse(payload, ctx=ctx)))
    stream.sort(key=lambda s: (s[2].event_time, str(s[2].key)))
    return Shop(cutoff, history, stream, {t.order_key: t.is_abnormal for t in sim.truth})


def ingest(url: str, events: Sequence[OrderEvent]) -> None:
    """Append the history to a fresh order log in batches, as file import does."""
    log = OrderLog.open(url)
    try:
        for i in range(0, len(events), 1000):
            log.append(events[i:i + 1000])
    finally:
        log.close()


def train(url: str, settings: Settings, truth: Mapping[str, bool], *, trees: int, seed: int) -> tuple[lgb.Booster,
                                                                                                        int, int]:
    """``trees`` trees on the point-in-time frame of every order in the log; returns (booster, rows, positives)."""
    log = OrderLog.open(url)
    try:
        frame = point_in_time_features(log.iter_orders(), feature_set_from(settings), gazetteer=Gazetteer.build())
    finally:
        log.close()
    names = list(feature_set_from(settings).names)
    y = np.asarray([truth.get(k, False) for k in frame["order_key"]], dtype=np.float64)
    params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20,
              "feature_fraction": 0.9, "seed": seed, "deterministic": True, "num_threads": 2, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(frame[names].to_numpy(np.float64), y, feature_name=names),
                        num_boost_round=trees)
    return booster, len(y), int(y.sum())


# -- (a) in-process -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timings:
    """Nanosecond timings of one path."""

    name: str
    ns: list[int]

    def q(self, quantile: float) -> float:
        """Quantile in microseconds."""
        ordered = sorted(self.ns)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] / 1000

    def summary(self) -> dict[str, float]:
        return {"n": len(self.ns), "p50_us": round(self.q(0.5), 2), "p90_us": round(self.q(0.9), 2),
                "p99_us": round(self.q(0.99), 2), "p999_us": round(self.q(0.999), 2),
                "max_us": round(max(self.ns) / 1000, 2), "mean_us": round(sum(self.ns) / len(self.ns) / 1000, 2)}


def _engine(settings: Settings, log_url: str, model: LightGBMModel | None) -> Engine:
    engine = build_engine(settings, clock=SystemClock(), model=model)
    log = OrderLog.open(log_url)
    try:
        warm_start(engine, log, LabelLog(log.engine))
    finally:
        log.close()
    return engine


def _timed_scores(engine: Engine, orders: Sequence[Order], *, freeze: bool = True) -> tuple[Timings, list[Any]]:
    """Score every order in turn; timings after the warm-up, with the records."""
    clock = time.perf_counter_ns
    score = engine.scorer.score
    ns: list[int] = []
    records = []
    thresholds = gc.get_threshold()
    for i, order in enumerate(orders):
        if i == WARMUP and freeze:
            settle_heap()  # as the service does after its warm start
        start = clock()
        record = score(order)
        took = clock() - start
        records.append(record)
        if i >= WARMUP:
            ns.append(took)
    release_heap(thresholds)
    return Timings("", ns), records


def _timed_calls(name: str, call: Callable[[Any], object], inputs: Sequence[Any]) -> Timings:
    clock = time.perf_counter_ns
    for item in inputs[:200]:
        call(item)
    ns: list[int] = []
    for item in inputs:
        start = clock()
        call(item)
        ns.append(clock() - start)
    return Timings(name, ns)


def _key_ring(n: int) -> tuple[KeyRing, list[str]]:
    """A service's in-memory key ring holding ``n`` keys of the real format, and the keys."""
    keys = [f"og_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}" for _ in range(n)]
    entries = {k.split("_")[1]: (key_hash(k), Principal("key", f"bench {i}", frozenset({Role.ORDER_SYSTEM})))
               for i, k in enumerate(keys)}
    return KeyRing(entries), keys


def in_process(settings: Settings, log_url: str, booster: lgb.Booster, orders: Sequence[Order],
               truth: Mapping[str, bool], *, shap_sample: int) -> dict[str, Any]:
    """Part (a): see the module docstring."""
    feature_set = feature_set_from(settings)
    policy = policy_from(settings.policy)
    model = LightGBMModel.from_booster(booster, MODEL_VERSION, feature_set=feature_set, policy=policy,
                                       max_reasons=settings.scoring.max_reasons)
    engine = _engine(settings, log_url, model)
    scored, records = _timed_scores(engine, orders)
    engine.close()
    scored = Timings("Scorer.score (features+rules+model+reasons+record)", scored.ns)
    rules_engine = _engine(settings.model_copy(update={"data_dir": settings.data_dir / "rules"}), log_url, None)
    rules_only, _ = _timed_scores(rules_engine, orders)
    rules_engine.close()
    rules_only = Timings("Scorer.score, rules only", rules_only.ns)
    thawed_engine = _engine(settings.model_copy(update={"data_dir": settings.data_dir / "thawed"}), log_url, model)
    thawed, _ = _timed_scores(thawed_engine, orders, freeze=False)
    thawed_engine.close()
    thawed = Timings("Scorer.score, default collector (no settle_heap)", thawed.ns)

    vectors = [r.features for r in records[WARMUP:]]
    names = list(booster.feature_name())
    matrix = [np.asarray([[v.get(n, math.nan) for n in names]], dtype=np.float64) for v in vectors]
    native = _NativeRow(booster, predict_type=0, iterations=-1, width=1, row=np.zeros(len(names)))

    def native_predict(row: np.ndarray) -> object:
        native.row[:] = row[0]
        return native.predict()

    shap = LightGBMModel.from_booster(booster, MODEL_VERSION, feature_set=feature_set, policy=policy,
                                      attribution=Attribution.SHAP, max_reasons=settings.scoring.max_reasons)
    ring, keys = _key_ring(100)
    flagged = [v for v, r in zip(vectors, records[WARMUP:], strict=True) if r.decision is not Decision.APPROVE]
    figures = [
        scored, thawed, rules_only,
        _timed_calls("LightGBMModel.predict, path reasons", model.predict, vectors),
        _timed_calls("  same, orders at verify or above", model.predict, flagged),
        _timed_calls("LightGBMModel.predict, TreeSHAP reasons", shap.predict, vectors[:shap_sample]),
        _timed_calls("  same, orders at verify or above", shap.predict, flagged[:shap_sample]),
        _timed_calls("API key check per request (KeyRing, 100 keys)", ring.authenticate,
                     [keys[i % len(keys)] for i in range(len(vectors))]),
        _timed_calls("floor: Booster.predict, 1 row", lambda row: booster.predict(row, num_threads=1), matrix),
        _timed_calls("floor: native single-row fast path", native_predict, matrix),
    ]
    agreement = _agreement(model, shap, flagged[:shap_sample])
    y = [truth.get(str(r.order_key), False) for r in records]
    probabilities = [model.explain(r.features).probability for r in records]
    scores = [r.score for r in records]
    decisions = [r.decision for r in records]
    return {
        "figures": figures, "records": records, "orders": len(orders), "timed": len(scored.ns),
        "flagged_share": round(len(flagged) / len(vectors), 4),
        "with_model_reasons_share": round(sum(any(x.source == "model" for x in r.reasons)
                                              for r in records) / len(records), 4),
        "holdout": {"positives": int(sum(y)), "roc_auc_model": round(roc_auc(y, probabilities), 4),
                    "pr_auc_model": round(pr_auc(y, probabilities), 4), "roc_auc_score": round(roc_auc(y, scores), 4),
                    "pr_auc_score": round(pr_auc(y, scores), 4),
                    "decisions": {d.value: decisions.count(d) for d in Decision}},
        "path_vs_shap": agreement,
        "example": next(([asdict(x) for x in r.reasons[:5]] for r in records
                         if {x.source for x in r.reasons} == {"rule", "model"}), []),
        "leaf_call": _timed_calls("native leaf-index call", lambda _: model._leaves.predict(),
                                  vectors[:2000]).summary(),
    }


def _agreement(path: LightGBMModel, shap: LightGBMModel, vectors: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """How often the decision-path attribution names the same features as exact TreeSHAP."""
    top1 = top3 = 0
    for v in vectors:
        a = path.explain(v).contributions
        b = shap.explain(v).contributions
        rank_a = sorted(a, key=lambda k: -a[k])[:3]
        rank_b = sorted(b, key=lambda k: -b[k])[:3]
        top1 += rank_a[0] == rank_b[0]
        top3 += len(set(rank_a) & set(rank_b))
    n = max(len(vectors), 1)
    return {"orders": len(vectors), "same_top_feature": round(top1 / n, 3), "top3_overlap": round(top3 / (3 * n), 3)}


# -- (c) profile ----------------------------------------------------------------------------------------------------

#: Steps of ``Scorer.score``: (label, function) whose cumulative time is that step's; an indented
#: label is part of the step above it.
_SCORER_STEPS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("features: apply + lookup (one store call)", OnlineFeatures.apply_and_lookup),
    ("  of which the store", MemoryStore.apply_and_fetch),
    ("  of which the windows' values", OnlineFeatures._fill),
    ("rules + blend + decision (judge)", judge),
    ("  of which allow/deny list keys", list_keys),
    ("model: probability (+ contributions)", LightGBMModel.predict),
    ("  of which reasons in words", LightGBMModel._reasons),
    ("order reasons", order_reasons),
)
_ROUTE_STEPS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("parse payload (channel adapter)", DocumentAdapter.parse),
    ("order log: append (insert, derive, commit)", OrderLog.append),
    ("  of which encoding the events", codec.event_to_dict),
    ("order log: where each event stands", current_states),
    ("Scorer.score_many (the batch's scores)", Scorer.score_many),
    ("score log: put_all (insert + commit)", ScoreLog.put_all),
    ("outbox: decision alerts", queue_decision_alerts),
)


def _cumulative(stats: pstats.Stats, steps: Sequence[tuple[str, Callable[..., Any]]], total_fn: Callable[..., Any],
                calls: int) -> list[dict[str, Any]]:
    """Cumulative seconds per step, by the steps' code objects (names alone are ambiguous: ``predict``)."""
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]

    def ct(fn: Callable[..., Any]) -> float:
        code = fn.__code__
        found = table.get((code.co_filename, code.co_firstlineno, code.co_name))
        return float(found[3]) if found else 0.0

    total = ct(total_fn)
    rows = []
    accounted = 0.0
    for label, fn in steps:
        seconds = ct(fn)
        if not label.startswith("  "):
            accounted += seconds
        rows.append({"step": label, "us_per_order": round(seconds / calls * 1e6, 1),
                     "share": round(seconds / total, 3) if total else 0.0})
    rows.append({"step": "rest (record build, wiring)", "us_per_order": round((total - accounted) / calls * 1e6, 1),
                 "share": round((total - accounted) / total, 3) if total else 0.0})
    rows.append({"step": "total", "us_per_order": round(total / calls * 1e6, 1), "share": 1.0})
    return rows


def profile_scorer(settings: Settings, log_url: str, model: LightGBMModel, orders: Sequence[Order]) -> list[dict[str,
                                                                                                             Any]]:
    """cProfile of ``Scorer.score`` over the stream (cProfile inflates small calls; read the shares)."""
    engine = _engine(settings, log_url, model)
    try:
        for order in orders[:WARMUP]:
            engine.scorer.score(order)
        profiler = cProfile.Profile()
        profiler.enable()
        for order in orders[WARMUP:]:
            engine.scorer.score(order)
        profiler.disable()
    finally:
        engine.close()
    return _cumulative(pstats.Stats(profiler), _SCORER_STEPS, Scorer.score, len(orders) - WARMUP)


@dataclass(frozen=True, slots=True)
class FileChampion:
    """The bench's model as the app's champion: a booster file the champion slot installs at start-up."""

    path: Path

    def champion(self) -> ModelRef | None:
        name, version = MODEL_VERSION.split("/")
        return ModelRef(name, version, run_id="bench", source=str(self.path))

    def load_booster(self, ref: ModelRef) -> lgb.Booster:
        return lgb.Booster(model_file=ref.source)

    def load_blend(self, ref: ModelRef) -> BlendWeights | None:
        return None  # the bundled booster: rule points as written


def profile_route(data_dir: Path, model_file: Path, stream: Sequence[tuple[str, dict[str, Any], OrderEvent]]
                  ) -> list[dict[str, Any]]:
    """cProfile of the score route's work without the HTTP server: the real app's lifespan, then
    ``score_and_store``."""
    from serving.app import create_app

    app = create_app(Settings(data_dir=data_dir), champion_source=FileChampion(model_file))
    requests = [(c, p) for c, p, _ in stream]

    async def run() -> pstats.Stats:
        async with app.router.lifespan_context(app):
            svc = app.state.services
            assert svc.champion.status.version == MODEL_VERSION, svc.champion.status.note
            for channel, payload in requests[:WARMUP]:
                score_and_store(svc, channel, payload)
            profiler = cProfile.Profile()
            profiler.enable()
            for channel, payload in requests[WARMUP:]:
                score_and_store(svc, channel, payload)
            profiler.disable()
        return pstats.Stats(profiler)

    stats = asyncio.run(run())
    return _cumulative(stats, _ROUTE_STEPS, score_and_store, len(requests) - WARMUP)


def write_costs(directory: Path, log_file: Path, events: Sequence[OrderEvent], records: Sequence[Any]
                ) -> list[dict[str, Any]]:
    """What the route's synchronous writes cost per item, one per call (as now) and batched (group commit)."""
    rows = []
    for label, batch in (("order log append, 1 event per call", 1), ("order log append, 64 events per call", 64)):
        target = directory / f"append-{batch}.db"
        shutil.copy(log_file, target)
        log = OrderLog.open(f"sqlite:///{target}")
        try:
            ns: list[int] = []
            for i in range(0, len(events), batch):
                chunk = events[i:i + batch]
                started = time.perf_counter_ns()
                log.append(chunk)
                ns.extend([(time.perf_counter_ns() - started) // len(chunk)] * len(chunk))
        finally:
            log.close()
        rows.append({"write": label, **Timings(label, ns[len(ns) // 10:]).summary()})
    target = directory / "scores.db"
    shutil.copy(log_file, target)
    log = OrderLog.open(f"sqlite:///{target}")
    try:
        scores = ScoreLog(log.engine)
        rows.append({"write": "score log put, 1 record per call",
                     **_timed_calls("put", scores.put, records).summary()})
    finally:
        log.close()
    return rows


def _report_writes(rows: Sequence[Mapping[str, Any]]) -> None:
    table = Table(title="(c) the route's database writes, per item (SQLite, WAL)")
    for column in ("write", "n", "p50 µs", "p99 µs", "mean µs"):
        table.add_column(column, justify="left" if column == "write" else "right")
    for row in rows:
        table.add_row(row["write"], str(row["n"]), f"{row['p50_us']:.0f}", f"{row['p99_us']:.0f}",
                      f"{row['mean_us']:.0f}")
    console.print(table)


# -- (b) HTTP -----------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def real_app() -> Any:
    """The real app of a server process (``uvicorn --factory``: every worker process builds its own), its data
    directory and model file named by ``BENCH_DATA_DIR`` and ``BENCH_MODEL_FILE``; the order log and online store
    come from the ``ORDERGUARD_*`` variables the bench set for the setup."""
    from serving.app import create_app

    return create_app(Settings(data_dir=Path(os.environ["BENCH_DATA_DIR"])),
                      champion_source=FileChampion(Path(os.environ["BENCH_MODEL_FILE"])))


def serve(kind: str, *, data_dir: Path, model_file: Path | None, port: int, workers: int = 1) -> None:
    """Server process: the real app with the model file as its champion, or a floor."""
    import uvicorn
    from fastapi import FastAPI

    if kind == "real":
        assert model_file is not None
        os.environ["BENCH_DATA_DIR"], os.environ["BENCH_MODEL_FILE"] = str(data_dir), str(model_file)
        uvicorn.run("bench.score:real_app", factory=True, host="127.0.0.1", port=port,
                    **{**SERVER, "workers": workers})  # type: ignore[arg-type]
        return

    if kind == "bare":
        app = FastAPI()
        constant = {"order_key": "site:1", "score": 12.5, "decision": "approve", "reasons": []}

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.post("/v1/score")
        async def score(body: dict[str, Any]) -> dict[str, Any]:
            return constant
    else:
        assert model_file is not None
        app = _compute_app(data_dir, model_file)
    uvicorn.run(app, host="127.0.0.1", port=port, **SERVER)  # type: ignore[arg-type]


def _compute_app(data_dir: Path, model_file: Path) -> Any:
    """The compute floor: the real request and response models, the channel parse and ``Scorer.score`` on the
    same warm engine and model, and no storage, authentication or middleware. What the real app costs beyond
    it is what durability and the service's other duties cost."""
    from fastapi import FastAPI

    from orderguard.ingest.channels import get_adapter
    from orderguard.ingest.normalize import ParseContext, PiiHasher
    from orderguard.ingest.service import parse_payload
    from orderguard.ingest.state import derive_order
    from serving.api.score import _response
    from serving.group_commit import Scored

    settings = Settings(data_dir=data_dir)
    booster = lgb.Booster(model_file=str(model_file))
    model = LightGBMModel.from_booster(booster, MODEL_VERSION, feature_set=feature_set_from(settings),
                                       policy=policy_from(settings.policy), max_reasons=settings.scoring.max_reasons)
    engine = _engine(settings.model_copy(update={"data_dir": data_dir / "compute"}), settings.database_url, model)
    settle_heap()  # as the real app does after its warm start
    hasher = PiiHasher(settings.pii.hash_key.get_secret_value().encode())
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/score")
    async def score(request: ScoreRequest) -> ScoreResponse:
        event = parse_payload(get_adapter(request.channel), request.payload,
                              ctx=ParseContext(received_at=datetime.now(UTC), hasher=hasher, limits=settings.ingest))
        order = derive_order([event])
        assert order is not None
        return _response(Scored(engine.scorer.score(order), replayed=False))

    return app


@contextlib.contextmanager
def _server(kind: str, data_dir: Path, model_file: Path | None, *, workers: int = 1,
            env: Mapping[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """Start a server subprocess; yields its port and process id once it answers."""
    port = _free_port()
    command = [sys.executable, "-m", "bench.score", "--serve", kind, "--data-dir", str(data_dir), "--port", str(port),
               "--workers", str(workers)]
    if model_file is not None:
        command += ["--model-file", str(model_file)]
    # the served app's own settings may be tried from the bench's environment (ORDERGUARD_*); the setup's win
    passed = {k: v for k, v in os.environ.items() if k.startswith("ORDERGUARD_")}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0", **passed, **(env or {})}
    log = data_dir.parent / f"server-{kind}-{port}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not start: "
                                       f"{log.read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _request(body: bytes, key: str) -> bytes:
    head = (f"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _exchange(conn: _Conn, request: bytes) -> int:
    """One request on a keep-alive connection; returns the status (the body is read and dropped)."""
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


#: A keep-alive connection idle this long is closed instead of reused: the server closes its side after
#: 5 s (uvicorn's ``timeout_keep_alive``), and a request sent on it then fails. HTTP clients expire idle
#: connections the same way (httpx: ``keepalive_expiry``, 5 s).
KEEPALIVE_EXPIRY_S = 4.0


class _Pool:
    """Keep-alive connections, opened on demand up to ``limit``; beyond it requests wait for one."""

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit = port, limit
        self.idle: list[tuple[_Conn, float]] = []
        self.opened = 0
        self.peak = 0
        self.waiters: deque[asyncio.Future[_Conn]] = deque()

    async def acquire(self) -> _Conn:
        now = time.monotonic()
        while self.idle:
            conn, since = self.idle.pop()
            if now - since < KEEPALIVE_EXPIRY_S:
                return conn
            self.discard(conn)  # expired: the server may have closed it
        if self.opened < self.limit:
            self.opened += 1
            self.peak = max(self.peak, self.opened)
            try:
                return await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.opened -= 1
                raise
        waiter: asyncio.Future[_Conn] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def release(self, conn: _Conn) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append((conn, time.monotonic()))

    def discard(self, conn: _Conn) -> None:
        conn[1].close()
        self.opened -= 1

    def close(self) -> None:
        for (_, writer), _ in self.idle:
            writer.close()
        for waiter in self.waiters:
            waiter.cancel()


async def _open_loop(port: int, requests: Sequence[bytes], rate: float, *, grace: float) -> dict[str, Any]:
    """Send ``requests`` at ``rate`` per second on schedule; latency from the scheduled time.

    Requests still unanswered ``grace`` seconds after the last scheduled send count as
    timeouts (the run stops there: an overloaded server would otherwise keep it going).
    """
    clock = time.perf_counter
    pool = _Pool(port, limit=OPEN_LOOP_CONNECTIONS)
    latencies: list[float] = []
    lags: list[float] = []
    failures: Counter[str] = Counter()  # by kind; every one counts as an error

    async def one(request: bytes, scheduled: float) -> None:
        lags.append(clock() - scheduled)
        conn = await pool.acquire()
        try:
            status = await _exchange(conn, request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            failures[type(e).__name__] += 1
            pool.discard(conn)
            return
        latencies.append(clock() - scheduled)
        if status != 200:
            failures[f"HTTP {status}"] += 1
        pool.release(conn)

    tasks = []
    start = clock() + 0.05
    for i, request in enumerate(requests):
        scheduled = start + i / rate
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, scheduled)))
    deadline = start + len(requests) / rate + grace
    _, pending = await asyncio.wait(tasks, timeout=max(deadline - clock(), 0.0))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    pool.close()
    elapsed = clock() - start
    return {"sent": len(requests), "errors": failures.total(), "failures": dict(failures), "timeouts": len(pending),
            "latencies": latencies,
            "lag_p99_ms": _q(lags, 0.99) * 1000, "achieved_rps": len(latencies) / elapsed, "connections": pool.peak}


async def _closed_loop(port: int, requests: Sequence[bytes], seconds: float) -> dict[str, Any]:
    """``MAX_CONNECTIONS`` connections sending back to back until ``seconds`` pass or requests run out."""
    clock = time.perf_counter
    latencies: list[float] = []
    failures: Counter[str] = Counter()  # by kind; every one counts as an error
    queue = iter(requests)
    start = clock()
    stop = start + seconds

    async def worker() -> None:
        conn = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                sent = clock()
                if sent >= stop:
                    break
                try:
                    status = await _exchange(conn, request)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
                    failures[type(e).__name__] += 1
                    conn[1].close()
                    conn = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append(clock() - sent)
                if status != 200:
                    failures[f"HTTP {status}"] += 1
        finally:
            conn[1].close()

    await asyncio.gather(*(worker() for _ in range(MAX_CONNECTIONS)))
    elapsed = clock() - start
    errors = failures.total()
    return {"sent": len(latencies) + errors, "errors": errors, "failures": dict(failures), "timeouts": 0,
            "latencies": latencies,
            "achieved_rps": len(latencies) / elapsed, "lag_p99_ms": 0.0, "connections": MAX_CONNECTIONS}


def _q(values: Sequence[float], quantile: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """No cyclic collection in the load generator while it sends: its own pauses would be charged to the server.

    Why: this process imports the whole project (the bench module), so a full collection walks
    every module's objects: measured 118 ms, 2.6 s into a 500 req/s run, during which no request
    was sent or read; the ~60 requests then sent at once made that run's p99 220 ms (the server
    had been idle throughout). A run allocates a few thousand tasks; they wait for the end.
    """
    with settled_heap():  # collected and frozen as the service settles its own
        gc.disable()
        try:
            yield
        finally:
            gc.enable()


def load_job(port: int, bodies_file: str, first: int, count: int, rate: float | None, seconds: float,
             key: str) -> dict[str, Any]:
    """Load-generator process entry: open loop at ``rate`` (``seconds`` of grace), or closed loop for ``seconds``."""
    import uvloop

    with open(bodies_file, "rb") as fh:
        lines = fh.read().split(b"\n")
    requests = [_request(body, key) for body in lines[first:first + count]]
    with _collector_off():
        if rate is None:
            result = uvloop.run(_closed_loop(port, requests, seconds))
        else:
            result = uvloop.run(_open_loop(port, requests, rate, grace=seconds))
    latencies = result.pop("latencies")
    return {**result, "completed": len(latencies), "p50_ms": _q(latencies, 0.5) * 1000,
            "p90_ms": _q(latencies, 0.9) * 1000, "p99_ms": _q(latencies, 0.99) * 1000,
            "max_ms": max(latencies, default=math.nan) * 1000}


def _drain(port: int) -> None:
    """Wait until the server answers a health check promptly (it may still be working off a backlog)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started = time.perf_counter()
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
            if time.perf_counter() - started < 0.2:
                return
        time.sleep(0.2)


def _commits(port: int) -> dict[str, float] | None:
    """The real app's group-commit counters (``/healthz``: ``score_commits``), or None for a floor."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        shown = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).json().get("score_commits")
        return shown if isinstance(shown, dict) else None
    return None


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _processes() -> dict[int, tuple[str, int, float]]:
    """Every process now: (command name, parent id, CPU seconds so far), from ``/proc`` (empty elsewhere)."""
    found: dict[int, tuple[str, int, float]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:  # gone meanwhile
            continue
        head, _, rest = stat.rpartition(b")")
        fields = rest.split()
        found[int(entry)] = (head.partition(b"(")[2].decode(errors="replace"), int(fields[1]),
                             (int(fields[11]) + int(fields[12])) / _TICK)
    return found


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every state but idle and iowait), from ``/proc/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return math.nan
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _TICK


class CpuUse:
    """Cores busy per party from now until :meth:`cores`: the server (``server_pid`` and its children),
    Redis, PostgreSQL, the load generator (this process's other children) and the machine."""

    def __init__(self, server_pid: int) -> None:
        self._server = server_pid
        self._before = _processes()
        self._machine = _machine_busy()
        self._started = time.monotonic()

    def cores(self) -> dict[str, float]:
        after, machine, wall = _processes(), _machine_busy(), time.monotonic() - self._started
        parents = {pid: parent for pid, (_, parent, _) in after.items()}

        def under(pid: int, root: int) -> bool:
            while pid > 1:
                if pid == root:
                    return True
                pid = parents.get(pid, 0)
            return False

        used = {"service": 0.0, "redis": 0.0, "postgres": 0.0, "load": 0.0}
        me = os.getpid()
        for pid, (name, _, seconds) in after.items():
            was = self._before.get(pid)
            spent = seconds - (was[2] if was is not None and was[0] == name else 0.0)
            if under(pid, self._server):
                used["service"] += spent
            elif name == "redis-server":
                used["redis"] += spent
            elif name == "postgres":
                used["postgres"] += spent
            elif pid != me and under(pid, me):
                used["load"] += spent
        return {**{k: round(v / wall, 2) for k, v in used.items()},
                "machine": round((machine - self._machine) / wall, 2), "cpus": os.cpu_count() or 0}


def _commits_between(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float] | None:
    """The batches of one run: how many, their mean size and each stage's mean milliseconds per batch.

    With several worker processes this is the view of whichever one answered the health checks.

    >>> _commits_between({"batches": 2, "requests": 4, "append_ms": 1.0, "score_ms": 2.0, "store_ms": 1.0},
    ...                  {"batches": 4, "requests": 12, "append_ms": 2.0, "score_ms": 3.0, "store_ms": 1.5})
    {'batches': 2, 'mean_batch': 4.0, 'append_ms': 3.0, 'score_ms': 4.0, 'store_ms': 2.0}
    """
    if before is None or after is None or after["batches"] <= before["batches"]:
        return None
    n = after["batches"] - before["batches"]
    out: dict[str, float] = {"batches": n, "mean_batch": round((after["requests"] - before["requests"]) / n, 2)}
    for stage in ("append_ms", "score_ms", "store_ms"):
        out[stage] = round((after[stage] * after["batches"] - before[stage] * before["batches"]) / n, 3)
    return out


@dataclass(frozen=True)
class Setup:
    """One server the HTTP part measures: a floor or the real app on given stores and worker processes."""

    app: str  # bare | compute | real
    label: str
    workers: int = 1
    database_url: str | None = None  # None: the SQLite copy in the served data directory
    redis_url: str | None = None  # None: the in-process memory store

    def env(self, prefix: str) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.database_url is not None:
            env["ORDERGUARD_DATABASE__URL"] = self.database_url
        if self.redis_url is not None:
            env |= {"ORDERGUARD_FEATURES__STORE__TYPE": "redis", "ORDERGUARD_FEATURES__STORE__URL": self.redis_url,
                    "ORDERGUARD_FEATURES__STORE__PREFIX": prefix}
        return env


def http(data_dir: Path, model_file: Path, stream: Sequence[tuple[str, dict[str, Any], OrderEvent]],
         history: Sequence[OrderEvent], *, setups: Sequence[Setup], rates: Sequence[int], seconds: float,
         max_seconds: float) -> dict[str, Any]:
    """Part (b): see the module docstring. Each real setup starts from the same history in a store of its own."""
    bodies_file = data_dir.parent / "bodies.jsonl"
    with bodies_file.open("wb") as fh:
        fh.write(b"\n".join(json.dumps({"channel": c, "payload": p}, ensure_ascii=False).encode()
                            for c, p, _ in stream))
    runs: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as loadgen:
        for setup in setups:
            with _served_copy(setup, data_dir, history) as (served, env):
                key = _bench_key(env.get("ORDERGUARD_DATABASE__URL") or Settings(data_dir=served).database_url)
                model = model_file if setup.app != "bare" else None
                with _server(setup.app, served, model, workers=setup.workers, env=env) as (port, pid):
                    cursor = 0

                    def take(n: int) -> tuple[int, int]:
                        nonlocal cursor
                        first = cursor
                        cursor = min(cursor + n, len(stream))
                        return first, cursor - first

                    if setup.app == "real":
                        _check_real(port, stream[0], key)
                        cursor = 1
                    elif setup.app == "compute":
                        _check_compute(port, stream[0])
                    first, count = take(WARMUP_REQUESTS)  # imports, caches, first connections
                    loadgen.submit(load_job, port, str(bodies_file), first, count, 100.0, seconds, key).result()
                    _drain(port)
                    for rate in rates:
                        first, count = take(int(rate * seconds))
                        before = _commits(port)
                        cpu = CpuUse(pid)
                        result = loadgen.submit(load_job, port, str(bodies_file), first, count, float(rate),
                                                seconds, key).result()
                        runs.append({"app": setup.label, "rate": rate, **_rounded(result), "cpu_cores": cpu.cores(),
                                     "commits": _commits_between(before, _commits(port))})
                        _drain(port)
                    first, count = take(len(stream))
                    before = _commits(port)
                    cpu = CpuUse(pid)
                    result = loadgen.submit(load_job, port, str(bodies_file), first, count, None, max_seconds,
                                            key).result()
                    runs.append({"app": setup.label, "rate": "max", **_rounded(result), "cpu_cores": cpu.cores(),
                                 "commits": _commits_between(before, _commits(port))})
                    if setup.app == "real" and result["sent"] >= count:
                        console.print(f"[yellow]note: the held-out stream ran out during {setup.label}'s "
                                      f"max-throughput run[/]")
    return {"server": SERVER, "seconds_per_rate": seconds, "max_seconds": max_seconds,
            "max_connections": MAX_CONNECTIONS, "open_loop_connections": OPEN_LOOP_CONNECTIONS,
            "setups": [{"app": s.app, "label": s.label, "workers": s.workers,  # URLs left out: they may hold passwords
                        "database": "postgresql" if s.database_url else "sqlite",
                        "store": "redis" if s.redis_url else "memory"} for s in setups],
            "runs": runs}


@contextlib.contextmanager
def _served_copy(setup: Setup, data_dir: Path, history: Sequence[OrderEvent]
                 ) -> Iterator[tuple[Path, dict[str, str]]]:
    """A data directory (and, for PostgreSQL, a fresh database) holding the history, for one setup."""
    served = data_dir.parent / f"served-{secrets.token_hex(4)}"
    served.mkdir()
    shutil.copy(data_dir / "orderguard.db", served / "orderguard.db")
    prefix = f"og:bench:{secrets.token_hex(4)}"
    if setup.database_url is None:
        try:
            yield served, setup.env(prefix)
        finally:
            _flush_redis(setup.redis_url, prefix)
        return
    url, name = fresh_database(setup.database_url)
    try:
        ingest(url, history)
        if setup.redis_url is not None:
            _prewarm(served, url, setup.redis_url, prefix)
        yield served, Setup(setup.app, setup.label, setup.workers, url, setup.redis_url).env(prefix)
    finally:
        drop_database(setup.database_url, name)
        _flush_redis(setup.redis_url, prefix)


def _prewarm(served: Path, database_url: str, redis_url: str, prefix: str) -> None:
    """Fill the shared Redis store from the order log before the server starts, as a long-lived Redis is when
    service processes restart: each worker then replays only the log's last minutes (``warm_start``) instead
    of every worker replaying the whole history at once while the load has begun."""
    settings = Settings(data_dir=served, database={"url": database_url},
                        features={"store": {"type": "redis", "url": redis_url, "prefix": prefix}})
    _engine(settings, database_url, None).close()


def _flush_redis(url: str | None, prefix: str) -> None:
    if url is None:
        return
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i:i + 1000])
    finally:
        client.close()


def _bench_key(database_url: str) -> str:
    """An ``order_system`` API key in the real app's order log (created before the server starts)."""
    from orderguard.access import Directory, Role

    with OrderLog.open(database_url) as log:
        _, key = Directory(log.engine).create_key("bench", frozenset({Role.ORDER_SYSTEM}), now=datetime.now(UTC))
    return key


def _check_real(port: int, first: tuple[str, dict[str, Any], OrderEvent], key: str) -> None:
    """The real app scores with the model (not rules-only) before anything is timed."""
    response = httpx.post(f"http://127.0.0.1:{port}/v1/score", json={"channel": first[0], "payload": first[1]},
                          headers={"Authorization": f"Bearer {key}"}, timeout=30)
    body = response.json()
    if response.status_code != 200 or body.get("rules_only") or body.get("model_version") != MODEL_VERSION:
        raise RuntimeError(f"the served app does not score with the bench model: {response.status_code} {body}")


def _check_compute(port: int, first: tuple[str, dict[str, Any], OrderEvent]) -> None:
    """The compute floor answers with a model score before anything is timed (it stores nothing, so the
    same order may be sent again when timed)."""
    response = httpx.post(f"http://127.0.0.1:{port}/v1/score", json={"channel": first[0], "payload": first[1]},
                          timeout=30)
    if response.status_code != 200 or response.json().get("model_version") != MODEL_VERSION:
        raise RuntimeError(f"the compute floor does not score with the bench model: {response.status_code} "
                           f"{response.text[:2000]}")


def _rounded(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}


# -- report -------------------------------------------------------------------------------------------------------


def _report_in_process(part: Mapping[str, Any]) -> list[dict[str, Any]]:
    figures: list[Timings] = part["figures"]
    floor = figures[-1].summary()
    table = Table(title=f"(a) in-process, {part['timed']} held-out orders after a warm-up of {WARMUP} "
                        f"(ratios to the native single-row floor)")
    for column in ("path", "n", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "p50 ×floor", "p99 ×floor"):
        table.add_column(column, justify="left" if column == "path" else "right")
    rows = []
    for figure in figures:
        s = figure.summary()
        r50, r99 = s["p50_us"] / floor["p50_us"], s["p99_us"] / floor["p99_us"]
        table.add_row(figure.name, str(s["n"]), f"{s['p50_us']:.1f}", f"{s['p90_us']:.1f}", f"{s['p99_us']:.1f}",
                      f"{s['p999_us']:.1f}", f"{r50:.1f}x", f"{r99:.1f}x")
        rows.append({"path": figure.name.strip(), **s, "p50_vs_floor": round(r50, 2), "p99_vs_floor": round(r99, 2)})
    console.print(table)
    target = figures[0].summary()["p99_us"]
    console.print(f"Scorer.score p99 {target:.0f} µs (target ≤ 500 µs: {'met' if target <= 500 else 'NOT met'}); "
                  f"orders at verify or above: {part['flagged_share']:.1%}; with a model reason: "
                  f"{part['with_model_reasons_share']:.1%}; decision-path vs TreeSHAP on "
                  f"{part['path_vs_shap']['orders']} flagged orders: same top feature "
                  f"{part['path_vs_shap']['same_top_feature']:.0%}, top-3 overlap "
                  f"{part['path_vs_shap']['top3_overlap']:.0%}")
    h = part["holdout"]
    console.print(f"held-out quality: model ROC AUC {h['roc_auc_model']}, PR AUC {h['pr_auc_model']}; blended score "
                  f"ROC AUC {h['roc_auc_score']}, PR AUC {h['pr_auc_score']} ({h['positives']} abnormal); "
                  f"decisions {h['decisions']}")
    if part["example"]:
        console.print("reasons of the first held-out order with both rule and model reasons (weights in points):")
    for reason in part["example"]:
        console.print(escape(f"  {reason['source']:>5} {reason['weight']:6.1f}  {reason['code']}: "
                             f"{reason['text_zh']} / {reason['text_en']}"))
    return rows


def _report_profile(title: str, rows: Sequence[Mapping[str, Any]]) -> None:
    table = Table(title=title)
    for column in ("step", "µs per order", "share"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for row in rows:
        table.add_row(row["step"], f"{row['us_per_order']:.1f}", f"{row['share']:.0%}")
    console.print(table)


#: The real app's goals per open-loop rate: p99 in ms, with no error and no timeout.
_P99_GOAL_MS = {500: 10.0, 1000: 25.0}
#: The real app's goals at maximum throughput: a share of the compute floor's, and an absolute rate.
_MAX_GOAL_VS_COMPUTE, _MAX_GOAL_RPS = 0.7, 1500.0


def _report_http(part: Mapping[str, Any]) -> list[dict[str, Any]]:
    runs = part["runs"]
    bare = {r["rate"]: r for r in runs if r["app"] == "bare"}
    compute = {r["rate"]: r for r in runs if r["app"] == "compute"}
    table = Table(title=f"(b) HTTP: uvicorn {part['server']}; open loop at fixed rates ({part['seconds_per_rate']} s "
                        f"each, latency from the scheduled send), then closed loop with {part['max_connections']} "
                        f"connections ({part['max_seconds']} s). Floors: bare (parse JSON, return a constant) and "
                        f"compute (the same parse and Scorer.score, no storage)")
    for column in ("app", "rate", "sent", "errors", "timeouts", "achieved/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                   "p99 ×bare", "thru ×bare", "thru ×compute", "send lag p99 ms", "conns"):
        table.add_column(column, justify="left" if column == "app" else "right")
    rows = []
    for r in runs:
        floor, cfloor = bare[r["rate"]], compute.get(r["rate"], {})
        p99_ratio = r["p99_ms"] / floor["p99_ms"] if floor["p99_ms"] else math.nan
        thru_ratio = r["achieved_rps"] / floor["achieved_rps"] if floor["achieved_rps"] else math.nan
        c_ratio = r["achieved_rps"] / cfloor["achieved_rps"] if cfloor.get("achieved_rps") else math.nan
        table.add_row(r["app"], str(r["rate"]), str(r["sent"]), str(r["errors"]), str(r["timeouts"]),
                      f"{r['achieved_rps']:.0f}",
                      f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['max_ms']:.1f}",
                      f"{p99_ratio:.2f}x", f"{thru_ratio:.2f}x", f"{c_ratio:.2f}x", f"{r['lag_p99_ms']:.2f}",
                      str(r["connections"]))
        rows.append({**r, "p99_vs_bare": round(p99_ratio, 3), "throughput_vs_bare": round(thru_ratio, 3),
                     "throughput_vs_compute": round(c_ratio, 3)})
    console.print(table)
    for r in rows:
        if r.get("failures"):
            console.print(f"  {r['app']} @ {r['rate']}: errors {r['failures']}")
    for r in rows:
        if r.get("cpu_cores"):
            c = r["cpu_cores"]
            console.print(f"  {r['app']} @ {r['rate']}: cores busy: service {c['service']:.2f}, "
                          f"redis {c['redis']:.2f}, postgres {c['postgres']:.2f}, load generator {c['load']:.2f}; "
                          f"machine {c['machine']:.2f} of {c['cpus']}")
    for r in rows:
        if r.get("commits"):
            c = r["commits"]
            console.print(f"  {r['app']} @ {r['rate']}: {c['batches']:.0f} batches of {c['mean_batch']} requests; "
                          f"ms per batch: append {c['append_ms']}, score {c['score_ms']}, store {c['store_ms']}")
    for r in rows:
        if not r["app"].startswith("real"):
            continue
        clean = r["errors"] == 0 and r["timeouts"] == 0
        if r["rate"] == "max":
            ok = clean and r["throughput_vs_compute"] >= _MAX_GOAL_VS_COMPUTE and r["achieved_rps"] >= _MAX_GOAL_RPS
            goal = f"throughput ≥ {_MAX_GOAL_VS_COMPUTE}x compute and ≥ {_MAX_GOAL_RPS:.0f}/s"
        elif r["rate"] in _P99_GOAL_MS:
            ok = clean and r["p99_ms"] <= _P99_GOAL_MS[r["rate"]]
            goal = f"p99 ≤ {_P99_GOAL_MS[r['rate']]:.0f} ms"
        else:
            ok, goal = clean, "no error, no timeout"
        console.print(f"  {r['app']} @ {r['rate']}: {goal}, zero errors and timeouts: {'met' if ok else 'NOT met'}")
    peaks = {r["app"]: r["achieved_rps"] for r in rows if r["rate"] == "max"}
    shared = sorted((a for a in peaks if a.endswith("redis+pg")), key=lambda a: int(a.split()[1][:-1]))
    if len(shared) == 2 and peaks[shared[0]]:
        scaling = peaks[shared[1]] / peaks[shared[0]]
        console.print(f"  {shared[1]} vs {shared[0]}: {scaling:.2f}x the maximum throughput (goal ≥ 1.6x: "
                      f"{'met' if scaling >= 1.6 else 'NOT met'})")
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, measure (a), (c) and (b), print and write the results."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="og-bench-score-") as tmp:
        root = Path(tmp)
        base = Settings(data_dir=root / "inproc")
        shop = simulated_shop(days=args.days, seed=args.seed, orders_per_day=args.orders_per_day,
                              train_days=args.train_days, settings=base)
        log_url = base.database_url
        base.data_dir.mkdir(parents=True)
        ingest(log_url, shop.history)
        booster, rows, positives = train(log_url, base, shop.truth, trees=args.trees, seed=args.seed)
        model_file = root / "model.txt"
        booster.save_model(str(model_file))
        served = root / "served"
        served.mkdir()
        shutil.copy(base.data_dir / "orderguard.db", served / "orderguard.db")
        orders = [o for _, _, e in shop.stream if (o := derive_order([e])) is not None]
        console.print(f"shop: {args.days} days × ~{args.orders_per_day} orders/day (seed {args.seed}); history "
                      f"{len(shop.history)} documents before {shop.cutoff:%Y-%m-%d %H:%M} UTC; model: "
                      f"{booster.num_trees()} trees on {rows} orders ({positives} abnormal); held-out stream "
                      f"{len(orders)} orders; set-up {time.perf_counter() - started:.0f} s")

        part_a: dict[str, Any] = {}
        figures_a: list[dict[str, Any]] = []
        scorer_profile: list[dict[str, Any]] = []
        route_profile: list[dict[str, Any]] = []
        writes: list[dict[str, Any]] = []
        if not args.only_http:
            part_a = in_process(base, log_url, booster, orders, shop.truth, shap_sample=args.shap_sample)
            records = part_a.pop("records")
            figures_a = _report_in_process(part_a)
            console.print(f"native leaf-index call alone: p50 {part_a['leaf_call']['p50_us']:.1f} µs, "
                          f"p99 {part_a['leaf_call']['p99_us']:.1f} µs")
            model = LightGBMModel.from_booster(booster, MODEL_VERSION, feature_set=feature_set_from(base),
                                               policy=policy_from(base.policy), max_reasons=base.scoring.max_reasons)
            profile_settings = base.model_copy(update={"data_dir": root / "profile"})
            scorer_profile = profile_scorer(profile_settings, log_url, model, orders)
            _report_profile("(c) where Scorer.score spends its time (cProfile, cumulative per step)", scorer_profile)
            route_dir = root / "route"
            route_dir.mkdir()
            shutil.copy(base.data_dir / "orderguard.db", route_dir / "orderguard.db")
            route_profile = profile_route(route_dir, model_file, shop.stream[:3000])
            _report_profile("(c) where the score route spends its time without HTTP (cProfile, score_and_store)",
                            route_profile)
            writes = write_costs(route_dir, base.data_dir / "orderguard.db", [e for _, _, e in shop.stream[:2000]],
                                 records[:2000])
            _report_writes(writes)

        part_b: dict[str, Any] | None = None
        figures_b: list[dict[str, Any]] = []
        if not args.skip_http:
            part_b = http(served, model_file, shop.stream, shop.history, setups=_setups(args), rates=args.rates,
                          seconds=args.http_seconds, max_seconds=args.max_seconds)
            figures_b = _report_http(part_b)
    result = {
        "bench": "score", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(), "lightgbm": lgb.__version__, "machine": platform.machine(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(),
        "shop": {"days": args.days, "seed": args.seed, "orders_per_day": args.orders_per_day,
                 "train_days": args.train_days, "history_documents": len(shop.history), "held_out_orders": len(orders),
                 "train_rows": rows, "train_positives": positives, "trees": booster.num_trees()},
        "in_process": (({k: v for k, v in part_a.items() if k != "figures"} | {"figures": figures_a})
                       if part_a else None),
        "profile": {"scorer": scorer_profile, "route": route_profile, "writes": writes},
        "http": (part_b | {"runs": figures_b}) if part_b is not None else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_results(RESULTS, result, console)
    return result


def _setups(args: argparse.Namespace) -> list[Setup]:
    """The floors and the real app on SQLite, then on PostgreSQL, then on Redis + PostgreSQL with 1 and N workers."""
    setups = [Setup("bare", "bare"), Setup("compute", "compute"), Setup("real", "real 1w sqlite")]
    if args.pg_url:
        setups.append(Setup("real", "real 1w pg", database_url=args.pg_url))
        if args.redis_url:
            setups += [Setup("real", f"real {n}w redis+pg", workers=n, database_url=args.pg_url,
                             redis_url=args.redis_url) for n in (1, args.workers_max)]
    return setups


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=14, help="simulated days (one is a promotion day)")
    parser.add_argument("--train-days", type=int, default=6, help="days before the cut-off (history, training)")
    parser.add_argument("--orders-per-day", type=int, default=1000,
                        help="the HTTP part draws a distinct held-out order per request: ~13,500 per setup at the "
                             "default rates, so that its max-throughput runs do not run out")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--shap-sample", type=int, default=400, help="orders timed with exact TreeSHAP (slow)")
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[200, 500, 1000, 2000],
                        help="open-loop request rates, comma-separated")
    parser.add_argument("--http-seconds", type=float, default=3.0, help="seconds per open-loop rate")
    parser.add_argument("--max-seconds", type=float, default=3.0, help="seconds of the max-throughput runs")
    parser.add_argument("--skip-http", action="store_true", help="in-process figures and profiles only")
    parser.add_argument("--only-http", action="store_true", help="the HTTP figures only (no in-process part)")
    parser.add_argument("--pg-url", help="admin URL of a PostgreSQL server: the real app on it as well "
                                         "(a fresh database per run), e.g. postgresql+psycopg://postgres@127.0.0.1/postgres")
    parser.add_argument("--redis-url", help="with --pg-url: the real app on Redis + PostgreSQL, 1 and --workers-max "
                                            "processes sharing the online state, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--workers-max", type=int, default=2, help="worker processes of the shared-state run")
    parser.add_argument("--serve", choices=["real", "compute", "bare"], help=argparse.SUPPRESS)  # server subprocess
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, data_dir=args.data_dir, model_file=args.model_file, port=args.port, workers=args.workers)
        return
    run(args)


if __name__ == "__main__":
    main()
