"""Exceptions to the automatic lock (§ 10.3 sentence 2): access continues until a date.

One exception per practice or user, with its reason, the decision's reference and who
decided; granting, changing and ending it are audited. The effective status applies it
at request time (``status``); when it ends, the next login is refused at once and the
nightly job makes the lock durable. Granting one to a practice or member whose § 10.3
lock was already made durable lifts that lock (and only that one).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from flexnet import audit
from flexnet.accounts import users
from flexnet.accounts.practices import get_practice
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.days import check_day
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import activity, locks
from flexnet.lifecycle.rules import BERLIN, DEFAULT_LOCK_AFTER_QUARTERS
from flexnet.models import LockCause, LockException, Practice, PracticeStatus, User, UserStatus
from flexnet.textrules import clean_line


def _subject(
    session: Session, bsnr: str | None, username: str | None
) -> tuple[Practice | None, User | None, Subject]:
    if (bsnr is None) == (username is None):
        raise ValidationError("Eine Ausnahme gilt für eine Betriebsstätte oder einen Benutzer")
    if bsnr is not None:
        practice = get_practice(session, bsnr)
        return practice, None, Subject("practice", practice.bsnr)
    user = users.get_user(session, username or "")
    return None, user, Subject("user", user.username)


def grant(
    session: Session,
    *,
    until: date,
    reason: str,
    decision_ref: str,
    decided_by: str,
    actor: Actor,
    now: datetime,
    bsnr: str | None = None,
    username: str | None = None,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> LockException:
    """Grant (or change) the exception of a practice or user until ``until`` inclusive."""
    check_day(until, field="Letzter Tag der Ausnahme")
    practice, user, subject = _subject(session, bsnr, username)
    if until < now.astimezone(BERLIN).date():
        raise ValidationError("Das Ende der Ausnahme liegt in der Vergangenheit")
    fields = {
        "until": until,
        "reason": clean_line(reason, field="Begründung", max_length=1000),
        "decision_ref": clean_line(decision_ref, field="Aktenzeichen", max_length=100),
        "decided_by": clean_line(decided_by, field="Entschieden von", max_length=200),
    }
    exception = practice.lock_exception if practice else user.lock_exception if user else None
    if exception is None:
        exception = LockException(practice=practice, user=user, created_at=now, **fields)
        session.add(exception)
    else:
        for name, value in fields.items():
            setattr(exception, name, value)
    session.flush()
    audit.record(
        session,
        AuditTag.EXCEPTION_GRANT,
        actor=actor,
        subject=subject,
        data={"until": until.isoformat(), "decision_ref": fields["decision_ref"]},
        now=now,
    )
    why = f"Ausnahme bis {until:%d.%m.%Y} (Az. {fields['decision_ref']})"
    if practice is not None and _lifecycle_locked(practice.status, practice.lock_cause):
        locks.unlock_practice(
            session,
            bsnr=practice.bsnr,
            reason=why,
            actor=actor,
            now=now,
            by_exception=True,
            quarters=quarters,
        )
    if user is not None and _lifecycle_locked(user.status, user.lock_cause):
        locks.unlock_user(
            session,
            username=user.username,
            reason=why,
            actor=actor,
            now=now,
            by_exception=True,
            quarters=quarters,
        )
    # A member's exception keeps the staff deriving from the member open too (§ 1.2).
    owner = practice if practice is not None else user.practice if user else None
    if owner is not None:
        activity.lift_stale_date_locks(
            session, owner, reason=why, actor=actor, now=now, quarters=quarters
        )
    return exception


def _lifecycle_locked(status: PracticeStatus | UserStatus, cause: LockCause | None) -> bool:
    return status.value == "locked" and cause is LockCause.LIFECYCLE


def end(
    session: Session,
    *,
    reason: str,
    actor: Actor,
    now: datetime,
    bsnr: str | None = None,
    username: str | None = None,
) -> None:
    """End an exception early: the dates apply again from this moment."""
    reason = clean_line(reason, field="Grund", max_length=500)
    practice, user, subject = _subject(session, bsnr, username)
    exception = session.scalar(
        select(LockException).where(
            LockException.practice_id == practice.id
            if practice
            else LockException.user_id == (user.id if user else None)
        )
    )
    if exception is None:
        raise NotFoundError(f"Keine Ausnahme für {subject.id}")
    session.delete(exception)
    session.flush()
    if practice is not None:
        session.expire(practice, ["lock_exception"])
    if user is not None:
        session.expire(user, ["lock_exception"])
    audit.record(
        session,
        AuditTag.EXCEPTION_END,
        actor=actor,
        subject=subject,
        data={"reason": reason},
        now=now,
    )


def listing(session: Session, *, ending_by: date | None = None) -> list[LockException]:
    """Every exception with its end, the soonest first (``ending_by``: those ending by
    that day); the practice or user it belongs to is loaded with it."""
    query = select(LockException).options(
        selectinload(LockException.practice),
        selectinload(LockException.user).selectinload(User.practice),
    )
    if ending_by is not None:
        query = query.where(LockException.until <= ending_by)
    return list(session.scalars(query.order_by(LockException.until, LockException.id)))


def subject_label(exception: LockException) -> str:
    """Whose exception, as the list shows it: "BSNR … name" or "username (BSNR …)"."""
    if exception.practice is not None:
        return f"BSNR {exception.practice.bsnr} {exception.practice.name}"
    user = exception.user
    return f"{user.username} (BSNR {user.practice.bsnr})" if user else "?"
