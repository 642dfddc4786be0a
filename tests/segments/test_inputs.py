"""The SQL fold of the order log's events agrees with the log's own fold (``derive_order``), at any as-of."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from features.facts import identity_keys
from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from orderguard.ingest.state import derive_order
from orderguard.schema import OrderKey
from segments.inputs import load_from_log, naive_utc
from tests.segments.shop import AS_OF, BUYS, fill


@pytest.mark.parametrize("days_before", [0, 13.95, 50])
def test_the_sql_fold_matches_derive_order(db_settings: Settings, days_before: float) -> None:
    as_of = AS_OF - timedelta(days=days_before)
    with OrderLog.open(db_settings.database_url) as log:
        log.migrate()
        fill(log)
        con = duckdb.connect()
        counts = load_from_log(con, log.engine, as_of=as_of)
        rows = con.execute("SELECT order_key, account, status, created_at, refund_reason, phone_hash, device, ip, "
                           "address, paid_fen FROM orders ORDER BY order_key").fetchall()
        expected = []
        for key in sorted({OrderKey(b.channel, b.order_id) for b in BUYS}, key=str):
            order = derive_order(e for e in log.history(key) if e.event_time < as_of)
            if order is None:
                continue
            keys = identity_keys(order)
            expected.append((str(key), f"{key.channel.value}:{order.details.buyer.account_id}", order.status.value,
                             naive_utc(order.details.created_at), order.refund.reason.value if order.refund else None,
                             keys.get("phone"), keys.get("device"), keys.get("ip"), keys.get("address"),
                             order.details.amounts.paid_fen))
        assert rows == expected
        assert 0 < counts.orders == len(expected) < len(BUYS) + (1 if days_before == 0 else 0)
        # the verdicts were given 3 days before AS_OF: known at AS_OF only
        assert counts.labels == (3 if days_before == 0 else 0)
        assert any(row[4] == "damaged" for row in rows) == (days_before < 13.9)
