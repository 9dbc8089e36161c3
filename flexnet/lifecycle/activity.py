"""The end of the physician's activity (§ 10.3): the practice's as a whole, or a
member's own (a member leaving a group practice), recorded, corrected or cleared.

Practice staff and the practice access follow the members they derive from (§ 1.2, see
``status``). A correction or a clearing needs a reason; a lock the nightly job made
durable because of a date that no longer holds is lifted with it, and only that lock.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import practices, users
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ValidationError
from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import DEFAULT_LOCK_AFTER_QUARTERS
from flexnet.lifecycle.status import practice_lock_after_unlock, user_lock_after_unlock
from flexnet.models import LockCause, Practice, PracticeStatus, User, UserKind, UserStatus


def record_practice_end(
    session: Session,
    *,
    bsnr: str,
    ended_on: date | None,
    reason: str | None,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Practice:
    """The practice's own end (None clears it): it locks the practice as a whole."""
    practice = practices.end_activity(
        session, bsnr=bsnr, ended_on=ended_on, reason=reason, actor=actor, now=now
    )
    _lift(session, practice, reason, actor=actor, now=now, quarters=quarters)
    return practice


def record_member_end(
    session: Session,
    *,
    username: str,
    ended_on: date | None,
    reason: str | None,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> User:
    """A member's own end of activity (None clears it): it locks that member four
    quarters later, and with the last member the practice's staff and access (§ 1.2)."""
    user = users.get_user(session, username)
    if user.kind is not UserKind.MEMBER:
        raise ValidationError(
            f"{user.username} ist kein Mitglied: ein eigenes Ende der Tätigkeit hat nur ein "
            "Mitglied (LANR); für die ganze Betriebsstätte 'flexnet practice end'"
        )
    previous = user.activity_ended_on
    why = practices.end_change_reason(previous, ended_on, reason)
    user.activity_ended_on = ended_on
    audit.record(
        session,
        AuditTag.USER_ACTIVITY_END if ended_on else AuditTag.USER_ACTIVITY_CLEAR,
        actor=actor,
        subject=Subject("user", user.username),
        data=practices.end_change_data(previous, ended_on, why),
        now=now,
    )
    _lift(session, user.practice, why, actor=actor, now=now, quarters=quarters)
    return user


def _lift(
    session: Session,
    practice: Practice,
    reason: str | None,
    *,
    actor: Actor,
    now: datetime,
    quarters: int,
) -> None:
    session.flush()
    lift_stale_date_locks(
        session,
        practice,
        reason=f"Ende der Tätigkeit berichtigt: {reason}"
        if reason
        else "Ende der Tätigkeit berichtigt",
        actor=actor,
        now=now,
        quarters=quarters,
    )


def lift_stale_date_locks(
    session: Session,
    practice: Practice,
    *,
    reason: str,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> list[str]:
    """The § 10.3 locks of the practice and its users that the nightly job made durable
    and whose dates no longer lock at ``now`` (a date corrected or cleared, an exception
    granted): lifted, and only those; every other lock stays. Returns who was unlocked."""
    lifted = []
    if (
        practice.status is PracticeStatus.LOCKED
        and practice.lock_cause is LockCause.LIFECYCLE
        and practice_lock_after_unlock(practice, now, quarters) is None
    ):
        locks.unlock_practice(
            session,
            bsnr=practice.bsnr,
            reason=reason,
            actor=actor,
            now=now,
            by_exception=True,
            quarters=quarters,
        )
        lifted.append(f"BSNR {practice.bsnr}")
    for user in practice.users:
        if (
            user.status is UserStatus.LOCKED
            and user.lock_cause is LockCause.LIFECYCLE
            and user_lock_after_unlock(user, now, quarters) is None
        ):
            locks.unlock_user(
                session,
                username=user.username,
                reason=reason,
                actor=actor,
                now=now,
                by_exception=True,
                quarters=quarters,
            )
            lifted.append(user.username)
    return lifted
