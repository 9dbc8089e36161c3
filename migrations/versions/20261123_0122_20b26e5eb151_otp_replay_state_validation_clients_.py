"""otp replay state, validation clients, rate limits

Revision ID: 20b26e5eb151
Revises: 747f64bb17c6
Create Date: 2026-11-23 01:22:02.087667+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "20b26e5eb151"
down_revision: str | Sequence[str] | None = "747f64bb17c6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_limit_counters")),
    )
    op.create_table(
        "wsapi_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("api_key", sa.LargeBinary(), nullable=False),
        sa.Column("require_signature", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wsapi_clients")),
        sa.UniqueConstraint("name", name=op.f("uq_wsapi_clients_name")),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("remote_validation", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("otp_timestamp", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("wsapi_last_nonce", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("counter_warned_at", flexnet.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.alter_column("secret", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.create_check_constraint(
            op.f("ck_tokens_secret_unless_remote"),
            "(remote_validation AND kind = 'yubico_otp') OR secret IS NOT NULL",
        )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        # The default only served rows that existed before; the model sets the value.
        batch_op.alter_column("remote_validation", existing_type=sa.Boolean(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_tokens_secret_unless_remote"), type_="check")
        batch_op.alter_column("secret", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("counter_warned_at")
        batch_op.drop_column("wsapi_last_nonce")
        batch_op.drop_column("otp_timestamp")
        batch_op.drop_column("remote_validation")
    op.drop_table("wsapi_clients")
    op.drop_table("rate_limit_counters")
