"""search keys of practices and users: names and cities folded for staff's search

Revision ID: dea0f078265e
Revises: 2a5afbc81a75
Create Date: 2026-12-03 12:19:08.077651+00:00

The keys of the records already there are computed with flexnet.accounts.folding, the function
that keeps them in step from now on (and folds each query). Should folding change, a
later migration computes them anew.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from flexnet.accounts.folding import search_key

revision: str = "dea0f078265e"
down_revision: str | Sequence[str] | None = "2a5afbc81a75"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def _backfill(table: str, *fields: str) -> None:
    records = sa.table(table, sa.column("id"), sa.column("search_key"), *map(sa.column, fields))
    bind = op.get_bind()
    rows = bind.execute(sa.select(records.c.id, *(records.c[f] for f in fields))).all()
    change = (
        sa.update(records)
        .where(records.c.id == sa.bindparam("record_id"))
        .values(search_key=sa.bindparam("key"))
    )
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        bind.execute(change, [{"record_id": row[0], "key": search_key(*row[1:])} for row in batch])


def upgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_key", sa.Text(), server_default="", nullable=False))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_key", sa.Text(), server_default="", nullable=False))
    _backfill("practices", "name", "city")
    _backfill("users", "name")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("search_key")
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("search_key")
