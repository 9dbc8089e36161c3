"""Exceptions to the automatic lock (§ 10.3 sentence 2): grant, change, end, audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.accounts import practices
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.lifecycle import job, lock_exceptions, locks
from flexnet.lifecycle.rules import start_of_day
from flexnet.lifecycle.status import State, practice_status, user_status
from flexnet.models import (
    AuditEntry,
    LockCause,
    Practice,
    PracticeStatus,
    User,
    UserKind,
    UserStatus,
)
from tests.conftest import NOW, STAFF

LOCK_DAY = start_of_day(date(2027, 7, 1))  # activity ended 2026-05-15


@pytest.fixture
def ended(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> tuple[Practice, User]:
    practice = make_practice()
    user = make_user(practice=practice)
    practices.end_activity(
        session, bsnr=practice.bsnr, ended_on=date(2026, 5, 15), actor=STAFF, now=NOW
    )
    return practice, user


def grant(session: Session, until: date, **subject: str) -> None:
    lock_exceptions.grant(
        session,
        until=until,
        reason="Praxisabwicklung",
        decision_ref="V-2027-17",
        decided_by="Vorstand",
        actor=STAFF,
        now=NOW,
        **subject,
    )


def test_an_exception_postpones_the_lock_and_ending_it_locks_at_once(
    session: Session, ended: tuple[Practice, User]
) -> None:
    practice, user = ended
    grant(session, date(2027, 12, 31), bsnr=practice.bsnr)

    during = practice_status(practice, LOCK_DAY)
    lock_exceptions.end(
        session, bsnr=practice.bsnr, reason="Abwicklung beendet", actor=STAFF, now=NOW
    )
    after = practice_status(practice, LOCK_DAY)

    assert during.state is State.ACTIVE
    assert after.state is State.LOCKED and after.cause is LockCause.LIFECYCLE
    assert user_status(user, LOCK_DAY).state is State.LOCKED
    tags = session.scalars(
        select(AuditEntry.tag).where(AuditEntry.tag.like("lifecycle:%")).order_by(AuditEntry.id)
    )
    assert list(tags) == ["lifecycle:exception:grant", "lifecycle:exception:end"]


def test_granting_lifts_a_durable_lifecycle_lock_and_nothing_else(
    session: Session, ended: tuple[Practice, User]
) -> None:
    practice, user = ended
    job.run(session, now=LOCK_DAY, settings=job.JobSettings(), actor=STAFF)
    assert practice.status is PracticeStatus.LOCKED and user.status is UserStatus.LOCKED
    later = start_of_day(date(2027, 7, 2))

    lock_exceptions.grant(
        session,
        bsnr=practice.bsnr,
        until=date(2027, 12, 31),
        reason="Praxisabwicklung",
        decision_ref="V-2027-17",
        decided_by="Vorstand",
        actor=STAFF,
        now=later,
    )

    session.refresh(practice)
    session.refresh(user)
    assert practice.status is not PracticeStatus.LOCKED
    assert user.status is not UserStatus.LOCKED
    assert practice_status(practice, later).state is State.ACTIVE


def test_a_staff_lock_is_not_lifted_by_an_exception(
    session: Session, ended: tuple[Practice, User]
) -> None:
    practice, _ = ended
    locks.lock_practice(
        session, bsnr=practice.bsnr, cause=LockCause.MANUAL, reason="Verstoß", actor=STAFF, now=NOW
    )

    grant(session, date(2027, 12, 31), bsnr=practice.bsnr)

    assert practice.status is PracticeStatus.LOCKED and practice.lock_cause is LockCause.MANUAL


def test_a_member_gets_an_exception_of_their_own(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    member = make_user(practice=make_practice(), kind=UserKind.MEMBER)
    member.activity_ended_on = date(2026, 5, 15)
    session.flush()

    grant(session, date(2027, 9, 30), username=member.username)

    assert user_status(member, LOCK_DAY).state is not State.LOCKED
    assert user_status(member, start_of_day(date(2027, 10, 1))).state is State.LOCKED


def test_refusals(session: Session, ended: tuple[Practice, User]) -> None:
    practice, user = ended

    with pytest.raises(ValidationError, match="Vergangenheit"):
        grant(session, date(2020, 1, 1), bsnr=practice.bsnr)
    with pytest.raises(ValidationError, match="Betriebsstätte oder einen Benutzer"):
        grant(session, date(2027, 12, 31), bsnr=practice.bsnr, username=user.username)
    with pytest.raises(NotFoundError, match="Keine Ausnahme"):
        lock_exceptions.end(session, bsnr=practice.bsnr, reason="x", actor=STAFF, now=NOW)
    job.run(session, now=LOCK_DAY, settings=job.JobSettings(), actor=STAFF)
    with pytest.raises(ConflictError, match="nur eine Ausnahme"):
        locks.unlock_practice(session, bsnr=practice.bsnr, reason="x", actor=STAFF, now=NOW)
