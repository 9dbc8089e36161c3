"""the auth log names the concentrator behind a proxy

A NAS marked as a proxy (FreeRADIUS, radsecproxy) forwards the requests of many
concentrators; each names itself in NAS-IP-Address or NAS-Identifier. Sessions were
already keyed by it; an auth-log line named only the proxy. Lines written before have
none: nothing to fill in.

Revision ID: 42858cc42b1b
Revises: 9b3e5f1a7c20
Create Date: 2026-12-04 14:40:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "42858cc42b1b"
down_revision: str | Sequence[str] | None = "9b3e5f1a7c20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("concentrator", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_events", schema=None) as batch_op:
        batch_op.drop_column("concentrator")
