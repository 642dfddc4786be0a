"""Trusted-customer pool at scale: export time for 1,000,000 customers / 10,000,000 orders.

The input tables (``segments.inputs`` layout) come from the large-volume generator
(``bench.pool_volume``, DuckDB SQL; documented there). On the same tables, in the same run:

* **orderguard**: ``segments.pool.compute`` with the ``standard`` criteria (customers by
  label propagation over shared phones and id cards, order flags, bad accounts and
  tainted keys, metrics, tiers) and the pool written to Parquet (``segments.export``);
* **floor**: one hand-written DuckDB statement doing the same joins for the same
  thresholds, as an analyst would write it (customers one hop through a shared phone or
  id card: on this data, where a person's accounts share one phone, that is the whole
  component) and ``COPY`` to Parquet.

Printed: table sizes, generation time, both times and their ratio (goal: orderguard
within 1.5x of the floor), both pool sizes and how many customers only one of them holds
(0 means the two agree), peak memory. The machine is shared: times move with its load;
the ratio is what to read.

Run: ``python -m bench.trust_pool_scale [--customers 1000000] [--orders 10000000] [--quick]``
(``--quick``: 50,000 customers / 500,000 orders). Results: ``bench/results/trust_pool_scale.json``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from bench.pool_volume import generate
from bench.report import RESULTS_DIR, write_results
from segments import pool
from segments.criteria import Criteria, load_criteria
from segments.export import Format, write
from segments.inputs import counts

AS_OF = datetime(2026, 12, 1)
RESULTS = RESULTS_DIR / "trust_pool_scale.json"


def _threshold(criteria: Criteria, name: str) -> float:
    check = criteria.check(name)
    assert check is not None, name
    return check.threshold


def hand_query(criteria: Criteria, out: Path) -> str:
    """The floor: the pool in one statement, written directly for the standard criteria's shape."""
    t = f"TIMESTAMP '{AS_OF.isoformat(sep=' ')}'"

    def ago(days: int) -> str:
        return f"TIMESTAMP '{(AS_OF - timedelta(days=days)).isoformat(sep=' ')}'"

    via = ", ".join({"device": "device", "wifi": "wifi", "ip": "ip", "address": "address", "phone": "phone_hash",
                     "id_card": "id_card_hash"}[v.value] for v in criteria.link_via)
    reasons = ", ".join(f"'{r.value}'" for r in criteria.refund_reasons)
    return f"""
    COPY (
    WITH keyed AS (SELECT DISTINCT account, phone_hash, id_card_hash FROM orders),
    by_phone AS (SELECT phone_hash, min(account) AS m FROM keyed WHERE phone_hash IS NOT NULL GROUP BY 1),
    by_card AS (SELECT id_card_hash, min(account) AS m FROM keyed WHERE id_card_hash IS NOT NULL GROUP BY 1),
    cust AS (
        SELECT k.account, least(k.account, min(p.m), min(c.m)) AS customer
        FROM keyed k LEFT JOIN by_phone p USING (phone_hash) LEFT JOIN by_card c USING (id_card_hash)
        GROUP BY k.account
    ),
    verdict AS (SELECT order_key, arg_max(verdict, labeled_at) AS v FROM labels WHERE labeled_at < {t} GROUP BY 1),
    sc AS (
        SELECT order_key, max(score) FILTER (WHERE event_time >= {ago(criteria.score_days)}) AS ms,
               bool_or(decision = 'hold' AND event_time >= {ago(criteria.hold_days)}) AS held
        FROM scores WHERE scored_at < {t} GROUP BY 1
    ),
    o AS (
        SELECT o.*, c.customer, v.v, sc.ms, coalesce(sc.held, false) AS held,
               (o.phone_hash IN (SELECT key FROM deny WHERE entity = 'phone')
                OR o.device IN (SELECT key FROM deny WHERE entity = 'device')
                OR o.address IN (SELECT key FROM deny WHERE entity = 'address')) AS denied
        FROM orders o JOIN cust c USING (account) LEFT JOIN verdict v USING (order_key) LEFT JOIN sc USING (order_key)
        WHERE o.created_at < {t}
    ),
    bad AS (
        SELECT account, customer FROM o GROUP BY account, customer
        HAVING bool_or(v = 'confirmed_fraud') OR bool_or(denied)
            OR bool_or(held AND v IS DISTINCT FROM 'false_positive')
    ),
    keys AS (
        SELECT DISTINCT account, customer, via, key FROM (
            UNPIVOT (SELECT account, customer, {via} FROM o WHERE created_at >= {ago(criteria.link_days)})
            ON {via} INTO NAME via VALUE key)
    ),
    open_keys AS (SELECT via, key FROM keys GROUP BY via, key HAVING count(DISTINCT account) < {criteria.crowded_at}),
    links AS (
        SELECT k.customer, count(DISTINCT b.account) AS n
        FROM keys k JOIN open_keys USING (via, key) JOIN keys kb USING (via, key) JOIN bad b ON b.account = kb.account
        WHERE b.customer <> k.customer GROUP BY k.customer
    ),
    m AS (
        SELECT customer,
               string_agg(DISTINCT account, ' ' ORDER BY account) AS accounts,
               count(*) AS orders,
               count(*) FILTER (WHERE status IN ('delivered', 'completed', 'refund_rejected')
                                AND created_at < {ago(criteria.settle_days)}) AS completed_orders,
               count(*) FILTER (WHERE status NOT IN ('created', 'cancelled', 'closed', 'awaiting_group')
                                OR refund_reason IS NOT NULL) AS paid_orders,
               count(*) FILTER (WHERE refund_reason IS NOT NULL) AS refund_orders,
               count(*) FILTER (WHERE refund_reason IN ({reasons})
                                AND refund_at >= {ago(criteria.refund_claims_days)}) AS refund_claims,
               count(*) FILTER (WHERE v = 'confirmed_fraud') AS fraud_labels,
               count(*) FILTER (WHERE v = 'needs_investigation') AS investigations,
               coalesce(max(ms) FILTER (WHERE v IS DISTINCT FROM 'false_positive'), 0) AS max_score,
               count(*) FILTER (WHERE held AND v IS DISTINCT FROM 'false_positive') AS holds,
               count(*) FILTER (WHERE denied) AS deny_listed,
               floor(epoch({t} - least(min(created_at), coalesce(min(registered_at), min(created_at)))) / 86400)
                   AS tenure_days
        FROM o GROUP BY customer
    )
    SELECT 'c_' || substr(md5(m.customer), 1, 16) AS customer_id, m.accounts, m.orders, m.completed_orders,
           m.tenure_days, m.max_score
    FROM m LEFT JOIN links l USING (customer)
    WHERE m.tenure_days >= {_threshold(criteria, "tenure_days")}
      AND m.completed_orders >= {_threshold(criteria, "completed_orders")}
      AND (CASE WHEN m.paid_orders >= {criteria.refund_min_orders}
                THEN round(m.refund_orders / m.paid_orders, 4) ELSE 0 END) <= {_threshold(criteria, "refund_rate")}
      AND m.refund_claims <= {_threshold(criteria, "refund_claims")}
      AND m.fraud_labels <= {_threshold(criteria, "fraud_labels")}
      AND m.investigations <= {_threshold(criteria, "investigations")}
      AND m.max_score < {_threshold(criteria, "max_score")}
      AND m.holds <= {_threshold(criteria, "holds")}
      AND m.deny_listed <= {_threshold(criteria, "deny_listed")}
      AND coalesce(l.n, 0) <= {_threshold(criteria, "links")}
    ORDER BY customer_id
    ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 customers / 500,000 orders")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.customers, args.orders = 50_000, 500_000
    console = Console()
    criteria = load_criteria("standard")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pool-scale-") as folder:
        con = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        t0 = time.perf_counter()
        generate(con, customers=args.customers, orders=args.orders, as_of=AS_OF, seed=args.seed)
        con.execute("CHECKPOINT")
        generated = time.perf_counter() - t0
        sizes = counts(con)
        console.print(f"generated {sizes.orders:,} orders, {sizes.labels:,} labels, {sizes.scores:,} scores, "
                      f"{sizes.deny} deny keys in {generated:.1f} s")

        hand_out = Path(folder) / "hand.parquet"
        t0 = time.perf_counter()
        con.execute(hand_query(criteria, hand_out))
        hand = time.perf_counter() - t0
        console.print(f"floor (hand-written statement): {hand:.1f} s")

        ours_out = Path(folder) / "pool.parquet"
        t0 = time.perf_counter()
        stats = pool.compute(con, criteria, AS_OF)
        computed = time.perf_counter() - t0
        written = write(con.sql(pool.pool_sql()), ours_out, Format.PARQUET, as_of=AS_OF)
        ours = time.perf_counter() - t0
        console.print(f"orderguard: {ours:.1f} s (compute {computed:.1f} s, {stats.rounds} propagation rounds)")

        check = duckdb.connect()
        only: dict[str, int] = {}
        for name, left, right in (("orderguard only", ours_out, hand_out), ("floor only", hand_out, ours_out)):
            only[name] = int(check.execute(
                f"SELECT count(*) FROM (SELECT customer_id FROM '{left}' EXCEPT SELECT customer_id FROM '{right}')"
            ).fetchall()[0][0])
        hand_rows = int(check.execute(f"SELECT count(*) FROM '{hand_out}'").fetchall()[0][0])
        check.close()
        con.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = ours / hand if hand else None
    table = Table("figure", "value", title=f"trusted-customer pool, {args.customers:,} customers / "
                                           f"{args.orders:,} orders (standard criteria)")
    rows: list[tuple[str, Any]] = [
        ("customers with an order", f"{stats.customers:,}"), ("generation", f"{generated:.1f} s"),
        ("floor: hand-written DuckDB statement + COPY parquet", f"{hand:.1f} s"),
        ("orderguard: segments.pool.compute + export parquet", f"{ours:.1f} s"),
        ("ratio orderguard / floor (goal <= 1.5)", f"{ratio:.2f}" if ratio else "-"),
        ("pool size: orderguard / floor", f"{written:,} / {hand_rows:,}"),
        ("customers in one pool only: orderguard / floor", f"{only['orderguard only']} / {only['floor only']}"),
        ("peak memory (RSS)", f"{peak_mb:,.0f} MB")]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    write_results(RESULTS, {
        "customers": args.customers, "orders": sizes.orders, "labels": sizes.labels, "scores": sizes.scores,
        "generation_s": round(generated, 2), "floor_s": round(hand, 2), "orderguard_s": round(ours, 2),
        "orderguard_compute_s": round(computed, 2), "ratio": round(ratio, 3) if ratio else None,
        "pool": written, "floor_pool": hand_rows, "only_orderguard": only["orderguard only"],
        "only_floor": only["floor only"], "rounds": stats.rounds, "failing": stats.failing,
        "peak_rss_mb": round(peak_mb), "seconds": round(time.perf_counter() - started, 1)}, console)


if __name__ == "__main__":
    main()
