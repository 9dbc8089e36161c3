"""staff password change and per-session enrolment

Revision ID: 8a6ce28221ff
Revises: 34fde3392bb6
Create Date: 2026-11-23 05:25:15.908926+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8a6ce28221ff"
down_revision: str | Sequence[str] | None = "34fde3392bb6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )

    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enrol_secret", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_column("enrol_secret")

    with op.batch_alter_table("staff_accounts", schema=None) as batch_op:
        batch_op.drop_column("must_change_password")
