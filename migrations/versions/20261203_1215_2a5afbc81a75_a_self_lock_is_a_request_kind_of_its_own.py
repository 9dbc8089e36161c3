"""a self-lock is a request kind of its own

Revision ID: 2a5afbc81a75
Revises: 4419e9657435
Create Date: 2026-12-03 12:15:46.045592+00:00

Self-locks were filed as "unlock" (own account) or "key lost" (the practice's key) with
the message "Selbstsperre (account|key) über das Selbstbedienungsportal"; those reports
become self-locks saying in German what was locked.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2a5afbc81a75"
down_revision: str | Sequence[str] | None = "4419e9657435"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = (
    "new_password",
    "key_lost",
    "key_defective",
    "resync",
    "unlock",
    "new_user",
    "end_of_access",
)
_OLD_MESSAGE = "Selbstsperre ({target}) über das Selbstbedienungsportal"
_NEW_MESSAGE = {
    "account": "Selbstsperre über das Selbstbedienungsportal: den eigenen Zugang gesperrt.",
    "key": "Selbstsperre über das Selbstbedienungsportal: den Yubikey der Praxis gesperrt.",
}
_OLD_KIND = {"account": "unlock", "key": "key_lost"}


def _kind_check(kinds: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade() -> None:
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_service_requests_request_kind"), type_="check")
        batch_op.create_check_constraint("request_kind", _kind_check((*_KINDS, "self_lock")))
    for target, message in _NEW_MESSAGE.items():
        op.execute(
            sa.text(
                "UPDATE service_requests SET kind = 'self_lock', message = :new "
                "WHERE kind = :old_kind AND message = :old"
            ).bindparams(
                new=message,
                old_kind=_OLD_KIND[target],
                old=_OLD_MESSAGE.format(target=target),
            )
        )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE service_requests SET kind = CASE WHEN message LIKE '%Yubikey%' "
            "THEN 'key_lost' ELSE 'unlock' END WHERE kind = 'self_lock'"
        )
    )
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_service_requests_request_kind"), type_="check")
        batch_op.create_check_constraint("request_kind", _kind_check(_KINDS))
