"""A terminated practice takes part again (§ 1.3, § 2.1, § 3.2): a new participation.

Unlike a withdrawal (the termination was a mistake: ``terminations.withdraw``), the old
participation ended: the practice accepts the terms again, and gets what a new
participant gets. Its users keep their usernames but get new passwords by credentials
letters (the old ones were issued for an access that ended and may have been passed
on); a Yubikey locked and asked back with the termination stays so (§ 10.2: it is
expected back, and may come back and be reprogrammed for someone else), so the
practice gets a new key with its key letter, and the credentials follow it with the
time offset (§ 3.2). A user locked for another reason (misuse, a member's own end)
stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import practices
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle.rules import DEFAULT_LOCK_AFTER_QUARTERS
from flexnet.lifecycle.status import State, practice_lock_after_unlock, practice_status
from flexnet.models import (
    Letter,
    LetterKind,
    LetterStatus,
    LockCause,
    Practice,
    PracticeStatus,
    TermsChannel,
    TokenStatus,
    UserStatus,
)
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.provisioning import issuance, mailruns
from flexnet.textrules import REASON_MAX_LENGTH, clean_line


@dataclass
class Reactivated:
    practice: Practice
    users: list[str] = field(default_factory=list)  # get new credentials letters
    letters: list[Letter] = field(default_factory=list)


def reactivate(
    session: Session,
    *,
    bsnr: str,
    version: str,
    channel: TermsChannel,
    accepted_on: date,
    reason: str,
    actor: Actor,
    now: datetime,
    key_serial: str | None = None,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Reactivated:
    """The practice ``bsnr``, whose termination took effect, takes part again."""
    if not reason.strip():
        raise ValidationError("Bitte einen Grund angeben")
    why = clean_line(reason, field="Grund", max_length=REASON_MAX_LENGTH)
    practice = practices.get_practice(session, bsnr)
    status = practice_status(practice, now, quarters)
    if practice.terminated_by is None:
        raise ConflictError(f"BSNR {practice.bsnr} ist nicht gekündigt")
    if status.state is not State.LOCKED or status.cause is not LockCause.TERMINATION:
        raise ConflictError(
            f"Die Kündigung der BSNR {practice.bsnr} ist noch nicht wirksam: sie wird "
            f"zurückgenommen (flexnet termination withdraw {practice.bsnr}), eine neue "
            "Teilnahme braucht es nicht"
        )
    ended = {
        "by": practice.terminated_by.value,
        "notice_date": practice.termination_notice_on.isoformat()
        if practice.termination_notice_on
        else None,
        "last_day": practice.access_ends_on.isoformat() if practice.access_ends_on else None,
    }
    practice.terminated_by = practice.termination_notice_on = practice.access_ends_on = None
    practice.termination_reason = None
    still = practice_lock_after_unlock(practice, now, quarters)
    if still is not None:
        raise ConflictError(
            f"BSNR {practice.bsnr} bliebe gesperrt ({still.reason}); nichts geändert"
        )
    cause, locked_at = practice.lock_cause, practice.locked_at
    if practice.status is PracticeStatus.LOCKED:
        # Its lock letter stays: the old access did end that day, and the key it asks
        # back is still expected (§ 10.2).
        practice.status = PracticeStatus.ACTIVE
        practice.lock_cause = practice.lock_reason = practice.locked_at = None
    practices.accept_terms(
        session,
        bsnr=practice.bsnr,
        version=version,
        channel=channel,
        accepted_on=accepted_on,
        actor=actor,
        now=now,
    )
    result = Reactivated(practice)
    if key_serial or not any(t.status in USABLE_STATUSES for t in practice.tokens):
        if not key_serial:
            raise ValidationError(
                "Der Yubikey der Praxis ist gesperrt und zurückgefordert: bitte einen neuen "
                "angeben (--key SERIAL)"
            )
        result.letters.append(
            issuance.issue_key(session, serial=key_serial, bsnr=practice.bsnr, actor=actor, now=now)
        )
    for user in practice.users:
        ended_with = user.status is UserStatus.LOCKED and (user.lock_cause, user.locked_at) == (
            cause,
            locked_at,
        )
        if not (ended_with or user.status in (UserStatus.ACTIVE, UserStatus.PENDING)):
            continue  # locked for its own reason, or ended for good
        user.status = UserStatus.PENDING
        user.lock_cause = user.lock_reason = user.locked_at = None
        user.password_hash = user.next_password_hash = None
        user.password_set_at = user.next_password_set_at = None
        user.failed_logins, user.throttled_until = 0, None
        result.users.append(user.username)
        waiting = session.scalar(
            select(Letter).where(
                Letter.user_id == user.id,
                Letter.kind.in_(mailruns.PASSWORD_LETTERS),
                Letter.status == LetterStatus.DUE,
            )
        )
        # A password letter still on the list carries the new password (one, not two).
        result.letters.append(
            waiting
            or mailruns.queue(
                session,
                kind=LetterKind.CREDENTIALS,
                practice=practice,
                user=user,
                actor=actor,
                now=now,
            )
        )
    audit.record(
        session,
        AuditTag.PRACTICE_REACTIVATE,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={
            "reason": why,
            "ended": ended,
            "terms_version": version,
            "new_key": key_serial,
            "credentials_for": result.users,
            "old_keys_kept_locked": [
                t.serial for t in practice.tokens if t.status is TokenStatus.LOCKED
            ],
        },
        now=now,
    )
    return result
