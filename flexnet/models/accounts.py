"""Practices (BSNR), their users, terms acceptances, exceptions to the lock, service requests
and VPN sessions; why something is locked."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from flexnet.accounts.folding import search_key
from flexnet.db import Base, UTCDateTime, utcnow
from flexnet.models.common import BigIntPK, enum_column, lock_fields_consistent

if TYPE_CHECKING:
    from flexnet.models.clients import NasClient
    from flexnet.models.letters import Letter
    from flexnet.models.tokens import Token


class PracticeKind(enum.StrEnum):
    MEMBER = "member"  # a member's practice (Betriebsstätte)
    THIRD_PARTY = "third_party"  # "Dritte", § 1.1: access may be restricted


class PracticeStatus(enum.StrEnum):
    PENDING = "pending"  # terms not yet accepted (§ 1.3): nothing is activated
    ACTIVE = "active"
    LOCKED = "locked"


class UserKind(enum.StrEnum):
    MEMBER = "member"  # physician/psychotherapist with LANR
    STAFF = "staff"  # practice staff (Praxispersonal), right derived from the member, § 1.2
    THIRD_PARTY = "third_party"
    PRACTICE_ACCESS = "practice_access"  # "Praxiszugang", once per practice, § 2.1


class UserStatus(enum.StrEnum):
    PENDING = "pending"  # waits for its credentials letter or first login
    ACTIVE = "active"
    LOCKED = "locked"
    REVOKED = "revoked"  # access ended for good


class TakenOverPassword(enum.StrEnum):
    """A password taken over from the previous system, against the policy (§ 5.4)."""

    UNCHECKED = "unchecked"  # taken over as a hash: checked when its plaintext is first typed
    WEAK = "weak"  # breaks the policy: changed before anything else


class LockCause(enum.StrEnum):
    MANUAL = "manual"  # breach or other important reason, § 10.1
    LOSS = "loss"  # loss report, § 7.2
    MISUSE = "misuse"  # suspected misuse, § 7.2
    SELF_SERVICE = "self_service"  # the user locked their own access, MD § 5(5)
    LIFECYCLE = "lifecycle"  # four quarters after the end of activity, § 10.3
    TERMINATION = "termination"  # § 10.2
    OBJECTION = "objection"  # objection to changed terms, § 14.2
    REPLACED = "replaced"  # superseded by a replacement, § 7.3
    TAKEOVER = "takeover"  # the practice changed hands: not transferable, § 2.3
    THROTTLE = "throttle"  # too many failed logins


@dataclass(frozen=True)
class Lock:
    """Why something is locked: the cause, the reason staff read, extra audit data."""

    cause: LockCause
    reason: str
    data: Mapping[str, object] = field(default_factory=dict)
    # When the access ended, if before the lock is recorded (a date the nightly job
    # makes durable later): the day a lock letter names.
    since: datetime | None = None


class TerminationBy(enum.StrEnum):
    MEMBER = "member"  # the member or third party: two weeks' notice (§ 10.2)
    ASSOCIATION = "association"  # eight weeks to the end of a calendar quarter (§ 10.2)
    EXTRAORDINARY = "extraordinary"  # for cause: at once


class TermsChannel(enum.StrEnum):
    PAPER = "paper"  # signed Teilnahmeerklärung
    PORTAL = "portal"  # checkbox in KVSAonline


class RequestKind(enum.StrEnum):
    NEW_PASSWORD = "new_password"  # noqa: S105 - a request kind, not a password
    KEY_LOST = "key_lost"
    KEY_DEFECTIVE = "key_defective"
    RESYNC = "resync"
    UNLOCK = "unlock"
    NEW_USER = "new_user"
    END_OF_ACCESS = "end_of_access"
    # Filed by "Zugang sofort sperren" itself: the lock has happened, staff follow up.
    SELF_LOCK = "self_lock"


class RequestStatus(enum.StrEnum):
    OPEN = "open"
    VERIFIED = "verified"  # e.g. by a call back to the practice's known number
    FULFILLED = "fulfilled"
    REJECTED = "rejected"


class Practice(Base):
    """A Betriebsstätte (BSNR) or a third party's institution."""

    __tablename__ = "practices"
    __table_args__ = (
        CheckConstraint("length(bsnr) = 9", name="bsnr_length"),
        CheckConstraint("length(zip_code) = 5", name="zip_length"),
        CheckConstraint(
            "(terminated_by IS NULL) = (termination_notice_on IS NULL)",
            name="termination_has_notice",
        ),
        lock_fields_consistent("status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bsnr: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address_extra: Mapped[str | None] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    zip_code: Mapped[str] = mapped_column(String(5))
    city: Mapped[str] = mapped_column(String(100))
    # Staff verify a request by calling the practice back on this number (not the one
    # typed into the request form); the contact person is whom to ask for.
    phone: Mapped[str | None] = mapped_column(String(40))
    contact_person: Mapped[str | None] = mapped_column(String(200))
    # A letter came back undeliverable on this day: letters wait until staff correct or
    # confirm the address (``practices.edit_practice``).
    undeliverable_since: Mapped[date | None] = mapped_column(Date)
    # Terms of use still to accept (MD § 2(4)): the newest published version the practice
    # has not accepted, and the earliest deadline among those newer than its own; after
    # that day it is refused at login until it accepts (``lifecycle.terms``).
    terms_due_version: Mapped[str | None] = mapped_column(String(32))
    terms_due_by: Mapped[date | None] = mapped_column(Date)
    kind: Mapped[PracticeKind] = mapped_column(enum_column(PracticeKind, "practice_kind"))
    access_profile: Mapped[str] = mapped_column(String(64))
    activity_ended_on: Mapped[date | None] = mapped_column(Date)
    # § 10.2 termination: who gave notice, when it was received, the last day with access
    # (None for an extraordinary termination, which locks at once).
    terminated_by: Mapped[TerminationBy | None] = mapped_column(
        enum_column(TerminationBy, "termination_by")
    )
    termination_notice_on: Mapped[date | None] = mapped_column(Date)
    access_ends_on: Mapped[date | None] = mapped_column(Date)
    termination_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[PracticeStatus] = mapped_column(
        enum_column(PracticeStatus, "practice_status"), default=PracticeStatus.PENDING
    )
    lock_cause: Mapped[LockCause | None] = mapped_column(enum_column(LockCause, "lock_cause"))
    lock_reason: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # fold(name) and fold(city), for staff's search; set on every write (_search_keys).
    search_key: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Ten years (FLEXNET_RECORD_RETENTION_YEARS) after the end of participation the
    # personal data go; the row keeps its structure for statistics (lifecycle.anonymise).
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    users: Mapped[list[User]] = relationship(back_populates="practice", order_by="User.username")
    tokens: Mapped[list[Token]] = relationship(back_populates="practice", order_by="Token.serial")
    terms_acceptances: Mapped[list[TermsAcceptance]] = relationship(
        back_populates="practice", order_by="TermsAcceptance.id"
    )
    lock_exception: Mapped[LockException | None] = relationship(back_populates="practice")
    letters: Mapped[list[Letter]] = relationship(back_populates="practice", order_by="Letter.id")
    # Takeovers (§ 2.3) that this record continues, and those that continued it elsewhere.
    taken_over: Mapped[list[Takeover]] = relationship(
        foreign_keys="Takeover.practice_id", order_by="Takeover.id", viewonly=True
    )
    handed_over: Mapped[list[Takeover]] = relationship(
        foreign_keys="Takeover.predecessor_id", order_by="Takeover.id", viewonly=True
    )

    @property
    def terms_acceptance(self) -> TermsAcceptance | None:
        """The latest acceptance; the earlier ones stay for the record."""
        return self.terms_acceptances[-1] if self.terms_acceptances else None


class Takeover(Base):
    """A new owner continues a practice (§ 2.3): under its BSNR (``predecessor`` is the
    practice itself) or under a new one (a new record; the old one stays for the
    history, locked)."""

    __tablename__ = "practice_takeovers"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    predecessor_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    taken_over_on: Mapped[date] = mapped_column(Date)  # the new owner's first day
    previous_name: Mapped[str] = mapped_column(String(200))
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    practice: Mapped[Practice] = relationship(foreign_keys=[practice_id])
    predecessor: Mapped[Practice] = relationship(foreign_keys=[predecessor_id])


class TermsVersion(Base):
    """A version of the terms of use staff published: the day it takes effect and the
    last day to accept it (MD § 2(4), § 14.2)."""

    __tablename__ = "terms_versions"
    __table_args__ = (CheckConstraint("accept_by >= effective_on", name="accept_after_effect"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(32), unique=True)
    effective_on: Mapped[date] = mapped_column(Date)
    accept_by: Mapped[date] = mapped_column(Date)  # last day to accept, inclusive
    published_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TermsAcceptance(Base):
    """Which terms version was accepted, when and how (§ 1.3, MD § 2(4))."""

    __tablename__ = "terms_acceptances"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    accepted_on: Mapped[date] = mapped_column(Date)
    channel: Mapped[TermsChannel] = mapped_column(enum_column(TermsChannel, "terms_channel"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    practice: Mapped[Practice] = relationship(back_populates="terms_acceptances")


class LockException(Base):
    """§ 10.3 sentence 2: access continues past the automatic lock until a date."""

    __tablename__ = "lock_exceptions"
    __table_args__ = (
        CheckConstraint("(practice_id IS NULL) <> (user_id IS NULL)", name="exactly_one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practices.id"), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), unique=True)
    until: Mapped[date] = mapped_column(Date)  # last day with access, inclusive
    reason: Mapped[str] = mapped_column(Text)
    decision_ref: Mapped[str] = mapped_column(String(100))
    decided_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    practice: Mapped[Practice | None] = relationship(back_populates="lock_exception")
    user: Mapped[User | None] = relationship(back_populates="lock_exception")


class User(Base):
    """A person (or the practice access) that logs in to the VPN."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'member' AND lanr IS NOT NULL) OR (kind <> 'member' AND lanr IS NULL)",
            name="member_has_lanr",
        ),
        CheckConstraint("username = lower(username)", name="username_lowercase"),
        CheckConstraint("failed_logins >= 0", name="failed_logins_nonnegative"),
        lock_fields_consistent("status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    kind: Mapped[UserKind] = mapped_column(enum_column(UserKind, "user_kind"))
    name: Mapped[str | None] = mapped_column(String(200))
    lanr: Mapped[str | None] = mapped_column(String(9), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set only while the current password is one taken over from the previous system
    # that has not been found to meet the policy; any new password clears it.
    taken_over_password: Mapped[TakenOverPassword | None] = mapped_column(
        enum_column(TakenOverPassword, "taken_over_password")
    )
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Temporary lock after repeated failures; lifts itself (the hard lock is status).
    throttled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Self-service sessions carry this number; raising it ends all of them at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # A re-issued password that replaces the current one only when it is first used
    # (§ 7.3, staff's choice); until then both work.
    next_password_hash: Mapped[str | None] = mapped_column(String(255))
    next_password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[UserStatus] = mapped_column(
        enum_column(UserStatus, "user_status"), default=UserStatus.PENDING
    )
    lock_cause: Mapped[LockCause | None] = mapped_column(enum_column(LockCause, "lock_cause"))
    lock_reason: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activity_ended_on: Mapped[date | None] = mapped_column(Date)
    first_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # fold(name), for staff's search; set on every write (_search_keys).
    search_key: Mapped[str] = mapped_column(Text, default="", server_default="")
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # see Practice

    practice: Mapped[Practice] = relationship(back_populates="users")
    password_history: Mapped[list[PasswordHistory]] = relationship(
        back_populates="user", order_by="PasswordHistory.id", cascade="all, delete-orphan"
    )
    lock_exception: Mapped[LockException | None] = relationship(back_populates="user")
    letters: Mapped[list[Letter]] = relationship(back_populates="user", order_by="Letter.id")


@event.listens_for(Practice, "before_insert")
@event.listens_for(Practice, "before_update")
@event.listens_for(User, "before_insert")
@event.listens_for(User, "before_update")
def _search_keys(_mapper: Mapper[Any], _connection: Connection, record: Practice | User) -> None:
    """The search key follows its fields on every insert and update through the ORM, so
    no code path that changes a name or a city can leave the key behind."""
    if isinstance(record, Practice):
        record.search_key = search_key(record.name, record.city)
    else:
        record.search_key = search_key(record.name)


class PasswordHistory(Base):
    """Hashes of earlier passwords, so that the last ones cannot be reused (§ 5.4)."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="password_history")


class ServiceRequest(Base):
    """A practice's request (reset, lost key, unlock, ...): filed publicly, handled by staff.

    Filing changes nothing else: the BSNR is kept as typed, and linked to the practice
    only for staff's view, so the form's answer never tells whether it exists.
    """

    __tablename__ = "service_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    bsnr: Mapped[str] = mapped_column(String(9), index=True)
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practices.id"))
    usernames: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[RequestKind] = mapped_column(enum_column(RequestKind, "request_kind"))
    contact_person: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text, default="")
    source_ip: Mapped[str | None] = mapped_column(String(45))
    status: Mapped[RequestStatus] = mapped_column(
        enum_column(RequestStatus, "request_status"), default=RequestStatus.OPEN, index=True
    )
    # Staff's handling: who verified / fulfilled / rejected it last, when, with what notes.
    handled_by: Mapped[str | None] = mapped_column(String(64))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staff_notes: Mapped[str] = mapped_column(Text, default="", server_default="")


class VpnSession(Base):
    """A VPN session as reported by RADIUS accounting (kept 31 days)."""

    __tablename__ = "vpn_sessions"
    # A session is one concentrator's Acct-Session-Id; behind a proxy (one NAS client)
    # several concentrators are told apart by their own identity. One live row per key:
    # a Start that reuses a finished session's id opens a new row.
    __table_args__ = (
        Index(
            "ix_vpn_sessions_live",
            "nas_id",
            "concentrator",
            "acct_session_id",
            unique=True,
            sqlite_where=text("stopped_at IS NULL"),
            postgresql_where=text("stopped_at IS NULL"),
        ),
        Index("ix_vpn_sessions_key", "nas_id", "concentrator", "acct_session_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    nas_id: Mapped[int] = mapped_column(ForeignKey("nas_clients.id"))
    acct_session_id: Mapped[str] = mapped_column(String(128))
    username: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    token_serial: Mapped[str | None] = mapped_column(String(32))
    framed_ip: Mapped[str | None] = mapped_column(String(45))
    nas_address: Mapped[str | None] = mapped_column(String(45))  # where to send a Disconnect
    # The concentrator's own identity as its accounting named it (RFC 2866: NAS-IP-Address,
    # NAS-IPv6-Address, NAS-Identifier), echoed in a Disconnect-Request (RFC 5176 § 3).
    nas_ip_address: Mapped[str | None] = mapped_column(String(45))
    nas_identifier: Mapped[str | None] = mapped_column(String(253))
    # Which concentrator: its identity behind a proxy NAS client, the source otherwise.
    concentrator: Mapped[str] = mapped_column(String(320), default="", server_default="")
    calling_station: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    input_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    output_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    terminate_cause: Mapped[str | None] = mapped_column(String(32))
    disconnect_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disconnect_result: Mapped[str | None] = mapped_column(String(16))  # ack, nak, timeout
    # Accounting for an account that may not log in (e.g. a concentrator re-admitting a
    # session cookie from before a lock): a code for staff (labels.SESSION_FLAG_LABEL).
    flagged: Mapped[str | None] = mapped_column(String(32))

    nas: Mapped[NasClient] = relationship()
