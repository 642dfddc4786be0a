"""Backtest benchmark: ``orderguard policy backtest`` of a served shop's newest 90 days, beside its floors.

What a shop waits for when it asks "what would this pack have done": the end-to-end
backtest (read the period's orders and labels, one point-in-time feature frame, one batch
prediction, the live and a candidate policy judged row by row, the served check against
the score records), measured as the command runs it (``training.backtest_setup.backtest_log``).

Floors, measured in the same run on the same data:

* **frame**: the batch engine alone (``features.derived.point_in_time_features`` on the
  orders already in memory): the least any point-in-time replay must spend;
* **predict**: one bare ``Booster.predict`` of the frame's matrix;
* **read**: reading the orders and labels from the order log.

Then the parts the backtest adds (judging every row through ``scoring.judge``, the served
check) are the difference, printed per stage. Wall and CPU time (user + system, all
threads) are both given: on a shared machine CPU time is the steadier. The batch
probabilities are also compared with the served single-row predictor on every row (largest
absolute difference).

Prepare the data as the demo does (``DEMO_DAYS=90 scripts/demo.sh``, or ``orderguard
generate --days 90 --seed 7``, ingest, label, ``train --promote``, ``score-orders``), then
run ``python -m bench.backtest [--data-dir var] [--repeat 2]``; writes
``bench/results/backtest.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.report import RESULTS_DIR, write_results


@dataclass(slots=True)
class Stopwatch:
    """Wall and CPU seconds (this process, all threads) of named blocks, every repetition kept."""

    figures: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.figures.setdefault(name, []).append((time.perf_counter() - wall, time.process_time() - cpu))


def run(data_dir: Path, *, repeat: int, bands: str) -> dict[str, Any]:
    """Measure the backtest and its floors on the order log under ``data_dir``."""
    from features.derived import history_start, point_in_time_features
    from features.settings import Settings
    from features.shop import feature_set_from
    from orderguard.enrich import Gazetteer
    from orderguard.ingest.orderlog import OrderLog
    from orderguard.labels import LabelLog
    from scoring.model import model_factory
    from training.backtest import replay
    from training.backtest_data import batch_probability, build_history
    from training.backtest_served import check_served
    from training.backtest_setup import backtest_log, live_model, live_policy, period_for
    from training.dataset import feature_matrix

    settings = Settings(data_dir=data_dir)
    feature_set = feature_set_from(settings)
    watch = Stopwatch()
    with OrderLog.open(settings.database_url) as log:
        period = period_for(log, first=None, last=None)
        model = live_model(settings)
        live = live_policy(settings, feature_set, log.engine)
        result = None
        for _ in range(repeat):
            with watch.time("backtest live (end to end)"):
                result = backtest_log(settings, log, period=period)
            with watch.time(f"backtest live + candidate bands {bands} (end to end)"):
                backtest_log(settings, log, period=period, bands=bands)
            with watch.time("floor: read orders and labels"):
                orders = list(log.iter_orders(start=history_start(feature_set, period.start), end=period.end))
                labels = list(LabelLog(log.engine).iter_labels())
            with watch.time("floor: bare batch feature frame"):
                frame = point_in_time_features(orders, feature_set, labels=labels, gazetteer=Gazetteer.build(),
                                               since=period.start,
                                               memory_limit=settings.training.features_memory_limit)
            if model is not None:
                matrix = feature_matrix(frame, list(model.booster.feature_name()))
                with watch.time("floor: bare booster predict"):
                    model.booster.predict(matrix)
            with watch.time("stage: history (frame + outcomes + batch predict)"):
                history = build_history(orders, labels, feature_set, period=period, model=model)
            with watch.time("stage: judge every row (live)"):
                replayed = replay(history, live)
            with watch.time("stage: served check"):
                check_served(log.engine, history, replayed, feature_set_hash=feature_set.hash(),
                             rules_version=live.rules_version, policy=live)
    figures = watch.figures
    assert result is not None
    history = result.history
    parity: dict[str, Any] = {}
    if model is not None and history.probability is not None:
        served_model = model_factory(feature_set)(model.booster, model.version, model.weights)
        single = np.array([served_model.predict(v).probability for v in history.vectors()])
        again = batch_probability(model.booster, history.frame)
        parity = {"rows": len(single), "max_abs_difference": float(np.max(np.abs(single - again)))}
    best = {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in figures.items()}
    frame_floor = best["floor: bare batch feature frame"]
    served = result.served
    return {
        "benchmark": "backtest", "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
        "data_dir": str(data_dir), "period": {"from": period.first_day.isoformat(), "to": period.last_day.isoformat(),
                                              "days": period.days},
        "orders": len(history), "model": model.version if model else None, "repeat": repeat,
        "served": served.to_json() if served is not None else None, "batch_vs_single_row": parity,
        "figures": {name: {"wall_s": round(w, 3), "cpu_s": round(c, 3),
                           "wall_vs_frame_floor": round(w / frame_floor[0], 2) if frame_floor[0] else None}
                    for name, (w, c) in best.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ORDERGUARD_DATA_DIR", "var")))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--bands", default="30,50,75", help="candidate bands of the second end-to-end run")
    args = parser.parse_args()
    console = Console()
    started = time.perf_counter()
    result = run(args.data_dir, repeat=args.repeat, bands=args.bands)
    result["seconds"] = round(time.perf_counter() - started, 1)
    table = Table("figure", "wall s", "CPU s", "wall / frame floor",
                  title=f"backtest of {result['orders']:,} orders, {result['period']['days']} days "
                        f"(best of {args.repeat})")
    for name, f in result["figures"].items():
        table.add_row(name, f"{f['wall_s']:.2f}", f"{f['cpu_s']:.2f}", f"{f['wall_vs_frame_floor']:.2f}x")
    console.print(table)
    if result["served"] is not None:
        console.print(f"served: {result['served']['compared']} compared, {result['served']['mismatches']} mismatches")
    if result["batch_vs_single_row"]:
        console.print(f"batch vs single-row probabilities: {result['batch_vs_single_row']}")
    write_results(RESULTS_DIR / "backtest.json", result, console)


if __name__ == "__main__":
    main()
