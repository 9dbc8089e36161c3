"""phone and contact person of a practice

Staff verify a practice's request by calling it back on its stored number.

Revision ID: 1e3ad3641f3f
Revises: adf831634c0d
Create Date: 2026-12-03 13:49:53.422324+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1e3ad3641f3f"
down_revision: str | Sequence[str] | None = "adf831634c0d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("contact_person", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("contact_person")
        batch_op.drop_column("phone")
