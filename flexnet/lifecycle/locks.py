"""Locks for cause, loss reports, unlocks and terminations (§ 7.2, § 10.1, § 10.2, § 14.2).

Every lock, whatever its cause, is one conditional UPDATE (of concurrent locks one
takes effect and is audited), ends the live VPN sessions it affects and, for a
practice, asks for the Yubikey back with a lock letter (§ 10.2).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flexnet import audit, users, vpn
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle.rules import termination_last_day
from flexnet.lifecycle.status import termination_reason
from flexnet.models import (
    Letter,
    LetterKind,
    LetterStatus,
    LockCause,
    Practice,
    PracticeStatus,
    TerminationBy,
    Token,
    TokenStatus,
    User,
    UserStatus,
)
from flexnet.otp import stock
from flexnet.otp.stock import get_token
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.practices import get_practice
from flexnet.provisioning import mailruns

# Causes staff choose when they lock by hand; the others come from rules or the system.
STAFF_CAUSES = (LockCause.MANUAL, LockCause.MISUSE, LockCause.LOSS, LockCause.OBJECTION)


def _require_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ValidationError("Bitte einen Grund angeben")
    return reason


def lock_user(
    session: Session,
    *,
    username: str,
    cause: LockCause,
    reason: str,
    actor: Actor,
    now: datetime,
    all_practice_credentials: bool = False,
) -> list[str]:
    """Lock one user, or with ``all_practice_credentials`` every user of the practice
    (§ 7.2). Returns the usernames locked now (the already locked are left as they are)."""
    reason = _require_reason(reason)
    user = users.get_user(session, username)
    targets = user.practice.users if all_practice_credentials else [user]
    locked = []
    for target in targets:
        queued = users.lock_user(
            session, user=target, cause=cause, reason=reason, actor=actor, now=now
        )
        if queued is not None:
            locked.append(target.username)
    return locked


def lock_key(
    session: Session,
    *,
    serial: str,
    cause: LockCause,
    reason: str,
    actor: Actor,
    now: datetime,
    all_practice_credentials: bool = False,
) -> Token:
    """Lock a Yubikey; reported lost, it is retired for good and never unlocked (§ 7.2)."""
    reason = _require_reason(reason)
    token = get_token(session, serial)
    lost = cause is LockCause.LOSS
    values = (
        {"status": TokenStatus.LOST, "lock_cause": None, "lock_reason": None, "locked_at": None}
        if lost
        else {"status": TokenStatus.LOCKED, "lock_cause": cause, "lock_reason": reason}
        | {"locked_at": now}
    )
    changed = session.execute(
        update(Token)
        .where(Token.id == token.id, Token.status.in_((*USABLE_STATUSES, TokenStatus.LOCKED)))
        .where(Token.status != values["status"])
        .values(values),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(token)
    if not changed:
        raise ConflictError(f"Yubikey {token.serial} ist bereits {token.status.value}")
    audit.record(
        session,
        AuditTag.TOKEN_LOSS if lost else AuditTag.TOKEN_LOCK,
        actor=actor,
        subject=Subject("token", token.serial),
        data={"cause": cause.value, "reason": reason},
        now=now,
    )
    vpn.request_disconnect_for_token(session, token=token, now=now)
    if all_practice_credentials and token.practice is not None:
        for user in token.practice.users:
            users.lock_user(session, user=user, cause=cause, reason=reason, actor=actor, now=now)
    return token


def lock_practice(
    session: Session,
    *,
    bsnr: str,
    cause: LockCause,
    reason: str,
    actor: Actor,
    now: datetime,
) -> Practice:
    """Lock a practice with its users and keys, end their sessions, ask for the key back."""
    practice = get_practice(session, bsnr)
    if not lock_practice_row(session, practice, cause, _require_reason(reason), now):
        raise ConflictError(f"BSNR {practice.bsnr} ist bereits gesperrt")
    audit.record(
        session,
        AuditTag.PRACTICE_LOCK,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={"cause": cause.value, "reason": practice.lock_reason},
        now=now,
    )
    lock_practice_members(session, practice, cause, practice.lock_reason or "", actor, now)
    return practice


def lock_practice_row(
    session: Session, practice: Practice, cause: LockCause, reason: str, now: datetime
) -> bool:
    """Store the practice's lock unless it is locked already; True if this call locked it."""
    changed = session.execute(
        update(Practice)
        .where(Practice.id == practice.id, Practice.status != PracticeStatus.LOCKED)
        .values(status=PracticeStatus.LOCKED, lock_cause=cause, lock_reason=reason, locked_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(practice)
    return bool(changed)


def lock_practice_members(
    session: Session,
    practice: Practice,
    cause: LockCause,
    reason: str,
    actor: Actor,
    now: datetime,
) -> None:
    """Users and keys follow their practice; the lock letter asks for the key (§ 10.2)."""
    for user in practice.users:
        users.lock_user(session, user=user, cause=cause, reason=reason, actor=actor, now=now)
    keys = [token for token in practice.tokens if token.status in USABLE_STATUSES]
    stock.lock_keys(session, keys, cause=cause, reason=reason, actor=actor, now=now)
    mailruns.queue(
        session,
        kind=LetterKind.LOCK,
        practice=practice,
        token=keys[0] if keys else None,
        note=reason,
        effective_on=now.date(),
        actor=actor,
        now=now,
    )


def unlock_user(
    session: Session, *, username: str, reason: str, actor: Actor, now: datetime
) -> User:
    """Lift a user's lock (not a practice's, not the dates' § 10.3 lock: see exceptions)."""
    reason = _require_reason(reason)
    user = users.get_user(session, username)
    if user.status is not UserStatus.LOCKED:
        raise ConflictError(f"{user.username} ist nicht gesperrt")
    if user.lock_cause is LockCause.LIFECYCLE:
        raise ConflictError("Eine Sperre nach § 10.3 hebt nur eine Ausnahme auf")
    previous = user.lock_cause
    user.status = UserStatus.ACTIVE if user.first_login_at else UserStatus.PENDING
    user.lock_cause = user.lock_reason = user.locked_at = None
    user.failed_logins, user.throttled_until = 0, None
    audit.record(
        session,
        AuditTag.USER_UNLOCK,
        actor=actor,
        subject=Subject("user", user.username),
        data={"reason": reason, "cause": previous.value if previous else None},
        now=now,
    )
    return user


def unlock_practice(
    session: Session, *, bsnr: str, reason: str, actor: Actor, now: datetime
) -> Practice:
    """Lift a practice's lock, and the locks its users and keys got with it."""
    reason = _require_reason(reason)
    practice = get_practice(session, bsnr)
    if practice.status is not PracticeStatus.LOCKED:
        raise ConflictError(f"BSNR {practice.bsnr} ist nicht gesperrt")
    cause, locked_at = practice.lock_cause, practice.locked_at
    practice.status = PracticeStatus.ACTIVE if practice.terms_acceptance else PracticeStatus.PENDING
    practice.lock_cause = practice.lock_reason = practice.locked_at = None
    for user in practice.users:
        if user.status is UserStatus.LOCKED and (user.lock_cause, user.locked_at) == (
            cause,
            locked_at,
        ):
            unlock_user(session, username=user.username, reason=reason, actor=actor, now=now)
    for token in practice.tokens:
        if token.status is TokenStatus.LOCKED and (token.lock_cause, token.locked_at) == (
            cause,
            locked_at,
        ):
            token.status = _status_before_lock(session, token)
            token.lock_cause = token.lock_reason = token.locked_at = None
    audit.record(
        session,
        AuditTag.PRACTICE_UNLOCK,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={"reason": reason, "cause": cause.value if cause else None},
        now=now,
    )
    return practice


def _status_before_lock(session: Session, token: Token) -> TokenStatus:
    """In use, at the practice, or still waiting for its key letter."""
    if token.last_used_at is not None:
        return TokenStatus.ACTIVE
    sent = session.scalar(
        select(Letter.id)
        .where(Letter.token_id == token.id, Letter.kind == LetterKind.KEY)
        .where(Letter.status == LetterStatus.DISPATCHED)
        .limit(1)
    )
    return TokenStatus.SHIPPED if sent is not None else TokenStatus.ASSIGNED


def terminate(
    session: Session,
    *,
    bsnr: str,
    by: TerminationBy,
    notice_date: date,
    actor: Actor,
    now: datetime,
    requested: date | None = None,
    reason: str | None = None,
) -> Practice:
    """Record a termination (§ 10.2); the dates lock the practice when it takes effect,
    an extraordinary one at once."""
    practice = get_practice(session, bsnr)
    if practice.terminated_by is not None:
        raise ConflictError(f"BSNR {practice.bsnr} ist bereits gekündigt")
    if requested is not None and requested < notice_date:
        raise ValidationError("Das gewünschte Ende liegt vor dem Eingang der Kündigung")
    practice.terminated_by = by
    practice.termination_notice_on = notice_date
    practice.access_ends_on = termination_last_day(by, notice_date, requested)
    practice.termination_reason = reason.strip() if reason and reason.strip() else None
    audit.record(
        session,
        AuditTag.PRACTICE_TERMINATE,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={
            "by": by.value,
            "notice_date": notice_date.isoformat(),
            "last_day": practice.access_ends_on.isoformat() if practice.access_ends_on else None,
        },
        now=now,
    )
    if by is TerminationBy.EXTRAORDINARY:
        lock_practice(
            session,
            bsnr=practice.bsnr,
            cause=LockCause.TERMINATION,
            reason=termination_reason(practice),
            actor=actor,
            now=now,
        )
    return practice
