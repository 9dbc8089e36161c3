"""Effective status of a practice or user at a given instant.

The stored status says what staff or a job decided; the dates say what the terms
decide by themselves (§ 10.3). Both are combined here, at request time, so that an
automatic lock takes effect on the minute even if no nightly job has run.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from flexnet.lifecycle.rules import (
    BERLIN,
    DEFAULT_LOCK_AFTER_QUARTERS,
    automatic_lock_instant,
    exception_end_instant,
    termination_lock_instant,
)
from flexnet.models import (
    LockCause,
    LockException,
    Practice,
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
    {LockCause.MANUAL, LockCause.TERMINATION, LockCause.LIFECYCLE, LockCause.OBJECTION}
)


@dataclass(frozen=True)
class EffectiveStatus:
    state: State
    reason: str | None = None  # German, for staff; never sent to a VPN client
    cause: LockCause | None = None
    lock_at: datetime | None = None  # automatic lock instant (past or future), if any

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


def _automatic_practice_lock(practice: Practice, quarters: int) -> datetime | None:
    """§ 10.3 for the practice, its exception included."""
    if practice.activity_ended_on is None:
        return None
    rule = automatic_lock_instant(practice.activity_ended_on, quarters)
    return _extended(rule, practice.lock_exception)


def _termination_lock(practice: Practice) -> datetime | None:
    """§ 10.2: the day after the last day with access (an exception does not extend it)."""
    if practice.access_ends_on is None:
        return None
    return termination_lock_instant(practice.access_ends_on)


def practice_lock_instant(
    practice: Practice, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS
) -> datetime | None:
    """When the practice's access ends by its dates: § 10.3 (with exception) or § 10.2."""
    dated = [_automatic_practice_lock(practice, quarters), _termination_lock(practice)]
    return min((instant for instant in dated if instant is not None), default=None)


def user_lock_instant(user: User, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS) -> datetime | None:
    """The earlier of the practice's end and a member's own end, then the user's exception.

    Practice staff and the practice access follow the practice; a member's own end
    date locks that member only (§ 10.3).
    """
    candidates = [practice_lock_instant(user.practice, quarters)]
    if user.kind is UserKind.MEMBER and user.activity_ended_on is not None:
        candidates.append(automatic_lock_instant(user.activity_ended_on, quarters))
    dated = [c for c in candidates if c is not None]
    if not dated:
        return None
    return _extended(min(dated), user.lock_exception)


def _automatic_lock_reason(ended_on: date | None, lock_at: datetime) -> str:
    ended = f" (Ende der Tätigkeit am {ended_on:%d.%m.%Y})" if ended_on else ""
    return f"automatisch gesperrt ab {_berlin_date(lock_at)}, § 10.3{ended}"


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
    practice: Practice, now: datetime, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS
) -> EffectiveStatus:
    lock_at = practice_lock_instant(practice, quarters)
    if practice.status is PracticeStatus.LOCKED:
        return EffectiveStatus(State.LOCKED, practice.lock_reason, practice.lock_cause, lock_at)
    dated = _dated_practice_lock(practice, now, lock_at)
    if dated is not None:
        return dated
    if practice.status is PracticeStatus.PENDING:
        reason = "Nutzungsbedingungen nicht angenommen (§ 1.3)"
        return EffectiveStatus(State.PENDING, reason, None, lock_at)
    return EffectiveStatus(State.ACTIVE, None, None, lock_at)


def practice_lock_after_unlock(
    practice: Practice, now: datetime, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS
) -> EffectiveStatus | None:
    """What still locks the practice at ``now`` once its stored lock is lifted: a
    termination in effect (§ 10.2) or the § 10.3 date; None if nothing does."""
    return _dated_practice_lock(practice, now, practice_lock_instant(practice, quarters))


def _dated_practice_lock(
    practice: Practice, now: datetime, lock_at: datetime | None
) -> EffectiveStatus | None:
    terminated_at = _termination_lock(practice)
    if terminated_at is not None and now >= terminated_at:
        reason = termination_reason(practice)
        return EffectiveStatus(State.LOCKED, reason, LockCause.TERMINATION, lock_at)
    if lock_at is not None and now >= lock_at:
        reason = _automatic_lock_reason(practice.activity_ended_on, lock_at)
        return EffectiveStatus(State.LOCKED, reason, LockCause.LIFECYCLE, lock_at)
    return None


def user_status(
    user: User, now: datetime, quarters: int = DEFAULT_LOCK_AFTER_QUARTERS
) -> EffectiveStatus:
    lock_at = user_lock_instant(user, quarters)
    if user.status is UserStatus.REVOKED:
        return EffectiveStatus(State.REVOKED, "Zugang beendet", None, lock_at)
    if user.status is UserStatus.LOCKED:
        return EffectiveStatus(State.LOCKED, user.lock_reason, user.lock_cause, lock_at)
    practice = practice_status(user.practice, now, quarters)
    beyond = _lock_beyond_own(user, practice, now, lock_at)
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
    practice = practice_status(user.practice, now, quarters)
    return _lock_beyond_own(user, practice, now, user_lock_instant(user, quarters))


def _lock_beyond_own(
    user: User, practice: EffectiveStatus, now: datetime, lock_at: datetime | None
) -> EffectiveStatus | None:
    if practice.state is State.LOCKED and practice.cause is not LockCause.LIFECYCLE:
        reason = f"Betriebsstätte gesperrt: {practice.reason}"
        return EffectiveStatus(State.LOCKED, reason, practice.cause, lock_at)
    if lock_at is not None and now >= lock_at:
        ended_on = user.activity_ended_on or user.practice.activity_ended_on
        reason = _automatic_lock_reason(ended_on, lock_at)
        return EffectiveStatus(State.LOCKED, reason, LockCause.LIFECYCLE, lock_at)
    return None
