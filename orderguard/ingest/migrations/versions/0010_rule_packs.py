"""Rule packs as versioned data, and the pack version (and shadow verdict) of every score record.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 22:00:00

``rule_packs`` holds every applied change of the live rule pack or of the shadow
candidate (``scoring.pack_store``): the YAML text, its hash, who applied it, when, the
diff against the live pack before it and a note. ``score_records`` gains the version of
the pack that judged each order and, while a shadow candidate runs, the candidate's
version, score and decision (its fired rules are in the record's JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rule_packs",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("bands", _json(), nullable=True),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
    )
    op.create_index("ix_rule_packs_role", "rule_packs", ["role", "version"])
    op.add_column("score_records", sa.Column("rules_version", sa.String(64), nullable=True))
    op.add_column("score_records", sa.Column("shadow_version", sa.String(64), nullable=True))
    op.add_column("score_records", sa.Column("shadow_score", sa.Float(), nullable=True))
    op.add_column("score_records", sa.Column("shadow_decision", sa.String(16), nullable=True))
    op.create_index("ix_score_records_shadow", "score_records", ["shadow_version", "scored_at"])


def downgrade() -> None:
    op.drop_index("ix_score_records_shadow", table_name="score_records")
    with op.batch_alter_table("score_records") as batch:
        for column in ("shadow_decision", "shadow_score", "shadow_version", "rules_version"):
            batch.drop_column(column)
    op.drop_index("ix_rule_packs_role", table_name="rule_packs")
    op.drop_table("rule_packs")
