"""Personal data at rest: stored events and orders get the address, device id and IP form ingest now stores.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 00:00:00

Every stored event and every order's current state is rewritten through
``orderguard.ingest.protect``: the street detail masked, the address, device id and IP
replaced by keyed hashes. Event content hashes are recomputed on the new form, so a
channel re-sending a payload stored before stays a duplicate, not a conflict.

The key is the deployment's ``ORDERGUARD_PII__HASH_KEY`` (the development key when it is
unset), read from the environment because a migration has no settings object: the
upgrade runs when the service or the CLI first opens the log, in their environment.
One-way: the clear values are gone, as intended, so there is no downgrade.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from orderguard.ingest import codec
from orderguard.ingest.normalize import PiiHasher
from orderguard.ingest.protect import protect, protect_details
from orderguard.settings import DEVELOPMENT_HASH_KEY

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    conn = op.get_bind()
    hasher = PiiHasher(os.environ.get("ORDERGUARD_PII__HASH_KEY", DEVELOPMENT_HASH_KEY).encode())
    events = sa.table("order_events", sa.column("id", sa.BigInteger()), sa.column("payload", _json()),
                      sa.column("content_hash", sa.String()))
    rewrite_event = (events.update().where(events.c.id == sa.bindparam("row_id"))
                     .values(payload=sa.bindparam("new_payload"), content_hash=sa.bindparam("new_hash")))
    last = -1
    while True:
        rows = conn.execute(sa.select(events.c.id, events.c.payload).where(events.c.id > last)
                            .order_by(events.c.id).limit(_BATCH)).all()
        if not rows:
            break
        updates = []
        for row_id, payload in rows:
            data = codec.event_to_dict(protect(codec.event_from_dict(payload), hasher))
            updates.append({"row_id": row_id, "new_payload": data, "new_hash": codec.content_hash_of(data)})
        conn.execute(rewrite_event, updates)  # one executemany per batch
        last = rows[-1][0]
    orders = sa.table("orders", sa.column("channel", sa.String()), sa.column("channel_order_id", sa.String()),
                      sa.column("state", _json()))
    key = sa.tuple_(orders.c.channel, orders.c.channel_order_id)
    rewrite_order = (orders.update().where(orders.c.channel == sa.bindparam("key_channel"),
                                           orders.c.channel_order_id == sa.bindparam("key_order_id"))
                     .values(state=sa.bindparam("new_state")))
    after: tuple[str, str] = ("", "")
    while True:
        batch = conn.execute(sa.select(orders.c.channel, orders.c.channel_order_id, orders.c.state)
                             .where(key > after).order_by(orders.c.channel, orders.c.channel_order_id)
                             .limit(_BATCH)).all()
        if not batch:
            break
        states = []
        for channel, order_id, state in batch:
            order = codec.order_from_dict(state)
            protected = dataclasses.replace(order, details=protect_details(order.details, hasher))
            states.append({"key_channel": channel, "key_order_id": order_id,
                           "new_state": codec.order_to_dict(protected)})
        conn.execute(rewrite_order, states)
        after = (batch[-1][0], batch[-1][1])


def downgrade() -> None:
    raise NotImplementedError("0004 removed clear addresses, device ids and IPs; they cannot come back")
