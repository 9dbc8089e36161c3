"""practice terminations; the hash a letter issued

Revision ID: 32d098b586ec
Revises: dc4bdb7c3df5
Create Date: 2026-11-23 03:54:07.065245+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "32d098b586ec"
down_revision: str | Sequence[str] | None = "dc4bdb7c3df5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issued_password_hash", sa.String(length=255), nullable=True))

    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "terminated_by",
                sa.Enum(
                    "member",
                    "association",
                    "extraordinary",
                    name="termination_by",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("termination_notice_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("access_ends_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("termination_reason", sa.Text(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_practices_termination_has_notice"),
            "(terminated_by IS NULL) = (termination_notice_on IS NULL)",
        )


def downgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_practices_termination_has_notice"), type_="check")
        batch_op.drop_column("termination_reason")
        batch_op.drop_column("access_ends_on")
        batch_op.drop_column("termination_notice_on")
        batch_op.drop_column("terminated_by")

    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_column("issued_password_hash")
