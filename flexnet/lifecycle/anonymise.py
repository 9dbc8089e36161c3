"""The end of practices', users' and staff accounts' personal data: a number of years
(``FLEXNET_RECORD_RETENTION_YEARS``, ten: § 304 SGB V) after their participation ended,
names, addresses, numbers and free text go; the rows stay with their kinds, states and
dates for the association's statistics (docs/DATA_PROTECTION.md).

The end of participation is the lock (termination § 10.2, § 10.3, or any lock that
stayed): ``locked_at``; for a user also its practice's end. A practice that never took
part (terms never accepted) ends with its creation. Set-based: one UPDATE per
table and chunk of ids; loaded objects read the changed attributes anew.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session

from flexnet.authn import passwords
from flexnet.db import chunked, expire_loaded
from flexnet.models import (
    ApiClient,
    Letter,
    LockException,
    LossFee,
    MailRun,
    PasswordHistory,
    Practice,
    PracticeStatus,
    ServiceRequest,
    StaffAccount,
    Takeover,
    TermsVersion,
    Token,
    User,
    UserStatus,
)

ANONYMISED = "anonymisiert"
MEMBER_WITHOUT_LANR = "000000000"  # a member must have a LANR (CHECK); no real one is 0…


@dataclass(frozen=True)
class Due:
    practices: list[int]
    users: list[int]
    staff: list[int]

    def counts(self) -> dict[str, int]:
        return {
            "practices": len(self.practices),
            "users": len(self.users),
            "staff_accounts": len(self.staff),
        }


def due(session: Session, *, ended_before: datetime) -> Due:
    """Who ended before ``ended_before`` and still holds personal data."""
    ended_practices = select(Practice.id).where(
        Practice.anonymised_at.is_(None),
        _ended(Practice, PracticeStatus.LOCKED, PracticeStatus.PENDING, ended_before),
    )
    practices = list(session.scalars(ended_practices))
    users = list(
        session.scalars(
            select(User.id).where(
                User.anonymised_at.is_(None),
                or_(
                    User.practice_id.in_(ended_practices.scalar_subquery()),
                    # Not a pending one: a password taken over may open it any day.
                    and_(User.status == UserStatus.LOCKED, User.locked_at < ended_before),
                ),
            )
        )
    )
    staff = list(
        session.scalars(
            select(StaffAccount.id).where(
                StaffAccount.anonymised_at.is_(None),
                StaffAccount.active.is_(False),
                StaffAccount.deactivated_at < ended_before,
            )
        )
    )
    return Due(practices, users, staff)


def _ended(model: Any, locked: Any, pending: Any, before: datetime) -> Any:
    return or_(
        and_(model.status == locked, model.locked_at < before),
        # Terms never accepted (§ 1.3): it never took part, and nothing is issued to it.
        and_(model.status == pending, model.created_at < before),
    )


def anonymise(session: Session, found: Due, *, now: datetime) -> dict[str, int]:
    """Take the personal data out of the records ``found``; returns what was changed."""
    letters = _practices(session, found.practices, now)
    _users(session, found.users, now)
    letters += _user_letters(session, found.users)
    _staff(session, found.staff, now)
    return {**found.counts(), "letters": letters}


def _practices(session: Session, ids: list[int], now: datetime) -> int:
    """Practices, their keys' lock reasons, exceptions, requests and letters."""
    letters = 0
    for chunk in chunked(ids):
        old_bsnrs = list(session.scalars(select(Practice.bsnr).where(Practice.id.in_(chunk))))
        _update(
            session,
            Practice,
            chunk,
            # 'X' and eight digits of the id: unique, nine characters, never a BSNR.
            bsnr=literal("X") + func.substr(cast(Practice.id + 100_000_000, String), 2),
            name=ANONYMISED,
            address_extra=None,
            phone=None,
            contact_person=None,
            street=ANONYMISED,
            city=ANONYMISED,
            # The region (Leitregion) stays for statistics, the rest of the code goes.
            zip_code=func.substr(Practice.zip_code, 1, 2) + literal("000"),
            termination_reason=None,
            search_key="",
            anonymised_at=now,
        )
        _update(
            session,
            Practice,
            chunk,
            Practice.status == PracticeStatus.LOCKED,
            lock_reason=ANONYMISED,
        )
        _where(
            session,
            Token,
            Token.practice_id.in_(chunk),
            Token.lock_reason.is_not(None),
            lock_reason=ANONYMISED,
        )
        _where(
            session,
            LockException,
            LockException.practice_id.in_(chunk),
            reason=ANONYMISED,
            decided_by=ANONYMISED,
        )
        # The owner before a takeover is a person too: the name goes with either record.
        _where(
            session,
            Takeover,
            or_(Takeover.practice_id.in_(chunk), Takeover.predecessor_id.in_(chunk)),
            previous_name=ANONYMISED,
        )
        session.execute(
            delete(ServiceRequest).where(
                or_(ServiceRequest.practice_id.in_(chunk), ServiceRequest.bsnr.in_(old_bsnrs))
            )
        )
        _where(
            session,
            LossFee,
            LossFee.practice_id.in_(chunk),
            LossFee.waive_reason.is_not(None),
            waive_reason=ANONYMISED,
        )
        letters += _where(
            session, Letter, Letter.practice_id.in_(chunk), note=None, issued_password_hash=None
        )
    return letters


def _users(session: Session, ids: list[int], now: datetime) -> None:
    for chunk in chunked(ids):
        _update(
            session,
            User,
            chunk,
            username=literal("anonym-") + cast(User.id, String),
            name=None,
            password_hash=None,
            next_password_hash=None,
            next_password_set_at=None,
            taken_over_password=None,
            search_key="",
            anonymised_at=now,
        )
        _update(session, User, chunk, User.lanr.is_not(None), lanr=MEMBER_WITHOUT_LANR)
        _update(session, User, chunk, User.status == UserStatus.LOCKED, lock_reason=ANONYMISED)
        # Not locked: ended for good, so that nothing reads it as a working account.
        _update(session, User, chunk, User.status != UserStatus.LOCKED, status=UserStatus.REVOKED)
        _where(
            session,
            LockException,
            LockException.user_id.in_(chunk),
            reason=ANONYMISED,
            decided_by=ANONYMISED,
        )
        session.execute(delete(PasswordHistory).where(PasswordHistory.user_id.in_(chunk)))


def _user_letters(session: Session, ids: list[int]) -> int:
    """Letters to users of a practice that goes on (a practice's own are done with it)."""
    return sum(
        _where(
            session,
            Letter,
            Letter.user_id.in_(chunk),
            or_(Letter.note.is_not(None), Letter.issued_password_hash.is_not(None)),
            note=None,
            issued_password_hash=None,
        )
        for chunk in chunked(ids)
    )


def _staff(session: Session, ids: list[int], now: datetime) -> None:
    """Staff accounts; the username they left on letters, runs, requests and API clients
    becomes the same pseudonym."""
    rows = session.execute(
        select(StaffAccount.id, StaffAccount.username).where(StaffAccount.id.in_(ids))
    )
    for id_, old in rows.all():
        new = f"ehemalig-{id_}"
        for model, column in (
            (Letter, Letter.created_by),
            (MailRun, MailRun.produced_by),
            (MailRun, MailRun.closed_by),
            (ServiceRequest, ServiceRequest.handled_by),
            (ApiClient, ApiClient.created_by),
            (Takeover, Takeover.recorded_by),
            (TermsVersion, TermsVersion.published_by),
            (LossFee, LossFee.recorded_by),
            (LossFee, LossFee.invoiced_by),
            (LossFee, LossFee.paid_by),
            (LossFee, LossFee.waived_by),
        ):
            session.execute(
                update(model).where(column == old).values({column.key: new}),
                execution_options={"synchronize_session": False},
            )
        _update(
            session,
            StaffAccount,
            [id_],
            username=new,
            name=None,
            # The column needs a hash: one of a random password nobody ever saw.
            password_hash=passwords.hash_password(secrets.token_urlsafe(32)),
            totp_secret=None,
            enrolment_code_hash=None,
            enrolment_code_expires_at=None,
            anonymised_at=now,
        )


def _update(session: Session, model: Any, ids: list[int] | Any, *where: Any, **values: Any) -> int:
    """UPDATE rows of ``model`` by id (and ``where``); loaded objects read them anew."""
    result = session.execute(
        update(model).where(model.id.in_(ids), *where).values(**values),
        execution_options={"synchronize_session": False},
    )
    expire_loaded(session, model, ids, list(values))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _where(session: Session, model: Any, *where: Any, **values: Any) -> int:
    """UPDATE rows of ``model`` by a condition; loaded objects of it are expired."""
    result = session.execute(
        update(model).where(*where).values(**values),
        execution_options={"synchronize_session": False},
    )
    for loaded in [o for o in session.identity_map.values() if isinstance(o, model)]:
        session.expire(loaded, list(values))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
