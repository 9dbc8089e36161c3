"""letters returned by the post

A letter that comes back undeliverable is marked returned (with the day) and sent
again as a new letter; the practice's letters wait until its address is corrected or
confirmed.

Revision ID: 1c57038e101a
Revises: 1e3ad3641f3f
Create Date: 2026-12-03 14:04:20.184735+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1c57038e101a"
down_revision: str | Sequence[str] | None = "1e3ad3641f3f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = ("due", "printed", "dispatched", "cancelled")


def _status_check(statuses: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"


def _printed_check(statuses: Sequence[str]) -> str:
    listed = ", ".join(f"'{status}'" for status in statuses)
    return f"status NOT IN ({listed}) OR run_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("returned_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("resend_of_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_letters_resend_of_id_letters"), "letters", ["resend_of_id"], ["id"]
        )
        # The status is a checked string: the checks name the new one.
        batch_op.drop_constraint(op.f("ck_letters_letter_status"), type_="check")
        batch_op.create_check_constraint("letter_status", _status_check((*_STATUSES, "returned")))
        batch_op.drop_constraint(op.f("ck_letters_printed_letter_has_run"), type_="check")
        batch_op.create_check_constraint(
            "printed_letter_has_run", _printed_check(("printed", "dispatched", "returned"))
        )
        batch_op.create_check_constraint(
            "returned_has_date", "(status = 'returned') = (returned_on IS NOT NULL)"
        )

    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("undeliverable_since", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("undeliverable_since")

    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_letters_returned_has_date"), type_="check")
    # A returned letter was dispatched once: that is what it becomes again.
    op.execute(sa.text("UPDATE letters SET status = 'dispatched' WHERE status = 'returned'"))
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_letters_printed_letter_has_run"), type_="check")
        batch_op.create_check_constraint(
            "printed_letter_has_run", _printed_check(("printed", "dispatched"))
        )
        batch_op.drop_constraint(op.f("ck_letters_letter_status"), type_="check")
        batch_op.create_check_constraint("letter_status", _status_check(_STATUSES))
        batch_op.drop_constraint(batch_op.f("fk_letters_resend_of_id_letters"), type_="foreignkey")
        batch_op.drop_column("resend_of_id")
        batch_op.drop_column("returned_on")
