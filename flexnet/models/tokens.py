"""Yubikeys and other OTP tokens: stock, issue, lock, return."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flexnet.db import Base, UTCDateTime, utcnow
from flexnet.models.accounts import LockCause, Practice
from flexnet.models.common import enum_column, lock_fields_consistent


class TokenKind(enum.StrEnum):
    YUBICO_OTP = "yubico_otp"
    OATH_HOTP = "oath_hotp"
    TOTP = "totp"


class TokenStatus(enum.StrEnum):
    STOCK = "stock"
    ASSIGNED = "assigned"
    SHIPPED = "shipped"
    ACTIVE = "active"
    LOCKED = "locked"
    LOST = "lost"
    RETURNED = "returned"
    RETIRED = "retired"


class ReturnCondition(enum.StrEnum):
    GOOD = "good"  # may go back to stock once reprogrammed with new secrets
    DAMAGED = "damaged"  # retired


class Token(Base):
    """A Yubikey (one per practice, shared by its users) or another OTP token.

    ``secret`` holds the AES key and private id, or the OATH seed, encrypted under the
    master key; it never leaves ``flexnet.otp`` in clear.
    """

    __tablename__ = "tokens"
    __table_args__ = (
        CheckConstraint(
            "status NOT IN ('assigned', 'shipped', 'active') OR practice_id IS NOT NULL"
            " OR staff_id IS NOT NULL",
            name="issued_token_has_practice",
        ),
        CheckConstraint("practice_id IS NULL OR staff_id IS NULL", name="one_holder"),
        CheckConstraint("kind <> 'yubico_otp' OR length(public_id) = 12", name="yubico_public_id"),
        CheckConstraint(
            "(remote_validation AND kind = 'yubico_otp') OR secret IS NOT NULL",
            name="secret_unless_remote",
        ),
        lock_fields_consistent("status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[TokenKind] = mapped_column(enum_column(TokenKind, "token_kind"))
    public_id: Mapped[str | None] = mapped_column(String(16), unique=True)
    # None only for keys checked by an external Yubico validation service.
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    remote_validation: Mapped[bool] = mapped_column(Boolean, default=False)
    digits: Mapped[int | None] = mapped_column(Integer)
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practices.id"), index=True)
    # A key of an IT staff member: their second factor for the admin UI, never for VPN.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    status: Mapped[TokenStatus] = mapped_column(
        enum_column(TokenStatus, "token_status"), default=TokenStatus.STOCK
    )
    # Replay state. Yubico OTP: accept only a strictly greater (usage, session) pair.
    otp_usage_counter: Mapped[int] = mapped_column(Integer, default=0)
    otp_session_counter: Mapped[int] = mapped_column(Integer, default=-1)
    otp_timestamp: Mapped[int | None] = mapped_column(Integer)  # key clock, 8 Hz ticks
    wsapi_last_nonce: Mapped[str | None] = mapped_column(String(40))
    counter_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hotp_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lock_cause: Mapped[LockCause | None] = mapped_column(enum_column(LockCause, "lock_cause"))
    lock_reason: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # A replacement key that retires this one on its first use (§ 7.3, staff's choice).
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    # Return after a lock or termination (§ 10.2): a locked key is expected back.
    returned_on: Mapped[date | None] = mapped_column(Date)
    return_condition: Mapped[ReturnCondition | None] = mapped_column(
        enum_column(ReturnCondition, "return_condition")
    )
    return_reminded_on: Mapped[date | None] = mapped_column(Date)

    practice: Mapped[Practice | None] = relationship(back_populates="tokens")

    def __repr__(self) -> str:  # never the secret
        return f"<Token {self.serial} {self.kind.value} {self.status.value}>"
