"""anonymised records keep their structure

Revision ID: adf831634c0d
Revises: 04deca89a024
Create Date: 2026-12-03 13:51:04.118383+00:00

Practices, users and staff accounts note when their personal data were taken out
(flexnet.lifecycle.anonymise); the rows stay for the association's statistics.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "adf831634c0d"
down_revision: str | Sequence[str] | None = "04deca89a024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("practices", "staff_accounts", "users")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("anonymised_at", flexnet.db.UTCDateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("anonymised_at")
