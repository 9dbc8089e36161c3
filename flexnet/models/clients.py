"""Who may ask flexnet: NAS clients, HTTP API clients, validation-protocol clients;
access profiles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from flexnet.db import Base, UTCDateTime, utcnow
from flexnet.models.common import enum_column
from flexnet.models.staff import StaffRole


class WsapiClient(Base):
    """A client of the Yubico validation protocol (KVSAonline, BD-Online, § 5.4)."""

    __tablename__ = "wsapi_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # The shared HMAC key must be recoverable to sign answers: encrypted, not hashed.
    api_key: Mapped[bytes] = mapped_column(LargeBinary)
    require_signature: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<WsapiClient {self.id} {self.name}>"


class NasClient(Base):
    """A VPN concentrator (or other NAS) allowed to ask over RADIUS; never a catch-all."""

    __tablename__ = "nas_clients"
    __table_args__ = (
        CheckConstraint("address <> '0.0.0.0/0' AND address <> '::/0'", name="no_catch_all"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)  # IP or CIDR network
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted shared secret
    allow_missing_message_authenticator: Mapped[bool] = mapped_column(Boolean, default=False)
    coa_port: Mapped[int | None] = mapped_column(Integer)
    # A RADIUS proxy (e.g. FreeRADIUS) in front of several concentrators: sessions are told
    # apart by the NAS-IP-Address / NAS-Identifier the concentrator sends, not the source.
    proxy: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    # RADIUS over TLS (RFC 6614): the SHA-256 fingerprint (64 hex digits) of the client
    # certificate this NAS presents; a TLS connection is served only for a pinned one.
    tls_fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<NasClient {self.name} {self.address}>"


class AccessProfile(Base):
    """RADIUS reply attributes for a group of users, e.g. Filter-Id or Class."""

    __tablename__ = "access_profiles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    # [[attribute, value], ...] with attribute names from flexnet's RADIUS dictionary.
    reply_attributes: Mapped[list[list[str]]] = mapped_column(JSON, default=list)


class ApiClient(Base):
    """A system that calls the HTTP API (e.g. a portal sharing the password, § 5.4)."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16), unique=True)  # finds the row
    key_hash: Mapped[str] = mapped_column(String(128))  # SHA-256 of the random key
    require_otp: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the client may do beyond /auth: read (auditor), helpdesk workflows, or all.
    # None: /auth only (a portal that checks logins).
    role: Mapped[StaffRole | None] = mapped_column(enum_column(StaffRole, "api_client_role"))
    created_by: Mapped[str | None] = mapped_column(String(200))  # MD § 6(4)
    key_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
