"""The association's IT staff: accounts and their server-side sessions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flexnet.db import Base, UTCDateTime, utcnow
from flexnet.models.common import enum_column


class StaffRole(enum.StrEnum):
    ADMIN = "admin"
    HELPDESK = "helpdesk"
    AUDITOR = "auditor"


class StaffAccount(Base):
    """An IT staff member of the association who uses the admin UI."""

    __tablename__ = "staff_accounts"
    __table_args__ = (CheckConstraint("username = lower(username)", name="username_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(enum_column(StaffRole, "staff_role"))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by whoever chose the password (an admin, flexnet init): changed at first sign-in.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Second factor: a TOTP seed sealed under the master key; enrolled once confirmed
    # with a first code. The last accepted time step refuses a code a second time.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # A new second factor is enrolled only with a one-time code another admin handed out
    # (the password alone is not enough): its SHA-256, until it is used or expires.
    enrolment_code_hash: Mapped[str | None] = mapped_column(String(64))
    enrolment_code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Ten years after deactivation name and credentials go (lifecycle.anonymise).
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:  # never the hash or the seed
        return f"<StaffAccount {self.username} {self.role.value}>"


class StaffSession(Base):
    """A staff login, held on the server so that it can be ended (logout, password
    change, deactivation) whatever the browser still has. The cookie carries a random
    token; only its SHA-256 is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # second factor passed
    # A TOTP seed being enrolled in this session only (sealed): shown to no other session.
    enrol_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    source_ip: Mapped[str | None] = mapped_column(String(45))

    staff: Mapped[StaffAccount] = relationship()
