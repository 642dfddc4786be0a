"""Score records: every served decision with its evidence (the skew audit trail).

Revision ID: 0002
Revises: 0001
Create Date: 2024-11-12 00:00:00

One row per scored ``(order key, event_version)``: re-scoring the same order version
returns the stored answer, so the order system can retry safely.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_text() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "score_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("order_key", _key_text(), nullable=False),
        sa.Column("event_version", sa.BigInteger(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("risk_level", sa.String(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("rules_only", sa.Boolean(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=True),
        sa.Column("settings_hash", sa.String(), nullable=False),
        sa.Column("feature_set_hash", sa.String(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("record", _json(), nullable=False),
        sa.UniqueConstraint("order_key", "event_version", name="uq_score_records_key"),
    )
    op.create_index("ix_score_records_decision", "score_records", ["decision", "scored_at"])
    op.create_index("ix_score_records_event_time", "score_records", ["event_time"])


def downgrade() -> None:
    op.drop_index("ix_score_records_event_time", table_name="score_records")
    op.drop_index("ix_score_records_decision", table_name="score_records")
    op.drop_table("score_records")
