"""The nightly lifecycle job: durable date locks, lock letters, the staff report, retention.

The authentication pipeline already refuses a login the moment the dates say so
(``status``); this job makes those locks durable (stored status, disconnects, the
letter asking for the Yubikey back, § 10.2), tells staff what locks within eight
weeks, and deletes connection data after its retention period. It is idempotent (a
second run finds nothing to do) and two runs at once cannot both act: on PostgreSQL
the loser stops at an advisory lock, on SQLite the write lock serialises them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.orm import Session, selectinload

from flexnet import audit, ratelimit, users
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ConflictError
from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import BERLIN, quarter_start
from flexnet.lifecycle.status import State, practice_status, user_status
from flexnet.models import (
    AuthEvent,
    LockCause,
    LockException,
    Practice,
    PracticeStatus,
    User,
    UserKind,
    UserStatus,
    VpnSession,
)

WARNING_PERIOD = timedelta(weeks=8)
_PG_JOB_LOCK_KEY = 0x666C_6578_6C69_6665  # "flexlife"


class Progress(Protocol):
    """What an interactive caller shows while the job works through the practices."""

    def start(self, total: int) -> None: ...

    def advance(self, done: int) -> None: ...


@dataclass(frozen=True)
class Retention:
    connection_days: int = 31  # auth log and VPN accounting (full IP addresses)


@dataclass
class JobReport:
    today: date
    dry_run: bool
    locked: list[str] = field(default_factory=list)  # "BSNR name: reason" or "user: reason"
    upcoming: list[str] = field(default_factory=list)  # locking within eight weeks
    exceptions_ending: list[str] = field(default_factory=list)
    purged: dict[str, int] = field(default_factory=dict)


def run(
    session: Session,
    *,
    now: datetime,
    quarters: int,
    retention: Retention,
    actor: Actor,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> JobReport:
    """One run of the job at ``now`` in the caller's transaction (rolled back for a dry run)."""
    _claim(session)
    report = JobReport(today=now.astimezone(BERLIN).date(), dry_run=dry_run)
    practices = _practice_candidates(session, now + WARNING_PERIOD, quarters)
    if progress:
        progress.start(len(practices))
    for practice in practices:
        _practice_step(session, practice, now, quarters, actor, report, dry_run)
        if progress:
            progress.advance(1)
    for user in _member_candidates(session, now + WARNING_PERIOD, quarters):
        _member_step(session, user, now, quarters, actor, report, dry_run)
    report.exceptions_ending = _exceptions_ending(session, report.today)
    report.purged = _purge(session, now, retention, dry_run)
    if not dry_run:
        audit.record(
            session,
            AuditTag.LIFECYCLE_RUN,
            actor=actor,
            data={"locked": len(report.locked), "upcoming": len(report.upcoming)},
            now=now,
        )
    return report


def _claim(session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    claimed = session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _PG_JOB_LOCK_KEY}
    )
    if not claimed:
        raise ConflictError("Der Lebenszyklus-Lauf läuft bereits in einem anderen Prozess")


def date_lock_cutoff(until: datetime, quarters: int) -> date:
    """Activity ends before this day lock by § 10.3 no later than ``until`` (see rules).

    The lock instant is the quarter start ``quarters + 1`` quarters after the end's
    quarter; it is ≤ ``until`` exactly when the end lies before the quarter start that
    is ``quarters`` quarters before ``until``'s quarter.
    """
    return quarter_start(until.astimezone(BERLIN).date()) - relativedelta(months=3 * quarters)


def _practice_candidates(session: Session, until: datetime, quarters: int) -> list[Practice]:
    """Unlocked practices whose dates lock them by ``until`` (one query; exceptions are
    applied per practice afterwards)."""
    last_day = until.astimezone(BERLIN).date()
    return list(
        session.scalars(
            select(Practice)
            .where(Practice.status != PracticeStatus.LOCKED)
            .where(
                or_(
                    Practice.activity_ended_on < date_lock_cutoff(until, quarters),
                    Practice.access_ends_on < last_day,
                )
            )
            .options(
                selectinload(Practice.users),
                selectinload(Practice.tokens),
                selectinload(Practice.lock_exception),
                selectinload(Practice.terms_acceptances),
            )
            .order_by(Practice.bsnr)
        )
    )


def _practice_step(
    session: Session,
    practice: Practice,
    now: datetime,
    quarters: int,
    actor: Actor,
    report: JobReport,
    dry_run: bool,
) -> None:
    status = practice_status(practice, now, quarters)
    label = f"BSNR {practice.bsnr} {practice.name}"
    if status.state is not State.LOCKED:
        _note_upcoming(report, label, status.lock_at, now)
        return
    reason = status.reason or ""
    report.locked.append(f"{label}: {reason}")
    if dry_run:
        return
    cause = status.cause or LockCause.LIFECYCLE
    if locks.lock_practice_row(session, practice, cause, reason, now):
        audit.record(
            session,
            AuditTag.PRACTICE_LOCK_AUTO,
            actor=actor,
            subject=Subject("practice", practice.bsnr),
            data={"cause": cause.value, "reason": reason},
            now=now,
        )
        locks.lock_practice_members(session, practice, cause, reason, actor, now)


def _note_upcoming(report: JobReport, label: str, lock_at: datetime | None, now: datetime) -> None:
    if lock_at is not None and lock_at <= now + WARNING_PERIOD:
        report.upcoming.append(f"{label}: gesperrt ab {lock_at:%d.%m.%Y}")


def _member_candidates(session: Session, until: datetime, quarters: int) -> list[User]:
    """Members with an own end date whose account locks by ``until``."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.kind == UserKind.MEMBER,
                User.status.in_((UserStatus.ACTIVE, UserStatus.PENDING)),
                User.activity_ended_on < date_lock_cutoff(until, quarters),
            )
            .options(selectinload(User.lock_exception))
            .order_by(User.username)
        )
    )


def _member_step(
    session: Session,
    user: User,
    now: datetime,
    quarters: int,
    actor: Actor,
    report: JobReport,
    dry_run: bool,
) -> None:
    status = user_status(user, now, quarters)
    if status.state is not State.LOCKED:
        _note_upcoming(report, user.username, status.lock_at, now)
        return
    report.locked.append(f"{user.username}: {status.reason}")
    if not dry_run and status.cause is LockCause.LIFECYCLE:
        users.lock_user(
            session,
            user=user,
            cause=status.cause,
            reason=status.reason or "",
            actor=actor,
            now=now,
        )


def _exceptions_ending(session: Session, today: date) -> list[str]:
    rows = session.scalars(
        select(LockException)
        .where(LockException.until >= today, LockException.until <= today + WARNING_PERIOD)
        .order_by(LockException.until)
    )
    return [
        f"{_exception_subject(exception)}: Ausnahme bis {exception.until:%d.%m.%Y} "
        f"(Az. {exception.decision_ref})"
        for exception in rows
    ]


def _exception_subject(exception: LockException) -> str:
    if exception.practice is not None:
        return f"BSNR {exception.practice.bsnr}"
    return exception.user.username if exception.user else "?"


def _purge(session: Session, now: datetime, retention: Retention, dry_run: bool) -> dict[str, int]:
    """Connection data with full IP addresses goes after its retention period (KVS)."""
    cutoff = now - timedelta(days=retention.connection_days)
    expired = {
        "auth_events": (AuthEvent, AuthEvent.at < cutoff),
        "vpn_sessions": (VpnSession, VpnSession.stopped_at < cutoff),  # live ones stay
    }
    if dry_run:
        return {
            name: session.scalar(select(func.count()).select_from(model).where(condition)) or 0
            for name, (model, condition) in expired.items()
        }
    counts = {
        name: int(session.execute(delete(model).where(condition)).rowcount or 0)  # type: ignore[attr-defined]
        for name, (model, condition) in expired.items()
    }
    counts["rate_limit_counters"] = ratelimit.purge(session, older_than=timedelta(days=1), now=now)
    audit.record(
        session,
        AuditTag.RETENTION_PURGE,
        actor=Actor.system("lifecycle"),
        data={"older_than_days": retention.connection_days, **counts},
        now=now,
    )
    return counts
