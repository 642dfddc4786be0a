"""Sign-out that ends sessions: each user's sessions signed in before ``sessions_after`` are refused.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 09:00:00

A session cookie is signed, not stored, so deleting it from one browser would leave a
copied cookie valid until it expires. Signing out (and disabling a user or changing their
password) moves this time forward instead, and every process refuses the older sessions
from its next key refresh on (``orderguard.access.KeyRing.session_user``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("sessions_after", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("sessions_after")
