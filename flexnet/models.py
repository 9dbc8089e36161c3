"""Typed SQLAlchemy models of the domain.

Invariants live in the schema where the schema can hold them (a lock has a cause and a
reason, a member has a LANR, an issued token belongs to a practice). Enumerations are
stored as strings with CHECK constraints so that SQLite and PostgreSQL behave alike.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    event,
    false,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from flexnet.db import Base, UTCDateTime, utcnow
from flexnet.folding import search_key

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


class PracticeKind(enum.StrEnum):
    MEMBER = "member"  # a member's practice (Betriebsstätte)
    THIRD_PARTY = "third_party"  # "Dritte", § 1.1: access may be restricted


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
    THROTTLE = "throttle"  # too many failed logins


@dataclass(frozen=True)
class Lock:
    """Why something is locked: the cause, the reason staff read, extra audit data."""

    cause: LockCause
    reason: str
    data: Mapping[str, object] = field(default_factory=dict)


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


class TerminationBy(enum.StrEnum):
    MEMBER = "member"  # the member or third party: two weeks' notice (§ 10.2)
    ASSOCIATION = "association"  # eight weeks to the end of a calendar quarter (§ 10.2)
    EXTRAORDINARY = "extraordinary"  # for cause: at once


class LetterKind(enum.StrEnum):
    KEY = "key"  # Begleitschreiben with the Yubikey; never a password
    CREDENTIALS = "credentials"  # username + initial password, on security paper (§ 3.2)
    NEW_PASSWORD = "new_password"  # noqa: S105 - a re-issued password (§ 7.3), security paper
    LOCK = "lock"  # lock or termination, asks for the Yubikey back (§ 10.2)
    LOSS_CONFIRMATION = "loss_confirmation"  # loss recorded, key locked, fee (§ 6.3)
    LOCK_NOTICE = "lock_notice"  # eight weeks before a lock by the dates (§ 10.2, § 10.3)
    RETURN_REMINDER = "return_reminder"  # the locked Yubikey has not come back (§ 10.2)


class LetterStatus(enum.StrEnum):
    DUE = "due"  # waits for a mail run
    PRINTED = "printed"  # in a produced run, dispatch not yet confirmed
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"  # superseded before it was printed


class MailRunStatus(enum.StrEnum):
    PRODUCED = "produced"
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"


class StaffRole(enum.StrEnum):
    ADMIN = "admin"
    HELPDESK = "helpdesk"
    AUDITOR = "auditor"


class TermsChannel(enum.StrEnum):
    PAPER = "paper"  # signed Teilnahmeerklärung
    PORTAL = "portal"  # checkbox in KVSAonline


def _lock_fields_consistent(status_column: str) -> CheckConstraint:
    """A locked row has a cause, a reason and a time; any other row has none."""
    return CheckConstraint(
        f"({status_column} = 'locked' AND lock_cause IS NOT NULL AND lock_reason IS NOT NULL"
        " AND locked_at IS NOT NULL)"
        f" OR ({status_column} <> 'locked' AND lock_cause IS NULL AND lock_reason IS NULL"
        " AND locked_at IS NULL)",
        name="lock_has_reason",
    )


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
        _lock_fields_consistent("status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bsnr: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address_extra: Mapped[str | None] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    zip_code: Mapped[str] = mapped_column(String(5))
    city: Mapped[str] = mapped_column(String(100))
    kind: Mapped[PracticeKind] = mapped_column(_enum(PracticeKind, "practice_kind"))
    access_profile: Mapped[str] = mapped_column(String(64))
    activity_ended_on: Mapped[date | None] = mapped_column(Date)
    # § 10.2 termination: who gave notice, when it was received, the last day with access
    # (None for an extraordinary termination, which locks at once).
    terminated_by: Mapped[TerminationBy | None] = mapped_column(
        _enum(TerminationBy, "termination_by")
    )
    termination_notice_on: Mapped[date | None] = mapped_column(Date)
    access_ends_on: Mapped[date | None] = mapped_column(Date)
    termination_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[PracticeStatus] = mapped_column(
        _enum(PracticeStatus, "practice_status"), default=PracticeStatus.PENDING
    )
    lock_cause: Mapped[LockCause | None] = mapped_column(_enum(LockCause, "lock_cause"))
    lock_reason: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # fold(name) and fold(city), for staff's search; set on every write (_search_keys).
    search_key: Mapped[str] = mapped_column(Text, default="", server_default="")

    users: Mapped[list[User]] = relationship(back_populates="practice", order_by="User.username")
    tokens: Mapped[list[Token]] = relationship(back_populates="practice", order_by="Token.serial")
    terms_acceptances: Mapped[list[TermsAcceptance]] = relationship(
        back_populates="practice", order_by="TermsAcceptance.id"
    )
    lock_exception: Mapped[LockException | None] = relationship(back_populates="practice")
    letters: Mapped[list[Letter]] = relationship(back_populates="practice", order_by="Letter.id")

    @property
    def terms_acceptance(self) -> TermsAcceptance | None:
        """The latest acceptance; the earlier ones stay for the record."""
        return self.terms_acceptances[-1] if self.terms_acceptances else None


class TermsAcceptance(Base):
    """Which terms version was accepted, when and how (§ 1.3, MD § 2(4))."""

    __tablename__ = "terms_acceptances"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    accepted_on: Mapped[date] = mapped_column(Date)
    channel: Mapped[TermsChannel] = mapped_column(_enum(TermsChannel, "terms_channel"))
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
        _lock_fields_consistent("status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    kind: Mapped[UserKind] = mapped_column(_enum(UserKind, "user_kind"))
    name: Mapped[str | None] = mapped_column(String(200))
    lanr: Mapped[str | None] = mapped_column(String(9), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set only while the current password is one taken over from the previous system
    # that has not been found to meet the policy; any new password clears it.
    taken_over_password: Mapped[TakenOverPassword | None] = mapped_column(
        _enum(TakenOverPassword, "taken_over_password")
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
        _enum(UserStatus, "user_status"), default=UserStatus.PENDING
    )
    lock_cause: Mapped[LockCause | None] = mapped_column(_enum(LockCause, "lock_cause"))
    lock_reason: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activity_ended_on: Mapped[date | None] = mapped_column(Date)
    first_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # fold(name), for staff's search; set on every write (_search_keys).
    search_key: Mapped[str] = mapped_column(Text, default="", server_default="")

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
        _lock_fields_consistent("status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[TokenKind] = mapped_column(_enum(TokenKind, "token_kind"))
    public_id: Mapped[str | None] = mapped_column(String(16), unique=True)
    # None only for keys checked by an external Yubico validation service.
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    remote_validation: Mapped[bool] = mapped_column(Boolean, default=False)
    digits: Mapped[int | None] = mapped_column(Integer)
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practices.id"), index=True)
    # A key of an IT staff member: their second factor for the admin UI, never for VPN.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    status: Mapped[TokenStatus] = mapped_column(
        _enum(TokenStatus, "token_status"), default=TokenStatus.STOCK
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
    lock_cause: Mapped[LockCause | None] = mapped_column(_enum(LockCause, "lock_cause"))
    lock_reason: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # A replacement key that retires this one on its first use (§ 7.3, staff's choice).
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    # Return after a lock or termination (§ 10.2): a locked key is expected back.
    returned_on: Mapped[date | None] = mapped_column(Date)
    return_condition: Mapped[ReturnCondition | None] = mapped_column(
        _enum(ReturnCondition, "return_condition")
    )
    return_reminded_on: Mapped[date | None] = mapped_column(Date)

    practice: Mapped[Practice | None] = relationship(back_populates="tokens")

    def __repr__(self) -> str:  # never the secret
        return f"<Token {self.serial} {self.kind.value} {self.status.value}>"


class StaffAccount(Base):
    """An IT staff member of the association who uses the admin UI."""

    __tablename__ = "staff_accounts"
    __table_args__ = (CheckConstraint("username = lower(username)", name="username_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole, "staff_role"))
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


class AuditEntry(Base):
    """One link of the audit hash chain; never holds a secret."""

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
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


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


class RateLimitCounter(Base):
    """Hits of one key (client, source address, user) in one fixed time window.

    Kept in the database so that limits hold across processes and nodes.
    """

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


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


class VpnSession(Base):
    """A VPN session as reported by RADIUS accounting (kept 31 days)."""

    __tablename__ = "vpn_sessions"
    __table_args__ = (Index("ix_vpn_sessions_live", "nas_id", "acct_session_id", unique=True),)

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
    calling_station: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    input_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    output_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    terminate_cause: Mapped[str | None] = mapped_column(String(32))
    disconnect_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disconnect_result: Mapped[str | None] = mapped_column(String(16))  # ack, nak, timeout

    nas: Mapped[NasClient] = relationship()


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
    role: Mapped[StaffRole | None] = mapped_column(_enum(StaffRole, "api_client_role"))
    created_by: Mapped[str | None] = mapped_column(String(200))  # MD § 6(4)
    key_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind, "request_kind"))
    contact_person: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text, default="")
    source_ip: Mapped[str | None] = mapped_column(String(45))
    status: Mapped[RequestStatus] = mapped_column(
        _enum(RequestStatus, "request_status"), default=RequestStatus.OPEN, index=True
    )
    # Staff's handling: who verified / fulfilled / rejected it last, when, with what notes.
    handled_by: Mapped[str | None] = mapped_column(String(64))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staff_notes: Mapped[str] = mapped_column(Text, default="", server_default="")


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
        _enum(MailRunStatus, "mail_run_status"), default=MailRunStatus.PRODUCED
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
            "status NOT IN ('printed', 'dispatched') OR run_id IS NOT NULL",
            name="printed_letter_has_run",
        ),
        CheckConstraint("fee_cents IS NULL OR fee_cents >= 0", name="fee_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[LetterKind] = mapped_column(_enum(LetterKind, "letter_kind"))
    status: Mapped[LetterStatus] = mapped_column(
        _enum(LetterStatus, "letter_status"), default=LetterStatus.DUE, index=True
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    practice: Mapped[Practice] = relationship(back_populates="letters")
    user: Mapped[User | None] = relationship(back_populates="letters")
    token: Mapped[Token | None] = relationship()
    run: Mapped[MailRun | None] = relationship(back_populates="letters")
