"""staff second factor (TOTP) and server-side staff sessions

Revision ID: 06adb1c0ed4d
Revises: bede7ea7d752
Create Date: 2026-11-23 04:45:01.134543+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "06adb1c0ed4d"
down_revision: str | Sequence[str] | None = "bede7ea7d752"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("verified_at", flexnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", flexnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("source_ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_accounts.id"],
            name=op.f("fk_staff_sessions_staff_id_staff_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_staff_id"), ["staff_id"], unique=False)

    with op.batch_alter_table("staff_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("password_changed_at", flexnet.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_login_at", flexnet.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("totp_secret", sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column("totp_enrolled_at", flexnet.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_accounts", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enrolled_at")
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("last_login_at")
        batch_op.drop_column("password_changed_at")

    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_staff_id"))

    op.drop_table("staff_sessions")
