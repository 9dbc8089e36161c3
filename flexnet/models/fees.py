"""The fee ledger: what the terms entitle the association to (§ 6.3, a lost Yubikey)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flexnet.db import Base, UTCDateTime
from flexnet.models.accounts import Practice
from flexnet.models.tokens import Token


class LossFee(Base):
    """The § 6.3 fee for one lost Yubikey: owed once per key (the loss is recorded by a
    loss lock or a replacement, whichever comes first), then invoiced, paid or waived,
    each step with its day and who recorded it."""

    __tablename__ = "loss_fees"
    __table_args__ = (
        CheckConstraint("amount_cents >= 0", name="amount_nonnegative"),
        CheckConstraint("(waived_on IS NULL) = (waive_reason IS NULL)", name="waived_has_reason"),
        CheckConstraint("paid_on IS NULL OR waived_on IS NULL", name="paid_or_waived"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), unique=True)
    serial: Mapped[str] = mapped_column(String(32))  # as it was when the loss was recorded
    amount_cents: Mapped[int] = mapped_column(Integer)
    owed_on: Mapped[date] = mapped_column(Date)  # the day the loss was recorded
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    invoiced_on: Mapped[date | None] = mapped_column(Date)
    invoiced_by: Mapped[str | None] = mapped_column(String(200))
    paid_on: Mapped[date | None] = mapped_column(Date)
    paid_by: Mapped[str | None] = mapped_column(String(200))
    waived_on: Mapped[date | None] = mapped_column(Date)
    waived_by: Mapped[str | None] = mapped_column(String(200))
    waive_reason: Mapped[str | None] = mapped_column(Text)

    practice: Mapped[Practice] = relationship()
    token: Mapped[Token] = relationship()

    @property
    def open(self) -> bool:
        """Still to be collected: neither paid nor waived."""
        return self.paid_on is None and self.waived_on is None
