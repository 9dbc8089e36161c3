"""staff yubikeys: a key held by an IT staff member (second factor of the admin UI)

Revision ID: 4419e9657435
Revises: 8a6ce28221ff
Create Date: 2026-11-23 06:08:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4419e9657435"
down_revision: str | Sequence[str] | None = "8a6ce28221ff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ISSUED = "status NOT IN ('assigned', 'shipped', 'active') OR practice_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staff_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tokens_staff_id"), ["staff_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_tokens_staff_id_staff_accounts"), "staff_accounts", ["staff_id"], ["id"]
        )
        batch_op.drop_constraint(op.f("ck_tokens_issued_token_has_practice"), type_="check")
        batch_op.create_check_constraint(
            "issued_token_has_practice", f"{_ISSUED} OR staff_id IS NOT NULL"
        )
        batch_op.create_check_constraint("one_holder", "practice_id IS NULL OR staff_id IS NULL")


def downgrade() -> None:
    op.execute(sa.text("UPDATE tokens SET status = 'retired' WHERE staff_id IS NOT NULL"))
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_tokens_one_holder"), type_="check")
        batch_op.drop_constraint(op.f("ck_tokens_issued_token_has_practice"), type_="check")
        batch_op.create_check_constraint("issued_token_has_practice", _ISSUED)
        batch_op.drop_constraint(
            batch_op.f("fk_tokens_staff_id_staff_accounts"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_tokens_staff_id"))
        batch_op.drop_column("staff_id")
