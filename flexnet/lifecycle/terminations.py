"""Terminations put right (§ 10.2): corrected (notice date, requested end) or withdrawn,
with a reason, before and after they took effect.

A correction recomputes the last day by the same rule as the termination; a withdrawal
clears it. Either way the lock the termination caused (and only that one: a misuse lock
of a user stays) is lifted once nothing else keeps the practice locked; if the § 10.3
date still does, the stored lock names that date instead. Lock letters and notices of
the termination not yet printed are cancelled; those already sent are named, so that
staff confirm the withdrawal in their reply to the practice (no letter kind of its own:
a withdrawal answers the practice's own request or staff's mistake, by letter or phone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts.practices import get_practice
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.days import check_day
from flexnet.db import update_by_id
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import (
    DEFAULT_LOCK_AFTER_QUARTERS,
    start_of_day,
    termination_last_day,
)
from flexnet.lifecycle.status import practice_lock_after_unlock
from flexnet.models import (
    Letter,
    LetterKind,
    LetterStatus,
    LockCause,
    Practice,
    PracticeStatus,
    TerminationBy,
    TokenStatus,
    UserStatus,
)
from flexnet.provisioning import mailruns
from flexnet.textrules import REASON_MAX_LENGTH, clean_line


@dataclass
class Undone:
    """What a correction or withdrawal did besides the dates."""

    practice: Practice
    lifted: bool = False  # the termination's lock was lifted
    cancelled: list[str] = field(default_factory=list)  # letters not printed, cancelled
    sent: list[str] = field(default_factory=list)  # letters of the termination already out


def _reason(reason: str) -> str:
    if not reason.strip():
        raise ValidationError("Bitte einen Grund angeben")
    return clean_line(reason, field="Grund", max_length=REASON_MAX_LENGTH)


def _terminated(session: Session, bsnr: str) -> Practice:
    practice = get_practice(session, bsnr)
    if practice.terminated_by is None:
        raise ConflictError(f"BSNR {practice.bsnr} ist nicht gekündigt")
    return practice


def correct(
    session: Session,
    *,
    bsnr: str,
    reason: str,
    actor: Actor,
    now: datetime,
    notice_date: date | None = None,
    requested: date | None = None,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Undone:
    """Correct the notice date (default: as recorded) and the requested end (default:
    none, the shortest notice): the last day follows by § 10.2 as for a new termination."""
    why = _reason(reason)
    practice = _terminated(session, bsnr)
    by = practice.terminated_by
    assert by is not None  # noqa: S101 - _terminated checked it
    if by is TerminationBy.EXTRAORDINARY:
        raise ConflictError(
            "Eine außerordentliche Kündigung hat keinen letzten Tag: sie wird zurückgenommen "
            f"(flexnet termination withdraw {practice.bsnr}), nicht berichtigt"
        )
    notice = check_day(notice_date, field="Eingang der Kündigung") if notice_date else None
    notice = notice or practice.termination_notice_on
    assert notice is not None  # noqa: S101 - a CHECK constraint: terminated has a notice
    if requested is not None:
        check_day(requested, field="Gewünschtes Ende")
        if requested < notice:
            raise ValidationError("Das gewünschte Ende liegt vor dem Eingang der Kündigung")
    before = (practice.termination_notice_on, practice.access_ends_on)
    practice.termination_notice_on = notice
    practice.access_ends_on = termination_last_day(by, notice, requested)
    since = min(notice, before[0] or notice)
    undone = _settle(session, practice, why, since=since, actor=actor, now=now, quarters=quarters)
    audit.record(
        session,
        AuditTag.PRACTICE_TERMINATION_CORRECT,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={
            "reason": why,
            "notice_date": [_iso(before[0]), _iso(notice)],
            "last_day": [_iso(before[1]), _iso(practice.access_ends_on)],
            "lock_lifted": undone.lifted,
        },
        now=now,
    )
    return undone


def withdraw(
    session: Session,
    *,
    bsnr: str,
    reason: str,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Undone:
    """The termination is withdrawn as if it had not been given."""
    why = _reason(reason)
    practice = _terminated(session, bsnr)
    before = {
        "by": practice.terminated_by.value if practice.terminated_by else None,
        "notice_date": _iso(practice.termination_notice_on),
        "last_day": _iso(practice.access_ends_on),
    }
    since = practice.termination_notice_on or now.date()
    practice.terminated_by = None
    practice.termination_notice_on = practice.access_ends_on = None
    practice.termination_reason = None
    undone = _settle(session, practice, why, since=since, actor=actor, now=now, quarters=quarters)
    audit.record(
        session,
        AuditTag.PRACTICE_TERMINATION_WITHDRAW,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={"reason": why, **before, "lock_lifted": undone.lifted},
        now=now,
    )
    return undone


def _settle(
    session: Session,
    practice: Practice,
    reason: str,
    *,
    since: date,
    actor: Actor,
    now: datetime,
    quarters: int,
) -> Undone:
    """After the dates changed: the termination's lock lifted or restated, its letters
    not printed cancelled, those already sent named."""
    session.flush()
    undone = Undone(practice)
    termination_letters = (
        select(Letter.id, Letter.status)
        .where(Letter.practice_id == practice.id, Letter.cause == LockCause.TERMINATION)
        .where(Letter.kind.in_((LetterKind.LOCK, LetterKind.LOCK_NOTICE)))
        .where(Letter.created_at >= start_of_day(since))  # this termination's, not an earlier
    )
    rows = session.execute(termination_letters).all()
    undone.sent = [
        mailruns.reference(id_)
        for id_, status in rows
        if status in (LetterStatus.PRINTED, LetterStatus.DISPATCHED)
    ]
    locked = practice.status is PracticeStatus.LOCKED
    if locked and practice.lock_cause is LockCause.TERMINATION:
        still = practice_lock_after_unlock(practice, now, quarters)
        if still is None:
            locks.lift_practice_lock(
                session, practice, reason=reason, actor=actor, now=now, quarters=quarters
            )
            undone.lifted = True
        else:
            _restate(practice, still.cause or LockCause.LIFECYCLE, still.reason or reason)
    # Notices of the old date (and lock letters of a lock no longer) are not printed.
    due = [
        id_
        for id_, status in session.execute(termination_letters).all()
        if status is LetterStatus.DUE
    ]
    update_by_id(session, Letter, {id_: {"status": LetterStatus.CANCELLED} for id_ in due})
    undone.cancelled = [mailruns.reference(id_) for id_ in due]
    return undone


def _restate(practice: Practice, cause: LockCause, reason: str) -> None:
    """The practice stays locked by its § 10.3 date: the stored lock (and its users' and
    keys' from it) names that instead of the termination."""
    old = (practice.lock_cause, practice.locked_at)
    practice.lock_cause, practice.lock_reason = cause, reason
    for user in practice.users:
        if user.status is UserStatus.LOCKED and (user.lock_cause, user.locked_at) == old:
            user.lock_cause, user.lock_reason = cause, reason
    for token in practice.tokens:
        if token.status is TokenStatus.LOCKED and (token.lock_cause, token.locked_at) == old:
            token.lock_cause, token.lock_reason = cause, reason


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
