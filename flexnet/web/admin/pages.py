"""Admin pages: the dashboard and the search."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import abort, g, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from flexnet import labels
from flexnet.accounts import search as finder
from flexnet.accounts import servicerequests, users, vpn
from flexnet.accounts.practices import get_practice
from flexnet.authn import loginlog
from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.lifecycle import job, returns
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import practice_status, termination_reason, user_status
from flexnet.models import (
    AuditEntry,
    AuthEvent,
    Letter,
    LossFee,
    Practice,
    RequestStatus,
    ServiceRequest,
    Token,
    TokenStatus,
    User,
)
from flexnet.provisioning import mailruns
from flexnet.staff import accounts as staff_accounts
from flexnet.web import state
from flexnet.web.admin import ALL_ROLES, ROLE_LABELS, allowed, blueprint, charts
from flexnet.web.admin.keypages import LOW_STOCK
from flexnet.web.admin.requestpages import STATUS_LABELS

SPIKE_MINIMUM = 20
SPIKE_FACTOR = 3


def _rejects(db: Session, since: datetime, until: datetime) -> int:
    query = select(func.count()).where(
        AuthEvent.at >= since, AuthEvent.at < until, AuthEvent.outcome == "reject"
    )
    return db.scalar(query) or 0


def _counts(db: Session, column: object) -> dict[object, int]:
    return dict(db.execute(select(column, func.count()).group_by(column)).all())  # type: ignore[call-overload]


@blueprint.get("/")
@allowed(ALL_ROLES)
def dashboard() -> ResponseReturnValue:
    now = utcnow()
    settings = state().settings
    with state().database.reader() as db:
        practices = _counts(db, Practice.status)
        users = _counts(db, User.status)
        letters = mailruns.due_letters(
            db,
            today=now.astimezone(BERLIN).date(),
            delay_days=settings.letters.credentials_delay_days,
            quarters=settings.lock_after_quarters,
        )
        figures = {
            "letters_due": len(letters.due),
            "letters_waiting": len(letters.waiting),
            "open_requests": db.scalar(
                select(func.count()).where(
                    ServiceRequest.status.in_((RequestStatus.OPEN, RequestStatus.VERIFIED))
                )
            ),
            "overdue_keys": len(
                returns.overdue(
                    db, locked_before=now - timedelta(days=settings.return_reminder_days)
                )
            ),
            "counter_warnings": db.scalar(
                select(func.count()).where(Token.counter_warned_at.is_not(None))
            ),
            "flagged_sessions": vpn.flagged_live_count(db),
            "unpaid_fees": db.scalar(
                select(func.count()).where(LossFee.paid_on.is_(None), LossFee.waived_on.is_(None))
            ),
        }
        day = _rejects(db, now - timedelta(hours=24), now)
        hour = _rejects(db, now - timedelta(hours=1), now)
        figures |= {"failed_logins": day, "failed_last_hour": hour}
        # A spike: the last hour well above the day's hourly average (and not a handful).
        spike = hour >= max(SPIKE_MINIMUM, SPIKE_FACTOR * (day - hour) / 23)
        admins = staff_accounts.active_admin_count(db)
        upcoming = job.upcoming_report(db, now=now, quarters=settings.lock_after_quarters)
        hours = loginlog.per_hour(db, now=now)
        keys = _counts(db, Token.status)
    key_counts = [(s.value, labels.token_status_label(s), keys.get(s, 0)) for s in TokenStatus]
    return render_template(
        "admin/dashboard.html",
        practices=[
            (key.value, label, practices.get(key, 0))
            for key, label in labels.PRACTICE_STATUS_LABEL.items()
        ],
        users=[
            (key.value, label, users.get(key, 0)) for key, label in labels.USER_STATUS_LABEL.items()
        ],
        login_chart=charts.logins(hours),
        stock_chart=charts.stock(key_counts, low=LOW_STOCK),
        in_stock=keys.get(TokenStatus.STOCK, 0),
        low_stock=LOW_STOCK,
        lock_chart=charts.weekly(upcoming.upcoming_at, now=now),
        figures=figures,
        admins=admins,
        upcoming=upcoming.upcoming,
        spike=spike,
        staff=g.staff,
        role_label=ROLE_LABELS[g.staff.role],
    )


@blueprint.get("/search")
@allowed(ALL_ROLES)
def search() -> ResponseReturnValue:
    query = request.args.get("q", "")[:100].replace("\x00", "")
    with state().database.reader() as db:
        hits = finder.search(db, query)
    return render_template(
        "admin/search.html", query=query, hits=hits, limit=finder.LIMIT, staff=g.staff
    )


def _history(db: Session, subjects: list[tuple[str, str]]) -> list[AuditEntry]:
    """The newest audit entries about these subjects (kind, id)."""
    conditions = [
        (AuditEntry.subject_kind == kind) & (AuditEntry.subject_id == id_) for kind, id_ in subjects
    ]
    return list(
        db.scalars(
            select(AuditEntry).where(or_(*conditions)).order_by(AuditEntry.id.desc()).limit(100)
        )
    )


def _outlook(db: Session, letters: list[Letter], now: datetime) -> dict[int, str | None]:
    """Which of the letters on the list the next run carries, and why the others wait."""
    settings = state().settings
    return mailruns.outlook(
        db,
        letters,
        today=now.astimezone(BERLIN).date(),
        delay_days=settings.letters.credentials_delay_days,
        quarters=settings.lock_after_quarters,
    )


@blueprint.get("/practices/<bsnr>")
@allowed(ALL_ROLES)
def practice(bsnr: str) -> ResponseReturnValue:
    settings = state().settings
    now = utcnow()
    with state().database.reader() as db:
        try:
            record = get_practice(db, bsnr)
        except (NotFoundError, ValidationError):
            abort(404)
        status = practice_status(record, now, settings.lock_after_quarters)
        members = [
            (user, labels.STATE_LABEL[user_status(user, now, settings.lock_after_quarters).state])
            for user in record.users
        ]
        requests = list(
            db.scalars(
                select(ServiceRequest)
                .where(ServiceRequest.bsnr == record.bsnr)
                .order_by(ServiceRequest.id.desc())
                .limit(20)
            )
        )
        sessions = vpn.live_sessions(db, user_ids=[user.id for user in record.users])
        subjects = [("practice", record.bsnr)]
        subjects += [("user", user.username) for user in record.users]
        subjects += [("token", token.serial) for token in record.tokens]
        return render_template(
            "admin/practice.html",
            practice=record,
            status=status,
            status_text=labels.status_text(status),
            lock_date=labels.lock_date_text(status, settings.lock_after_quarters, record),
            termination=termination_reason(record) if record.terminated_by else None,
            exception=labels.exception_text(record.lock_exception),
            members=members,
            requests=requests,
            request_kinds=servicerequests.KIND_LABELS,
            request_statuses=STATUS_LABELS,
            sessions=[labels.session_text(s) for s in sessions],
            history=_history(db, subjects),
            outlook=_outlook(db, record.letters, now),
            labels=labels,
            staff=g.staff,
        )


@blueprint.get("/users/<username>")
@allowed(ALL_ROLES)
def user(username: str) -> ResponseReturnValue:
    settings = state().settings
    now = utcnow()
    with state().database.reader() as db:
        try:
            record = users.get_user(db, username)
        except NotFoundError:
            abort(404)
        status = user_status(record, now, settings.lock_after_quarters)
        return render_template(
            "admin/user.html",
            user=record,
            kind=users.kind_label(record.kind),
            status_text=labels.status_text(status),
            lock_date=labels.lock_date_text(status, settings.lock_after_quarters, record.practice),
            exception=labels.exception_text(record.lock_exception),
            sessions=[labels.session_text(s) for s in vpn.recent_sessions(record)],
            history=_history(db, [("user", record.username)]),
            outlook=_outlook(db, record.letters, now),
            labels=labels,
            staff=g.staff,
        )
