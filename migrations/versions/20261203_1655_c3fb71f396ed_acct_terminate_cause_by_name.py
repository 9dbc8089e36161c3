"""acct terminate cause by name

Acct-Terminate-Cause was stored as the number the NAS sent, because flexnet's RADIUS
dictionary named none of the values; it names them now (RFC 2866 5.10, RFC 3580,
RFC 4675) and new sessions store the name. The sessions stored before get the name too,
so the views show one kind of value. A number no RFC names stays as it is; downgrade
leaves the names (they are what the NAS meant).

Revision ID: c3fb71f396ed
Revises: 6ef7a0c3026b
Create Date: 2026-12-03 16:55:47.114137+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3fb71f396ed"
down_revision: str | Sequence[str] | None = "6ef7a0c3026b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy, not an import of the dictionary: a migration keeps what it did.
_NAMES = {
    1: "User-Request",
    2: "Lost-Carrier",
    3: "Lost-Service",
    4: "Idle-Timeout",
    5: "Session-Timeout",
    6: "Admin-Reset",
    7: "Admin-Reboot",
    8: "Port-Error",
    9: "NAS-Error",
    10: "NAS-Request",
    11: "NAS-Reboot",
    12: "Port-Unneeded",
    13: "Port-Preempted",
    14: "Port-Suspended",
    15: "Service-Unavailable",
    16: "Callback",
    17: "User-Error",
    18: "Host-Request",
    19: "Supplicant-Restart",
    20: "Reauthentication-Failure",
    21: "Port-Reinitialized",
    22: "Port-Administratively-Disabled",
    23: "Lost-Power",
}


def upgrade() -> None:
    sessions = sa.table("vpn_sessions", sa.column("terminate_cause", sa.String))
    for number, name in _NAMES.items():
        op.execute(
            sessions.update()
            .where(sessions.c.terminate_cause == str(number))
            .values(terminate_cause=name)
        )


def downgrade() -> None:
    pass
