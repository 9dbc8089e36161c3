"""service requests

Revision ID: 4c8aa881783f
Revises: 5091e8c665df
Create Date: 2026-11-23 02:35:47.550218+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "4c8aa881783f"
down_revision: str | Sequence[str] | None = "5091e8c665df"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "service_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("bsnr", sa.String(length=9), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=True),
        sa.Column("usernames", sa.String(length=500), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "new_password",
                "key_lost",
                "key_defective",
                "resync",
                "unlock",
                "new_user",
                "end_of_access",
                name="request_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("contact_person", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("source_ip", sa.String(length=45), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "verified",
                "fulfilled",
                "rejected",
                name="request_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_service_requests_practice_id_practices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_requests")),
    )
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_requests_bsnr"), ["bsnr"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_service_requests_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_service_requests_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_requests_status"))
        batch_op.drop_index(batch_op.f("ix_service_requests_created_at"))
        batch_op.drop_index(batch_op.f("ix_service_requests_bsnr"))

    op.drop_table("service_requests")
