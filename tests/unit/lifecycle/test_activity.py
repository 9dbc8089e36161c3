"""A member's own end of activity (§ 10.3) and the practice that follows its members
(§ 1.2): recording, correcting and clearing a date with a reason, the nightly job's
notices and locks at concrete dates, and a lock lifted when its date is cleared."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.errors import ValidationError
from flexnet.lifecycle import activity, job, lock_exceptions, locks
from flexnet.lifecycle.rules import BERLIN, start_of_day
from flexnet.models import (
    AuditEntry,
    Letter,
    LetterKind,
    LetterStatus,
    LockCause,
    Practice,
    PracticeStatus,
    Token,
    TokenStatus,
    User,
    UserKind,
    UserStatus,
)
from tests.conftest import NOW, STAFF
from tests.support.seed import lanr
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]


def at(day: date) -> datetime:
    return start_of_day(day)


def run_job(session: Session, day: date) -> job.JobReport:
    return job.run(session, now=at(day), settings=job.JobSettings(), actor=STAFF)


def end_member(
    session: Session,
    user: User,
    ended_on: date | None,
    *,
    now: datetime = NOW,
    reason: str | None = None,
) -> User:
    return activity.record_member_end(
        session, username=user.username, ended_on=ended_on, reason=reason, actor=STAFF, now=now
    )


def notices(session: Session, practice: Practice) -> list[tuple[str | None, date | None]]:
    rows = session.scalars(
        select(Letter)
        .where(Letter.practice_id == practice.id, Letter.kind == LetterKind.LOCK_NOTICE)
        .where(Letter.status != LetterStatus.CANCELLED)
        .order_by(Letter.id)
    )
    return [(letter.user.username if letter.user else None, letter.effective_on) for letter in rows]


def entries(session: Session, tag: str) -> list[dict[str, object]]:
    rows = session.execute(
        select(AuditEntry.actor, AuditEntry.subject_id, AuditEntry.data)
        .where(AuditEntry.tag == tag)
        .order_by(AuditEntry.id)
    )
    return [{"actor": a, "subject": s, **json.loads(d)} for a, s, d in rows]


@dataclass
class Group:
    """A group practice: two members, an assistant, the practice access, a key."""

    practice: Practice
    first: User
    second: User
    assistant: User
    access: User
    key: Token


@pytest.fixture
def make_group(
    make_practice: Callable[..., Practice], make_user: Callable[..., User], make_yubikey: MakeKey
) -> Callable[[int], Group]:
    def create(n: int) -> Group:
        practice = make_practice(name=f"Gemeinschaftspraxis {n}")
        password = "Sommer-Regen-2026!"

        def person(kind: UserKind, name: str, **extra: str) -> User:
            return make_user(
                practice=practice, kind=kind, name=name, migrated_password=password, **extra
            )

        return Group(
            practice,
            person(UserKind.MEMBER, f"Dr. Erste {n}", lanr=lanr(10 * n + 1)),
            person(UserKind.MEMBER, f"Dr. Zweite {n}", lanr=lanr(10 * n + 2)),
            person(UserKind.STAFF, f"MFA {n}"),
            person(UserKind.PRACTICE_ACCESS, f"Praxiszugang {n}"),
            make_yubikey(practice=practice)[0],
        )

    return create


# --- recording, correcting, clearing --------------------------------------------------------


def test_a_members_end_is_recorded_and_only_corrected_or_cleared_with_a_reason(
    session: Session, make_group: Callable[[int], Group]
) -> None:
    group = make_group(1)

    end_member(session, group.first, date(2026, 5, 15))
    with pytest.raises(ValidationError, match="Grund"):
        end_member(session, group.first, date(2026, 8, 20))
    with pytest.raises(ValidationError, match="Grund"):
        end_member(session, group.first, None)
    end_member(session, group.first, date(2026, 8, 20), reason="Meldung der KV korrigiert")
    end_member(session, group.first, None, reason="Tätigkeit doch fortgesetzt")

    assert group.first.activity_ended_on is None
    assert [
        (e["ended_on"], e["previous"], e.get("reason"))
        for e in entries(session, "account:activity:end")
    ] == [
        ("2026-05-15", None, None),
        ("2026-08-20", "2026-05-15", "Meldung der KV korrigiert"),
    ]
    (cleared,) = entries(session, "account:activity:clear")
    assert cleared["previous"] == "2026-08-20" and cleared["reason"] == "Tätigkeit doch fortgesetzt"
    assert cleared["actor"] == STAFF.name and cleared["subject"] == group.first.username


def test_only_a_member_has_an_end_of_activity_of_their_own(
    session: Session, make_group: Callable[[int], Group]
) -> None:
    group = make_group(1)

    with pytest.raises(ValidationError, match="Mitglied"):
        end_member(session, group.assistant, date(2026, 5, 15))

    assert group.assistant.activity_ended_on is None


# --- the nightly job over several practices, at concrete dates ------------------------------


def test_members_leave_one_by_one_and_the_practice_follows_the_last(
    session: Session, make_group: Callable[[int], Group]
) -> None:
    leaving, staying, solo = make_group(1), make_group(2), make_group(3)
    end_member(session, leaving.first, date(2026, 5, 15))  # Q2 2026: locked from 01.07.2027
    end_member(session, leaving.second, date(2027, 2, 10))  # Q1 2027: locked from 01.04.2028
    end_member(session, staying.first, date(2026, 5, 15))
    end_member(session, solo.first, date(2026, 11, 2))  # Q4 2026: locked from 01.01.2028
    end_member(session, solo.second, date(2026, 11, 30))

    may = run_job(session, date(2027, 5, 7))  # eight weeks before 01.07.2027
    assert may.locked == []
    assert notices(session, leaving.practice) == [(leaving.first.username, date(2027, 7, 1))]
    assert notices(session, staying.practice) == [(staying.first.username, date(2027, 7, 1))]
    assert notices(session, solo.practice) == []

    july = run_job(session, date(2027, 7, 1))
    assert sorted(line.split(":")[0] for line in july.locked) == sorted(
        [leaving.first.username, staying.first.username]
    )
    assert leaving.first.status is UserStatus.LOCKED and staying.first.status is UserStatus.LOCKED
    assert leaving.assistant.status is UserStatus.ACTIVE
    assert leaving.practice.status is PracticeStatus.ACTIVE

    assert run_job(session, date(2027, 11, 6)).locked == []  # eight weeks before 01.01.2028
    # The last member's end ends the practice: one notice for the whole practice.
    assert notices(session, solo.practice) == [(None, date(2028, 1, 1))]
    new_year = run_job(session, date(2028, 1, 1))
    assert [line.split(":")[0] for line in new_year.locked] == [
        f"BSNR {solo.practice.bsnr} Gemeinschaftspraxis 3"
    ]
    assert solo.key.status is TokenStatus.LOCKED and solo.access.status is UserStatus.LOCKED

    assert run_job(session, date(2028, 2, 5)).locked == []  # eight weeks before 01.04.2028
    # The first member's notice went with its lock (never printed here); the second
    # member's end is named in the practice's notice, not in one of its own.
    assert notices(session, leaving.practice) == [(None, date(2028, 4, 1))]
    april = run_job(session, date(2028, 4, 1))
    assert len(april.locked) == 1
    assert leaving.practice.status is PracticeStatus.LOCKED
    assert "kein Mitglied" in (leaving.practice.lock_reason or "")
    for user in (leaving.second, leaving.assistant, leaving.access):
        assert user.status is UserStatus.LOCKED and user.lock_cause is LockCause.LIFECYCLE
    assert leaving.key.status is TokenStatus.LOCKED
    for user in (staying.second, staying.assistant, staying.access):
        assert user.status is UserStatus.ACTIVE
    assert staying.practice.status is PracticeStatus.ACTIVE
    lock_letters = session.scalars(
        select(Letter.practice_id).where(Letter.kind == LetterKind.LOCK)
    ).all()
    assert sorted(lock_letters) == sorted([leaving.practice.id, solo.practice.id])


def test_clearing_the_date_lifts_the_lock_it_made_and_no_other(
    session: Session, make_group: Callable[[int], Group]
) -> None:
    leaving, staying = make_group(1), make_group(2)
    end_member(session, leaving.first, date(2026, 5, 15))
    end_member(session, leaving.second, date(2027, 2, 10))
    end_member(session, staying.first, date(2026, 5, 15))
    locks.lock_user(
        session,
        username=staying.second.username,
        cause=LockCause.MISUSE,
        reason="Kennwort weitergegeben",
        actor=STAFF,
        now=at(date(2027, 3, 1)),
    )
    run_job(session, date(2028, 4, 1))
    later = datetime(2028, 4, 3, 10, 0, tzinfo=BERLIN)

    end_member(session, leaving.second, None, now=later, reason="Praxis wird fortgeführt")
    end_member(session, staying.first, None, now=later, reason="Meldung irrtümlich")

    assert leaving.practice.status is PracticeStatus.ACTIVE
    for user in (leaving.second, leaving.assistant, leaving.access, staying.first):
        assert user.status is not UserStatus.LOCKED, user.username
    assert leaving.key.status is not TokenStatus.LOCKED
    assert leaving.first.status is UserStatus.LOCKED  # the own date still holds
    assert staying.second.status is UserStatus.LOCKED
    assert staying.second.lock_cause is LockCause.MISUSE  # not the date's lock: it stays
    lifted = {e["subject"] for e in entries(session, "account:user:unlock")}
    assert lifted == {
        leaving.second.username,
        leaving.assistant.username,
        leaving.access.username,
        staying.first.username,
    }


def test_a_members_exception_reopens_a_practice_locked_by_its_members(
    session: Session, make_group: Callable[[int], Group]
) -> None:
    group = make_group(1)
    end_member(session, group.first, date(2026, 5, 15))
    end_member(session, group.second, date(2027, 2, 10))
    run_job(session, date(2028, 4, 1))

    lock_exceptions.grant(
        session,
        username=group.second.username,
        until=date(2028, 9, 30),
        reason="Nachfolge in Aussicht",
        decision_ref="VS-2028-4",
        decided_by="Vorstand",
        actor=STAFF,
        now=at(date(2028, 4, 2)),
    )

    assert group.practice.status is PracticeStatus.ACTIVE
    assert group.assistant.status is not UserStatus.LOCKED
    assert group.second.status is not UserStatus.LOCKED
    assert group.first.status is UserStatus.LOCKED
    assert run_job(session, date(2028, 9, 30)).locked == []
    assert group.practice.status is PracticeStatus.ACTIVE
    run_job(session, date(2028, 10, 1))
    assert group.practice.status is PracticeStatus.LOCKED
