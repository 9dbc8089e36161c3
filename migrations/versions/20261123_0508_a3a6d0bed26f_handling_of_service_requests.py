"""handling of service requests

Revision ID: a3a6d0bed26f
Revises: 06adb1c0ed4d
Create Date: 2026-11-23 05:08:23.102654+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "a3a6d0bed26f"
down_revision: str | Sequence[str] | None = "06adb1c0ed4d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handled_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("handled_at", flexnet.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("staff_notes", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.drop_column("staff_notes")
        batch_op.drop_column("handled_at")
        batch_op.drop_column("handled_by")
