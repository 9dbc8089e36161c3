"""The reports the management asks for, each at one instant it states: practices by
status and kind, keys out and not returned, locks in the next quarter (by the dates,
exceptions included), fees open, terms versions accepted.

Each report is a list of rows with typed values (``Column`` says how a value reads in
German CSV and in JSON). The status and the dates come from ``lifecycle.status``, the
same rules the login and the nightly job apply; nothing here computes a date itself.
In the CSV every row's first column, "Stand", states the instant the report describes
(so an imported sheet keeps it on every line); JSON carries it once as ``as_of``.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from flexnet import labels
from flexnet.accounts import users as user_rules
from flexnet.errors import ValidationError
from flexnet.lifecycle import terms
from flexnet.lifecycle.rules import BERLIN, quarter_start, start_of_day
from flexnet.lifecycle.status import State, practice_status, user_status
from flexnet.models import (
    LossFee,
    Practice,
    PracticeKind,
    PracticeStatus,
    Token,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.ops import germancsv
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.provisioning import fees


class Kind(enum.Enum):
    TEXT = "text"
    COUNT = "count"
    DAY = "day"
    CENTS = "cents"


@dataclass(frozen=True)
class Column:
    key: str  # the JSON name
    title: str  # the CSV header, German
    kind: Kind = Kind.TEXT


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    as_of: datetime
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]

    def as_csv(self) -> bytes:
        return germancsv.write(
            ("Stand", *(column.title for column in self.columns)),
            (
                (germancsv.instant(self.as_of), *(_csv(row[c.key], c.kind) for c in self.columns))
                for row in self.rows
            ),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "report": self.name,
            "title": self.title,
            "as_of": self.as_of.isoformat(),
            "rows": [{c.key: _json(row[c.key], c.kind) for c in self.columns} for row in self.rows],
        }


def _csv(value: Any, kind: Kind) -> object:
    if value is None:
        return ""
    if kind is Kind.DAY:
        return germancsv.day(value)
    if kind is Kind.CENTS:
        return germancsv.euro(value)
    return value


def _json(value: Any, kind: Kind) -> object:
    if value is not None and kind is Kind.DAY:
        return value.isoformat()
    return value


KIND_LABEL = {PracticeKind.MEMBER: "Mitglied", PracticeKind.THIRD_PARTY: "Dritte (§ 1.1)"}


def _practices(session: Session) -> list[Practice]:
    return list(
        session.scalars(
            select(Practice)
            .options(
                selectinload(Practice.lock_exception),
                selectinload(Practice.users).selectinload(User.lock_exception),
            )
            .order_by(Practice.bsnr)
        )
    )


def practices_report(session: Session, *, now: datetime, quarters: int) -> Report:
    """How many practices have each status (the effective one, § 10.3 dates included)
    per kind."""
    counts = Counter(
        (practice.kind, practice_status(practice, now, quarters).state)
        for practice in _practices(session)
    )
    rows = [
        {"kind": KIND_LABEL[kind], "status": labels.STATE_LABEL[state], "count": count}
        for (kind, state), count in sorted(
            counts.items(),
            key=lambda item: (list(PracticeKind).index(item[0][0]), list(State).index(item[0][1])),
        )
    ]
    columns = (
        Column("kind", "Art"),
        Column("status", "Status"),
        Column("count", "Betriebsstätten", Kind.COUNT),
    )
    return Report("practices", "Betriebsstätten nach Status und Art", now, columns, rows)


def keys_out_report(session: Session, *, now: datetime, quarters: int) -> Report:
    """Yubikeys handed out and not back: at the practices, or locked and expected back
    (§ 10.2)."""
    del quarters
    tokens = session.scalars(
        select(Token)
        .where(
            Token.practice_id.is_not(None),
            Token.status.in_((*USABLE_STATUSES, TokenStatus.LOCKED)),
            Token.returned_on.is_(None),
        )
        .options(selectinload(Token.practice))
        .order_by(Token.serial)
    )
    rows = [
        {
            "serial": token.serial,
            "bsnr": token.practice.bsnr if token.practice else None,
            "practice": token.practice.name if token.practice else None,
            "status": labels.TOKEN_STATUS_LABEL[token.status.value],
            "locked_on": token.locked_at.astimezone(BERLIN).date() if token.locked_at else None,
            "expected_back": "ja" if token.status is TokenStatus.LOCKED else "nein",
        }
        for token in tokens
    ]
    columns = (
        Column("serial", "Yubikey"),
        Column("bsnr", "BSNR"),
        Column("practice", "Betriebsstätte"),
        Column("status", "Status"),
        Column("locked_on", "Gesperrt am", Kind.DAY),
        Column("expected_back", "Rückgabe erwartet"),
    )
    return Report("keys-out", "Ausgegebene, nicht zurückgegebene Yubikeys", now, columns, rows)


def next_quarter(now: datetime) -> tuple[date, date]:
    """The first and last day of the calendar quarter after ``now``'s (Berlin time)."""
    first = quarter_start(now.astimezone(BERLIN).date()) + relativedelta(months=3)
    return first, first + relativedelta(months=3) - timedelta(days=1)


def locks_next_quarter_report(session: Session, *, now: datetime, quarters: int) -> Report:
    """Practices and members whose dates lock them in the next calendar quarter: the
    first day without access, the reason, and the exception that moved it, if any."""
    first, last = next_quarter(now)
    start, end = start_of_day(first), start_of_day(last + timedelta(days=1))
    rows = []
    practice_days: dict[int, datetime] = {}
    for practice in _practices(session):
        if practice.status is PracticeStatus.LOCKED:
            continue
        lock_at = practice_status(practice, now, quarters).lock_at
        if lock_at is None or not start <= lock_at < end:
            continue
        practice_days[practice.id] = lock_at
        then = practice_status(practice, lock_at, quarters)
        rows.append(_lock_row(practice, None, lock_at, then.reason, practice.lock_exception))
    for user in _members_with_an_end(session):
        lock_at = user_status(user, now, quarters).lock_at
        if lock_at is None or not start <= lock_at < end:
            continue
        if practice_days.get(user.practice_id) == lock_at:
            continue  # the practice's own row says it (the last member, § 1.2)
        then = user_status(user, lock_at, quarters)
        rows.append(_lock_row(user.practice, user, lock_at, then.reason, user.lock_exception))
    rows.sort(key=lambda row: (row["locked_from"], row["bsnr"], row["username"] or ""))
    columns = (
        Column("bsnr", "BSNR"),
        Column("practice", "Betriebsstätte"),
        Column("username", "Benutzer (eigenes Ende)"),
        Column("locked_from", "Gesperrt ab", Kind.DAY),
        Column("reason", "Grund"),
        Column("exception_until", "Ausnahme bis", Kind.DAY),
        Column("exception_ref", "Aktenzeichen"),
    )
    title = f"Sperren im nächsten Quartal ({first:%d.%m.%Y}–{last:%d.%m.%Y})"
    return Report("locks-next-quarter", title, now, columns, rows)


def _members_with_an_end(session: Session) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(
                User.kind == UserKind.MEMBER,
                User.activity_ended_on.is_not(None),
                User.status.in_(user_rules.LOCKABLE),
            )
            .options(selectinload(User.lock_exception), selectinload(User.practice))
            .order_by(User.username)
        )
    )


def _lock_row(
    practice: Practice, user: User | None, lock_at: datetime, reason: str | None, exception: Any
) -> dict[str, Any]:
    return {
        "bsnr": practice.bsnr,
        "practice": practice.name,
        "username": user.username if user else None,
        "locked_from": lock_at.astimezone(BERLIN).date(),
        "reason": reason,
        "exception_until": exception.until if exception else None,
        "exception_ref": exception.decision_ref if exception else None,
    }


def fees_report(session: Session, *, now: datetime, quarters: int) -> Report:
    """The § 6.3 fees still open (neither paid nor waived)."""
    del quarters
    rows = [_fee_row(fee) for fee in fees.fees(session, open_only=True)]
    columns = (
        Column("id", "Nr.", Kind.COUNT),
        Column("bsnr", "BSNR"),
        Column("practice", "Betriebsstätte"),
        Column("serial", "Yubikey"),
        Column("amount_cents", "Betrag (EUR)", Kind.CENTS),
        Column("owed_on", "Fällig seit", Kind.DAY),
        Column("invoiced_on", "Berechnet am", Kind.DAY),
    )
    return Report("fees", "Offene Gebühren (§ 6 Abs. 3)", now, columns, rows)


def _fee_row(fee: LossFee) -> dict[str, Any]:
    return {
        "id": fee.id,
        "bsnr": fee.practice.bsnr,
        "practice": fee.practice.name,
        "serial": fee.serial,
        "amount_cents": fee.amount_cents,
        "owed_on": fee.owed_on,
        "invoiced_on": fee.invoiced_on,
    }


def terms_report(session: Session, *, now: datetime, quarters: int) -> Report:
    """Per version of the terms of use: how many practices accepted it last; and how
    many accepted none."""
    del quarters
    counts = terms.accepted_counts(session)
    published = {version.version: version for version in terms.versions(session)}
    rows = []
    for name in sorted(set(counts) | set(published)):
        version = published.get(name)
        rows.append(
            {
                "version": name,
                "effective_on": version.effective_on if version else None,
                "accept_by": version.accept_by if version else None,
                "practices": counts.get(name, 0),
            }
        )
    without = (session.scalar(select(func.count(Practice.id))) or 0) - sum(counts.values())
    rows.append({"version": "keine", "effective_on": None, "accept_by": None, "practices": without})
    columns = (
        Column("version", "Version"),
        Column("effective_on", "Gilt ab", Kind.DAY),
        Column("accept_by", "Anzunehmen bis", Kind.DAY),
        Column("practices", "Betriebsstätten (zuletzt angenommen)", Kind.COUNT),
    )
    return Report("terms", "Angenommene Versionen der Nutzungsbedingungen", now, columns, rows)


REPORTS: dict[str, Callable[..., Report]] = {
    "practices": practices_report,
    "keys-out": keys_out_report,
    "locks-next-quarter": locks_next_quarter_report,
    "fees": fees_report,
    "terms": terms_report,
}


def make(session: Session, name: str, *, now: datetime, quarters: int) -> Report:
    """The report ``name`` at ``now``; an unknown name is a ValidationError."""
    if name not in REPORTS:
        raise ValidationError(f"Keinen Bericht {name!r}; es gibt {', '.join(REPORTS)}")
    return REPORTS[name](session, now=now, quarters=quarters)
