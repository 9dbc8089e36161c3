"""Read-only queries behind staff's lists of practices, users and keys (admin UI, CSV).

Each filter becomes a WHERE clause of one statement, so that a list pages through the
database however many thousand rows there are; the caller adds order, offset and limit.
Text is compared folded (``accounts.folding``), like the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, or_, select
from sqlalchemy.orm import aliased, selectinload

from flexnet.accounts.folding import fold
from flexnet.lifecycle.job import date_lock_cutoff
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    LockException,
    Practice,
    PracticeKind,
    PracticeStatus,
    StaffAccount,
    TakenOverPassword,
    TermsAcceptance,
    Token,
    TokenKind,
    TokenStatus,
    User,
    UserKind,
    UserStatus,
)

NO_TERMS = "-"  # the terms filter's value for "not accepted at all"


def latest_terms_version() -> ColumnElement[str | None]:
    """The version of a practice's latest terms acceptance (a correlated subquery)."""
    latest = aliased(TermsAcceptance)
    return (
        select(latest.version)
        .where(latest.practice_id == Practice.id)
        .order_by(latest.id.desc())
        .limit(1)
        .correlate(Practice)
        .scalar_subquery()
    )


def user_count() -> ColumnElement[int]:
    return (
        select(func.count(User.id))
        .where(User.practice_id == Practice.id)
        .correlate(Practice)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class PracticeFilter:
    text: str | None = None  # BSNR (prefix), name or city (part), folded
    status: PracticeStatus | None = None
    kind: PracticeKind | None = None
    terms: str | None = None  # a version, or NO_TERMS
    city: str | None = None  # the whole city, folded
    locks_within: timedelta | None = None  # locked by its dates within this span


def _locks_by(until: datetime, quarters: int) -> ColumnElement[bool]:
    """Unlocked practices whose dates lock them by ``until`` (the nightly job's rule), an
    exception that reaches past it excluded."""
    last_day = until.astimezone(BERLIN).date()
    extended = exists().where(
        LockException.practice_id == Practice.id, LockException.until >= last_day
    )
    return and_(
        Practice.status != PracticeStatus.LOCKED,
        or_(
            and_(
                Practice.activity_ended_on < date_lock_cutoff(until, quarters),
                not_(extended),
            ),
            Practice.access_ends_on < last_day,
        ),
    )


def practices(chosen: PracticeFilter, *, now: datetime, quarters: int) -> Select[Practice]:
    """Practices matching ``chosen``, with what a row shows loaded with the page."""
    query = select(Practice).options(
        selectinload(Practice.tokens),
        selectinload(Practice.lock_exception),
        selectinload(Practice.terms_acceptances),
        selectinload(Practice.users),  # a member's own end of activity dates the lock
    )
    if chosen.text:
        folded = fold(chosen.text)
        query = query.where(
            or_(
                Practice.bsnr.startswith(chosen.text, autoescape=True),
                Practice.search_key.contains(folded, autoescape=True),
            )
        )
    if chosen.status is not None:
        query = query.where(Practice.status == chosen.status)
    if chosen.kind is not None:
        query = query.where(Practice.kind == chosen.kind)
    if chosen.terms == NO_TERMS:
        query = query.where(~exists().where(TermsAcceptance.practice_id == Practice.id))
    elif chosen.terms:
        query = query.where(latest_terms_version() == chosen.terms)
    if chosen.city:
        # The search key is "name\ncity", each folded: the city is its last line.
        query = query.where(Practice.search_key.endswith(f"\n{fold(chosen.city)}", autoescape=True))
    if chosen.locks_within is not None:
        query = query.where(_locks_by(now + chosen.locks_within, quarters))
    return query


@dataclass(frozen=True)
class UserFilter:
    text: str | None = None  # username (prefix), name (part) or LANR
    status: UserStatus | None = None
    kind: UserKind | None = None
    bsnr: str | None = None
    taken_over: bool = False  # a password taken over from the previous system, unchecked
    failed: bool = False  # at least one failed login since the last good one


def users(chosen: UserFilter) -> Select[User, Practice]:
    query = select(User, Practice).join(Practice, User.practice_id == Practice.id)
    if chosen.text:
        folded = fold(chosen.text)
        query = query.where(
            or_(
                User.username.startswith(folded, autoescape=True),
                User.search_key.contains(folded, autoescape=True),
                User.lanr == chosen.text,
            )
        )
    if chosen.status is not None:
        query = query.where(User.status == chosen.status)
    if chosen.kind is not None:
        query = query.where(User.kind == chosen.kind)
    if chosen.bsnr:
        query = query.where(Practice.bsnr == chosen.bsnr)
    if chosen.taken_over:
        query = query.where(User.taken_over_password.in_(list(TakenOverPassword)))
    if chosen.failed:
        query = query.where(User.failed_logins > 0)
    return query


@dataclass(frozen=True)
class KeyFilter:
    text: str | None = None  # serial (prefix) or public id
    status: TokenStatus | None = None
    kind: TokenKind | None = None
    bsnr: str | None = None
    holder: str | None = None  # "practice", "staff" or "none"


def keys(chosen: KeyFilter) -> Select[Token, Practice, StaffAccount]:
    query = (
        select(Token, Practice, StaffAccount)
        .outerjoin(Practice, Token.practice_id == Practice.id)
        .outerjoin(StaffAccount, Token.staff_id == StaffAccount.id)
    )
    if chosen.text:
        query = query.where(
            or_(
                Token.serial.startswith(chosen.text, autoescape=True),
                Token.public_id == chosen.text.lower(),
            )
        )
    if chosen.status is not None:
        query = query.where(Token.status == chosen.status)
    if chosen.kind is not None:
        query = query.where(Token.kind == chosen.kind)
    if chosen.bsnr:
        query = query.where(Practice.bsnr == chosen.bsnr)
    if chosen.holder == "practice":
        query = query.where(Token.practice_id.is_not(None))
    elif chosen.holder == "staff":
        query = query.where(Token.staff_id.is_not(None))
    elif chosen.holder == "none":
        query = query.where(Token.practice_id.is_(None), Token.staff_id.is_(None))
    return query
