"""What the authentication pipeline writes: the auth log, rate-limit counters, and the
pending second rounds of RADIUS logins."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from flexnet.db import Base, UTCDateTime
from flexnet.models.common import BigIntPK, enum_column


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
    # Behind a proxy (a NAS marked so) the concentrator the request names: "ip=… id=…".
    concentrator: Mapped[str | None] = mapped_column(String(320))
    source_ip: Mapped[str | None] = mapped_column(String(45))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))


class ChallengeKind(enum.StrEnum):
    OTP = "otp"  # the password came alone; the OTP is asked for
    NEW_PASSWORD = "new_password"  # noqa: S105 - a kind: an expired password replaced in-band
    CONFIRM = "confirm"  # ... and the new one typed again


class RadiusChallenge(Base):
    """An Access-Challenge waiting for its answer (60 s), which may reach any RADIUS
    worker process or node: single use, bound to user and NAS.

    Only a hash of the State value is stored (the value is what the answer must show);
    what the next round needs of the first (the password typed, the new password to be
    confirmed) is sealed under the master key, bound to the row.
    """

    __tablename__ = "radius_challenges"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256, hex
    kind: Mapped[ChallengeKind] = mapped_column(enum_column(ChallengeKind, "challenge_kind"))
    username: Mapped[str] = mapped_column(String(64))
    nas_id: Mapped[int] = mapped_column(ForeignKey("nas_clients.id", ondelete="CASCADE"))
    # Calling-Station-Id, or the username without one: a flood from one source replaces
    # its own challenges only.
    source: Mapped[str] = mapped_column(String(64), index=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM: password, user id, tries
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
