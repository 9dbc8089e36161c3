"""Letters to practices and the mail runs that print them."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flexnet.db import Base, UTCDateTime
from flexnet.models.accounts import LockCause, Practice, User
from flexnet.models.common import enum_column
from flexnet.models.tokens import Token


class LetterKind(enum.StrEnum):
    KEY = "key"  # Begleitschreiben with the Yubikey; never a password
    CREDENTIALS = "credentials"  # username + initial password, on security paper (§ 3.2)
    NEW_PASSWORD = "new_password"  # noqa: S105 - a re-issued password (§ 7.3), security paper
    LOCK = "lock"  # lock or termination, asks for the Yubikey back (§ 10.2)
    LOSS_CONFIRMATION = "loss_confirmation"  # loss recorded, key locked, fee (§ 6.3)
    LOCK_NOTICE = "lock_notice"  # eight weeks before a lock by the dates (§ 10.2, § 10.3)
    RETURN_REMINDER = "return_reminder"  # the locked Yubikey has not come back (§ 10.2)
    TERMS = "terms"  # new terms of use published: please accept them (MD § 2(4))


class LetterStatus(enum.StrEnum):
    DUE = "due"  # waits for a mail run
    PRINTED = "printed"  # in a produced run, dispatch not yet confirmed
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"  # superseded before it was printed
    RETURNED = "returned"  # came back from the post undeliverable; re-sent as a new letter


class MailRunStatus(enum.StrEnum):
    PRODUCED = "produced"
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"


class MailRun(Base):
    """One batch of letters printed together; dispatch starts the split-shipment clock."""

    __tablename__ = "mail_runs"
    __table_args__ = (
        CheckConstraint(
            "(status = 'dispatched') = (dispatched_on IS NOT NULL)", name="dispatched_has_date"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[MailRunStatus] = mapped_column(
        enum_column(MailRunStatus, "mail_run_status"), default=MailRunStatus.PRODUCED
    )
    run_date: Mapped[date] = mapped_column(Date)  # the day whose due letters it holds
    produced_at: Mapped[datetime] = mapped_column(UTCDateTime)
    produced_by: Mapped[str] = mapped_column(String(200))
    dispatched_on: Mapped[date | None] = mapped_column(Date)
    closed_by: Mapped[str | None] = mapped_column(String(200))  # confirmed or cancelled by
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    letters: Mapped[list[Letter]] = relationship(back_populates="run", order_by="Letter.id")


class Letter(Base):
    """A letter to a practice: due, printed in a run, dispatched (never the PDF itself)."""

    __tablename__ = "letters"
    __table_args__ = (
        CheckConstraint(
            "kind NOT IN ('credentials', 'new_password') OR user_id IS NOT NULL",
            name="password_letter_has_user",
        ),
        CheckConstraint("kind <> 'key' OR token_id IS NOT NULL", name="key_letter_has_token"),
        CheckConstraint(
            "status NOT IN ('printed', 'dispatched', 'returned') OR run_id IS NOT NULL",
            name="printed_letter_has_run",
        ),
        CheckConstraint("fee_cents IS NULL OR fee_cents >= 0", name="fee_nonnegative"),
        CheckConstraint(
            "(status = 'returned') = (returned_on IS NOT NULL)", name="returned_has_date"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[LetterKind] = mapped_column(enum_column(LetterKind, "letter_kind"))
    status: Mapped[LetterStatus] = mapped_column(
        enum_column(LetterStatus, "letter_status"), default=LetterStatus.DUE, index=True
    )
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("mail_runs.id"), index=True)
    # Password letters: the new password replaces the old one when printed (True) or
    # only when first used (False), § 7.3.
    replace_at_once: Mapped[bool] = mapped_column(Boolean, default=True)
    # The hash of the password this letter carried (never the password): cancelling
    # its run revokes exactly that one, not a later letter's or the user's own.
    issued_password_hash: Mapped[str | None] = mapped_column(String(255))
    fee_cents: Mapped[int | None] = mapped_column(Integer)  # loss confirmation, § 6.3
    note: Mapped[str | None] = mapped_column(Text)  # e.g. the reason in a lock letter
    effective_on: Mapped[date | None] = mapped_column(Date)  # lock letters
    # Lock and notice letters: what ends the access, so each names its own legal ground.
    cause: Mapped[LockCause | None] = mapped_column(enum_column(LockCause, "lock_cause"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_on: Mapped[date | None] = mapped_column(Date)  # came back undeliverable
    # The returned letter this one sends again (to the corrected address).
    resend_of_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"))

    practice: Mapped[Practice] = relationship(back_populates="letters")
    user: Mapped[User | None] = relationship(back_populates="letters")
    token: Mapped[Token | None] = relationship()
    run: Mapped[MailRun | None] = relationship(back_populates="letters")
