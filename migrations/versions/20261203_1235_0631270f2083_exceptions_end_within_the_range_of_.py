"""exceptions end within the range of typed days

Before days were limited to 2000-01-01 … 2099-12-31 (``flexnet.days``), an exception
"for good" could be stored as 9999-12-31; the day after it does not exist, so every
status of its practice or user failed. Such an exception now lasts through 2099-12-31,
the latest day one can be granted for. (Other days were either checked against today
or computed with before being stored, so none lies beyond the range.)

Revision ID: 0631270f2083
Revises: 27963e41a181
Create Date: 2026-12-03 12:35:57.543038+00:00
"""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

revision: str = "0631270f2083"
down_revision: str | Sequence[str] | None = "27963e41a181"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LATEST = date(2099, 12, 31)


def upgrade() -> None:
    exceptions = sa.table("lock_exceptions", sa.column("until", sa.Date()))
    op.execute(sa.update(exceptions).where(exceptions.c.until > LATEST).values(until=LATEST))


def downgrade() -> None:
    pass  # the earlier far days are not worth restoring: they meant "for good" too
