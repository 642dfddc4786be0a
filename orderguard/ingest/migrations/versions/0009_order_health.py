"""Order health: fulfilment steps from the systems around an order, the sweeper's findings and snapshots.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 16:00:00

``fulfilment_events`` holds what the payment gateway, ERP/OMS, warehouse, carrier and
customer service report about an order (idempotent by the sender's event id, ordered by
event time, beside ``order_events``). ``health_findings`` is one row per order and
failed health check; ``health_snapshots`` the shop's health after each sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_text() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "fulfilment_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("channel", _key_text(), nullable=False),
        sa.Column("channel_order_id", _key_text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("event_id", _key_text(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.UniqueConstraint("channel", "channel_order_id", "kind", "event_id", name="uq_fulfilment_events_key"),
    )
    op.create_index("ix_fulfilment_events_order", "fulfilment_events", ["channel", "channel_order_id", "event_time"])
    op.create_index("ix_fulfilment_events_time", "fulfilment_events", ["event_time"])
    op.create_table(
        "health_findings",
        sa.Column("order_key", _key_text(), nullable=False),
        sa.Column("check_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("component", sa.String(32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_key", "check_id", name="pk_health_findings"),
    )
    op.create_index("ix_health_findings_open", "health_findings", ["resolved_at", "due_at"])
    op.create_table(
        "health_snapshots",
        sa.Column("taken_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("overall", sa.Float(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("summary", _json(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("health_snapshots")
    op.drop_index("ix_health_findings_open", table_name="health_findings")
    op.drop_table("health_findings")
    op.drop_index("ix_fulfilment_events_time", table_name="fulfilment_events")
    op.drop_index("ix_fulfilment_events_order", table_name="fulfilment_events")
    op.drop_table("fulfilment_events")
