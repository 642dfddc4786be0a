"""Reviewer labels: append-only verdicts with their own time (``labeled_at``).

Revision ID: 0003
Revises: 0002
Create Date: 2024-11-20 00:00:00

One row per label version: a relabel adds a row, the history stays. A label is
identified by ``(order, labeled_at, reviewer_id)``; re-importing the same label is a
no-op (see ``orderguard.labels``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_text() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("channel", _key_text(), nullable=False),
        sa.Column("channel_order_id", _key_text(), nullable=False),
        sa.Column("verdict", sa.String(), nullable=False),
        sa.Column("labeled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewer_id", _key_text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("channel", "channel_order_id", "labeled_at", "reviewer_id", name="uq_labels_key"),
    )
    op.create_index("ix_labels_labeled_at", "labels", ["labeled_at", "channel", "channel_order_id", "reviewer_id"])


def downgrade() -> None:
    op.drop_index("ix_labels_labeled_at", table_name="labels")
    op.drop_table("labels")
