"""A practice changes hands (§ 2.3): a new owner continues it, under its BSNR or a new one.

Credentials and Yubikey are individual and not transferable, not even on a takeover:
the old owner's users are locked with the cause "takeover" (their live sessions end),
the key is replaced with the reason "takeover" (locked, asked back with a lock letter,
no loss fee), the new owner's terms acceptance is recorded, the new users are created
and their letters queued (split shipment as always). The old owner's end of activity
no longer locks the successor: under the same BSNR the practice's own date is cleared
and the old owner's accounts no longer count among the members it follows (§ 1.2);
under a new BSNR the successor is a record of its own and the old one stays, locked, for
the history. Either way a ``Takeover`` row links the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import practices, users
from flexnet.accounts.identifiers import validate_bsnr
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.days import check_day
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import BERLIN, DEFAULT_LOCK_AFTER_QUARTERS
from flexnet.models import (
    Letter,
    Lock,
    LockCause,
    Practice,
    PracticeKind,
    PracticeStatus,
    Takeover,
    TermsChannel,
    User,
    UserKind,
    UserStatus,
)
from flexnet.otp import stock
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.provisioning import issuance
from flexnet.provisioning.issuance import Replacement


@dataclass(frozen=True)
class NewUser:
    """A user of the new owner: the owner (a member with LANR), staff, practice access."""

    username: str
    kind: UserKind
    name: str | None = None
    lanr: str | None = None


@dataclass
class Result:
    practice: Practice  # the successor: the same record, or the new one
    ended: list[str] = field(default_factory=list)  # the old owner's users, locked now
    letters: list[Letter] = field(default_factory=list)  # queued by the takeover
    cleared: dict[str, str | None] = field(default_factory=dict)  # the old owner's dates


@dataclass(frozen=True)
class Address:
    """Address and contact of the successor (None: the old practice's)."""

    street: str | None = None
    zip_code: str | None = None
    city: str | None = None
    address_extra: str | None = None
    phone: str | None = None
    contact_person: str | None = None


# A stored lock the old owner's dates made (§ 10.2, § 10.3): the successor is not bound
# by it. Any other lock (a breach, misuse, a loss) is lifted by staff first.
_OLD_OWNERS_LOCKS = (LockCause.LIFECYCLE, LockCause.TERMINATION)


def take_over(
    session: Session,
    *,
    bsnr: str,
    on: date,
    new_name: str,
    terms_version: str,
    terms_channel: TermsChannel,
    accepted_on: date,
    new_users: Sequence[NewUser],
    actor: Actor,
    now: datetime,
    new_bsnr: str | None = None,
    new_key: str | None = None,
    address: Address = Address(),
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Result:
    """Record that a new owner continues the practice ``bsnr`` from ``on`` (the new
    owner's first day; today or earlier). See the module's docstring for what follows."""
    check_day(on, field="Tag der Übernahme")
    if on > now.astimezone(BERLIN).date():
        raise ValidationError(
            "Der Tag der Übernahme liegt in der Zukunft: die Übernahme wird an diesem Tag "
            "oder danach erfasst"
        )
    old = practices.get_practice(session, bsnr)
    _refuse(old, new_users)
    reason = (
        f"Praxisübernahme am {on:%d.%m.%Y}: Zugangsdaten und Yubikey des bisherigen Inhabers "
        "sind nicht übertragbar (§ 2.3)"
    )
    previous_name = old.name
    new_bsnr = validate_bsnr(new_bsnr) if new_bsnr else old.bsnr
    if new_bsnr == old.bsnr:
        result = _continue(session, old, new_name, address, reason, new_key, actor, now)
    else:
        result = _succeed(session, old, new_bsnr, new_name, address, reason, new_key, actor, now)
    successor = result.practice
    practices.accept_terms(
        session,
        bsnr=successor.bsnr,
        version=terms_version,
        channel=terms_channel,
        accepted_on=accepted_on,
        actor=actor,
        now=now,
    )
    for new in new_users:
        _, letter = issuance.add_user(
            session,
            username=new.username,
            bsnr=successor.bsnr,
            kind=new.kind,
            name=new.name,
            lanr=new.lanr,
            actor=actor,
            now=now,
            quarters=quarters,
        )
        if letter is not None:
            result.letters.append(letter)
    _record(session, old, successor, on, previous_name, result, actor=actor, now=now)
    return result


def _refuse(old: Practice, new_users: Sequence[NewUser]) -> None:
    if old.status is PracticeStatus.LOCKED and old.lock_cause not in _OLD_OWNERS_LOCKS:
        raise ConflictError(
            f"BSNR {old.bsnr} ist gesperrt ({old.lock_reason}); die Sperre ist erst "
            "aufzuheben (flexnet unlock), dann die Übernahme zu erfassen"
        )
    if old.kind is PracticeKind.MEMBER and not any(u.kind is UserKind.MEMBER for u in new_users):
        raise ValidationError(
            "Der neue Inhaber einer Mitgliedspraxis ist ein Mitglied: bitte mindestens ein "
            "Mitglied mit LANR angeben"
        )


def _continue(
    session: Session,
    practice: Practice,
    new_name: str,
    address: Address,
    reason: str,
    new_key: str | None,
    actor: Actor,
    now: datetime,
) -> Result:
    """The same BSNR: the record goes on under the new owner's name."""
    practices.edit_practice(
        session, bsnr=practice.bsnr, name=new_name, actor=actor, now=now, **vars(address)
    )
    result = Result(practice, ended=_end_users(session, practice.users, reason, actor, now))
    result.cleared = _clear_old_dates(session, practice, reason, actor, now)
    current = [token for token in practice.tokens if token.status in USABLE_STATUSES]
    if current and new_key:
        result.letters += issuance.replace_key(
            session,
            bsnr=practice.bsnr,
            new_serial=new_key,
            why=Replacement.TAKEOVER,
            at_once=True,
            fee_cents=0,
            actor=actor,
            now=now,
        )
        return result
    takeover_lock = {token.id: Lock(LockCause.TAKEOVER, reason) for token in current}
    stock.lock_keys(session, takeover_lock, actor=actor, now=now)
    for token in current:
        session.refresh(token)
        result.letters.append(issuance.ask_back(session, practice, token, actor=actor, now=now))
    if new_key:
        result.letters.append(
            issuance.issue_key(session, serial=new_key, bsnr=practice.bsnr, actor=actor, now=now)
        )
    return result


def _succeed(
    session: Session,
    old: Practice,
    new_bsnr: str,
    new_name: str,
    address: Address,
    reason: str,
    new_key: str | None,
    actor: Actor,
    now: datetime,
) -> Result:
    """A new BSNR: a new record; the old one is locked as a whole (its users, its key, a
    lock letter asking for the key back) and stays for the history."""
    successor = practices.add_practice(
        session,
        bsnr=new_bsnr,
        name=new_name,
        street=address.street or old.street,
        zip_code=address.zip_code or old.zip_code,
        city=address.city or old.city,
        address_extra=address.address_extra
        if address.address_extra is not None
        else old.address_extra,
        kind=old.kind,
        actor=actor,
        now=now,
    )
    session.flush()
    if address.phone or address.contact_person:
        practices.edit_practice(
            session,
            bsnr=new_bsnr,
            phone=address.phone,
            contact_person=address.contact_person,
            actor=actor,
            now=now,
        )
    ended = [user.username for user in old.users if user.status in users.LOCKABLE]
    locks.lock_practices(
        session,
        {old: Lock(LockCause.TAKEOVER, reason)},
        tag=AuditTag.PRACTICE_LOCK,
        actor=actor,
        now=now,
    )
    session.refresh(old)
    result = Result(successor, ended=ended)
    if new_key:
        result.letters.append(
            issuance.issue_key(session, serial=new_key, bsnr=new_bsnr, actor=actor, now=now)
        )
    return result


def _end_users(
    session: Session, old_users: Sequence[User], reason: str, actor: Actor, now: datetime
) -> list[str]:
    """The old owner's users end: locked with the cause "takeover" (a lock they had
    already takes that cause, so none of them is counted or unlocked as before)."""
    why = Lock(LockCause.TAKEOVER, reason)
    lockable = {user.id: why for user in old_users if user.status in users.LOCKABLE}
    ended = users.lock_users(session, lockable, actor=actor, now=now).usernames
    for user in old_users:
        session.refresh(user)  # the set-based lock wrote past the loaded rows
    for user in old_users:
        previous = user.lock_cause
        if user.status is not UserStatus.LOCKED or previous is LockCause.TAKEOVER:
            continue
        user.lock_cause, user.lock_reason = LockCause.TAKEOVER, reason
        audit.record(
            session,
            AuditTag.USER_LOCK,
            actor=actor,
            subject=Subject("user", user.username),
            data={"cause": LockCause.TAKEOVER.value, "previous_cause": str(previous)},
            now=now,
        )
        ended.append(user.username)
    return ended


def _clear_old_dates(
    session: Session, practice: Practice, reason: str, actor: Actor, now: datetime
) -> dict[str, str | None]:
    """The old owner's end of activity and termination do not bind the successor; a lock
    they made is lifted from the practice (not from the old owner's users or key).
    Returns what was cleared, for the takeover's audit entry."""
    cleared: dict[str, str | None] = {}
    if practice.activity_ended_on is not None:
        cleared["activity_ended_on"] = practice.activity_ended_on.isoformat()
        practices.end_activity(
            session, bsnr=practice.bsnr, ended_on=None, reason=reason, actor=actor, now=now
        )
    if practice.terminated_by is not None:
        last_day = practice.access_ends_on
        cleared["termination"] = last_day.isoformat() if last_day else "extraordinary"
        practice.terminated_by = practice.termination_notice_on = None
        practice.access_ends_on = practice.termination_reason = None
    if practice.status is PracticeStatus.LOCKED:
        cause = practice.lock_cause
        practice.status = PracticeStatus.ACTIVE
        practice.lock_cause = practice.lock_reason = practice.locked_at = None
        audit.record(
            session,
            AuditTag.PRACTICE_UNLOCK,
            actor=actor,
            subject=Subject("practice", practice.bsnr),
            data={"reason": reason, "cause": cause.value if cause else None},
            now=now,
        )
    return cleared


def _record(
    session: Session,
    old: Practice,
    successor: Practice,
    on: date,
    previous_name: str,
    result: Result,
    *,
    actor: Actor,
    now: datetime,
) -> None:
    session.add(
        Takeover(
            practice=successor,
            predecessor=old,
            taken_over_on=on,
            previous_name=previous_name,
            recorded_by=actor.name,
            recorded_at=now,
        )
    )
    audit.record(
        session,
        AuditTag.PRACTICE_TAKEOVER,
        actor=actor,
        subject=Subject("practice", old.bsnr),
        data={
            "on": on.isoformat(),
            "previous_name": previous_name,
            "new_name": successor.name,
            "successor_bsnr": successor.bsnr,
            "ended": result.ended,
            "cleared": result.cleared,
            "new_users": [
                user.username for user in successor.users if user.username not in result.ended
            ],
        },
        now=now,
    )
