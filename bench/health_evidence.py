"""Order health on a simulated promotion day: is every injected fault flagged within its deadline plus one sweep,
and how many healthy orders are flagged?

The shop simulator (``simulate``) writes a few days around 11.11 at promotion volume, with the
shop systems' fulfilment reports and their faults: lost payment callbacks, a warehouse
backlog, a carrier outage, incomplete addresses, invalid phones, duplicate orders,
false-delivery complaints, presales without their balance, and the faults that occur by
themselves (late shipments, grey-state orders, price glitches). The files go through the
real ways in (``orderguard ingest`` for the channel files, ``orderguard health ingest`` for
the reports, into an SQLite order log), then the sweeper is replayed on event time with the
service's interval (``health.replay``, one sweep a minute) over the whole period (the truth
is as of its end: a deadline after it is in neither).

For each row of ``fulfilment_truth.csv`` (an order and a check it must fail, with the
moment the check's deadline counts from) the check's due time is that anchor plus the
check's deadline for the order's channel; the fault is **caught in time** when the sweeper
first flagged that check by due + one interval. Printed per fault: rows, caught in time,
caught late, missed, the worst delay past due. Then the **false alarms**: findings on
orders the truth lists for no check at all (goal 0), and findings on faulty orders for a
check their truth does not name (listed separately: a lost callback also leaves stock
unlocked, for instance).

Run: ``python -m bench.health_evidence [--seed 7] [--orders-per-day 2000] [--days 4]``.
Results: ``bench/results/health_evidence.json``.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.report import RESULTS_DIR, write_results
from features.settings import Settings
from health.checks import load_checks
from health.replay import replay
from health.sweeper import Sweeper
from orderguard.fulfilment import FulfilmentLog
from orderguard.fulfilment_files import import_reports
from orderguard.ingest.importer import import_file
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import OrderKey
from simulate import SimConfig
from simulate.export import export_shop

RESULTS = RESULTS_DIR / "health_evidence.json"
EVERY = timedelta(minutes=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--orders-per-day", type=int, default=2000)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--start", default="2024-11-09", help="first day; 11.11 is the promotion day when covered")
    args = parser.parse_args()
    console = Console()
    started = time.perf_counter()
    config = load_checks()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sim = SimConfig.for_period(seed=args.seed, days=args.days, orders_per_day=args.orders_per_day,
                                   start=date.fromisoformat(args.start))
        files = export_shop(sim, root / "shop", secret=b"evidence")
        console.print(f"simulated {args.days} days from {args.start} (promotion day offset {sim.promo_day}) "
                      f"in {time.perf_counter() - started:.0f} s")
        settings = Settings(data_dir=root / "var")
        t0 = time.perf_counter()
        with OrderLog.open(settings.database_url) as log:
            log.migrate()
            for path in files.channels.values():
                imported = import_file(path, channel=None, mapping=None, log=log, pii=settings.pii)
                assert not imported.report.errors, (path, imported.report.errors[:3])
            steps = FulfilmentLog(log.engine)
            loaded = import_reports(files.fulfilment, steps, received_at=datetime.now(UTC))
            assert not loaded.errors, loaded.errors[:3]
            ingest_s = time.perf_counter() - t0
            console.print(f"ingested {log.count_events():,} channel events and {loaded.inserted:,} fulfilment "
                          f"reports in {ingest_s:.0f} s")
            truth = list(csv.DictReader(files.fulfilment_truth.open(encoding="utf-8")))
            begin = sim.start_at
            end = sim.end_at - timedelta(seconds=1)  # the truth is as of the period's end, a deadline there excluded
            sweeper = Sweeper(config, horizon=timedelta(days=60))
            first: dict[tuple[str, str], datetime] = {}
            t1 = time.perf_counter()
            sweeps = 0
            slowest = 0.0
            last = time.perf_counter()
            for swept in replay(sweeper, log, steps, start=begin, end=end, every=EVERY,
                                horizon=timedelta(days=1)):
                sweeps += 1
                for f in swept.opened:
                    first.setdefault((f.order_key, f.check_id), f.flagged_at)
                now = time.perf_counter()
                slowest = max(slowest, now - last)
                last = now
            replay_s = time.perf_counter() - t1
    console.print(f"{sweeps:,} sweeps replayed in {replay_s:.0f} s (slowest sweep with its feed {slowest:.3f} s)")
    expected: dict[tuple[str, str], tuple[str, datetime]] = {}
    for row in truth:
        key = OrderKey.parse(row["order_key"])
        check = config.check(row["check"])
        anchor = datetime.fromisoformat(row["anchor_at"])
        due = anchor + check.deadline(key.channel)  # zero for the checks on the order document
        expected[(row["order_key"], row["check"])] = (row["fault"], due)
    per: dict[str, Counter[str]] = defaultdict(Counter)
    worst: dict[str, float] = defaultdict(float)
    examples: dict[str, list[str]] = defaultdict(list)
    for (order_key, check_id), (fault, due) in expected.items():
        per[fault]["rows"] += 1
        flagged = first.get((order_key, check_id))
        if flagged is None:
            per[fault]["missed"] += 1
            examples[fault].append(f"missed {order_key} {check_id} due {due.isoformat()}")
            continue
        delay = (flagged - due).total_seconds()
        worst[fault] = max(worst[fault], delay)
        if flagged <= due + EVERY:
            per[fault]["in_time"] += 1
        else:
            per[fault]["late"] += 1
            examples[fault].append(f"late {order_key} {check_id} by {delay:.0f} s")
    faulty_orders = {k for k, _ in expected}
    false_alarms = sorted((k, c) for k, c in first if k not in faulty_orders)
    extra = Counter(c for k, c in first if k in faulty_orders and (k, c) not in expected)
    table = Table("fault", "rows", "caught in time", "late", "missed", "worst delay past due (s)")
    for fault in sorted(per):
        c = per[fault]
        table.add_row(fault, str(c["rows"]), str(c["in_time"]), str(c["late"]), str(c["missed"]),
                      f"{worst[fault]:.0f}")
    console.print(table)
    console.print(f"false alarms on orders without any fault: {len(false_alarms)}"
                  + (f" (first: {false_alarms[:5]})" if false_alarms else ""))
    console.print(f"other checks flagged on faulty orders (consequences of the fault): {dict(extra)}")
    for fault, lines in examples.items():
        for line in lines[:3]:
            console.print(f"  {fault}: {line}")
    figures: dict[str, Any] = {
        "args": vars(args), "truth_rows": len(truth), "faults": {f: dict(c) for f, c in per.items()},
        "worst_delay_s": dict(worst), "false_alarms": len(false_alarms), "false_alarm_examples": false_alarms[:20],
        "consequential_findings": dict(extra), "sweeps": sweeps, "replay_s": round(replay_s, 1),
        "ingest_s": round(ingest_s, 1), "seconds": round(time.perf_counter() - started, 1),
        "all_in_time": all(c["late"] == 0 and c["missed"] == 0 for c in per.values())}
    write_results(RESULTS, figures, console)


if __name__ == "__main__":
    main()
