"""NAS clients get a pinned TLS client certificate (RADIUS over TLS, RFC 6614)

A NAS that speaks RADIUS over TLS is recognised by the SHA-256 fingerprint of the
client certificate it presents (chained to the configured CA and pinned here), not by
its address. One certificate belongs to at most one NAS. Existing NAS clients have none
and are served over UDP only, as before.

Revision ID: 5d2a9e7c41b8
Revises: cb1816bc360b
Create Date: 2026-12-03 19:15:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d2a9e7c41b8"
down_revision: str | Sequence[str] | None = "cb1816bc360b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nas_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tls_fingerprint", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_nas_clients_tls_fingerprint"), ["tls_fingerprint"]
        )


def downgrade() -> None:
    with op.batch_alter_table("nas_clients", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_nas_clients_tls_fingerprint"), type_="unique")
        batch_op.drop_column("tls_fingerprint")
