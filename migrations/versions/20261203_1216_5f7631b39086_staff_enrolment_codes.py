"""staff enrolment codes: a new second factor needs a one-time code from another admin

Revision ID: 5f7631b39086
Revises: 0631270f2083
Create Date: 2026-12-03 12:16:31.770789+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "5f7631b39086"
down_revision: str | Sequence[str] | None = "0631270f2083"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enrolment_code_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "enrolment_code_expires_at", flexnet.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_accounts", schema=None) as batch_op:
        batch_op.drop_column("enrolment_code_expires_at")
        batch_op.drop_column("enrolment_code_hash")
