"""The order-health sweeper on a promotion day: does it keep up, and is it right?

A promotion day of ``--orders-per-hour`` (default 20,000: 300 % of a normal day's peak)
for ``--hours`` (default 24), each order paid and then reported step by step by the
shop's systems (payment callback, ERP sync, stock lock, waybill, out-scan, tracking nodes,
delivery) with injected faults: lost callbacks (0.5 %), a warehouse backlog (3 %: out-scan
5-12 h after printing) and a carrier outage (2 %: no tracking node for 30 h). Time runs
minute by minute: each minute's channel events and reports are built as the service's
follower would hand them over (domain objects), fed to the sweeper and swept at the
minute's end, through the order window and a 36 h tail.

Printed, from the same run:

* **orderguard**: events fed per second of (feed + sweep) time; per-sweep time p50 / p99 /
  max over the busy window and the whole run, against the one-minute interval (goal: the
  slowest sweep well within it, on one core); orders in memory and peak RSS.
* **floor**: a hand-written DuckDB query over the same timelines (steps table, one
  ``GROUP BY`` per order, the timed checks as ``CASE`` conditions) at a checkpoint every
  ``--check-every`` hours, with the table already loaded: the time to recompute every
  order's findings from scratch. The sweeper's open findings at each checkpoint are
  compared with the query's (``agree`` = both sets equal).

Run: ``python -m bench.health_sweep [--orders-per-hour 20000] [--hours 24] [--quick]``
(``--quick``: 2,000 orders an hour for 6 hours). Results: ``bench/results/health_sweep.json``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from bench.report import RESULTS_DIR, write_results
from health.checks import load_checks
from health.sweeper import Sweeper
from orderguard.fulfilment import FulfilmentEvent, StepKind
from orderguard.schema import (
    Address,
    Amounts,
    Channel,
    EventKind,
    OrderDetails,
    OrderEvent,
    OrderKey,
    OrderLine,
    OrderStatus,
    Party,
)

RESULTS = RESULTS_DIR / "health_sweep.json"
DAY = datetime(2024, 11, 10, 16, 0, tzinfo=UTC)  # 11.11 00:00 Beijing
KINDS = (StepKind.PAYMENT_CALLBACK, StepKind.ERP_SYNC, StepKind.INVENTORY_LOCK, StepKind.WAYBILL_PRINTED,
         StepKind.OUT_SCAN, StepKind.TRACKING, StepKind.DELIVERED)
CHANNELS = (Channel.TMALL, Channel.JD, Channel.DOUYIN, Channel.KUAISHOU, Channel.WECHAT, Channel.SITE)
TIMED = ("payment_callback", "erp_sync", "inventory_lock", "out_scan", "ship_promise", "tracking_silent")


def schedule(orders: int, hours: int, seed: int) -> dict[str, Any]:
    """Every order's paid time and every report (order index, kind index, second of the run), sorted by time."""
    rng = np.random.default_rng(seed)
    paid = np.sort(rng.uniform(0, hours * 3600, orders)).astype(np.int64)
    fault = rng.random(orders)
    lost = fault < 0.005
    backlog = (fault >= 0.005) & (fault < 0.035)
    outage = (fault >= 0.035) & (fault < 0.055)

    def u(lo: float, hi: float) -> Any:
        return rng.uniform(lo, hi, orders).astype(np.int64)

    cb = paid + u(2, 180)
    erp = cb + u(10, 300)
    lock = erp + u(5, 600)
    printed = paid + u(3600, 8 * 3600)
    out = printed + np.where(backlog, u(5 * 3600, 12 * 3600), u(1800, 3 * 3600))
    node1 = out + u(3 * 3600, 12 * 3600)
    node2 = node1 + u(3 * 3600, 12 * 3600) + np.where(outage, 30 * 3600, 0)
    node3 = node2 + u(3 * 3600, 12 * 3600)
    delivered = node3 + u(2 * 3600, 10 * 3600)
    columns = [(0, cb), (1, erp), (2, lock), (3, printed), (4, out), (5, node1), (5, node2), (5, node3),
               (6, delivered)]
    idx = np.arange(orders)
    keep = ~lost
    order_ix = np.concatenate([idx[keep] for _ in columns])
    kind_ix = np.concatenate([np.full(int(keep.sum()), k, dtype=np.int8) for k, _ in columns])
    at = np.concatenate([t[keep] for _, t in columns])
    by_time = np.argsort(at, kind="stable")
    return {"paid": paid, "order": order_ix[by_time], "kind": kind_ix[by_time], "at": at[by_time],
            "faults": {"lost_callback": int(lost.sum()), "backlog": int(backlog.sum()), "outage": int(outage.sum())}}


def _template() -> OrderEvent:
    lines = (OrderLine("SKU-CAT-FOOD", 1, 19_900, "cat food", 19_900),)
    details = OrderDetails(shop_id="shop-001", created_at=DAY, buyer=Party("b"), lines=lines,
                           amounts=Amounts(19_900, 19_900),
                           address=Address("浙江省", "杭州市", "西湖区", "文三路 88 号 3 幢", key="k"))
    return OrderEvent(key=OrderKey(Channel.SITE, "0"), event_version=1, event_time=DAY, received_at=DAY,
                      kind=EventKind.ORDER, status=OrderStatus.PAID, channel_status="paid", details=details)


def _key(i: int) -> OrderKey:
    return OrderKey(CHANNELS[i % len(CHANNELS)], f"P{i:08d}")


def hand_query(con: duckdb.DuckDBPyConnection, as_of: int) -> set[tuple[int, str]]:
    """The floor: every paid order's failing timed checks at ``as_of`` (seconds), recomputed from the steps."""
    rows = con.execute(f"""
        WITH s AS (
          SELECT o,
            count(*) FILTER (WHERE k = 0) AS cb, count(*) FILTER (WHERE k = 1) AS erp,
            count(*) FILTER (WHERE k = 2) AS lck, max(t) FILTER (WHERE k = 3) AS printed,
            count(*) FILTER (WHERE k = 4) AS outs, max(t) FILTER (WHERE k IN (4, 5)) AS last_node,
            count(*) FILTER (WHERE k = 6) AS delivered
          FROM steps WHERE t <= {as_of} GROUP BY o),
        j AS (SELECT p.o, p.t AS paid, coalesce(cb, 0) AS cb, coalesce(erp, 0) AS erp, coalesce(lck, 0) AS lck,
                     printed, coalesce(outs, 0) AS outs, last_node, coalesce(delivered, 0) AS delivered
              FROM paid p LEFT JOIN s USING (o) WHERE p.t <= {as_of})
        SELECT o, 'payment_callback' FROM j WHERE cb = 0 AND {as_of} >= paid + 600
        UNION ALL SELECT o, 'erp_sync' FROM j WHERE erp = 0 AND {as_of} >= paid + 900
        UNION ALL SELECT o, 'inventory_lock' FROM j WHERE lck = 0 AND {as_of} >= paid + 2700
        UNION ALL SELECT o, 'out_scan' FROM j WHERE printed IS NOT NULL AND outs = 0 AND {as_of} >= printed + 14400
        UNION ALL SELECT o, 'ship_promise' FROM j WHERE outs = 0 AND {as_of} >= paid + 172800
        UNION ALL SELECT o, 'tracking_silent' FROM j
          WHERE last_node IS NOT NULL AND delivered = 0 AND {as_of} >= last_node + 86400
    """).fetchall()
    return {(int(o), str(c)) for o, c in rows}


def run(orders_per_hour: int, hours: int, check_every: int, seed: int, console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    orders = orders_per_hour * hours
    plan = schedule(orders, hours, seed)
    paid, order_ix, kind_ix, at = plan["paid"], plan["order"], plan["kind"], plan["at"]
    console.print(f"{orders:,} orders, {len(at):,} reports; faults {plan['faults']} "
                  f"({time.perf_counter() - started:.1f} s to plan)")
    sweeper = Sweeper(load_checks(), horizon=timedelta(days=30))
    template = _template()
    assert template.details is not None
    con = duckdb.connect()
    con.execute("CREATE TABLE paid (o BIGINT, t BIGINT)")
    con.execute("CREATE TABLE steps (o BIGINT, k TINYINT, t BIGINT)")
    next_order = next_step = 0
    loaded_orders = loaded_steps = 0
    end = (hours + 36) * 3600
    feed_s = sweep_s = 0.0
    fed = 0
    sweeps: list[tuple[int, float, float, int]] = []  # (minute end, feed s, sweep s, events)
    checkpoints: list[dict[str, Any]] = []
    for minute_end in range(60, end + 1, 60):
        t0 = time.perf_counter()
        batch: list[OrderEvent] = []
        while next_order < orders and paid[next_order] <= minute_end:
            i = next_order
            when = DAY + timedelta(seconds=int(paid[i]))
            details = replace(template.details, created_at=when - timedelta(seconds=40), paid_at=when,
                              buyer=Party(f"buyer-{i}"))
            batch.append(replace(template, key=_key(i), event_time=when, received_at=when, details=details))
            next_order += 1
        steps: list[FulfilmentEvent] = []
        while next_step < len(at) and at[next_step] <= minute_end:
            i, when = int(order_ix[next_step]), DAY + timedelta(seconds=int(at[next_step]))
            steps.append(FulfilmentEvent(key=_key(i), kind=KINDS[kind_ix[next_step]], event_id=f"e{next_step}",
                                         event_time=when, received_at=when))
            next_step += 1
        sweeper.add_order_events(batch)
        sweeper.add_steps(steps)
        t1 = time.perf_counter()
        result = sweeper.sweep(DAY + timedelta(seconds=minute_end))
        t2 = time.perf_counter()
        feed_s += t1 - t0
        sweep_s += t2 - t1
        fed += len(batch) + len(steps)
        sweeps.append((minute_end, t1 - t0, t2 - t1, len(batch) + len(steps)))
        if minute_end % (check_every * 3600) == 0:
            new_paid = pa.table({"o": np.arange(loaded_orders, next_order), "t": paid[loaded_orders:next_order]})
            new_steps = pa.table({"o": order_ix[loaded_steps:next_step], "k": kind_ix[loaded_steps:next_step],
                                  "t": at[loaded_steps:next_step]})
            con.register("new_paid", new_paid)
            con.register("new_steps", new_steps)
            con.execute("INSERT INTO paid SELECT * FROM new_paid")
            con.execute("INSERT INTO steps SELECT * FROM new_steps")
            con.unregister("new_paid")
            con.unregister("new_steps")
            loaded_orders, loaded_steps = next_order, next_step
            q0 = time.perf_counter()
            floor = hand_query(con, minute_end)
            q_s = time.perf_counter() - q0
            ours = {(int(k.split(":")[1][1:]), c) for k, c, _ in sweeper.open_findings() if c in TIMED}
            checkpoints.append({"hour": minute_end // 3600, "floor_query_s": round(q_s, 4),
                                "sweep_s": round(t2 - t1, 4), "minute_s": round(t2 - t0, 4),
                                "findings": len(floor), "agree": floor == ours,
                                "only_sweeper": len(ours - floor), "only_floor": len(floor - ours),
                                "orders_in_memory": sweeper.tracked, "overall": result.overall})
            console.print(f"h{minute_end // 3600:>3}: {len(floor):>6} findings, floor {q_s:.3f} s, "
                          f"sweep {t2 - t1:.4f} s, agree {floor == ours}, in memory {sweeper.tracked:,}, "
                          f"health {result.overall}")
    busy = [s for s in sweeps if s[0] <= hours * 3600]
    per = [f + w for _, f, w, _ in sweeps]
    per_busy = [f + w for _, f, w, _ in busy]
    q = sorted(per_busy)
    figures = {
        "orders": orders, "reports": len(at), "events_fed": fed, "faults": plan["faults"],
        "events_per_s": round(fed / (feed_s + sweep_s)), "feed_s": round(feed_s, 2), "sweep_s": round(sweep_s, 2),
        "interval_s": 60, "busy_minute_p50_s": round(statistics.median(per_busy), 4),
        "busy_minute_p99_s": round(q[int(0.99 * (len(q) - 1))], 4), "busy_minute_max_s": round(max(per_busy), 4),
        "run_minute_max_s": round(max(per), 4),
        "sweep_only_max_s": round(max(w for _, _, w, _ in sweeps), 4),
        "floor_query_s_max": max(c["floor_query_s"] for c in checkpoints) if checkpoints else None,
        "floor_query_s_median": statistics.median(c["floor_query_s"] for c in checkpoints) if checkpoints else None,
        "minute_over_floor_median": statistics.median(c["minute_s"] / c["floor_query_s"] for c in checkpoints)
        if checkpoints else None,
        "all_checkpoints_agree": all(c["agree"] for c in checkpoints),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "checkpoints": checkpoints, "seconds": round(time.perf_counter() - started, 1)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders-per-hour", type=int, default=20_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--check-every", type=int, default=6, help="hours between floor checkpoints")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="2,000 orders an hour for 6 hours")
    args = parser.parse_args()
    if args.quick:
        args.orders_per_hour, args.hours, args.check_every = 2_000, 6, 2
    console = Console()
    figures = run(args.orders_per_hour, args.hours, args.check_every, args.seed, console)
    table = Table("figure", "value")
    for name in ("orders", "reports", "events_fed", "events_per_s", "busy_minute_p50_s", "busy_minute_p99_s",
                 "busy_minute_max_s", "run_minute_max_s", "sweep_only_max_s", "floor_query_s_median",
                 "floor_query_s_max", "minute_over_floor_median", "all_checkpoints_agree", "peak_rss_mb"):
        table.add_row(name, str(figures[name]))
    table.add_row("slowest minute / interval (60 s)", f"{figures['run_minute_max_s'] / 60:.4f}")
    console.print(table)
    write_results(RESULTS, {"args": vars(args), **figures}, console)


if __name__ == "__main__":
    main()
