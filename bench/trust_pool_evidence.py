"""Trusted-customer pool evidence: does the pool keep abusers out, and do its members come back?

Marketing rewards the pool (``segments``) with coupons and samples, so two things must
hold on a shop whose truth is known: no abuser may be in it, and its members should be
the customers who buy again (otherwise the rewards buy nothing). This measures both on
the simulator's ground truth, through the same commands a shop runs:

Set-up (each stage timed; with ``--workdir`` a stage already done is reused):

* **simulate**: ``orderguard generate`` of a ``--days`` (90) shop from ``--start``
  (2026-06-01), fixed ``--seed``: channel files and ``ground_truth.csv``;
* **ingest**: ``orderguard ingest`` of the files into a SQLite order log in the work
  directory (``ORDERGUARD_DATA_DIR``; a configured ``ORDERGUARD_DATABASE__URL`` is
  ignored, so the bench never writes to a real order log);
* **labels**: ``orderguard label simulate --until <as-of>`` then ``label import``: the
  simulated review desk's verdicts as they stood at the as-of (every abnormal order is
  confirmed 1-7 days after it was placed, a few only after a first ``needs_investigation``
  and 1-7 days more, so the last week's abuse is mostly not labelled yet);
* **score**: ``orderguard score-orders --until <as-of>``: the orders placed before the
  as-of scored through the rules (and a champion model, if one is registered; a fresh
  work directory has none) at their arrival, as the service would have.

The as-of is the close of day ``--as-of-day`` (60; ``segments.build.resolve_as_of``).
For each preset (``loose``, ``standard``, ``strict``) the pool is built from the order log
(``segments.build.TrustPool.build``, timed) and held against the ground truth:

* **leak**: pool customers with an account that placed an abnormal order before the
  as-of (an abuser or ring member). It must be 0; leaked customers are listed with what
  the pool saw of their abuse (labelled yet? scored how? ring mates flagged?);
* **later abusers**: pool customers whose accounts place an abnormal order in the
  ``--follow-days`` (30) after the as-of: what the pool could not have known;
* **repeat purchase**: the share of pool customers with an order placed in the 30 days
  after the as-of that was not cancelled or closed unpaid, against the same share of
  every other customer known at the as-of, and their ratio. Orders after the as-of come
  from a second read of the order log at the end of the follow-up
  (``segments.inputs.load_from_log``); their accounts are mapped to the as-of's customers
  (``customer_of``), so a returning customer counts once whatever channel they come back on.
  Beside it, the **honest** comparison: honest orders only (ground truth), against the
  others without abuse before the as-of. Abusers' throwaway accounts never come back, so
  the first ratio partly measures that the pool excludes them; the honest one asks
  whether it picks the customers who return among honest ones. Read it knowing the
  simulator: an everyday returning buyer is drawn at random from the earlier honest
  accounts of a channel (``simulate.traffic``), so past orders predict a return only
  through look-alike loyal customers and people with accounts on several channels;
* **which checks do the work**: every account with an abnormal order before the as-of
  and, per check, how many of them the pool excludes by it (and by it alone); and the
  accounts one check away from the pool, by pattern and by the one check they fail:
  where a late label or a missed score would turn into a leak.

Run: ``python -m bench.trust_pool_evidence [--days 90] [--as-of-day 60] [--follow-days 30]
[--seed 7] [--start 2026-06-01] [--workdir DIR]``; a fresh temporary directory (removed
afterwards) unless ``--workdir`` names one to keep and reuse. Figures print as tables
and go to ``bench/results/trust_pool_evidence.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_start
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from bench.report import RESULTS_DIR, write_results
from features.settings import Settings
from orderguard.clock import SHOP_TZ
from orderguard.ingest.orderlog import create_log_engine
from segments.build import TrustPool, as_of_label, resolve_as_of
from segments.criteria import Criteria, load_criteria
from segments.inputs import load_from_log, naive_utc
from simulate.reviews import read_ground_truth

RESULTS = RESULTS_DIR / "trust_pool_evidence.json"
PRESETS = ("loose", "standard", "strict")
#: Final statuses of an order that was never a purchase (buyer cancelled, or the platform closed it unpaid).
NOT_PURCHASED = ("cancelled", "closed")
#: Leaked customers listed per preset.
LISTED = 10
STATE_FILE = "bench-state.json"
console = Console(width=180)


# -- set-up ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shop:
    """The simulated shop and the cut: what makes two runs comparable."""

    days: int
    seed: int
    start: date
    orders_per_day: int
    as_of_day: int
    follow_days: int

    @property
    def period_end(self) -> datetime:
        """The close of the last simulated day (aware UTC): the simulated world's "now"."""
        return datetime.combine(self.start + timedelta(days=self.days), day_start(0), SHOP_TZ).astimezone(UTC)

    @property
    def as_of(self) -> datetime:
        """The close of day ``as_of_day`` (day 1 is ``start``), as the pool's CLI and API read a date."""
        day = self.start + timedelta(days=self.as_of_day - 1)
        return resolve_as_of(day.isoformat(), now=self.period_end)

    @property
    def follow_end(self) -> datetime:
        """The end of the follow-up window after the as-of."""
        return self.as_of + timedelta(days=self.follow_days)


@dataclass(frozen=True, slots=True)
class Stage:
    """One timed set-up or measurement step; ``reused`` when the work directory already held its result."""

    name: str
    seconds: float
    reused: bool = False
    note: str = ""


@dataclass
class Workdir:
    """The work directory: channel files, the order log and a state file saying which stages are done.

    A stage is skipped when the state file records it with the same key (the shop's
    configuration, the manifest's hash, the as-of), so a re-run reuses a prepared
    directory and a changed cut redoes only what depends on it.
    """

    root: Path
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def shop_dir(self) -> Path:
        return self.root / "shop"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def truth(self) -> Path:
        return self.shop_dir / "ground_truth.csv"

    @property
    def manifest(self) -> Path:
        return self.shop_dir / "manifest.json"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'orderguard.db'}"

    @classmethod
    def open(cls, root: Path) -> Workdir:
        """Read the state of ``root``; refuse a non-empty folder this bench did not make (it may hold real data)."""
        root.mkdir(parents=True, exist_ok=True)
        path = root / STATE_FILE
        if path.is_file():
            return cls(root, json.loads(path.read_text(encoding="utf-8")))
        if any(root.iterdir()):
            raise SystemExit(f"{root} is not empty and holds no {STATE_FILE}: give an empty or a previous "
                             "--workdir of this bench")
        return cls(root)

    def done(self, stage: str, key: object) -> bool:
        return bool(self.state.get(stage, {}).get("key") == key)

    def record(self, stage: str, key: object, seconds: float) -> None:
        self.state[stage] = {"key": key, "seconds": round(seconds, 2)}
        (self.root / STATE_FILE).write_text(json.dumps(self.state, indent=2) + "\n", encoding="utf-8")

    def forget(self) -> None:
        """Drop every stage and what they made: a different shop must not be ingested over the last one."""
        for folder in (self.shop_dir, self.data_dir):
            if folder.exists():
                shutil.rmtree(folder)
        self.state = {}
        (self.root / STATE_FILE).unlink(missing_ok=True)


def _cli() -> list[str]:
    """The ``orderguard`` command of this interpreter's environment (the package has no ``__main__``)."""
    script = Path(sys.executable).parent / "orderguard"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "import cli; cli.main()"]


def orderguard(args: Sequence[str], work: Workdir) -> str:
    """Run one ``orderguard`` command on the work directory's data; its last line of output, or exit with its error.

    The database URL is taken out of the environment so the order log is the SQLite file
    of the work directory, whatever the shell was configured for.
    """
    env = {k: v for k, v in os.environ.items() if k != "ORDERGUARD_DATABASE__URL"}
    env["ORDERGUARD_DATA_DIR"] = str(work.data_dir)
    done = subprocess.run([*_cli(), *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        console.print(done.stdout[-4000:], done.stderr[-4000:], markup=False, highlight=False)
        raise SystemExit(f"orderguard {args[0]} failed (exit {done.returncode})")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _manifest_hash(work: Workdir) -> str:
    return hashlib.sha256(work.manifest.read_bytes()).hexdigest()


@contextmanager
def _stage(stages: list[Stage], name: str, work: Workdir, key: object) -> Iterator[list[str] | None]:
    """Time one set-up stage, or record it as reused; the body runs only when the yielded list is not None."""
    if work.done(name, key):
        stages.append(Stage(name, float(work.state[name]["seconds"]), reused=True,
                            note="reused from the work directory"))
        yield None
        return
    notes: list[str] = []
    started = time.perf_counter()
    yield notes
    seconds = time.perf_counter() - started
    work.record(name, key, seconds)
    stages.append(Stage(name, seconds, note=" ".join(notes)))


def prepare(work: Workdir, shop: Shop) -> list[Stage]:
    """Simulate, ingest, label and score up to the as-of (see the module docstring), reusing what is done."""
    stages: list[Stage] = []
    config = {"days": shop.days, "seed": shop.seed, "start": shop.start.isoformat(),
              "orders_per_day": shop.orders_per_day}
    if not work.done("simulate", config) or not work.manifest.is_file():
        work.forget()
    with _stage(stages, "simulate", work, config) as notes:
        if notes is not None:
            notes.append(orderguard(["generate", "--days", str(shop.days), "--seed", str(shop.seed), "--start",
                                     shop.start.isoformat(), "--orders-per-day", str(shop.orders_per_day),
                                     "--out", str(work.shop_dir)], work))
    manifest = _manifest_hash(work)
    with _stage(stages, "ingest", work, manifest) as notes:
        if notes is not None:
            files = sorted(str(p) for p in work.shop_dir.glob("*.jsonl"))
            orderguard(["ingest", *files], work)
            notes.append(f"{len(files)} channel files")
    until = shop.as_of.isoformat()
    with _stage(stages, "labels", work, [manifest, until]) as notes:
        if notes is not None:
            labels = work.root / "labels.csv"
            notes.append(orderguard(["label", "simulate", "--truth", str(work.truth), "--until", until,
                                     "--out", str(labels)], work))
            orderguard(["label", "import", str(labels)], work)
    with _stage(stages, "score", work, [manifest, until]) as notes:
        if notes is not None:
            notes.append(orderguard(["score-orders", "--until", until], work))
    return stages


# -- measurement ----------------------------------------------------------------------------------------------------


def truth_table(work: Workdir) -> pa.Table:
    """The ground truth of every simulated order (key, pattern, abnormal, group), read by the simulator's reader."""
    entries = read_ground_truth(work.truth)
    return pa.table({"order_key": [str(e.key) for e in entries], "pattern": [e.pattern for e in entries],
                     "is_abnormal": [e.is_abnormal for e in entries], "group_id": [e.group_id for e in entries]})


def later_orders(work: Workdir, shop: Shop) -> pa.Table:
    """Orders placed in the follow-up window, as the order log knew them at its end (account, status)."""
    engine = create_log_engine(work.database_url)
    con = duckdb.connect()
    try:
        load_from_log(con, engine, as_of=shop.follow_end)
        table: pa.Table = con.sql(
            "SELECT order_key, account, created_at, status FROM orders WHERE created_at >= ? AND created_at < ?",
            params=[naive_utc(shop.as_of), naive_utc(shop.follow_end)]).to_arrow_table()
        return table
    finally:
        con.close()
        engine.dispose()


def _fails_sql(criteria: Criteria) -> list[tuple[str, str]]:
    """Each check as ``(name, SQL true when the customer fails it)`` over ``customer_metrics``."""
    return [(c.name, f"NOT ({c.metric} {c.op.sql} {c.threshold!r})") for c in criteria.checks]


@dataclass(frozen=True, slots=True)
class Leaked:
    """A pool customer with abuse before the as-of, and what the pool saw of it."""

    customer_id: str
    accounts: str
    patterns: str
    groups: str
    abnormal_orders: int
    labelled_fraud: int
    days_since_last: float
    top_score: float
    held: bool
    refund_claimed: int
    ring_accounts: int
    ring_flagged: int
    tenure_days: int
    completed_orders: int
    max_score: float
    links: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """The figures of one preset (see the module docstring)."""

    preset: str
    digest: str
    customers: int
    pool: int
    leak: int
    leaked_accounts: int
    leaked: list[Leaked]
    leaked_groups: int
    later_abusers: int
    later_abusers_others: int
    others: int
    repeat_pool: float
    repeat_others: float
    honest_others: int
    repeat_honest_pool: float
    repeat_honest_others: float
    abusive_accounts: int
    abusive_groups: int
    excluded_by: dict[str, tuple[int, int]]
    one_check_away: dict[tuple[str, str], int]
    leaked_by_pattern: dict[str, int]
    failing: dict[str, int]
    build_seconds: float
    measure_seconds: float

    @property
    def ratio(self) -> float | None:
        return self.repeat_pool / self.repeat_others if self.repeat_others else None

    @property
    def honest_ratio(self) -> float | None:
        return self.repeat_honest_pool / self.repeat_honest_others if self.repeat_honest_others else None

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out["pool_share"] = round(self.pool / self.customers, 4) if self.customers else None
        out["repeat_ratio"] = round(self.ratio, 3) if self.ratio is not None else None
        out["repeat_ratio_honest"] = round(self.honest_ratio, 3) if self.honest_ratio is not None else None
        out["excluded_by"] = {k: {"failing": a, "only_this": b} for k, (a, b) in self.excluded_by.items()}
        out["one_check_away"] = [{"pattern": p, "check": c, "accounts": n}
                                 for (p, c), n in sorted(self.one_check_away.items())]
        for name in ("repeat_pool", "repeat_others", "repeat_honest_pool", "repeat_honest_others"):
            out[name] = round(out[name], 4)
        return out


def _share(con: duckdb.DuckDBPyConnection, orders: str, *, honest: bool) -> tuple[float, float, int]:
    """Share of pool customers and of the others with an order in ``orders`` (a table of account); others' count.

    ``honest`` leaves out the others with abuse before the as-of: abusers' throwaway
    accounts never come back, so without them the comparison shows whether the pool
    picks returning customers among honest ones, not merely that it excludes abusers.
    """
    who = "WHERE customer NOT IN (SELECT customer FROM abuse)" if honest else ""
    row = con.execute(f"""
        WITH back AS (SELECT DISTINCT c.customer FROM {orders} b JOIN customer_of c USING (account))
        SELECT count(*) FILTER (WHERE m.in_pool), count(b.customer) FILTER (WHERE m.in_pool),
               count(*) FILTER (WHERE NOT m.in_pool), count(b.customer) FILTER (WHERE NOT m.in_pool)
        FROM (SELECT * FROM customer_metrics {who}) m LEFT JOIN back b USING (customer)""").fetchall()[0]
    pool, pool_back, others, others_back = (int(v) for v in row)
    return (pool_back / pool if pool else 0.0, others_back / others if others else 0.0, others)


def measure(pool: TrustPool, truth: pa.Table, later: pa.Table, build_seconds: float) -> Evidence:
    """Hold one computed pool against the ground truth and the follow-up window."""
    started = time.perf_counter()
    con = pool.con
    as_of = naive_utc(pool.as_of)
    con.register("truth_in", truth)
    con.register("later_in", later)
    con.execute("CREATE OR REPLACE TEMP TABLE truth AS SELECT * FROM truth_in")
    con.execute("CREATE OR REPLACE TEMP TABLE later_orders AS SELECT l.*, coalesce(t.is_abnormal, false) AS abnormal "
                "FROM later_in l LEFT JOIN truth t USING (order_key)")
    con.unregister("truth_in")
    con.unregister("later_in")
    # Abnormal orders known at the as-of, with the account that placed them and its customer then.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE abuse AS
        SELECT o.order_key, o.account, c.customer, t.pattern, t.group_id, o.created_at, o.refund_reason
        FROM orders o JOIN truth t USING (order_key) JOIN customer_of c USING (account)
        WHERE t.is_abnormal AND o.created_at < ?""", [as_of])
    fails = _fails_sql(pool.criteria)
    n_fails = " + ".join(f"CAST({sql} AS INTEGER)" for _, sql in fails) or "0"
    cols = ", ".join(f"count(*) FILTER (WHERE {sql}), count(*) FILTER (WHERE {sql} AND {n_fails} = 1)"
                     for _, sql in fails)
    row = con.execute(f"""
        WITH accounts AS (SELECT DISTINCT account, customer FROM abuse)
        SELECT count(*), count(*) FILTER (WHERE m.in_pool), count(DISTINCT m.customer) FILTER (WHERE m.in_pool)
               {", " + cols if cols else ""}
        FROM accounts a JOIN customer_metrics m USING (customer)""").fetchall()[0]
    abusive_accounts, leaked_accounts, leak = int(row[0]), int(row[1]), int(row[2])
    excluded_by = {name: (int(row[3 + 2 * i]), int(row[4 + 2 * i])) for i, (name, _) in enumerate(fails)}
    # Abusive accounts one failing check away from the pool: what keeps each pattern out when nothing else does.
    only = " ".join(f"WHEN {sql} THEN '{name}'" for name, sql in fails)
    one_away = con.execute(f"""
        WITH accounts AS (SELECT account, customer, string_agg(DISTINCT pattern, ' ' ORDER BY pattern) AS pattern
                          FROM abuse GROUP BY account, customer)
        SELECT a.pattern, CASE {only} END, count(*) FROM accounts a JOIN customer_metrics m USING (customer)
        WHERE {n_fails} = 1 GROUP BY ALL""").fetchall() if fails else []
    groups = con.execute("""
        SELECT count(DISTINCT group_id), count(DISTINCT group_id) FILTER (WHERE m.in_pool)
        FROM abuse a JOIN customer_metrics m USING (customer) WHERE group_id <> ''""").fetchall()[0]
    by_pattern = dict(con.execute("""
        SELECT a.pattern, count(DISTINCT a.account) FILTER (WHERE m.in_pool)
        FROM abuse a JOIN customer_metrics m USING (customer) GROUP BY a.pattern ORDER BY a.pattern""").fetchall())
    later_abuse = con.execute("""
        WITH later_bad AS (SELECT DISTINCT c.customer FROM later_orders l JOIN customer_of c USING (account)
                           WHERE l.abnormal)
        SELECT count(*) FILTER (WHERE m.in_pool), count(*) FILTER (WHERE NOT m.in_pool)
        FROM customer_metrics m JOIN later_bad USING (customer)""").fetchall()[0]
    not_purchased = ", ".join(f"'{s}'" for s in NOT_PURCHASED)
    con.execute(f"CREATE OR REPLACE TEMP VIEW bought AS SELECT account FROM later_orders "
                f"WHERE status NOT IN ({not_purchased})")
    con.execute("CREATE OR REPLACE TEMP VIEW bought_honest AS SELECT account FROM later_orders l "
                f"WHERE status NOT IN ({not_purchased}) AND NOT l.abnormal")
    repeat_pool, repeat_others, others = _share(con, "bought", honest=False)
    repeat_honest_pool, repeat_honest_others, honest_others = _share(con, "bought_honest", honest=True)
    return Evidence(
        preset=pool.criteria.name, digest=pool.criteria.digest, customers=pool.stats.customers, pool=pool.stats.pool,
        leak=leak, leaked_accounts=leaked_accounts, leaked=leaked_customers(con, as_of),
        leaked_groups=int(groups[1]), later_abusers=int(later_abuse[0]), later_abusers_others=int(later_abuse[1]),
        others=others, repeat_pool=repeat_pool, repeat_others=repeat_others, honest_others=honest_others,
        repeat_honest_pool=repeat_honest_pool, repeat_honest_others=repeat_honest_others,
        abusive_accounts=abusive_accounts, abusive_groups=int(groups[0]), excluded_by=excluded_by,
        one_check_away={(str(p), str(c)): int(k) for p, c, k in one_away},
        leaked_by_pattern={str(k): int(v) for k, v in by_pattern.items()}, failing=dict(pool.stats.failing),
        build_seconds=build_seconds,
        measure_seconds=time.perf_counter() - started)


def leaked_customers(con: duckdb.DuckDBPyConnection, as_of: datetime) -> list[Leaked]:
    """Up to ``LISTED`` leaked customers with the evidence the pool had at the as-of.

    For each: its abnormal orders, how many carried a confirmed-fraud verdict by then, the
    days since the newest one (the desk labels 1-7 days late), their highest score and
    whether one was held, refund claims on them, and its ring (the accounts of the same
    ground-truth group) and how many of those the pool counted as bad: a flagged ring mate
    that did not link the customer points at a crowded or unwatched shared key.
    """
    rows = con.execute(f"""
        WITH leaked AS (
            SELECT DISTINCT a.customer FROM abuse a JOIN customer_metrics m USING (customer) WHERE m.in_pool
        ), verdicts AS (
            SELECT order_key, arg_max(verdict, labeled_at) AS verdict FROM labels GROUP BY order_key
        ), scored AS (
            SELECT order_key, max(score) AS score, bool_or(decision = 'hold') AS held FROM scores GROUP BY order_key
        ), rings AS (
            SELECT l.customer, count(DISTINCT r.account) AS ring_accounts,
                   count(DISTINCT r.account) FILTER (WHERE b.account IS NOT NULL) AS ring_flagged
            FROM leaked l JOIN abuse a USING (customer)
            JOIN abuse r ON r.group_id = a.group_id AND r.group_id <> '' AND r.customer <> l.customer
            LEFT JOIN bad_accounts b ON b.account = r.account
            GROUP BY l.customer
        )
        SELECT m.customer_id, m.accounts, string_agg(DISTINCT a.pattern, ' ' ORDER BY a.pattern),
               string_agg(DISTINCT a.group_id, ' ' ORDER BY a.group_id), count(*),
               count(*) FILTER (WHERE v.verdict = 'confirmed_fraud'),
               round(epoch(? - max(a.created_at)) / 86400, 1), coalesce(max(s.score), 0),
               coalesce(bool_or(s.held), false), count(a.refund_reason),
               coalesce(any_value(r.ring_accounts), 0), coalesce(any_value(r.ring_flagged), 0),
               any_value(m.tenure_days), any_value(m.completed_orders), any_value(m.max_score), any_value(m.links)
        FROM leaked l JOIN abuse a USING (customer) JOIN customer_metrics m USING (customer)
        LEFT JOIN verdicts v USING (order_key) LEFT JOIN scored s USING (order_key) LEFT JOIN rings r USING (customer)
        GROUP BY m.customer_id, m.accounts ORDER BY m.customer_id LIMIT {LISTED}""", [as_of]).fetchall()
    return [Leaked(str(r[0]), str(r[1]), str(r[2]), str(r[3] or ""), int(r[4]), int(r[5]), float(r[6]),
                   float(r[7]), bool(r[8]), int(r[9]), int(r[10]), int(r[11]), int(r[12]), int(r[13]), float(r[14]),
                   int(r[15])) for r in rows]


# -- report ---------------------------------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def report_stages(stages: Sequence[Stage]) -> None:
    table = Table(title="stages", title_justify="left")
    for column in ("stage", "seconds", "note"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for s in stages:
        table.add_row(s.name, f"{s.seconds:.1f}" + (" (earlier run)" if s.reused else ""), s.note)
    console.print(table)


def report_presets(results: Sequence[Evidence], shop: Shop) -> None:
    table = Table(title=f"the pool as of {as_of_label(shop.as_of)} (close of day {shop.as_of_day}), held against "
                        f"the ground truth and the next {shop.follow_days} days", title_justify="left")
    for column in ("preset", "customers", "pool", "pool share", "leak", "later abusers (others)", "repeat pool",
                   "repeat others", "ratio", "honest: pool", "honest: others", "honest: ratio"):
        table.add_column(column, justify="left" if column == "preset" else "right")
    for e in results:
        table.add_row(e.preset, str(e.customers), str(e.pool), _pct(e.pool / e.customers) if e.customers else "-",
                      f"[bold red]{e.leak}[/]" if e.leak else "0", f"{e.later_abusers} ({e.later_abusers_others})",
                      _pct(e.repeat_pool), _pct(e.repeat_others), f"{e.ratio:.2f}" if e.ratio is not None else "-",
                      _pct(e.repeat_honest_pool), _pct(e.repeat_honest_others),
                      f"{e.honest_ratio:.2f}" if e.honest_ratio is not None else "-")
    console.print(table)
    console.print("repeat: a customer with an order in the follow-up window that was not cancelled or closed unpaid; "
                  "honest: honest orders only, and the others without abuse before the as-of", markup=False,
                  highlight=False)


def report_checks(results: Sequence[Evidence]) -> None:
    first = results[0]
    console.print(f"{first.abusive_accounts} accounts placed abnormal orders before the as-of ({first.abusive_groups} "
                  "groups); how many each check excludes, and (in brackets) how many it alone excludes:",
                  markup=False, highlight=False)
    table = Table()
    table.add_column("check")
    for e in results:
        table.add_column(e.preset, justify="right")
    checks = list(dict.fromkeys(name for e in results for name in e.excluded_by))
    for name in checks:
        cells = []
        for e in results:
            fails = e.excluded_by.get(name)
            cells.append(f"{fails[0]} ({fails[1]})" if fails is not None else "off")
        table.add_row(name, *cells)
    table.add_row("in the pool (accounts)", *(str(e.leaked_accounts) for e in results))
    table.add_row("groups with a member in the pool", *(str(e.leaked_groups) for e in results))
    console.print(table)
    pairs = sorted({pair for e in results for pair in e.one_check_away})
    if pairs:
        console.print("abusive accounts one check away from the pool, by the only check they fail:", markup=False,
                      highlight=False)
        table = Table()
        table.add_column("pattern")
        table.add_column("check")
        for e in results:
            table.add_column(e.preset, justify="right")
        for pattern, check in pairs:
            table.add_row(pattern, check, *(str(e.one_check_away.get((pattern, check), 0)) for e in results))
        console.print(table)
    patterns = sorted({p for e in results for p in e.leaked_by_pattern if e.leaked_by_pattern[p]})
    if patterns:
        table = Table(title="abusive accounts in the pool, by pattern", title_justify="left")
        table.add_column("pattern")
        for e in results:
            table.add_column(e.preset, justify="right")
        for p in patterns:
            table.add_row(p, *(str(e.leaked_by_pattern.get(p, 0)) for e in results))
        console.print(table)


def report_leaks(results: Sequence[Evidence]) -> None:
    for e in results:
        if not e.leaked:
            continue
        table = Table(title=f"{e.preset}: {e.leak} leaked customers (first {len(e.leaked)})", title_justify="left")
        for column in ("customer", "accounts", "pattern", "group"):
            table.add_column(column, no_wrap=True)
        for column in ("abuse orders", "labelled fraud", "days before as-of", "top score", "held", "refund claims",
                       "ring mates bad", "tenure", "orders done", "links"):
            table.add_column(column, justify="right", max_width=9, overflow="fold")
        for x in e.leaked:
            table.add_row(x.customer_id, x.accounts, x.patterns, x.groups, str(x.abnormal_orders),
                          str(x.labelled_fraud), f"{x.days_since_last:.1f}", f"{x.top_score:.1f}",
                          "yes" if x.held else "no", str(x.refund_claimed), f"{x.ring_flagged}/{x.ring_accounts}",
                          str(x.tenure_days), str(x.completed_orders), str(x.links))
        console.print(table)
        console.print("days before as-of: since the newest abnormal order (the desk labels 1-7 days late); ring mates "
                      "bad: accounts of the same ground-truth group the pool counts as bad / all of them",
                      markup=False, highlight=False)


# -- run ------------------------------------------------------------------------------------------------------------


def evidence(work: Workdir, shop: Shop) -> tuple[list[Evidence], list[Stage], dict[str, Any]]:
    """Build every preset's pool at the as-of and measure it; the stages it took."""
    stages: list[Stage] = []
    started = time.perf_counter()
    truth = truth_table(work)
    later = later_orders(work, shop)
    stages.append(Stage("follow-up orders", time.perf_counter() - started,
                        note=f"ground truth + order log read at {shop.follow_end.isoformat()}: "
                             f"{later.num_rows} orders placed in the follow-up window"))
    settings = Settings(data_dir=work.data_dir)  # the deny lists of the configured rule pack, as the CLI reads them
    engine = create_log_engine(work.database_url)
    results: list[Evidence] = []
    inputs: dict[str, Any] = {}
    try:
        for preset in PRESETS:
            started = time.perf_counter()
            with TrustPool.build(engine, settings, load_criteria(preset), as_of=shop.as_of) as pool:
                built = time.perf_counter() - started
                inputs = asdict(pool.inputs) | {"propagation_rounds": pool.stats.rounds}
                results.append(measure(pool, truth, later, built))
            stages.append(Stage(f"pool build: {preset}", built,
                                note=f"then measured in {results[-1].measure_seconds:.1f} s"))
    finally:
        engine.dispose()
    return results, stages, inputs | {"follow_up_orders": later.num_rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up (or reuse), measure, print and write the results (see the module docstring)."""
    started = time.perf_counter()
    shop = Shop(days=args.days, seed=args.seed, start=date.fromisoformat(args.start),
                orders_per_day=args.orders_per_day, as_of_day=args.as_of_day, follow_days=args.follow_days)
    with tempfile.TemporaryDirectory(prefix="og-trust-pool-") as tmp:
        work = Workdir.open(Path(args.workdir) if args.workdir else Path(tmp))
        console.print(f"work directory: {work.root}; as-of {shop.as_of.isoformat()} (close of "
                      f"{as_of_label(shop.as_of)}), follow-up until {shop.follow_end.isoformat()}")
        stages = prepare(work, shop)
        results, measured, inputs = evidence(work, shop)
    stages += measured
    report_stages(stages)
    report_presets(results, shop)
    report_checks(results)
    report_leaks(results)
    result = {
        "bench": "trust_pool_evidence", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(), "duckdb": duckdb.__version__, "machine": platform.machine(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(),
        "shop": {"days": shop.days, "seed": shop.seed, "start": shop.start.isoformat(),
                 "orders_per_day": shop.orders_per_day, "as_of_day": shop.as_of_day,
                 "follow_days": shop.follow_days, "as_of": shop.as_of.isoformat(),
                 "follow_end": shop.follow_end.isoformat()},
        "inputs_at_as_of": inputs,
        "stages": [asdict(s) | {"seconds": round(s.seconds, 2)} for s in stages],
        "presets": [e.row() for e in results],
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_results(RESULTS, result, console)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=90, help="simulated days")
    parser.add_argument("--as-of-day", type=int, default=60, help="the pool is computed at the close of this day")
    parser.add_argument("--follow-days", type=int, default=30, help="days after the as-of watched for repeat "
                                                                    "purchases and later abuse")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2026-06-01", help="first simulated day, YYYY-MM-DD (shop time)")
    parser.add_argument("--orders-per-day", type=int, default=500)
    parser.add_argument("--workdir", help="keep the shop and order log here and reuse them on the next run")
    args = parser.parse_args(argv)
    if not 0 < args.as_of_day < args.days:
        parser.error("--as-of-day must be between 1 and --days - 1")
    if args.follow_days < 1 or args.as_of_day + args.follow_days > args.days:
        parser.error("--follow-days must be at least 1 and end within the simulated days")
    run(args)


if __name__ == "__main__":
    main()
