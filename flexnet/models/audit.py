"""The audit trail's entries (the hash chain itself is ``flexnet.audit``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Index,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from flexnet.db import Base, UTCDateTime
from flexnet.models.common import BigIntPK


class AuditEntry(Base):
    """One link of the audit hash chain; never holds a secret.

    ``source_ip`` and its ``source_ip_salt`` are connection data: deleted after the
    connection-data period. The hash covers ``source_ip_digest`` (a commitment to the
    address) instead, so the chain stays verifiable (``flexnet.auditformat``); entries of
    format 1, written before, hashed the address itself.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_subject", "subject_kind", "subject_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    tag: Mapped[str] = mapped_column(String(64), index=True)
    subject_kind: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)  # canonical JSON, hashed byte for byte
    source_ip: Mapped[str | None] = mapped_column(String(45))
    source_ip_salt: Mapped[str | None] = mapped_column(String(32))
    source_ip_digest: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # 1: written before the audit key (hash over the raw address); 2: current format.
    format: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="1")
    # HMAC under FLEXNET_AUDIT_KEY over the hash and the content; None only in a
    # database written without the key (verification with the key then fails).
    seal: Mapped[str | None] = mapped_column(String(64))
