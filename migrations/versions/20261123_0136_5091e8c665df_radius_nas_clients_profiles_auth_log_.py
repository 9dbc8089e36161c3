"""radius: nas clients, profiles, auth log, vpn sessions, api clients

Revision ID: 5091e8c665df
Revises: 20b26e5eb151
Create Date: 2026-11-23 01:36:56.970759+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flexnet.db

revision: str = "5091e8c665df"
down_revision: str | Sequence[str] | None = "20b26e5eb151"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    profiles = op.create_table(
        "access_profiles",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("reply_attributes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_access_profiles")),
    )
    # Defaults of § 1.1 (third parties restricted) and the password-change grace profile.
    # Staff adapt the attributes to their concentrator: flexnet profile set.
    op.bulk_insert(
        profiles,
        [
            {
                "name": "full",
                "description": "Mitglieder, Praxispersonal, Praxiszugang",
                "reply_attributes": [["Filter-Id", "flexnet-full"]],
            },
            {
                "name": "restricted",
                "description": "Dritte (§ 1.1): eingeschränkter Zugang",
                "reply_attributes": [["Filter-Id", "flexnet-restricted"]],
            },
            {
                "name": "password-change",
                "description": "nur Kennwortänderung",
                "reply_attributes": [
                    ["Filter-Id", "flexnet-password-change"],
                    ["Session-Timeout", "900"],
                ],
            },
        ],
    )
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("require_otp", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("key_prefix", name=op.f("uq_api_clients_key_prefix")),
        sa.UniqueConstraint("name", name=op.f("uq_api_clients_name")),
    )
    op.create_table(
        "nas_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("allow_missing_message_authenticator", sa.Boolean(), nullable=False),
        sa.Column("coa_port", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "address <> '0.0.0.0/0' AND address <> '::/0'", name=op.f("ck_nas_clients_no_catch_all")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nas_clients")),
        sa.UniqueConstraint("address", name=op.f("uq_nas_clients_address")),
        sa.UniqueConstraint("name", name=op.f("uq_nas_clients_name")),
    )
    op.create_table(
        "auth_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("bsnr", sa.String(length=9), nullable=True),
        sa.Column("token_serial", sa.String(length=32), nullable=True),
        sa.Column("client", sa.String(length=100), nullable=True),
        sa.Column("source_ip", sa.String(length=45), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_auth_events_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_events")),
    )
    with op.batch_alter_table("auth_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_auth_events_username"), ["username"], unique=False)

    op.create_table(
        "vpn_sessions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("nas_id", sa.Integer(), nullable=False),
        sa.Column("acct_session_id", sa.String(length=128), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("token_serial", sa.String(length=32), nullable=True),
        sa.Column("framed_ip", sa.String(length=45), nullable=True),
        sa.Column("nas_address", sa.String(length=45), nullable=True),
        sa.Column("calling_station", sa.String(length=64), nullable=True),
        sa.Column("started_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flexnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", flexnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("input_octets", sa.BigInteger(), nullable=False),
        sa.Column("output_octets", sa.BigInteger(), nullable=False),
        sa.Column("terminate_cause", sa.String(length=32), nullable=True),
        sa.Column("disconnect_requested_at", flexnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disconnect_result", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["nas_id"], ["nas_clients.id"], name=op.f("fk_vpn_sessions_nas_id_nas_clients")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_vpn_sessions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vpn_sessions")),
    )
    with op.batch_alter_table("vpn_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_vpn_sessions_live", ["nas_id", "acct_session_id"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_vpn_sessions_stopped_at"), ["stopped_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_vpn_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_vpn_sessions_username"), ["username"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("throttled_until", flexnet.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_login_at", flexnet.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_login_at")
        batch_op.drop_column("throttled_until")

    with op.batch_alter_table("vpn_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vpn_sessions_username"))
        batch_op.drop_index(batch_op.f("ix_vpn_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_vpn_sessions_stopped_at"))
        batch_op.drop_index("ix_vpn_sessions_live")

    op.drop_table("vpn_sessions")
    with op.batch_alter_table("auth_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_events_username"))
        batch_op.drop_index(batch_op.f("ix_auth_events_at"))

    op.drop_table("auth_events")
    op.drop_table("nas_clients")
    op.drop_table("api_clients")
    op.drop_table("access_profiles")
