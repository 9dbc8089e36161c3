"""What must outlive a restore: the security state carried from the replaced database.

A restore puts an earlier state back. What the database learnt since then would be lost,
and some of it must not be: OTP counters that moved on (else an OTP used after the
backup is accepted a second time), locks, the dates locks follow from, ended exceptions
and deactivations (else a lost key or a terminated practice works again), changed or
revoked passwords, factors, roles, API keys and sealed secrets (else a leaked one works
again; after a master key rotation the backup's secrets would not even open).

``current`` is a row of the replaced database, ``earlier`` the same row in the restored
one. The replaced database must be the later state (:func:`carry_security_state` checks
it through the audit chain), so where the two differ the current value wins.
Used by ``flexnet restore`` (SQLite) and ``flexnet db carry-state`` (after pg_restore).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditKey, AuditTag
from flexnet.db import Database
from flexnet.errors import ValidationError
from flexnet.models import (
    ApiClient,
    AuditEntry,
    LockException,
    NasClient,
    Practice,
    PracticeStatus,
    StaffAccount,
    StaffSession,
    Token,
    TokenStatus,
    User,
    UserStatus,
    WsapiClient,
)

_USABLE_TOKEN = frozenset({TokenStatus.ASSIGNED, TokenStatus.SHIPPED, TokenStatus.ACTIVE})
_LOCK_FIELDS = ("status", "lock_cause", "lock_reason", "locked_at")
_YUBICO_REPLAY = (
    "otp_usage_counter",
    "otp_session_counter",
    "otp_timestamp",
    "last_used_at",
    "wsapi_last_nonce",
)
_USER_PASSWORD = (
    "password_hash",
    "password_set_at",
    "password_must_change",
    "taken_over_password",
    "next_password_hash",
    "next_password_set_at",
)
_OATH_REPLAY = ("hotp_counter", "totp_last_step")
_PRACTICE_DATES = (
    "activity_ended_on",
    "terminated_by",
    "termination_notice_on",
    "access_ends_on",
    "termination_reason",
)
_STAFF_PASSWORD = ("password_hash", "password_changed_at", "must_change_password")
_STAFF_FACTOR = ("totp_secret", "totp_enrolled_at", "totp_last_step")
_STAFF_ENROLMENT_CODE = ("enrolment_code_hash", "enrolment_code_expires_at")


@dataclass
class CarriedState:
    """How many rows of each kind took over state from the replaced database."""

    counters: int = 0  # keys whose OTP counters had moved on
    locks: int = 0  # keys, users, practices and clients locked or deactivated since
    credentials: int = 0  # passwords, second factors, API keys and roles changed since
    failures: int = 0  # users whose failure count or temporary lock had grown
    missing: list[str] = field(default_factory=list)  # keys unknown to the backup

    def as_audit_data(self) -> dict[str, Any]:
        return {
            "counters": self.counters,
            "locks": self.locks,
            "credentials": self.credentials,
            "failures": self.failures,
            "keys_not_in_backup": len(self.missing),
        }


def carry_security_state(replaced: Session, restored: Session) -> CarriedState:
    """Bring over what the replaced database knows that must survive a restore.

    The replaced database must be the later one (the restored one an earlier state of
    it): then whatever differs is newer there, and it wins.
    """
    _refuse_unless_ancestor(replaced, restored)
    carried = CarriedState()
    _carry_tokens(replaced, restored, carried)
    _carry_users(replaced, restored, carried)
    _carry_practices(replaced, restored, carried)
    _carry_exceptions(replaced, restored, carried)
    _carry_staff(replaced, restored, carried)
    _carry_clients(replaced, restored, carried)
    # Staff sign in again: a session ended since the backup must not come back.
    restored.execute(delete(StaffSession))
    return carried


def _refuse_unless_ancestor(replaced: Session, restored: Session) -> None:
    """The restored database's last audit entry must be in the replaced one's chain: a
    backup newer than the database it replaces (or another instance's) would carry
    older secrets and passwords over newer ones."""
    head = restored.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    if head is None:
        return
    if replaced.scalar(select(AuditEntry.id).where(AuditEntry.hash == head)) is None:
        raise ValidationError(
            "Die Sicherung ist kein früherer Stand der ersetzten Datenbank (ihr letzter "
            "Revisionseintrag fehlt dort): nichts übernommen"
        )


# --- carrying state over ---------------------------------------------------------------

_Row = TypeVar("_Row")


def _pairs(
    replaced: Session, restored: Session, model: type[_Row], key: str
) -> Iterable[tuple[_Row, _Row]]:
    """(replaced row, restored row) for every row both databases have, matched by ``key``."""
    restored_rows = {getattr(row, key): row for row in restored.scalars(select(model))}
    for row in replaced.scalars(select(model)):
        match = restored_rows.get(getattr(row, key))
        if match is not None:
            yield row, match


def _copy_fields(source: object, target: object, names: Sequence[str]) -> None:
    for name in names:
        setattr(target, name, getattr(source, name))


def _newer(later: datetime | None, earlier: datetime | None) -> bool:
    return later is not None and (earlier is None or later > earlier)


def _carry_tokens(replaced: Session, restored: Session, carried: CarriedState) -> None:
    restored_serials = set(restored.scalars(select(Token.serial)))
    carried.missing = sorted(set(replaced.scalars(select(Token.serial))) - restored_serials)
    for current, earlier in _pairs(replaced, restored, Token, "serial"):
        if (current.public_id, current.secret) != (earlier.public_id, earlier.secret):
            # Reprogrammed (or a master key rotated) since the backup: the counters belong
            # to the new secret, so they go with it rather than as a maximum.
            _copy_fields(current, earlier, ("public_id", "secret", *_YUBICO_REPLAY, *_OATH_REPLAY))
            carried.credentials += 1
        elif _carry_counters(current, earlier):
            carried.counters += 1
        if earlier.status in _USABLE_TOKEN and current.status not in _USABLE_TOKEN:
            _copy_fields(current, earlier, _LOCK_FIELDS)
            carried.locks += 1


def _carry_counters(current: Token, earlier: Token) -> bool:
    """The later of each replay state; True if any moved."""
    moved = False
    if (current.otp_usage_counter, current.otp_session_counter) > (
        earlier.otp_usage_counter,
        earlier.otp_session_counter,
    ):
        _copy_fields(current, earlier, _YUBICO_REPLAY)
        moved = True
    if current.hotp_counter > earlier.hotp_counter:
        earlier.hotp_counter = current.hotp_counter
        moved = True
    if (current.totp_last_step or -1) > (earlier.totp_last_step or -1):
        earlier.totp_last_step = current.totp_last_step
        moved = True
    return moved


def _carry_users(replaced: Session, restored: Session, carried: CarriedState) -> None:
    for current, earlier in _pairs(replaced, restored, User, "username"):
        ended = {UserStatus.LOCKED, UserStatus.REVOKED}
        if current.status in ended and earlier.status not in ended:
            _copy_fields(current, earlier, _LOCK_FIELDS)
            carried.locks += 1
        if _differ(current, earlier, ("activity_ended_on",)):
            earlier.activity_ended_on = current.activity_ended_on
            carried.locks += 1
        if _differ(current, earlier, _USER_PASSWORD):  # changed, re-issued or revoked since
            _copy_fields(current, earlier, _USER_PASSWORD)
            carried.credentials += 1
        if current.failed_logins > earlier.failed_logins or _newer(
            current.throttled_until, earlier.throttled_until
        ):
            earlier.failed_logins = max(current.failed_logins, earlier.failed_logins)
            earlier.last_failed_at = current.last_failed_at
            earlier.throttled_until = current.throttled_until
            carried.failures += 1
        # Self-service sessions of either database end.
        earlier.session_epoch = max(current.session_epoch, earlier.session_epoch) + 1


def _carry_practices(replaced: Session, restored: Session, carried: CarriedState) -> None:
    """Locks, and the dates the § 10.2/§ 10.3 locks follow from (activity end, termination)."""
    for current, earlier in _pairs(replaced, restored, Practice, "bsnr"):
        if current.status is PracticeStatus.LOCKED and earlier.status is not PracticeStatus.LOCKED:
            _copy_fields(current, earlier, _LOCK_FIELDS)
            carried.locks += 1
        if _differ(current, earlier, _PRACTICE_DATES):
            _copy_fields(current, earlier, _PRACTICE_DATES)
            carried.locks += 1


def _carry_exceptions(replaced: Session, restored: Session, carried: CarriedState) -> None:
    """An exception from the automatic lock that was ended or shortened since the backup
    must not come back (one granted since is not added: it lifts, it does not lock)."""
    by_subject = {_exception_subject(e): e for e in replaced.scalars(select(LockException))}
    for earlier in restored.scalars(select(LockException)):
        current = by_subject.get(_exception_subject(earlier))
        if current is None:
            restored.delete(earlier)
            carried.locks += 1
        elif current.until < earlier.until:
            _copy_fields(current, earlier, ("until", "reason", "decision_ref", "decided_by"))
            carried.locks += 1


def _exception_subject(exception: LockException) -> tuple[str, str]:
    if exception.practice is not None:
        return "practice", exception.practice.bsnr
    assert exception.user is not None  # noqa: S101 - CHECK exactly_one_subject
    return "user", exception.user.username


def _differ(current: object, earlier: object, names: Sequence[str]) -> bool:
    return any(getattr(current, name) != getattr(earlier, name) for name in names)


def _carry_staff(replaced: Session, restored: Session, carried: CarriedState) -> None:
    for current, earlier in _pairs(replaced, restored, StaffAccount, "username"):
        if earlier.active and not current.active:
            earlier.active = False
            earlier.deactivated_at = current.deactivated_at
            carried.locks += 1
        if current.role != earlier.role:  # a demotion since the backup must hold
            earlier.role = current.role
            carried.credentials += 1
        if _newer(current.password_changed_at, earlier.password_changed_at):
            _copy_fields(current, earlier, _STAFF_PASSWORD)
            carried.credentials += 1
        if _differ(current, earlier, _STAFF_ENROLMENT_CODE):  # used or issued since
            _copy_fields(current, earlier, _STAFF_ENROLMENT_CODE)
            carried.credentials += 1
        if current.totp_enrolled_at != earlier.totp_enrolled_at:
            _copy_fields(current, earlier, _STAFF_FACTOR)  # reset or enrolled anew since
            carried.credentials += 1
        else:
            carried.credentials += _carry_sealed(current, earlier, "totp_secret")
            if (current.totp_last_step or -1) > (earlier.totp_last_step or -1):
                earlier.totp_last_step = current.totp_last_step


def _carry_sealed(current: object, earlier: object, name: str) -> bool:
    """A secret sealed under the master key: the replaced database holds the current one
    (a new NAS secret or wsapi key, a key re-imported with new secrets, a master key
    rotated since the backup). True if it differed and was carried over."""
    if getattr(current, name) == getattr(earlier, name):
        return False
    setattr(earlier, name, getattr(current, name))
    return True


def _carry_clients(replaced: Session, restored: Session, carried: CarriedState) -> None:
    """NAS, validation-protocol and API clients: switched off, new secrets, keys, roles."""
    sealed: tuple[tuple[type[Any], str], ...] = ((NasClient, "secret"), (WsapiClient, "api_key"))
    for model, secret in sealed:
        for client, earlier_client in _pairs(replaced, restored, model, "name"):
            carried.locks += _carry_deactivation(client, earlier_client)
            carried.credentials += _carry_sealed(client, earlier_client, secret)
    for current, earlier in _pairs(replaced, restored, ApiClient, "name"):
        carried.locks += _carry_deactivation(current, earlier)
        if _newer(current.key_changed_at, earlier.key_changed_at):
            _copy_fields(current, earlier, ("key_prefix", "key_hash", "key_changed_at"))
            carried.credentials += 1
        if current.role != earlier.role:
            earlier.role = current.role
            carried.credentials += 1


def _carry_deactivation(current: Any, earlier: Any) -> bool:
    """A client switched off since the backup stays off; True if it was carried."""
    if earlier.active and not current.active:
        earlier.active = False
        return True
    return False


def carry_between(
    replaced_url: URL | str,
    restored_url: URL | str,
    *,
    actor: Actor,
    now: datetime,
    audit_key: AuditKey | None,
    **details: str | None,
) -> CarriedState:
    """:func:`carry_security_state` from one database to another (both at the schema
    head), audited in the restored database in the same transaction (sealed with
    ``audit_key``, naming the replaced database's head: checkpoints written after the
    backup point there)."""
    replaced = Database.from_url(replaced_url)
    restored = Database.from_url(restored_url, audit_key=audit_key)
    try:
        with replaced.reader() as current_side, restored.session() as earlier_side:
            carried = carry_security_state(current_side, earlier_side)
            head = current_side.execute(
                select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
            ).first()
            replaced_head = f"{head.id}:{head.hash}" if head else None
            _audit_restore(
                earlier_side,
                carried,
                actor=actor,
                now=now,
                details={**details, "replaced_head": replaced_head},
            )
            return carried
    finally:
        replaced.dispose()
        restored.dispose()


def record_restore(
    url: URL | str,
    *,
    actor: Actor,
    now: datetime,
    audit_key: AuditKey | None,
    **details: str | None,
) -> None:
    """Audit a restore that carried nothing over (the replaced database was lost)."""
    database = Database.from_url(url, audit_key=audit_key)
    try:
        with database.session() as session:
            _audit_restore(session, None, actor=actor, now=now, details=details)
    finally:
        database.dispose()


def _audit_restore(
    session: Session,
    carried: CarriedState | None,
    *,
    actor: Actor,
    now: datetime,
    details: dict[str, str | None],
) -> None:
    audit.record(
        session,
        AuditTag.DATABASE_RESTORE,
        actor=actor,
        data={**details, "carried": carried.as_audit_data() if carried else None},
        now=now,
    )
