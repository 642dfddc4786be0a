"""Build the trusted-customer pool from the order log: the one entry point the CLI and the API share.

``TrustPool.build`` reads what the order log knew at ``as_of`` into an in-memory DuckDB
(``segments.inputs``), computes every customer's metrics and the pool (``segments.pool``)
and keeps the connection for the export, the paging and the explanations that follow.
The deny lists come from the configured rule pack, the same lists scoring uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import duckdb
from sqlalchemy.engine import Engine

from features.settings import Settings
from orderguard.clock import SHOP_TZ, parse_moment
from orderguard.errors import InvalidInputError
from scoring.rules import default_rules_path, load_rules_file
from segments import pool
from segments.criteria import Criteria
from segments.inputs import InputCounts, Progress, load_from_log, naive_utc


def resolve_as_of(text: str | None, *, now: datetime, field: str = "as_of") -> datetime:
    """The instant a user's as-of names (aware UTC): a date is the close of that shop day, a time is itself.

    A date means "the pool as it stood when that day was over", so two runs for a past day
    see the same data; a moment after ``now`` is refused (that pool is not known yet), and
    today's date means now. No as-of at all is the close of yesterday: the newest complete
    day, the same for every page and every export made today.
    """
    if text is None or not text.strip():
        return datetime.combine(now.astimezone(SHOP_TZ).date(), time(0), SHOP_TZ).astimezone(UTC)
    value = text.strip()
    moment = parse_moment(value, field=field)
    if len(value) == 10:
        day = moment.astimezone(SHOP_TZ).date()
        moment = datetime.combine(day + timedelta(days=1), time(0), SHOP_TZ).astimezone(UTC)
        if moment > now and day == now.astimezone(SHOP_TZ).date():
            return now
    if moment > now:
        raise InvalidInputError.must(field, "a day that is over or a past time (a later pool is not known yet)", value)
    return moment


def as_of_label(moment: datetime) -> str:
    """How people name an as-of: the shop day whose close it is (``2026-11-30``), else the shop time."""
    local = moment.astimezone(SHOP_TZ)
    if local.time() == time(0):
        return (local.date() - timedelta(days=1)).isoformat()
    return local.strftime("%Y-%m-%dT%H:%M")


def deny_keys(settings: Settings) -> list[tuple[str, str]]:
    """The configured rule pack's deny lists as ``(entity, stored key)`` pairs."""
    pack = load_rules_file(settings.scoring.rules_path or default_rules_path())
    return sorted([("phone", k) for k in pack.denied_phones] + [("device", k) for k in pack.denied_devices]
                  + [("address", k) for k in pack.denied_addresses])


@dataclass
class TrustPool:
    """A computed pool: the DuckDB connection holding ``customer_metrics``, and what built it."""

    con: duckdb.DuckDBPyConnection
    criteria: Criteria
    as_of: datetime
    inputs: InputCounts
    stats: pool.PoolStats

    @classmethod
    def build(cls, engine: Engine, settings: Settings, criteria: Criteria, *, as_of: datetime,
              progress: Progress | None = None, deny: Sequence[tuple[str, str]] | None = None) -> TrustPool:
        con = duckdb.connect()
        try:
            inputs = load_from_log(con, engine, as_of=as_of,
                                   deny=deny_keys(settings) if deny is None else deny, progress=progress)
            if progress is not None:
                progress("pool", 0, None)
            stats = pool.compute(con, criteria, naive_utc(as_of))
        except BaseException:
            con.close()
            raise
        return cls(con, criteria, as_of, inputs, stats)

    def rows(self, *, phones: bool = False, after: str | None = None,
             limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Pool rows as ``(column names, rows)``, ordered by customer id, from after the cursor ``after``."""
        rel = self.con.execute(pool.pool_sql(phones=phones, after=after, limit=limit))
        return [d[0] for d in rel.description], rel.fetchall()

    def relation(self, *, phones: bool = False) -> duckdb.DuckDBPyRelation:
        """The whole pool as a relation (the export writes it without a Python row in between)."""
        return self.con.sql(pool.pool_sql(phones=phones))

    def tiers(self) -> list[tuple[str, int]]:
        """Pool members per tier, best first."""
        return pool.tier_counts(self.con, self.criteria)

    def explain(self, account: str) -> pool.Explanation:
        return pool.explain(self.con, self.criteria, account)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> TrustPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

