"""The pool on a shop whose every customer has one known reason to be in or out, on each order-log backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import duckdb
import pytest

from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from segments import pool
from segments.build import TrustPool
from segments.criteria import load_criteria
from segments.inputs import create_tables
from tests.segments.shop import AS_OF, BEFORE_LABEL, DENY, EXPECTED_POOL, FAILS, fill


@pytest.fixture
def shop(db_settings: Settings) -> Iterator[tuple[OrderLog, Settings]]:
    with OrderLog.open(db_settings.database_url) as log:
        log.migrate()
        fill(log)
        yield log, db_settings


def members(built: TrustPool) -> set[str]:
    names, rows = built.rows()
    return {account for row in rows for account in str(dict(zip(names, row, strict=True))["accounts"]).split(" ")}


def build(shop: tuple[OrderLog, Settings], *, as_of: datetime = AS_OF, preset: str = "standard") -> TrustPool:
    log, settings = shop
    return TrustPool.build(log.engine, settings, load_criteria(preset), as_of=as_of, deny=DENY)


def test_the_pool_holds_exactly_the_customers_who_clear_every_bar(shop: tuple[OrderLog, Settings]) -> None:
    with build(shop) as built:
        # alice's JD account shares her phone: one customer, both accounts listed for targeting
        assert members(built) == EXPECTED_POOL | {"jd:alice-jd"}
        assert built.stats.pool == 3
        names, rows = built.rows()
        alice = next(dict(zip(names, r, strict=True)) for r in rows if "site:alice" in str(r))
        assert alice["accounts"] == "jd:alice-jd site:alice" and alice["channels"] == "jd site"
        assert alice["completed_orders"] == 4 and alice["orders"] == 4 and alice["tenure_days"] == 80
        assert "phones" not in names and alice["phone_hashes"] == "ph-alice"


def test_explain_names_each_failing_check_with_the_value(shop: tuple[OrderLog, Settings]) -> None:
    with build(shop) as built:
        for account, checks in FAILS.items():
            result = built.explain(account)
            assert result.found and not result.in_pool, account
            assert {f.check for f in result.failures} == checks, account
        carol = built.explain("site:carol")
        assert [(link.bad_account, link.why, link.via) for link in carol.links] == [
            ("site:bob", "confirmed_fraud", "device")]
        links = next(f for f in carol.failures if f.check == "links")
        assert links.value == 1 and links.reason_en is not None and "1" in links.reason_en and links.reason_zh
        assert built.explain("site:dave").in_pool  # bob shares dave's office IP, but 26 accounts do: crowded
        assert not built.explain("site:nobody").found


def test_as_of_sees_only_what_was_known_then(shop: tuple[OrderLog, Settings]) -> None:
    with build(shop, as_of=BEFORE_LABEL) as before:
        # bob's fraud verdict came later, so carol was not yet linked; hal's hold was not yet cleared; nobody
        # was investigating kim yet
        assert members(before) == {"site:alice", "jd:alice-jd", "site:dave", "site:carol", "site:kim"}
        assert {f.check for f in before.explain("site:hal").failures} == {"holds", "max_score"}
        assert before.explain("site:alice").metrics[0] == ("tenure_days", 76.0)


def test_presets_nest_strict_within_standard_within_loose(shop: tuple[OrderLog, Settings]) -> None:
    found = {}
    for preset in ("strict", "standard", "loose"):
        with build(shop, preset=preset) as built:
            found[preset] = members(built)
    assert found["strict"] <= found["standard"] <= found["loose"]
    assert found["strict"] < found["loose"]  # the presets differ on this shop, not just in name


def _insert(con: duckdb.DuckDBPyConnection, account: str, phone: str | None, id_card: str | None) -> None:
    con.execute("INSERT INTO orders (order_key, account, channel, created_at, status, phone_hash, id_card_hash) "
                "VALUES (?, ?, 'site', TIMESTAMP '2024-01-01', 'completed', ?, ?)",
                [f"o-{account}", account, phone, id_card])


def test_customers_join_through_any_chain_of_shared_phones_and_id_cards() -> None:
    con = duckdb.connect()
    create_tables(con)
    # a - b share a phone, b - c an id card, c - d a phone: one person; e stands alone
    for account, phone, card in (("d", "p2", None), ("c", "p2", "i1"), ("b", "p1", "i1"), ("a", "p1", None),
                                 ("e", "p3", None)):
        _insert(con, account, phone, card)
    stats = pool.compute(con, load_criteria("standard"), datetime(2024, 6, 1))
    assert stats.customers == 2 and stats.rounds >= 2
    groups = con.execute("SELECT string_agg(account, ' ' ORDER BY account) FROM customer_of GROUP BY customer "
                         "ORDER BY 1").fetchall()
    assert groups == [("a b c d",), ("e",)]
