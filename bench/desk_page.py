"""The review desk's case page: server time with 100,000 labelled cases in the similar-case index.

Set-up (not timed), reusing ``bench.desk``'s simulated shop (42 days of ~400 orders, the
simulated review desk's labels, a LightGBM model fitted as of day 28):

* the labels known at the cut go into the shop's label log, the model becomes the app's
  champion (``bench.score.FileChampion``) and every order is scored as the service would
  have on arrival (``serving.backscore``): the queue and the cases have their records;
* the app (``serving.app.create_app``, SQLite order log) serves in process
  (``TestClient``: no network, so the figure is the server's work), a reviewer signs in;
* the similar-case index is replaced by one of ``--cases`` (100,000) cases — real
  labelled cases' vectors jittered by ±5%, each standing for a real labelled order so
  every neighbour is rendered — installed through ``SimilarCases.install``.

Timed: ``GET /desk/case/{channel}/{order_id}`` for ``--pages`` queued orders (after a
warm-up), and within it the similar-case lookup alone; the floor, in the same run, is
``GET /`` (the home page: the same session check, template engine and middleware). Goals:
lookup ≤ 20 ms and whole page ≤ 100 ms at p95.

Run: ``python -m bench.desk_page [--cases 100000] [--pages 300]``; figures print and go to
``bench/results/desk_page.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from rich.console import Console

from bench.desk import JITTER, RowView, simulated_desk
from bench.report import write_results
from bench.score import FileChampion
from features.settings import Settings
from orderguard.access import Directory, parse_roles
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog
from orderguard.schema import Label, OrderKey
from scoring.model import LightGBMModel
from scoring.similar import Case, CaseIndex, contribution_embedding
from serving.backscore import backscore
from serving.services import Services

RESULTS = Path(__file__).parent / "results" / "desk_page.json"
PASSWORD = "bench-reviewer-password"
WARMUP = 20
console = Console(width=140)


def _ms(ns: Sequence[int]) -> dict[str, float]:
    values = np.asarray(ns, dtype=np.float64) / 1e6
    return {"p50": round(float(np.percentile(values, 50)), 2), "p95": round(float(np.percentile(values, 95)), 2),
            "max": round(float(values.max()), 2), "n": len(ns)}


def _sign_in(client: TestClient) -> None:
    page = client.get("/signin")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/signin", data={"username": "bench-reviewer", "password": PASSWORD, "csrf_token": token},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, measure, print and write (see the module docstring)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="og-desk-page-") as tmp:
        root = Path(tmp)
        desk = simulated_desk(root, days=args.days, orders_per_day=400, reference_days=28, seed=args.seed)
        model_file = root / "model.txt"
        desk.booster.save_model(str(model_file))
        champion = FileChampion(model_file)
        settings = Settings(data_dir=root, desk={"window": "3650d"})
        labels = [Label(c.order_key, c.verdict, c.labeled_at, c.reviewer_id) for c in desk.cases]
        with OrderLog.open(settings.database_url) as log:
            LabelLog(log.engine).add(labels, source="bench", recorded_at=datetime.now(UTC))
            done = backscore(settings, log, LabelLog(log.engine), champion=champion,
                             since=datetime(1970, 1, 1, tzinfo=UTC))
            Directory(log.engine).add_user("bench-reviewer", PASSWORD, parse_roles(["reviewer"]),
                                           now=datetime.now(UTC))
        console.print(f"set-up: {desk.info['orders']} orders, {len(labels)} labelled cases, {done.scored} scored "
                      f"{done.decisions}; {time.perf_counter() - started:.0f} s")
        from serving.app import create_app

        app = create_app(settings, champion_source=champion)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            _sign_in(client)
            svc: Services = app.state.services
            model = svc.engine.scorer.model
            assert isinstance(model, LightGBMModel), "the champion did not load"
            rng = np.random.default_rng(args.seed)
            picks = rng.integers(0, len(desk.cases), args.cases).tolist()
            rows = desk.pool[rng.integers(0, len(desk.pool), args.cases)]
            rows = rows * (1.0 + JITTER * rng.standard_normal(rows.shape))
            columns = {name: j for j, name in enumerate(desk.names)}
            cases = [Case(desk.cases[p].order_key, RowView(rows[i], columns), desk.cases[p].verdict,
                          desk.cases[p].reviewer_id, desk.cases[p].labeled_at) for i, p in enumerate(picks)]
            built = time.perf_counter()
            index = CaseIndex.build(cases, contribution_embedding(model))
            build_s = time.perf_counter() - built
            current: dict[OrderKey, Label] = {label.key: label for label in labels}
            svc.similar.install(index, current, label_count=svc.labels.count(), model_version=model.version)
            queued = [r for r in svc.scores.iter_records() if r.decision.value in ("review", "hold")][:args.pages]
            assert len(queued) > WARMUP, "too few flagged orders to time"
            page_ns: list[int] = []
            lookup_ns: list[int] = []
            floor_ns: list[int] = []
            for i, record in enumerate(queued):
                url = f"/desk/case/{record.order_key.channel.value}/{record.order_key.channel_order_id}"
                t0 = time.perf_counter_ns()
                answer = client.get(url)
                t1 = time.perf_counter_ns()
                assert answer.status_code == 200, answer.text[:300]
                t2 = time.perf_counter_ns()
                svc.similar.nearest(record, labels=svc.labels, scorer=svc.engine.scorer, scores=svc.scores,
                                    k=settings.desk.similar_cases)
                t3 = time.perf_counter_ns()
                home = client.get("/")
                t4 = time.perf_counter_ns()
                assert home.status_code == 200
                if i >= WARMUP:
                    page_ns.append(t1 - t0)
                    lookup_ns.append(t3 - t2)
                    floor_ns.append(t4 - t3)
    page, lookup, floor = _ms(page_ns), _ms(lookup_ns), _ms(floor_ns)
    console.print(f"index: {len(index):,} cases, built in {build_s:.1f} s")
    for name, figures, goal in (("case page", page, 100.0), ("similar-case lookup", lookup, 20.0),
                                ("floor: home page", floor, None)):
        ratio = figures["p50"] / floor["p50"] if floor["p50"] else float("nan")
        console.print(f"{name:<22} p50 {figures['p50']:7.2f} ms  p95 {figures['p95']:7.2f} ms  "
                      f"({ratio:4.1f}× floor p50)" + (f"  goal p95 ≤ {goal:.0f} ms" if goal else ""))
    result = {"bench": "desk_page", "when": datetime.now(UTC).isoformat(timespec="seconds"),
              "python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
              "cases": len(index), "index_build_s": round(build_s, 1), "case_page_ms": page,
              "similar_lookup_ms": lookup, "floor_home_page_ms": floor, "pages": len(page_ns),
              "seconds": round(time.perf_counter() - started, 1)}
    write_results(RESULTS, result, console)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=42)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=300, help="case pages timed (the first 20 warm up)")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
