"""What the authentication pipeline writes: the auth log and rate-limit counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from flexnet.db import Base, UTCDateTime
from flexnet.models.common import BigIntPK


class RateLimitCounter(Base):
    """Hits of one key (client, source address, user) in one fixed time window.

    Kept in the database so that limits hold across processes and nodes.
    """

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


class AuthEvent(Base):
    """One authentication decision, for staff and for misuse analysis (kept 31 days)."""

    __tablename__ = "auth_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    channel: Mapped[str] = mapped_column(String(16))  # radius, api, self_service
    username: Mapped[str] = mapped_column(String(64), index=True)  # as given, truncated
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    bsnr: Mapped[str | None] = mapped_column(String(9))
    token_serial: Mapped[str | None] = mapped_column(String(32))
    client: Mapped[str | None] = mapped_column(String(100))  # NAS or API client name
    source_ip: Mapped[str | None] = mapped_column(String(45))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
