"""Verification outcomes: what the step-up check of a ``verify`` order (SMS code, call) came to.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 11:00:00

The order system reports each outcome (``POST /v1/verifications``); an order whose check
failed, or that nobody verified in time, goes to the review desk's queue.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_text() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("order_key", _key_text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_verifications_order", "verifications", ["order_key", "verified_at"])


def downgrade() -> None:
    op.drop_index("ix_verifications_order", table_name="verifications")
    op.drop_table("verifications")
