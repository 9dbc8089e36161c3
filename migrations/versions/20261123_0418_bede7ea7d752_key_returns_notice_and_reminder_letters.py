"""key returns (§ 10.2); lock notice and return reminder letters

Revision ID: bede7ea7d752
Revises: 32d098b586ec
Create Date: 2026-11-23 04:18:09.065523+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bede7ea7d752"
down_revision: str | Sequence[str] | None = "32d098b586ec"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = ("key", "credentials", "new_password", "lock", "loss_confirmation")
_NEW_KINDS = ("lock_notice", "return_reminder")


def _kind_check(kinds: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("returned_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "return_condition",
                sa.Enum(
                    "good",
                    "damaged",
                    name="return_condition",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("return_reminded_on", sa.Date(), nullable=True))

    # The letter kind is a checked string: the check names the new kinds.
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_letters_letter_kind"), type_="check")
        batch_op.create_check_constraint("letter_kind", _kind_check(_KINDS + _NEW_KINDS))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM letters WHERE kind IN ('lock_notice', 'return_reminder')"))
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_letters_letter_kind"), type_="check")
        batch_op.create_check_constraint("letter_kind", _kind_check(_KINDS))

    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("return_reminded_on")
        batch_op.drop_column("return_condition")
        batch_op.drop_column("returned_on")
