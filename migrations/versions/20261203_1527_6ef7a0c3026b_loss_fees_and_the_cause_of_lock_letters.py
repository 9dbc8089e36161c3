"""loss fees and the cause of lock letters

The § 6.3 fee for a lost Yubikey gets a ledger (owed, invoiced, paid or waived), one
row per key; fees recorded so far on loss confirmation letters are carried over. Lock
and notice letters record what ends the access, so that each names its own legal
ground; notices still on the list get theirs from their reason.

Revision ID: 6ef7a0c3026b
Revises: f0e7e498f224
Create Date: 2026-12-03 15:27:10.355534+00:00
"""

from collections.abc import Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "6ef7a0c3026b"
down_revision: str | Sequence[str] | None = "f0e7e498f224"
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
    "takeover",
    "throttle",
)


def upgrade() -> None:
    op.create_table(
        "loss_fees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("owed_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("invoiced_on", sa.Date(), nullable=True),
        sa.Column("invoiced_by", sa.String(length=200), nullable=True),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("paid_by", sa.String(length=200), nullable=True),
        sa.Column("waived_on", sa.Date(), nullable=True),
        sa.Column("waived_by", sa.String(length=200), nullable=True),
        sa.Column("waive_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(waived_on IS NULL) = (waive_reason IS NULL)",
            name=op.f("ck_loss_fees_waived_has_reason"),
        ),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_loss_fees_amount_nonnegative")),
        sa.CheckConstraint(
            "paid_on IS NULL OR waived_on IS NULL", name=op.f("ck_loss_fees_paid_or_waived")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_loss_fees_practice_id_practices")
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("fk_loss_fees_token_id_tokens")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loss_fees")),
        sa.UniqueConstraint("token_id", name=op.f("uq_loss_fees_token_id")),
    )
    with op.batch_alter_table("loss_fees", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loss_fees_practice_id"), ["practice_id"], unique=False)

    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "cause",
                sa.Enum(
                    *_CAUSES,
                    name="lock_cause",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=True,
            )
        )
    _carry_over()


def _carry_over() -> None:
    """Fees on loss confirmations become ledger rows (the first letter per key); notices
    on the list name a termination (§ 10.2) or the dates (§ 10.3) in their reason."""
    bind = op.get_bind()
    stamp = flexnet.db.UTCDateTime(timezone=True)
    letters = sa.table(
        "letters",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("status", sa.String),
        sa.column("practice_id", sa.Integer),
        sa.column("token_id", sa.Integer),
        sa.column("fee_cents", sa.Integer),
        sa.column("created_at", stamp),
        sa.column("created_by", sa.String),
    )
    tokens = sa.table("tokens", sa.column("id", sa.Integer), sa.column("serial", sa.String))
    fees = sa.table(
        "loss_fees",
        *(sa.column(name, sa.Integer) for name in ("practice_id", "token_id", "amount_cents")),
        sa.column("serial", sa.String),
        sa.column("owed_on", sa.Date),
        sa.column("recorded_by", sa.String),
        sa.column("recorded_at", stamp),
    )
    rows = bind.execute(
        sa.select(
            letters.c.practice_id,
            letters.c.token_id,
            tokens.c.serial,
            letters.c.fee_cents,
            letters.c.created_at,
            letters.c.created_by,
        )
        .join(tokens, tokens.c.id == letters.c.token_id)
        .where(letters.c.kind == "loss_confirmation", letters.c.status != "cancelled")
        .order_by(letters.c.id)
    ).all()
    seen: set[int] = set()
    for practice_id, token_id, serial, fee, created_at, created_by in rows:
        if token_id in seen:
            continue
        seen.add(token_id)
        bind.execute(
            sa.insert(fees).values(
                practice_id=practice_id,
                token_id=token_id,
                serial=serial,
                amount_cents=fee or 0,
                owed_on=created_at.astimezone(ZoneInfo("Europe/Berlin")).date(),
                recorded_by=created_by,
                recorded_at=created_at,
            )
        )
    bind.execute(
        sa.text(
            "UPDATE letters SET cause = CASE WHEN note LIKE '%(§ 10.2)%' THEN 'termination'"
            " ELSE 'lifecycle' END WHERE kind = 'lock_notice' AND status = 'due'"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("letters", schema=None) as batch_op:
        # The CHECK of the enum names the column: SQLite's copy of the table needs it gone.
        batch_op.drop_constraint(op.f("ck_letters_lock_cause"), type_="check")
        batch_op.drop_column("cause")

    with op.batch_alter_table("loss_fees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loss_fees_practice_id"))

    op.drop_table("loss_fees")
