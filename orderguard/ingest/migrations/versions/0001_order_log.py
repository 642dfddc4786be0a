"""Order log: append-only ``order_events`` and derived current state in ``orders``.

Revision ID: 0001
Revises:
Create Date: 2024-11-11 00:00:00

Key columns use the binary "C" collation on PostgreSQL so that ``ORDER BY channel,
channel_order_id`` sorts by code point, exactly as SQLite and Python do: ties in event
time are broken by the order key identically on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_text() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("channel", _key_text(), nullable=False),
        sa.Column("channel_order_id", _key_text(), nullable=False),
        sa.Column("event_version", sa.BigInteger(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("channel_status", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.UniqueConstraint("channel", "channel_order_id", "event_version", name="uq_order_events_key"),
    )
    op.create_index("ix_order_events_time", "order_events",
                    ["event_time", "channel", "channel_order_id", "event_version"])
    op.create_table(
        "orders",
        sa.Column("channel", _key_text(), nullable=False),
        sa.Column("channel_order_id", _key_text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("event_version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shop_id", sa.String(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("state", _json(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "channel_order_id", name="pk_orders"),
    )
    op.create_index("ix_orders_created", "orders", ["created_at", "channel", "channel_order_id"])
    op.create_index("ix_orders_status", "orders", ["status"])


def downgrade() -> None:
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_index("ix_orders_created", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_order_events_time", table_name="order_events")
    op.drop_table("order_events")
