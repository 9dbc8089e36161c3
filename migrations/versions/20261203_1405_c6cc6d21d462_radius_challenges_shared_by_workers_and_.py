"""radius challenges shared by workers and nodes: the second round of a login may
reach another RADIUS worker process or node than the first

Revision ID: c6cc6d21d462
Revises: 3a8dd7578b63
Create Date: 2026-12-03 14:05:55.546231+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "c6cc6d21d462"
down_revision: str | Sequence[str] | None = "3a8dd7578b63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "radius_challenges",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "otp",
                "new_password",
                "confirm",
                name="challenge_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("nas_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["nas_id"],
            ["nas_clients.id"],
            name=op.f("fk_radius_challenges_nas_id_nas_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_radius_challenges")),
    )
    with op.batch_alter_table("radius_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_radius_challenges_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_radius_challenges_source"), ["source"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("radius_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_radius_challenges_source"))
        batch_op.drop_index(batch_op.f("ix_radius_challenges_expires_at"))
    op.drop_table("radius_challenges")
