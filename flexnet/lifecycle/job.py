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
from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session, selectinload

from flexnet import audit
from flexnet.accounts import users
from flexnet.audit import Actor, AuditTag
from flexnet.config import Settings, TermsOverdue
from flexnet.db import rows_for_update, update_by_id
from flexnet.errors import ConflictError
from flexnet.lifecycle import locks, retention, returns
from flexnet.lifecycle.rules import BERLIN, quarter_start
from flexnet.lifecycle.status import EffectiveStatus, State, practice_status, user_status
from flexnet.models import (
    Letter,
    LetterKind,
    LetterStatus,
    Lock,
    LockCause,
    LockException,
    Practice,
    PracticeStatus,
    Token,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.provisioning import mailruns

WARNING_PERIOD = timedelta(weeks=8)
NOTICE = LetterKind.LOCK_NOTICE
_PG_JOB_LOCK_KEY = 0x666C_6578_6C69_6665  # "flexlife"


class Progress(Protocol):
    """What an interactive caller shows while the job works through the practices."""

    def start(self, total: int) -> None: ...

    def advance(self, done: int) -> None: ...


@dataclass(frozen=True)
class JobSettings:
    quarters: int = 4  # § 10.3: access ends four quarters after the end's quarter
    connection_days: int = 31  # connection data with full IP addresses, KVS
    audit_years: int = 10  # the audit trail
    return_reminder_days: int = 28  # a locked key not back by then gets a reminder
    request_days: int = 365  # service requests after they were closed
    record_years: int = 10  # practices, users, letters after their end (§ 304 SGB V)
    # New terms not accepted in time: refused at login only, or also locked (§ 14.2).
    terms_overdue: TermsOverdue = TermsOverdue.REFUSE

    @classmethod
    def from_settings(cls, settings: Settings) -> JobSettings:
        return cls(
            quarters=settings.lock_after_quarters,
            connection_days=settings.connection_log_days,
            audit_years=settings.audit_retention_years,
            return_reminder_days=settings.return_reminder_days,
            request_days=settings.request_retention_days,
            record_years=settings.record_retention_years,
            terms_overdue=settings.terms_overdue,
        )

    @property
    def periods(self) -> retention.Periods:
        return retention.Periods(
            self.connection_days, self.request_days, self.record_years, self.audit_years
        )


@dataclass
class JobReport:
    today: date
    dry_run: bool
    locked: list[str] = field(default_factory=list)  # "BSNR name: reason" or "user: reason"
    upcoming: list[str] = field(default_factory=list)  # locking within eight weeks
    upcoming_at: list[datetime] = field(default_factory=list)  # their lock instants
    exceptions_ending: list[str] = field(default_factory=list)
    notices: int = 0  # notice letters queued (eight weeks ahead)
    reminders: list[str] = field(default_factory=list)  # keys not returned, reminded now
    purged: dict[str, int] = field(default_factory=dict)


@dataclass
class _Plan:
    """What the dates decide today: who locks now, who gets the eight-week notice."""

    practices: dict[Practice, Lock] = field(default_factory=dict)
    members: dict[int, Lock] = field(default_factory=dict)
    notices: list[mailruns.NewLetter] = field(default_factory=list)
    lines: dict[str, str] = field(default_factory=dict)  # BSNR or username → report line


def run(
    session: Session,
    *,
    now: datetime,
    settings: JobSettings,
    actor: Actor,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> JobReport:
    """One run of the job at ``now`` in the caller's transaction (rolled back for a dry run).

    The decisions are taken per practice by the same pure functions the authentication
    pipeline uses; the writes are set-based (a statement per kind of change, not per row).
    """
    _claim(session)
    report = JobReport(today=now.astimezone(BERLIN).date(), dry_run=dry_run)
    plan = _make_plan(session, report, now, settings.quarters, progress, settings.terms_overdue)
    report.exceptions_ending = _exceptions_ending(session, report.today)
    if dry_run:
        report.locked = list(plan.lines.values())
    else:
        # Reported is what was locked now: staff may have locked some meanwhile.
        locked = locks.lock_practices(
            session, plan.practices, tag=AuditTag.PRACTICE_LOCK_AUTO, actor=actor, now=now
        )
        locked += users.lock_users(session, plan.members, actor=actor, now=now).usernames
        report.locked = [plan.lines[name] for name in locked if name in plan.lines]
        report.notices = _queue_notices(session, plan.notices, actor, now)
    report.reminders = _remind_returns(session, now, settings, actor, dry_run)
    report.purged = _purge(session, now, settings, dry_run)
    if not dry_run:
        audit.record(
            session,
            AuditTag.LIFECYCLE_RUN,
            actor=actor,
            data={
                "locked": len(report.locked),
                "upcoming": len(report.upcoming),
                "notices": report.notices,
                "reminders": len(report.reminders),
            },
            now=now,
        )
    return report


def _make_plan(
    session: Session,
    report: JobReport,
    now: datetime,
    quarters: int,
    progress: Progress | None = None,
    terms_overdue: TermsOverdue = TermsOverdue.REFUSE,
) -> _Plan:
    """What the dates decide at ``now``; what locks within eight weeks goes to the report.
    New terms not accepted in time refuse the login by themselves (``status``); they
    make a lock only with ``terms_overdue`` = lock."""
    plan = _Plan()
    practices = _practice_candidates(session, now + WARNING_PERIOD, quarters)
    if progress:
        progress.start(len(practices))
    for practice in practices:
        status = practice_status(practice, now, quarters)
        if status.cause is LockCause.OBJECTION and terms_overdue is TermsOverdue.REFUSE:
            # Refused at login, not locked: the dates still plan as for any practice.
            status = EffectiveStatus(State.ACTIVE, lock_at=status.lock_at)
        _plan_practice(plan, report, practice, status, now, quarters)
        if progress:
            progress.advance(1)
    locking = {practice.id for practice in plan.practices}
    # A member whose end also ends the practice (the last one, § 1.2) is named in the
    # practice's notice: one letter, not two for the same day.
    noticed = {(notice.practice.id, notice.effective_on) for notice in plan.notices}
    for user in _member_candidates(session, now + WARNING_PERIOD, quarters):
        if user.practice_id not in locking:
            _plan_member(plan, report, user, now, quarters, noticed)
    return plan


def upcoming_locks(session: Session, *, now: datetime, quarters: int) -> list[str]:
    """Practices and members whose dates lock them within eight weeks (for the
    dashboard): the job's own planning, without any write."""
    return upcoming_report(session, now=now, quarters=quarters).upcoming


def upcoming_report(session: Session, *, now: datetime, quarters: int) -> JobReport:
    """The job's planning without any write: ``upcoming`` and ``upcoming_at``."""
    report = JobReport(today=now.astimezone(BERLIN).date(), dry_run=True)
    _make_plan(session, report, now, quarters)
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
    now_day = (until - WARNING_PERIOD).astimezone(BERLIN).date()
    cutoff = date_lock_cutoff(until, quarters)
    # § 1.2: a practice whose members have all ended locks with the last of them, so a
    # practice with a member ended by then is a candidate (the members decide per row).
    member_ended = (
        select(User.id)
        .where(
            User.practice_id == Practice.id,
            User.kind == UserKind.MEMBER,
            User.activity_ended_on < cutoff,
        )
        .exists()
    )
    return list(
        session.scalars(
            select(Practice)
            .where(Practice.status != PracticeStatus.LOCKED)
            .where(
                or_(
                    Practice.activity_ended_on < cutoff,
                    Practice.access_ends_on < last_day,
                    member_ended,
                    Practice.terms_due_by < now_day,  # new terms not accepted in time
                )
            )
            .options(
                selectinload(Practice.tokens),
                selectinload(Practice.lock_exception),
                selectinload(Practice.users).selectinload(User.lock_exception),
            )
            .order_by(Practice.bsnr)
        )
    )


def _plan_practice(
    plan: _Plan,
    report: JobReport,
    practice: Practice,
    status: EffectiveStatus,
    now: datetime,
    quarters: int,
) -> None:
    label = f"BSNR {practice.bsnr} {practice.name}"
    if status.state is State.LOCKED:
        reason = status.reason or ""
        plan.lines[practice.bsnr] = f"{label}: {reason}"
        plan.practices[practice] = Lock(
            status.cause or LockCause.LIFECYCLE, reason, since=status.since
        )
    elif _within_warning(status.lock_at, now):
        assert status.lock_at is not None  # noqa: S101
        report.upcoming.append(f"{label}: gesperrt ab {status.lock_at:%d.%m.%Y}")
        report.upcoming_at.append(status.lock_at)
        then = practice_status(practice, status.lock_at, quarters)
        keys = [token for token in practice.tokens if token.status in USABLE_STATUSES]
        day = status.lock_at.astimezone(BERLIN).date()
        key = keys[0] if keys else None
        plan.notices.append(
            mailruns.NewLetter(
                NOTICE, practice, None, key, note=then.reason, effective_on=day, cause=then.cause
            )
        )


def _within_warning(lock_at: datetime | None, now: datetime) -> bool:
    return lock_at is not None and lock_at <= now + WARNING_PERIOD


def _member_candidates(session: Session, until: datetime, quarters: int) -> list[User]:
    """Members with an own end date whose account locks by ``until``."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.kind == UserKind.MEMBER,
                User.status.in_(users.LOCKABLE),
                User.activity_ended_on < date_lock_cutoff(until, quarters),
            )
            .options(selectinload(User.lock_exception), selectinload(User.practice))
            .order_by(User.username)
        )
    )


def _plan_member(
    plan: _Plan,
    report: JobReport,
    user: User,
    now: datetime,
    quarters: int,
    noticed: set[tuple[int, date | None]],
) -> None:
    status = user_status(user, now, quarters)
    if status.state is State.LOCKED and status.cause is LockCause.LIFECYCLE:
        plan.lines[user.username] = f"{user.username}: {status.reason}"
        plan.members[user.id] = Lock(status.cause, status.reason or "")
    elif _within_warning(status.lock_at, now):
        assert status.lock_at is not None  # noqa: S101
        report.upcoming.append(f"{user.username}: gesperrt ab {status.lock_at:%d.%m.%Y}")
        report.upcoming_at.append(status.lock_at)
        then = user_status(user, status.lock_at, quarters)
        day = status.lock_at.astimezone(BERLIN).date()
        if (user.practice_id, day) not in noticed:
            plan.notices.append(
                mailruns.NewLetter(
                    NOTICE,
                    user.practice,
                    user,
                    note=then.reason,
                    effective_on=day,
                    cause=then.cause,
                )
            )


def _queue_notices(
    session: Session, notices: list[mailruns.NewLetter], actor: Actor, now: datetime
) -> int:
    """The eight-week notice, once per practice (or member) and lock date; a notice still
    waiting for its run whose lock is no longer planned (an exception, a corrected date,
    a lock meanwhile) is cancelled."""
    waiting = list(
        session.execute(
            select(
                Letter.id, Letter.status, Letter.practice_id, Letter.user_id, Letter.effective_on
            ).where(
                Letter.kind == LetterKind.LOCK_NOTICE,
                Letter.status != LetterStatus.CANCELLED,
                Letter.effective_on >= now.astimezone(BERLIN).date(),
            )
        )
    )
    planned = {_notice_key(notice) for notice in notices}
    stale = [
        row.id
        for row in waiting
        if row.status is LetterStatus.DUE and tuple(row[2:]) not in planned
    ]
    update_by_id(session, Letter, {id_: {"status": LetterStatus.CANCELLED} for id_ in stale})
    known = {tuple(row[2:]) for row in waiting if row.id not in stale}
    new = [notice for notice in notices if _notice_key(notice) not in known]
    mailruns.queue_many(session, new, actor=actor, now=now)
    return len(new)


def _notice_key(notice: mailruns.NewLetter) -> tuple[int, int | None, date | None]:
    return notice.practice.id, notice.user.id if notice.user else None, notice.effective_on


def _remind_returns(
    session: Session, now: datetime, settings: JobSettings, actor: Actor, dry_run: bool
) -> list[str]:
    """Locked keys still out after the reminder period: one reminder letter each."""
    overdue = list(
        session.scalars(
            returns.overdue_query(now - timedelta(days=settings.return_reminder_days))
            .where(Token.return_reminded_on.is_(None))
            .options(selectinload(Token.practice))
        )
    )
    if not dry_run:
        # Claimed again under row locks: a receipt recorded meanwhile needs no reminder.
        claimed = {
            id_
            for id_, _ in rows_for_update(
                session,
                Token,
                Token.serial,
                [token.id for token in overdue],
                Token.status == TokenStatus.LOCKED,
                Token.returned_on.is_(None),
                Token.return_reminded_on.is_(None),
            )
        }
        overdue = [token for token in overdue if token.id in claimed]
        mailruns.queue_many(
            session,
            [
                mailruns.NewLetter(
                    LetterKind.RETURN_REMINDER,
                    token.practice,
                    token=token,
                    effective_on=token.locked_at.astimezone(BERLIN).date(),
                )
                for token in overdue
                if token.practice is not None and token.locked_at is not None
            ],
            actor=actor,
            now=now,
        )
        day = now.astimezone(BERLIN).date()
        update_by_id(session, Token, {token.id: {"return_reminded_on": day} for token in overdue})
    return [
        f"Yubikey {token.serial}, BSNR {token.practice.bsnr if token.practice else '?'}"
        for token in overdue
    ]


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


def _purge(session: Session, now: datetime, settings: JobSettings, dry_run: bool) -> dict[str, int]:
    """Personal data whose period is up (``retention``); the audit trail after its own."""
    return retention.purge(session, now=now, periods=settings.periods, dry_run=dry_run)
