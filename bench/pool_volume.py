"""A large-volume shop in the trusted-customer pool's input layout, generated in DuckDB SQL.

The simulator writes channel payloads one order at a time (minutes per hundred thousand
orders); the pool's scale benchmark needs ten million, so this fills the four input
tables of ``segments.inputs`` directly, from ``range(n)`` and DuckDB's ``hash`` (the same
seed gives the same tables), in well under a minute per ten million orders. The shape:

* ``customers`` people, each with an account on one of the six channels; one in ten has a
  second account on another channel with the same phone (the pool must join them);
  one in twenty has an id card on file;
* ``orders`` orders spread over the 400 days before the as-of: one for every customer,
  the rest skewed towards some (``customer = floor(customers * u^2)``: the first ids
  order most; mean ``orders / customers`` each); statuses mostly completed, with delivered, shipped,
  paid, cancelled, refunded, refund-requested and rejected; refunds carry a reason;
* identity keys: a device, a home WiFi shared by two customers, an address each; one
  order in ten from one of 50 carrier gateway IPs (crowded: thousands of accounts);
* rings: 2.5 % of customers are in rings of five sharing one handset; half their orders
  are confirmed fraud by a reviewer two days after they were placed, and they score
  high; 0.5 % of other orders carry a false-positive verdict;
* one score record per order (scored on arrival), decisions by the default bands
  35 / 55 / 80; ``deny``: 300 phones.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from segments.inputs import create_tables

CHANNELS = ("tmall", "jd", "douyin", "kuaishou", "wechat", "site")


def _h(seed: int, *parts: str) -> str:
    """DuckDB's hash of the parts and the seed joined into one string: one independent draw per salt.

    (``hash(x, seed, 'a')`` and ``hash(x, seed, 'b')`` differ only by a fixed XOR, so draws salted
    that way come out correlated.)"""
    return f"hash(concat_ws('|', {', '.join(parts)}, {seed}))"


def _u(seed: int, *parts: str) -> str:
    """A uniform [0, 1) from :func:`_h`."""
    return f"(({_h(seed, *parts)} % 1000003) / 1000003.0)"


def generate(con: duckdb.DuckDBPyConnection, *, customers: int, orders: int, as_of: datetime, seed: int = 7) -> None:
    """Fill ``orders``, ``labels``, ``scores`` and ``deny`` on ``con`` (``as_of`` naive UTC)."""
    create_tables(con)
    channels = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"
    t = f"TIMESTAMP '{as_of.isoformat(sep=' ')}'"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE gen_orders AS
        WITH o AS (
            SELECT i AS oid,
                   CASE WHEN i < {customers} THEN i
                        ELSE CAST(floor({customers} * pow({_u(seed, 'i', "'c'")}, 2)) AS BIGINT) END AS cid,
                   {_u(seed, 'i', "'s'")} AS us, {_u(seed, 'i', "'a'")} AS ua, {_u(seed, 'i', "'t'")} AS ut,
                   {_u(seed, 'i', "'g'")} AS ug, {_h(seed, 'i', "'r'")} % 5 AS reason_pick
            FROM range({orders}) r(i)
        )
        SELECT o.*,
               list_extract({channels}, CAST({_h(seed, 'cid', "'ch'")} % 6 AS INTEGER) + 1) AS ch1,
               list_extract({channels}, CAST(({_h(seed, 'cid', "'ch'")} + 1 + {_h(seed, 'cid', "'ch2'")} % 5) % 6
                                             AS INTEGER) + 1) AS ch2,
               {_h(seed, 'cid', "'two'")} % 10 = 0 AS two_accounts,
               cid % 200 < 5 AS ring
        FROM o""")
    con.execute(f"""
        INSERT INTO orders
        SELECT 'o:' || oid AS order_key,
               CASE WHEN two_accounts AND ua < 0.33 THEN ch2 || ':b' || cid ELSE ch1 || ':a' || cid END AS account,
               CASE WHEN two_accounts AND ua < 0.33 THEN ch2 ELSE ch1 END AS channel,
               {t} - to_seconds(CAST(floor(ut * 400 * 86400) AS BIGINT) + 60) AS created_at,
               CASE WHEN us < 0.72 THEN 'completed' WHEN us < 0.80 THEN 'delivered' WHEN us < 0.84 THEN 'shipped'
                    WHEN us < 0.86 THEN 'paid' WHEN us < 0.91 THEN 'cancelled' WHEN us < 0.95 THEN 'refunded'
                    WHEN us < 0.96 THEN 'refund_requested' WHEN us < 0.97 THEN 'refund_rejected'
                    ELSE 'completed' END AS status,
               1000 + CAST({_h(seed, 'oid', "'p'")} % 50000 AS BIGINT) AS paid_fen,
               NULL AS registered_at,
               CASE WHEN us >= 0.91 AND us < 0.97
                    THEN list_extract(['damaged', 'not_received', 'no_reason', 'wrong_item', 'other'],
                                      CAST(reason_pick AS INTEGER) + 1) END AS refund_reason,
               CASE WHEN us >= 0.91 AND us < 0.97 THEN {t} - to_seconds(CAST(floor(ut * 400 * 86400) AS BIGINT))
                    END AS refund_at,
               'p' || cid AS phone_hash, '138****' || lpad(CAST(cid % 10000 AS VARCHAR), 4, '0') AS phone_masked,
               CASE WHEN cid % 20 = 0 THEN 'i' || cid END AS id_card_hash,
               CASE WHEN ring THEN 'ring' || (cid // 200) ELSE 'd' || cid END AS device,
               'w' || (cid // 2) AS wifi,
               CASE WHEN ug < 0.1 THEN 'gw' || CAST(floor(ug * 500) AS BIGINT) ELSE 'ip' || cid END AS ip,
               'a' || cid AS address
        FROM gen_orders""")
    con.execute(f"""
        INSERT INTO labels
        SELECT 'o:' || oid, 'confirmed_fraud',
               {t} - to_seconds(CAST(floor(ut * 400 * 86400) AS BIGINT)) + INTERVAL 2 DAY
        FROM gen_orders WHERE ring AND ua >= 0.5 AND ut * 400 > 2
        UNION ALL
        SELECT 'o:' || oid, 'false_positive', {t} - to_seconds(CAST(floor(ut * 400 * 86400) AS BIGINT)) + INTERVAL 1 DAY
        FROM gen_orders WHERE NOT ring AND ug > 0.995 AND ut * 400 > 1""")
    con.execute(f"""
        INSERT INTO scores
        SELECT 'o:' || oid, created, created, score,
               CASE WHEN score >= 80 THEN 'hold' WHEN score >= 55 THEN 'review' WHEN score >= 35 THEN 'verify'
                    ELSE 'approve' END
        FROM (SELECT oid, {t} - to_seconds(CAST(floor(ut * 400 * 86400) AS BIGINT) + 60) AS created,
                     round(least(100, pow({_u(seed, 'oid', "'sc'")}, 4) * 100 + CASE WHEN ring THEN 50 ELSE 0 END), 2)
                       AS score
              FROM gen_orders)""")
    con.execute(f"INSERT INTO deny SELECT 'phone', 'p' || ((i * 3331) % {customers}) FROM range(300) r(i)")
    con.execute("DROP TABLE gen_orders")
