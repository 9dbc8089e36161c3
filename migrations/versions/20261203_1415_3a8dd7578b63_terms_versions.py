"""terms versions

Staff publish versions of the terms of use with the day they take effect and the last
day to accept them; each practice keeps what it still has to accept, and a letter kind
asks it to.

Revision ID: 3a8dd7578b63
Revises: eb682cc1c09d
Create Date: 2026-12-03 14:15:32.744905+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "3a8dd7578b63"
down_revision: str | Sequence[str] | None = "eb682cc1c09d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = (
    "key",
    "credentials",
    "new_password",
    "lock",
    "loss_confirmation",
    "lock_notice",
    "return_reminder",
)


def _kind_check(kinds: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade() -> None:
    op.create_table(
        "terms_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("accept_by", sa.Date(), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("published_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "accept_by >= effective_on", name=op.f("ck_terms_versions_accept_after_effect")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terms_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_terms_versions_version")),
    )
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("terms_due_version", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("terms_due_by", sa.Date(), nullable=True))
    # The letter kind is a checked string: the check names the new kind.
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_letters_letter_kind"), type_="check")
        batch_op.create_check_constraint("letter_kind", _kind_check((*_KINDS, "terms")))


def downgrade() -> None:
    letters = sa.table("letters", sa.column("kind", sa.String()))
    op.execute(sa.delete(letters).where(letters.c.kind == "terms"))
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_letters_letter_kind"), type_="check")
        batch_op.create_check_constraint("letter_kind", _kind_check(_KINDS))
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("terms_due_by")
        batch_op.drop_column("terms_due_version")
    op.drop_table("terms_versions")
