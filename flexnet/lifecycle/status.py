"""Effective status of a practice or user at a given instant.

The stored status says what staff or a job decided; the dates say what the terms
decide by themselves (§ 10.3). Both are combined here, at request time, so that an
automatic lock takes effect on the minute even if no nightly job has run.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from flexnet.lifecycle.rules import (
    BERLIN,
    DEFAULT_LOCK_AFTER_QUARTERS,
    automatic_lock_instant,
    exception_end_instant,
    start_of_day,
    termination_lock_instant,
)
from flexnet.models import (
    LockCause,
    LockException,
    Practice,
    PracticeKind,
    PracticeStatus,
    TerminationBy,
    User,
    UserKind,
    UserStatus,
)


class State(enum.StrEnum):
    ACTIVE = "active"
    PENDING = "pending"
    LOCKED = "locked"
    REVOKED = "revoked"


# Locks that withdraw an access (§ 10.1 breach, § 10.2 termination, § 10.3 the dates,
# § 14.2 objection), as opposed to those that shield it until it is replaced (§ 7.2
# loss or misuse, a user's own lock, too many failures), whose remedy is new
# credentials (§ 7.3).
WITHDRAWING_CAUSES = frozenset(
    {
        LockCause.MANUAL,
        LockCause.TERMINATION,
        LockCause.LIFECYCLE,
        LockCause.OBJECTION,
        LockCause.TAKEOVER,  # § 2.3: the practice changed hands
    }
)


# The clause of the terms each lock rests on, as lock and notice letters name it.
LEGAL_GROUND = {
    LockCause.MANUAL: "§ 10 Abs. 1 der Nutzungsbedingungen (Verstoß oder wichtiger Grund)",
    LockCause.LOSS: "§ 7 Abs. 2 der Nutzungsbedingungen (Verlust)",
    LockCause.MISUSE: "§ 7 Abs. 2 der Nutzungsbedingungen (Verdacht auf Missbrauch)",
    LockCause.SELF_SERVICE: "§ 7 Abs. 2 der Nutzungsbedingungen (Sperre auf Ihren Wunsch)",
    LockCause.LIFECYCLE: "§ 10 Abs. 3 der Nutzungsbedingungen (automatische Sperre nach dem "
    "Ende der Tätigkeit)",
    LockCause.TERMINATION: "§ 10 Abs. 2 der Nutzungsbedingungen (Kündigung)",
    LockCause.OBJECTION: "§ 14 Abs. 2 der Nutzungsbedingungen (geänderte Nutzungsbedingungen "
    "nicht angenommen)",
    LockCause.REPLACED: "§ 7 Abs. 3 der Nutzungsbedingungen (ersetzt)",
    LockCause.TAKEOVER: "§ 2 Abs. 3 der Nutzungsbedingungen (Praxisübernahme)",
    LockCause.THROTTLE: "zu viele fehlgeschlagene Anmeldungen",
}


@dataclass(frozen=True)
class EffectiveStatus:
    state: State
    reason: str | None = None  # German, for staff; never sent to a VPN client
    cause: LockCause | None = None
    lock_at: datetime | None = None  # automatic lock instant (past or future), if any
    # German, for the user, shown only once password and key were right: what to do
    # (accept the new terms); None for every other refusal, which stays generic.
    message: str | None = None
    # Locked: since when the access has ended (a date passed, or when staff locked it).
    since: datetime | None = None

    @property
    def may_log_in(self) -> bool:
        return self.state is State.ACTIVE

    @property
    def withdrawn(self) -> bool:
        """Locked by a cause that withdraws the access: nothing new is issued to it."""
        return self.state is State.LOCKED and self.cause in WITHDRAWING_CAUSES


def _berlin_date(instant: datetime) -> str:
    return instant.astimezone(BERLIN).strftime("%d.%m.%Y")


def _extended(instant: datetime, exception: LockException | None) -> datetime:
    if exception is None:
        return instant
    return max(instant, exception_end_instant(exception.until))


@dataclass(frozen=True)
class _DateLock:
    """A lock by the dates (§ 10.3): when, after which end of activity, and whether it is
    the members' (§ 1.2) rather than the practice's own."""

    at: datetime
    ended_on: date
    by_members: bool = False


def _members(practice: Practice) -> list[User]:
    """The members the practice's access derives from (§ 1.2): not ended for good, not
    the previous owner's (§ 2.3)."""
    return [
        user
        for user in practice.users
        if user.kind is UserKind.MEMBER
        and user.status is not UserStatus.REVOKED
        and user.lock_cause is not LockCause.TAKEOVER
    ]


def _members_gone(practice: Practice, quarters: int) -> _DateLock | None:
    """§ 1.2 with § 10.3: practice staff and the practice access derive their right from
    the members, so it ends when the last member's access ends by the dates, each
    member's exception included. None while a member has no end, or there is none (a
    third party: the practice's own date applies)."""
    if practice.kind is not PracticeKind.MEMBER:
        return None
    members = _members(practice)
    if not members or any(member.activity_ended_on is None for member in members):
        return None
    last = max(
        (
            _extended(
                automatic_lock_instant(member.activity_ended_on, quarters), member.lock_exception
            ),
            member.activity_ended_on,
        )
        for member in members
        if member.activity_ended_on is not None
    )
    return _DateLock(last[0], last[1], by_members=True)


def _automatic_practice_lock(
    practice: Practice, quarters: int, members: bool = True
) -> _DateLock | None:
    """§ 10.3 for the practice: its own end (the practice as a whole) or its members'
    (§ 1.2), whichever comes first, the practice's exception included.

    ``members=False`` leaves the members' rule out, for a member's own status: the last
    member's end never comes before that member's own, so it changes nothing there, and
    a member's login then reads no other account."""
    dated = [_members_gone(practice, quarters) if members else None]
    if practice.activity_ended_on is not None:
        own = automatic_lock_instant(practice.activity_ended_on, quarters)
        dated.append(_DateLock(own, practice.activity_ended_on))
    first = min(
        (lock for lock in dated if lock is not None), key=lambda lock: lock.at, default=None
    )
    if first is None:
        return None
    return replace(first, at=_extended(first.at, practice.lock_exception))


def _termination_lock(practice: Practice) -> datetime | None:
    """§ 10.2: the day after the last day with access (an exception does not extend it);
    an extraordinary termination has no last day: it ends the access from its notice on,
    so that only its withdrawal, never an unlock, gives the access back."""
    if practice.terminated_by is TerminationBy.EXTRAORDINARY and practice.termination_notice_on:
        return start_of_day(practice.termination_notice_on)
    if practice.access_ends_on is None:
        return None
    return termination_lock_instant(practice.access_ends_on)


def practice_lock_instant(
    practice: Practice, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS, *, members: bool = True
) -> datetime | None:
    """When the practice's access ends by its dates: § 10.3 (its own end or its members',
    with its exception) or § 10.2."""
    automatic = _automatic_practice_lock(practice, quarters, members)
    dated = [automatic.at if automatic else None, _termination_lock(practice)]
    return min((instant for instant in dated if instant is not None), default=None)


def user_lock_instant(user: User, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS) -> datetime | None:
    """The earlier of the practice's end and a member's own end, then the user's exception.

    Practice staff and the practice access follow the practice, which follows its members
    (§ 1.2); a member's own end date locks that member (§ 10.3).
    """
    members = user.kind is not UserKind.MEMBER
    candidates = [practice_lock_instant(user.practice, quarters, members=members)]
    if user.kind is UserKind.MEMBER and user.activity_ended_on is not None:
        candidates.append(automatic_lock_instant(user.activity_ended_on, quarters))
    dated = [c for c in candidates if c is not None]
    if not dated:
        return None
    return _extended(min(dated), user.lock_exception)


def _automatic_lock_reason(
    ended_on: date | None, lock_at: datetime, *, by_members: bool = False
) -> str:
    if by_members:
        return (
            f"automatisch gesperrt ab {_berlin_date(lock_at)}, § 10.3 mit § 1.2: kein Mitglied "
            f"der Praxis mehr tätig (zuletzt Ende der Tätigkeit am {ended_on:%d.%m.%Y})"
        )
    ended = f" (Ende der Tätigkeit am {ended_on:%d.%m.%Y})" if ended_on else ""
    return f"automatisch gesperrt ab {_berlin_date(lock_at)}, § 10.3{ended}"


def _practice_date_reason(
    practice: Practice, lock_at: datetime, quarters: int, members: bool = True
) -> str:
    automatic = _automatic_practice_lock(practice, quarters, members)
    if automatic is None:
        return _automatic_lock_reason(practice.activity_ended_on, lock_at)
    return _automatic_lock_reason(automatic.ended_on, lock_at, by_members=automatic.by_members)


def termination_reason(practice: Practice) -> str:
    """The reason a termination gives, as shown to staff and printed on the lock letter."""
    by = {
        TerminationBy.MEMBER: "Kündigung durch die Praxis",
        TerminationBy.ASSOCIATION: "Kündigung durch die KV Sachsen-Anhalt",
        TerminationBy.EXTRAORDINARY: "außerordentliche Kündigung",
    }[practice.terminated_by or TerminationBy.MEMBER]
    ends = f" zum {practice.access_ends_on:%d.%m.%Y}" if practice.access_ends_on else ""
    why = f": {practice.termination_reason}" if practice.termination_reason else ""
    return f"{by}{ends} (§ 10.2){why}"


def practice_status(
    practice: Practice,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
    *,
    members: bool = True,
) -> EffectiveStatus:
    """``members=False``: without the members' rule (§ 1.2), see _automatic_practice_lock."""
    lock_at = practice_lock_instant(practice, quarters, members=members)
    if practice.status is PracticeStatus.LOCKED:
        cause = practice.lock_cause
        message = terms_message(practice) if cause is LockCause.OBJECTION else None
        return EffectiveStatus(
            State.LOCKED, practice.lock_reason, cause, lock_at, message, practice.locked_at
        )
    dated = _dated_practice_lock(practice, now, lock_at, quarters, members)
    if dated is not None:
        return dated
    if practice.status is PracticeStatus.PENDING:
        reason = "Nutzungsbedingungen nicht angenommen (§ 1.3)"
        return EffectiveStatus(State.PENDING, reason, None, lock_at)
    overdue = (
        start_of_day(practice.terms_due_by + timedelta(days=1)) if practice.terms_due_by else None
    )
    if overdue is not None and now >= overdue:
        return EffectiveStatus(
            State.LOCKED, terms_overdue_reason(practice), LockCause.OBJECTION, lock_at,
            terms_message(practice), overdue,
        )  # fmt: skip
    return EffectiveStatus(State.ACTIVE, None, None, lock_at)


def terms_overdue_reason(practice: Practice) -> str:
    """Why a practice is refused: the new terms not accepted in time (MD § 2(4), § 14.2)."""
    by = f" bis {practice.terms_due_by:%d.%m.%Y}" if practice.terms_due_by else ""
    return (
        f"Neue Nutzungsbedingungen (Version {practice.terms_due_version}) nicht{by} "
        "angenommen (MD § 2 Abs. 4, § 14.2)"
    )


def terms_message(practice: Practice) -> str | None:
    """What the user reads at login while the new terms wait for acceptance."""
    if practice.terms_due_version is None:
        return None
    return (
        f"Bitte nehmen Sie die neuen Nutzungsbedingungen (Version {practice.terms_due_version}) "
        "an: in KVSAonline oder beim IT-Service der KV Sachsen-Anhalt, Tel. 0391 627 7000."
    )


def practice_lock_after_unlock(
    practice: Practice, now: datetime, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS
) -> EffectiveStatus | None:
    """What still locks the practice at ``now`` once its stored lock is lifted: a
    termination in effect (§ 10.2) or the § 10.3 date; None if nothing does."""
    return _dated_practice_lock(practice, now, practice_lock_instant(practice, quarters), quarters)


def _dated_practice_lock(
    practice: Practice,
    now: datetime,
    lock_at: datetime | None,
    quarters: int,
    members: bool = True,
) -> EffectiveStatus | None:
    terminated_at = _termination_lock(practice)
    if terminated_at is not None and now >= terminated_at:
        reason = termination_reason(practice)
        since = min(terminated_at, lock_at) if lock_at else terminated_at
        return EffectiveStatus(State.LOCKED, reason, LockCause.TERMINATION, lock_at, since=since)
    if lock_at is not None and now >= lock_at:
        reason = _practice_date_reason(practice, lock_at, quarters, members)
        return EffectiveStatus(State.LOCKED, reason, LockCause.LIFECYCLE, lock_at, since=lock_at)
    return None


def user_status(
    user: User, now: datetime, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS
) -> EffectiveStatus:
    lock_at = user_lock_instant(user, quarters)
    if user.status is UserStatus.REVOKED:
        return EffectiveStatus(State.REVOKED, "Zugang beendet", None, lock_at)
    if user.status is UserStatus.LOCKED:
        return EffectiveStatus(State.LOCKED, user.lock_reason, user.lock_cause, lock_at)
    practice = _practice_for(user, now, quarters)
    beyond = _lock_beyond_own(user, practice, now, lock_at, quarters)
    if beyond is not None:
        return beyond
    if practice.state is State.PENDING:
        return EffectiveStatus(State.PENDING, practice.reason, None, lock_at)
    if user.status is UserStatus.PENDING and user.password_hash is None:
        # With a password (letter printed) the first login is what activates the user.
        reason = "wartet auf Zugangsdaten-Brief"
        return EffectiveStatus(State.PENDING, reason, None, lock_at)
    return EffectiveStatus(State.ACTIVE, None, None, lock_at)


def user_lock_after_unlock(
    user: User, now: datetime, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS
) -> EffectiveStatus | None:
    """What still locks the user at ``now`` once the user's own stored lock is lifted:
    the practice (its lock or its dates) or a member's own § 10.3 date; None if nothing."""
    practice = _practice_for(user, now, quarters)
    return _lock_beyond_own(user, practice, now, user_lock_instant(user, quarters), quarters)


def _practice_for(user: User, now: datetime, quarters: int) -> EffectiveStatus:
    """The practice's status as it bears on ``user``: for a member without the members'
    rule, which never locks a member before the member's own end."""
    return practice_status(user.practice, now, quarters, members=user.kind is not UserKind.MEMBER)


def _lock_beyond_own(
    user: User, practice: EffectiveStatus, now: datetime, lock_at: datetime | None, quarters: int
) -> EffectiveStatus | None:
    if practice.state is State.LOCKED and practice.cause is not LockCause.LIFECYCLE:
        reason = f"Betriebsstätte gesperrt: {practice.reason}"
        return EffectiveStatus(State.LOCKED, reason, practice.cause, lock_at, practice.message)
    if lock_at is not None and now >= lock_at:
        own = user.activity_ended_on if user.kind is UserKind.MEMBER else None
        if (
            own is not None
            and _extended(automatic_lock_instant(own, quarters), user.lock_exception) == lock_at
        ):
            reason = _automatic_lock_reason(own, lock_at)
        else:
            members = user.kind is not UserKind.MEMBER
            reason = _practice_date_reason(user.practice, lock_at, quarters, members)
        return EffectiveStatus(State.LOCKED, reason, LockCause.LIFECYCLE, lock_at)
    return None
