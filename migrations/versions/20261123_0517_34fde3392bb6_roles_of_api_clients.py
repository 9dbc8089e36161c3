"""roles of API clients

Revision ID: 34fde3392bb6
Revises: a3a6d0bed26f
Create Date: 2026-11-23 05:17:36.774764+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "34fde3392bb6"
down_revision: str | Sequence[str] | None = "a3a6d0bed26f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "role",
                sa.Enum(
                    "admin",
                    "helpdesk",
                    "auditor",
                    name="api_client_role",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("created_by", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("key_changed_at", flexnet.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("key_changed_at")
        batch_op.drop_column("created_by")
        batch_op.drop_column("role")
