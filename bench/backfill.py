"""Backfill benchmark: the handbook's 15 features of all 1,754,155 transactions, beside a SQL floor.

Two paths, each from the raw ``transactions_raw.csv.gz`` to a Parquet file of
``TRANSACTION_ID`` + the book's 15 columns sorted by ``TRANSACTION_ID``:

* **floor** - one hand-written DuckDB statement: the 12 window aggregates written out
  as ``RANGE`` frames over customer and terminal partitions, the three per-row columns
  and the ratios, with the book's tie rule (same-second transactions of a customer are
  ordered by ``TRANSACTION_ID``, see ``training.benchmarks.handbook_features``). It
  knows the data set and needs no facts, specs or labels: what a person would write
  by hand for these 15 columns and nothing else.
* **engine** - ``orderguard handbook features``: the features declared as FeatureSpecs
  (``training/benchmarks/handbook.yaml``), the transactions mapped onto order and label
  facts, SQL generated from the specs by ``features.batch`` and run on DuckDB through
  the columnar ``load_facts`` path.

Each run is a fresh subprocess, so its peak RSS (``os.wait4``'s ``ru_maxrss``, the
whole process including the interpreter and DuckDB) is its own; wall time is measured
inside the child around the work (imports excluded), and so is CPU time (user + system,
all threads): on a shared machine CPU time is the steadier of the two. The paths
alternate ``--repeat`` times and the best wall and CPU time of each are reported, with
their ratios to the floor. The two outputs are then compared column by column (largest
absolute difference).

Run: ``python -m bench.backfill [--data PATH] [--repeat 3]``; writes
``bench/results/backfill.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "handbook" / "transactions_raw.csv.gz"
PATHS = ("floor", "engine")
_DAY = 86_400 * 10**6  # microseconds


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def floor_sql(data: Path, out: Path) -> str:
    """The hand-written statement: CSV in, the book's 15 columns out, one DuckDB query.

    Times are integer microseconds of ``TX_DATETIME`` read as UTC; frames are
    ``RANGE BETWEEN a PRECEDING AND b PRECEDING`` with ``a = span - 1`` (open lower edge).
    """
    customer = {n: f"PARTITION BY CUSTOMER_ID ORDER BY us RANGE BETWEEN {n * _DAY - 1} PRECEDING AND CURRENT ROW"
                for n in (1, 7, 30)}
    terminal = {n: (f"PARTITION BY TERMINAL_ID ORDER BY us RANGE BETWEEN {(n + 7) * _DAY - 1} PRECEDING "
                    f"AND {7 * _DAY} PRECEDING") for n in (1, 7, 30)}
    windows = ",\n    ".join([*(f"c{n} AS ({w})" for n, w in customer.items()),
                              *(f"t{n} AS ({w})" for n, w in terminal.items())])
    aggregates = ",\n    ".join(
        [*(f"count(*) OVER c{n} AS c_nb{n}, avg(TX_AMOUNT) OVER c{n} AS c_avg{n}" for n in customer),
         *(f"count(*) OVER t{n} AS t_nb{n}, sum(TX_FRAUD) OVER t{n} AS t_fraud{n}" for n in terminal)])
    columns = ",\n  ".join(
        ["TRANSACTION_ID", "TX_AMOUNT",
         "CAST(isodow(TX_DATETIME) >= 6 AS BIGINT) AS TX_DURING_WEEKEND",
         "CAST(hour(TX_DATETIME) <= 6 AS BIGINT) AS TX_DURING_NIGHT",
         *(f"CAST(c_nb{n} AS DOUBLE) AS CUSTOMER_ID_NB_TX_{n}DAY_WINDOW, "
           f"c_avg{n} AS CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW" for n in customer),
         *(f"CAST(t_nb{n} AS DOUBLE) AS TERMINAL_ID_NB_TX_{n}DAY_WINDOW, "
           f"CASE WHEN t_nb{n} > 0 THEN t_fraud{n} / t_nb{n} ELSE 0.0 END AS TERMINAL_ID_RISK_{n}DAY_WINDOW"
           for n in terminal)])
    return f"""
COPY (
WITH raw AS (
  SELECT TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD
  FROM read_csv({_sql_path(data)}, header = true)
), tx AS (
  SELECT *, epoch_us(TX_DATETIME)
            + row_number() OVER (PARTITION BY CUSTOMER_ID, TX_DATETIME ORDER BY TRANSACTION_ID) - 1 AS us
  FROM raw
), w AS (
  SELECT TRANSACTION_ID, TX_DATETIME, TX_AMOUNT,
    {aggregates}
  FROM tx
  WINDOW
    {windows}
)
SELECT
  {columns}
FROM w
ORDER BY TRANSACTION_ID
) TO {_sql_path(out)} (FORMAT PARQUET)"""


def _run_floor(data: Path, out: Path) -> int:
    import duckdb

    with duckdb.connect() as con:
        con.execute(floor_sql(data, out))
        return int(con.execute(f"SELECT count(*) FROM read_parquet({_sql_path(out)})").fetchall()[0][0])


def _run_engine(data: Path, out: Path) -> int:
    from training.benchmarks.handbook_features import write_handbook_features

    return write_handbook_features(data, out).rows


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process (DuckDB's too)
    return usage.ru_utime + usage.ru_stime


def _child(path: str, data: Path, out: Path) -> None:
    """Run one path in this process and print ``{"seconds", "cpu_seconds", "rows"}`` as JSON."""
    import duckdb  # noqa: F401  - imported before the clock starts, as the engine's modules are

    if path == "engine":
        import training.benchmarks.handbook_features  # noqa: F401
    started, cpu = time.perf_counter(), _cpu_seconds()
    rows = _run_floor(data, out) if path == "floor" else _run_engine(data, out)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": rows}))


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run of one path."""

    path: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    rows: int


def _measure(path: str, data: Path, out: Path) -> Run:
    """Run a path in a fresh subprocess; its own peak RSS comes from ``wait4`` on that child alone."""
    cmd = [sys.executable, "-m", "bench.backfill", "--child", path, "--data", str(data), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None
    output = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{path} run failed with exit code {proc.returncode}")
    result = json.loads(output.decode().strip().splitlines()[-1])
    return Run(path, float(result["seconds"]), float(result["cpu_seconds"]), usage.ru_maxrss / 1024,
               int(result["rows"]))


def agreement(floor: Path, engine: Path) -> dict[str, Any]:
    """Largest absolute difference per column between the two outputs (same ids, same order)."""
    import duckdb

    with duckdb.connect() as con:
        columns = [c for c in con.execute(f"SELECT * FROM read_parquet({_sql_path(engine)}) LIMIT 0").df().columns
                   if c != "TRANSACTION_ID"]
        diffs = ", ".join(f'max(abs(CAST(f."{c}" AS DOUBLE) - CAST(e."{c}" AS DOUBLE))) AS "{c}"'
                          for c in columns)
        query = (f"SELECT count(*) AS joined, {diffs} FROM read_parquet({_sql_path(floor)}) f "
                 f"JOIN read_parquet({_sql_path(engine)}) e USING (TRANSACTION_ID)")
        row = con.execute(query).df().iloc[0].to_dict()
        counts = con.execute(f"SELECT (SELECT count(*) FROM read_parquet({_sql_path(floor)})), "
                             f"(SELECT count(*) FROM read_parquet({_sql_path(engine)}))").fetchall()[0]
        same_order = con.execute(
            f"SELECT bool_and(f.TRANSACTION_ID = e.TRANSACTION_ID) FROM "
            f"(SELECT TRANSACTION_ID, row_number() OVER () AS i FROM read_parquet({_sql_path(floor)})) f JOIN "
            f"(SELECT TRANSACTION_ID, row_number() OVER () AS i FROM read_parquet({_sql_path(engine)})) e "
            "USING (i)").fetchall()[0][0]
    per_column = {c: float(row[c]) for c in columns}
    worst = max(per_column, key=lambda c: per_column[c])
    return {"rows_floor": int(counts[0]), "rows_engine": int(counts[1]), "rows_joined": int(row["joined"]),
            "same_order": bool(same_order), "max_abs_diff": per_column[worst], "worst_column": worst,
            "max_abs_diff_by_column": per_column}


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark (or one child run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="transactions_raw.csv.gz of the handbook")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path (best wall time is reported)")
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data: Path = args.data.resolve()
    if args.child is not None:
        _child(args.child, data, args.out)
        return
    if not data.is_file():
        raise SystemExit(f"handbook data not found at {data} (pass --data)")
    with tempfile.TemporaryDirectory(prefix="og-backfill-") as tmp:
        outputs = {p: Path(tmp) / f"{p}.parquet" for p in PATHS}
        runs: list[Run] = []
        for i in range(args.repeat):
            for path in PATHS:
                run = _measure(path, data, outputs[path])
                runs.append(run)
                print(f"run {i + 1}/{args.repeat} {path:<6} {run.seconds:6.2f} s wall  {run.cpu_seconds:6.2f} s CPU  "
                      f"peak RSS {run.peak_rss_mb:5.0f} MB  {run.rows:,} rows", flush=True)
        agree = agreement(outputs["floor"], outputs["engine"])
    best = {p: min((r for r in runs if r.path == p), key=lambda r: r.seconds) for p in PATHS}
    cpu = {p: min(r.cpu_seconds for r in runs if r.path == p) for p in PATHS}
    peak = {p: max(r.peak_rss_mb for r in runs if r.path == p) for p in PATHS}
    time_ratio = best["engine"].seconds / best["floor"].seconds
    cpu_ratio = cpu["engine"] / cpu["floor"]
    rss_ratio = peak["engine"] / peak["floor"]
    print()
    print(f"backfill of {best['engine'].rows:,} transactions, 15 features (12 windows), best of {args.repeat}:")
    labels = {"floor": "floor  (hand-written DuckDB window query)",
              "engine": "engine (FeatureSpecs -> features.batch)  "}
    for p in PATHS:
        print(f"  {labels[p]} {best[p].seconds:6.2f} s wall  {cpu[p]:6.2f} s CPU  peak RSS {peak[p]:5.0f} MB")
    print(f"  ratio engine/floor: wall {time_ratio:.2f}x   CPU {cpu_ratio:.2f}x   peak RSS {rss_ratio:.2f}x")
    print(f"  agreement: {agree['rows_joined']:,} of {agree['rows_floor']:,} / {agree['rows_engine']:,} rows joined, "
          f"same order: {agree['same_order']}, max |floor - engine| = {agree['max_abs_diff']:.3g} "
          f"({agree['worst_column']})")
    result = {
        "benchmark": "backfill",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "data": str(data),
        "rows": best["engine"].rows,
        "features": 15,
        "windows": 12,
        "repeat": args.repeat,
        **{p: {"best_seconds": best[p].seconds, "best_cpu_seconds": cpu[p], "peak_rss_mb": peak[p]} for p in PATHS},
        "ratio": {"time": time_ratio, "cpu": cpu_ratio, "peak_rss": rss_ratio},
        "runs": [asdict(r) for r in runs],
        "agreement": agree,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / "backfill.json"
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"  wrote {target}")


if __name__ == "__main__":
    main()
