"""Conditions that match many composite keys and still let the database search its index.

``(channel, channel_order_id) IN ((?, ?), (?, ?), ...)`` reads naturally, and SQLAlchemy
renders it as a row-value ``IN``, but SQLite plans any row-value ``IN`` of two or more
rows as a scan of the whole table (or its index): a batch of two orders then reads every
order ever stored, and the cost of an append grows with the log. Grouping the keys by
their first column gives ``(channel = ? AND channel_order_id IN (...)) OR ...``, which
SQLite answers with one index search per channel (``MULTI-INDEX OR``) and PostgreSQL with
index scans too. There are few channels (or few distinct first values), so the ``OR`` is short.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa


def pairs_in(first: sa.ColumnElement[Any], second: sa.ColumnElement[Any],
             pairs: Iterable[tuple[Any, Any]]) -> sa.ColumnElement[bool]:
    """``(first, second) IN pairs`` in a form every backend searches by index (see the module docstring).

    >>> t = sa.table("orders", sa.column("channel"), sa.column("oid"))
    >>> sql = str(pairs_in(t.c.channel, t.c.oid, [("jd", "1"), ("site", "2"), ("jd", "3")]))
    >>> sql.count("orders.channel = "), sql.count("orders.oid IN "), sql.count(" OR ")
    (2, 2, 1)
    >>> print(pairs_in(t.c.channel, t.c.oid, []))
    false
    """
    grouped: dict[Any, list[Any]] = defaultdict(list)
    for a, b in pairs:
        grouped[a].append(b)
    if not grouped:
        return sa.false()
    return sa.or_(*(sa.and_(first == a, second.in_(bs)) for a, bs in grouped.items()))
