"""sessions keyed by the concentrator behind a proxy, flagged sessions, Class for groups

Behind a RADIUS proxy (one NAS client) several concentrators send accounting: a session
is keyed by the concentrator's own identity (NAS-IP-Address / NAS-IPv6-Address /
NAS-Identifier) for a NAS client marked as a proxy, by the source otherwise, and a new
Start opens a new row (only one live row per key). Existing rows keep their source as
the concentrator. Accounting for an account that may not log in is flagged for staff.

The default access profiles get a Class ``OU=<profile>`` (ocserv maps it to a group; it
ignores Filter-Id), but only while they still hold the shipped attributes: a profile an
admin changed is left as it is.

Revision ID: cb1816bc360b
Revises: c3fb71f396ed
Create Date: 2026-12-03 16:28:35.549077+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cb1816bc360b"
down_revision: str | Sequence[str] | None = "c3fb71f396ed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("stopped_at IS NULL")
SHIPPED = {
    "full": [["Filter-Id", "flexnet-full"]],
    "restricted": [["Filter-Id", "flexnet-restricted"]],
    "password-change": [["Filter-Id", "flexnet-password-change"], ["Session-Timeout", "900"]],
}
profiles = sa.table(
    "access_profiles", sa.column("name", sa.String), sa.column("reply_attributes", sa.JSON)
)


def upgrade() -> None:
    with op.batch_alter_table("nas_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("proxy", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("vpn_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nas_ip_address", sa.String(length=45), nullable=True))
        batch_op.add_column(sa.Column("nas_identifier", sa.String(length=253), nullable=True))
        batch_op.add_column(
            sa.Column("concentrator", sa.String(length=320), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("flagged", sa.String(length=32), nullable=True))
        batch_op.drop_index(batch_op.f("ix_vpn_sessions_live"))
    op.execute("UPDATE vpn_sessions SET concentrator = COALESCE(nas_address, '')")
    with op.batch_alter_table("vpn_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vpn_sessions_live",
            ["nas_id", "concentrator", "acct_session_id"],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
        batch_op.create_index(
            "ix_vpn_sessions_key", ["nas_id", "concentrator", "acct_session_id"], unique=False
        )
    _set_class(add=True)


def _set_class(*, add: bool) -> None:
    connection = op.get_bind()
    for name, shipped in SHIPPED.items():
        with_class = [*shipped, ["Class", f"OU={name}"]]
        current = connection.scalar(
            sa.select(profiles.c.reply_attributes).where(profiles.c.name == name)
        )
        if current == (shipped if add else with_class):
            connection.execute(
                profiles.update()
                .where(profiles.c.name == name)
                .values(reply_attributes=with_class if add else shipped)
            )


def downgrade() -> None:
    _set_class(add=False)
    # The old key allowed one row per session id: the older rows of a reused id go.
    op.execute(
        "DELETE FROM vpn_sessions WHERE id NOT IN "
        "(SELECT MAX(id) FROM vpn_sessions GROUP BY nas_id, acct_session_id)"
    )
    with op.batch_alter_table("vpn_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_vpn_sessions_key")
        batch_op.drop_index("ix_vpn_sessions_live", sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.create_index(
            batch_op.f("ix_vpn_sessions_live"), ["nas_id", "acct_session_id"], unique=True
        )
        batch_op.drop_column("flagged")
        batch_op.drop_column("concentrator")
        batch_op.drop_column("nas_identifier")
        batch_op.drop_column("nas_ip_address")
    with op.batch_alter_table("nas_clients", schema=None) as batch_op:
        batch_op.drop_column("proxy")
