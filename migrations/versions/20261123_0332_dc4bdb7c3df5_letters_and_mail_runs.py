"""letters and mail runs

Revision ID: dc4bdb7c3df5
Revises: 192e01297c41
Create Date: 2026-11-23 03:32:02.494773+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "dc4bdb7c3df5"
down_revision: str | Sequence[str] | None = "192e01297c41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "produced",
                "dispatched",
                "cancelled",
                name="mail_run_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("produced_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("produced_by", sa.String(length=200), nullable=False),
        sa.Column("dispatched_on", sa.Date(), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("closed_at", flexnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'dispatched') = (dispatched_on IS NOT NULL)",
            name=op.f("ck_mail_runs_dispatched_has_date"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_runs")),
    )
    op.create_table(
        "letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "key",
                "credentials",
                "new_password",
                "lock",
                "loss_confirmation",
                name="letter_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "due",
                "printed",
                "dispatched",
                "cancelled",
                name="letter_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("replace_at_once", sa.Boolean(), nullable=False),
        sa.Column("fee_cents", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.Column("created_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("printed_at", flexnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind <> 'key' OR token_id IS NOT NULL", name=op.f("ck_letters_key_letter_has_token")
        ),
        sa.CheckConstraint(
            "kind NOT IN ('credentials', 'new_password') OR user_id IS NOT NULL",
            name=op.f("ck_letters_password_letter_has_user"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('printed', 'dispatched') OR run_id IS NOT NULL",
            name=op.f("ck_letters_printed_letter_has_run"),
        ),
        sa.CheckConstraint(
            "fee_cents IS NULL OR fee_cents >= 0", name=op.f("ck_letters_fee_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_letters_practice_id_practices")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["mail_runs.id"], name=op.f("fk_letters_run_id_mail_runs")
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("fk_letters_token_id_tokens")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_letters_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letters")),
    )
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_letters_practice_id"), ["practice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_letters_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_letters_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_letters_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tokens_replaced_by_id_tokens"), "tokens", ["replaced_by_id"], ["id"]
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("next_password_set_at", flexnet.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("next_password_set_at")
        batch_op.drop_column("next_password_hash")

    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tokens_replaced_by_id_tokens"), type_="foreignkey")
        batch_op.drop_column("replaced_by_id")

    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_letters_user_id"))
        batch_op.drop_index(batch_op.f("ix_letters_status"))
        batch_op.drop_index(batch_op.f("ix_letters_run_id"))
        batch_op.drop_index(batch_op.f("ix_letters_practice_id"))

    op.drop_table("letters")
    op.drop_table("mail_runs")
