"""The review desk's claims, and the outbox of messages to other systems (alerts, order actions).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:00:00

``desk_claims``: one row per order a reviewer has opened on the desk, so two reviewers never
work the same order; a claim lapses after a while (an abandoned tab frees its order).

``outbox``: every message orderguard owes another system (a held order to the team's
DingTalk / WeCom / Feishu group, a release or cancel to the order system) is first a row
here, written beside the change that caused it; a sender delivers rows with retries and
backoff, so a receiver that is down delays messages but never loses them (they outlive a
restart) and never slows the request that queued them. ``dedup_key`` makes queuing
idempotent (the same alert for the same order and decision is queued once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_text() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "desk_claims",
        sa.Column("order_key", _key_text(), primary_key=True),
        sa.Column("reviewer", _key_text(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("dedup_key", _key_text(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.UniqueConstraint("destination", "dedup_key", name="uq_outbox_dedup"),
    )
    op.create_index("ix_outbox_due", "outbox", ["delivered_at", "failed_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("desk_claims")
