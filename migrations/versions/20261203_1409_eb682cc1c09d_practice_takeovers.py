"""practice takeovers

A new owner continues a practice (§ 2.3): the takeover is recorded (same or new BSNR),
and the old owner's credentials and key are locked with the cause "takeover".

Revision ID: eb682cc1c09d
Revises: 1c57038e101a
Create Date: 2026-12-03 14:09:37.262052+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "eb682cc1c09d"
down_revision: str | Sequence[str] | None = "1c57038e101a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CAUSES = (
    "manual",
    "loss",
    "misuse",
    "self_service",
    "lifecycle",
    "termination",
    "objection",
    "replaced",
    "throttle",
)
_LOCKABLE = ("practices", "users", "tokens")


def _cause_check(causes: Sequence[str]) -> str:
    return "lock_cause IN (" + ", ".join(f"'{cause}'" for cause in causes) + ")"


def upgrade() -> None:
    op.create_table(
        "practice_takeovers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("predecessor_id", sa.Integer(), nullable=False),
        sa.Column("taken_over_on", sa.Date(), nullable=False),
        sa.Column("previous_name", sa.String(length=200), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_practice_takeovers_practice_id_practices"),
        ),
        sa.ForeignKeyConstraint(
            ["predecessor_id"],
            ["practices.id"],
            name=op.f("fk_practice_takeovers_predecessor_id_practices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice_takeovers")),
    )
    with op.batch_alter_table("practice_takeovers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_practice_takeovers_practice_id"), ["practice_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_practice_takeovers_predecessor_id"), ["predecessor_id"], unique=False
        )
    # The lock cause is a checked string: the checks name the new one.
    for table in _LOCKABLE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_lock_cause"), type_="check")
            batch_op.create_check_constraint("lock_cause", _cause_check((*_CAUSES, "takeover")))


def downgrade() -> None:
    for table in _LOCKABLE:
        # A takeover lock stays a lock, for an important reason (§ 10.1).
        locked = sa.table(table, sa.column("lock_cause", sa.String()))
        op.execute(
            sa.update(locked).where(locked.c.lock_cause == "takeover").values(lock_cause="manual")
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_lock_cause"), type_="check")
            batch_op.create_check_constraint("lock_cause", _cause_check(_CAUSES))
    with op.batch_alter_table("practice_takeovers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practice_takeovers_predecessor_id"))
        batch_op.drop_index(batch_op.f("ix_practice_takeovers_practice_id"))
    op.drop_table("practice_takeovers")
