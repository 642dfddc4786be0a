"""The trusted-customer pool, computed in DuckDB over the input tables (``segments.inputs``).

Steps, each one statement over whole tables (no Python per customer):

1. **Customers.** Accounts are one person when a hashed phone or id card links them,
   across channels too: connected components, found by label propagation (each account
   takes the smallest account id among those it shares a phone or id card with, repeated
   until nothing changes; the number of rounds is the longest chain, a handful).
2. **Order flags.** Each order's latest verdict known at ``as_of`` (an open ``needs_investigation``
   counts against the customer until it is resolved), its highest score and
   whether it was held in the windows, whether its phone, device or address is on the
   deny list. A reviewer's ``false_positive`` verdict clears the order's score and hold:
   the reviewer looked and found it honest.
3. **Bad accounts**: a confirmed-fraud verdict, an uncleared hold in the hold window, or
   a deny-list hit. Their identity keys (device, WiFi, IP, address, phone, id card, as
   chosen) used within the link window *taint* the key, unless the key is crowded
   (shared by ``crowded_at`` accounts or more: a carrier's NAT, an office, a locker).
4. **Metrics** per customer (the columns of ``METRICS``), the pass/fail of every check
   of the criteria, and the tier.

``as_of`` is exclusive and every window is ``[as_of - days, as_of)``; the input tables
already hold only what was known at ``as_of``, so the pool of a past day is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from segments.criteria import Check, Criteria, LinkVia, Op

#: The per-customer metrics a check may read (``Check.metric``), beside the descriptive columns.
METRICS = ("tenure_days", "completed_orders", "refund_rate", "refund_claims", "fraud_labels", "investigations",
           "max_score", "holds", "deny_listed", "links")

#: Statuses that mean the goods arrived and stayed (a rejected refund claim leaves the order delivered).
COMPLETED = ("delivered", "completed", "refund_rejected")
#: Statuses of an order never paid.
UNPAID = ("created", "cancelled", "closed", "awaiting_group")

_MAX_ROUNDS = 64


def _ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


@dataclass(frozen=True, slots=True)
class PoolStats:
    """What the computation saw: customers, pool size, propagation rounds, failures per check."""

    customers: int
    pool: int
    rounds: int
    failing: dict[str, int]


def _customers(con: duckdb.DuckDBPyConnection) -> int:
    """Step 1: ``customer_of(account, customer)`` by label propagation over shared phone / id-card hashes."""
    # a key held by one account links nobody (its minimum is that account's own label), so only shared keys
    # take part: the rounds then touch the accounts that have something to propagate, not every account
    con.execute("""
        CREATE OR REPLACE TEMP TABLE account_keys AS
        WITH keyed AS (
            SELECT DISTINCT account, 'p' || phone_hash AS k FROM orders WHERE phone_hash IS NOT NULL
            UNION SELECT DISTINCT account, 'i' || id_card_hash FROM orders WHERE id_card_hash IS NOT NULL)
        SELECT account, k FROM keyed WHERE k IN (SELECT k FROM keyed GROUP BY k HAVING count(*) > 1)""")
    con.execute("CREATE OR REPLACE TEMP TABLE customer_of AS SELECT DISTINCT account, account AS customer FROM orders")
    rounds = 0
    while rounds < _MAX_ROUNDS:
        rounds += 1
        con.execute("""
            CREATE OR REPLACE TEMP TABLE next_of AS
            WITH key_min AS (
                SELECT ak.k, min(c.customer) AS m FROM account_keys ak JOIN customer_of c USING (account) GROUP BY ak.k
            ), best AS (
                SELECT ak.account, min(km.m) AS m FROM account_keys ak JOIN key_min km USING (k) GROUP BY ak.account
            )
            SELECT c.account, least(c.customer, coalesce(b.m, c.customer)) AS customer
            FROM customer_of c LEFT JOIN best b USING (account)""")
        changed = con.execute("SELECT count(*) FROM next_of n JOIN customer_of c USING (account) "
                              "WHERE n.customer <> c.customer").fetchall()[0][0]
        con.execute("CREATE OR REPLACE TEMP TABLE customer_of AS SELECT * FROM next_of")
        if not changed:
            break
    con.execute("DROP TABLE next_of")
    return rounds


def _order_flags(con: duckdb.DuckDBPyConnection, criteria: Criteria, as_of: datetime) -> None:
    """Step 2: one row per order with its customer and the flags the metrics count."""
    t = _ts(as_of)
    score_from = _ts(as_of - timedelta(days=criteria.score_days))
    hold_from = _ts(as_of - timedelta(days=criteria.hold_days))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE order_flags AS
        WITH verdicts AS (
            SELECT order_key, arg_max(verdict, labeled_at) AS verdict FROM labels
            WHERE labeled_at < {t} GROUP BY order_key
        ), scored AS (
            SELECT order_key,
                   max(score) FILTER (WHERE event_time >= {score_from}) AS max_score,
                   bool_or(decision = 'hold' AND event_time >= {hold_from}) AS held
            FROM scores WHERE scored_at < {t} GROUP BY order_key
        )
        SELECT o.*, c.customer,
               coalesce(v.verdict = 'confirmed_fraud', false) AS is_fraud,
               coalesce(v.verdict = 'false_positive', false) AS cleared,
               coalesce(v.verdict = 'needs_investigation', false) AS investigating,
               s.max_score, coalesce(s.held, false) AS held,
               coalesce(o.phone_hash IN (SELECT key FROM deny WHERE entity = 'phone')
                        OR o.device IN (SELECT key FROM deny WHERE entity = 'device')
                        OR o.address IN (SELECT key FROM deny WHERE entity = 'address'), false) AS deny_hit
        FROM orders o JOIN customer_of c USING (account)
        LEFT JOIN verdicts v USING (order_key) LEFT JOIN scored s USING (order_key)
        WHERE o.created_at < {t}""")


_KEY_COLUMN = {LinkVia.DEVICE: "device", LinkVia.WIFI: "wifi", LinkVia.IP: "ip", LinkVia.ADDRESS: "address",
               LinkVia.PHONE: "phone_hash", LinkVia.ID_CARD: "id_card_hash"}


def _links(con: duckdb.DuckDBPyConnection, criteria: Criteria, as_of: datetime) -> None:
    """Step 3: ``bad_accounts`` and ``customer_links(customer, bad_account, via, key)`` within the link window."""
    link_from = _ts(as_of - timedelta(days=criteria.link_days))
    con.execute("""
        CREATE OR REPLACE TEMP TABLE bad_accounts AS
        SELECT account, customer,
               CASE WHEN bool_or(is_fraud) THEN 'confirmed_fraud'
                    WHEN bool_or(deny_hit) THEN 'deny_list' ELSE 'held' END AS why
        FROM order_flags GROUP BY account, customer
        HAVING bool_or(is_fraud) OR bool_or(deny_hit) OR bool_or(held AND NOT cleared)""")
    # one row per (account, via, key): each kind of key is deduplicated on its own (the kinds cannot collide), and
    # an account has one customer, so it is carried along rather than hashed into the grouping
    keys = " UNION ALL ".join(
        f"SELECT account, any_value(customer) AS customer, '{via.value}' AS via, {_KEY_COLUMN[via]} AS key "
        f"FROM order_flags WHERE {_KEY_COLUMN[via]} IS NOT NULL AND created_at >= {link_from} "
        f"GROUP BY account, {_KEY_COLUMN[via]}"
        for via in criteria.link_via)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE customer_links AS
        WITH used AS ({keys}),
        open_keys AS (
            SELECT via, key FROM used GROUP BY via, key HAVING count(*) < {criteria.crowded_at}
        ), tainted AS (
            SELECT DISTINCT u.via, u.key, b.account AS bad_account, b.customer AS bad_customer, b.why
            FROM used u JOIN bad_accounts b USING (account) JOIN open_keys k USING (via, key)
        )
        SELECT DISTINCT u.customer, t.bad_account, t.why, u.via, u.key
        FROM used u JOIN tainted t USING (via, key)
        WHERE t.bad_customer <> u.customer""")


def _check_sql(check: Check) -> str:
    return f"({check.metric} {check.op.sql} {check.threshold!r})"


def _tier_sql(criteria: Criteria) -> str:
    arms = " ".join(f"WHEN tenure_days >= {tier.tenure_days!r} AND completed_orders >= {tier.completed_orders} "
                    f"THEN '{tier.name}'" for tier in criteria.tiers[:-1])
    return f"CASE {arms} ELSE '{criteria.tiers[-1].name}' END" if arms else f"'{criteria.tiers[-1].name}'"


def _metrics(con: duckdb.DuckDBPyConnection, criteria: Criteria, as_of: datetime) -> None:
    """Step 4: ``customer_metrics``: one row per customer, every metric, ``in_pool`` and ``tier``."""
    t = _ts(as_of)
    claims_from = _ts(as_of - timedelta(days=criteria.refund_claims_days))
    # delivered and kept, and placed long enough ago that a false "damaged / not received" claim would be in
    settled = f"status IN {_in(COMPLETED)} AND created_at < {_ts(as_of - timedelta(days=criteria.settle_days))}"
    reasons = _in(tuple(r.value for r in criteria.refund_reasons))
    passes = " AND ".join(_check_sql(c) for c in criteria.checks) or "true"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE customer_metrics AS
        WITH per_customer AS (
            SELECT customer,
                   count(*) AS orders,
                   count(*) FILTER (WHERE {settled}) AS completed_orders,
                   count(*) FILTER (WHERE status NOT IN {_in(UNPAID)} OR refund_reason IS NOT NULL) AS paid_orders,
                   count(*) FILTER (WHERE refund_reason IS NOT NULL) AS refund_orders,
                   count(*) FILTER (WHERE refund_reason IN {reasons} AND refund_at >= {claims_from}) AS refund_claims,
                   count(*) FILTER (WHERE is_fraud) AS fraud_labels,
                   count(*) FILTER (WHERE investigating) AS investigations,
                   coalesce(max(max_score) FILTER (WHERE NOT cleared), 0) AS max_score,
                   count(*) FILTER (WHERE held AND NOT cleared) AS holds,
                   count(*) FILTER (WHERE deny_hit) AS deny_listed,
                   least(min(created_at), coalesce(min(registered_at), min(created_at))) AS first_seen,
                   max(created_at) AS last_order_at,
                   coalesce(sum(paid_fen) FILTER (WHERE {settled}), 0) AS completed_fen
            FROM order_flags GROUP BY customer
        ), linked AS (
            SELECT customer, count(DISTINCT bad_account) AS links FROM customer_links GROUP BY customer
        ), measured AS (
            SELECT 'c_' || substr(md5(p.customer), 1, 16) AS customer_id, p.*,
                   CAST(floor(epoch({t} - p.first_seen) / 86400) AS BIGINT) AS tenure_days,
                   CASE WHEN p.paid_orders >= {criteria.refund_min_orders}
                        THEN round(p.refund_orders / p.paid_orders, 4) ELSE 0 END AS refund_rate,
                   coalesce(l.links, 0) AS links
            FROM per_customer p LEFT JOIN linked l USING (customer)
        )
        SELECT *, {passes} AS in_pool, {_tier_sql(criteria)} AS tier FROM measured""")
    # what a row of the pool lists (accounts to target, channels, phones): only for members, the costly part
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pool_members AS
        SELECT m.customer_id, {_DESCRIBE}
        FROM order_flags f JOIN customer_metrics m USING (customer) WHERE m.in_pool GROUP BY m.customer_id""")


#: The descriptive columns of a customer, aggregated over their orders.
_DESCRIBE = """string_agg(DISTINCT account, ' ' ORDER BY account) AS accounts,
               string_agg(DISTINCT channel, ' ' ORDER BY channel) AS channels,
               string_agg(DISTINCT phone_hash, ' ' ORDER BY phone_hash) AS phone_hashes,
               string_agg(DISTINCT phone_masked, ' ' ORDER BY phone_masked) AS phones_masked"""


def compute(con: duckdb.DuckDBPyConnection, criteria: Criteria, as_of: datetime) -> PoolStats:
    """Compute ``customer_metrics`` (every customer, ``in_pool``, ``tier``) from the input tables.

    ``as_of`` is naive UTC, like the input tables (``segments.inputs.naive_utc``).
    """
    rounds = _customers(con)
    _order_flags(con, criteria, as_of)
    _links(con, criteria, as_of)
    _metrics(con, criteria, as_of)
    con.execute("DROP TABLE order_flags")  # 2 GB at 10 M orders; nothing reads it after the pool is computed
    fails = ", ".join(f"count(*) FILTER (WHERE NOT {_check_sql(c)})" for c in criteria.checks)
    row = con.execute(f"SELECT count(*), count(*) FILTER (WHERE in_pool){', ' + fails if fails else ''} "
                      "FROM customer_metrics").fetchall()[0]
    return PoolStats(customers=int(row[0]), pool=int(row[1]), rounds=rounds,
                     failing={c.name: int(n) for c, n in zip(criteria.checks, row[2:], strict=True)})


def pool_sql(*, phones: bool = False, after: str | None = None, limit: int | None = None) -> str:
    """The pool's rows (``customer_metrics`` must exist), ordered by ``customer_id``; ``after`` is a cursor."""
    extra = ", phones_masked AS phones" if phones else ""
    where = "in_pool" + (f" AND customer_id > '{_cursor_literal(after)}'" if after is not None else "")
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    return (f"SELECT customer_id, tier, accounts, channels, coalesce(phone_hashes, '') AS phone_hashes, orders, "
            f"completed_orders, tenure_days, refund_rate, round(max_score, 2) AS max_score, last_order_at, "
            f"round(completed_fen / 100.0, 2) AS completed_yuan{extra} "
            f"FROM customer_metrics JOIN pool_members USING (customer_id) WHERE {where} ORDER BY customer_id{tail}")


def _cursor_literal(value: str) -> str:
    if not value.startswith("c_") or not all(ch in "0123456789abcdef" for ch in value[2:]) or len(value) > 34:
        raise ValueError("not a customer id")
    return value


def tier_counts(con: duckdb.DuckDBPyConnection, criteria: Criteria) -> list[tuple[str, int]]:
    """Pool members per tier, best tier first (a tier nobody reached shows 0)."""
    found = dict(con.execute("SELECT tier, count(*) FROM customer_metrics WHERE in_pool GROUP BY tier").fetchall())
    return [(tier.name, int(found.get(tier.name, 0))) for tier in criteria.tiers]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One bar held against a customer: the value, the bar, whether it passes and, if not, the reason to give."""

    check: str
    value: float
    op: Op
    threshold: float
    passes: bool
    reason_zh: str | None = None
    reason_en: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A bad account the customer shares a key with, and what they share."""

    bad_account: str
    why: str
    via: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an account is or is not in the pool."""

    account: str
    found: bool
    customer_id: str | None = None
    accounts: tuple[str, ...] = ()
    in_pool: bool = False
    tier: str | None = None
    metrics: tuple[tuple[str, float], ...] = ()
    checks: tuple[CheckResult, ...] = ()
    links: tuple[Link, ...] = ()

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The checks the customer fails, in the criteria's order."""
        return tuple(c for c in self.checks if not c.passes)


def _held(check: Check, value: float) -> CheckResult:
    if check.passes(value):
        return CheckResult(check.name, value, check.op, check.threshold, True)
    return CheckResult(check.name, value, check.op, check.threshold, False, check.reason(value, "zh"),
                       check.reason(value, "en"))


def explain(con: duckdb.DuckDBPyConnection, criteria: Criteria, account: str) -> Explanation:
    """Which checks ``account``'s customer fails, with the values (``compute`` must have run)."""
    rel = con.execute("SELECT m.*, (SELECT string_agg(account, ' ' ORDER BY account) FROM customer_of o "
                      "WHERE o.customer = m.customer) AS accounts "
                      "FROM customer_metrics m JOIN customer_of c USING (customer) WHERE c.account = ?", [account])
    names = [d[0] for d in rel.description]
    rows = rel.fetchall()
    if not rows:
        return Explanation(account=account, found=False)
    row: dict[str, Any] = dict(zip(names, rows[0], strict=True))
    checks = tuple(_held(check, float(row[check.metric])) for check in criteria.checks)
    links = tuple(Link(str(a), str(w), str(v)) for a, w, v in con.execute(
        "SELECT bad_account, why, string_agg(DISTINCT via, ', ' ORDER BY via) FROM customer_links WHERE customer = ? "
        "GROUP BY bad_account, why ORDER BY bad_account", [row["customer"]]).fetchall())
    return Explanation(account=account, found=True, customer_id=str(row["customer_id"]),
                       accounts=tuple(str(row["accounts"]).split(" ")), in_pool=bool(row["in_pool"]),
                       tier=str(row["tier"]) if row["in_pool"] else None,
                       metrics=tuple((m, float(row[m])) for m in METRICS), checks=checks, links=links)
