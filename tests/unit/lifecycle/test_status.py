"""Effective status from stored state and dates, at an injected instant (no database)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import State, practice_status, user_status
from flexnet.models import (
    LockCause,
    LockException,
    Practice,
    PracticeKind,
    PracticeStatus,
    User,
    UserKind,
    UserStatus,
)

LOCK_2027_07_01 = datetime(2027, 7, 1, tzinfo=BERLIN)
JUST_BEFORE = LOCK_2027_07_01 - timedelta(microseconds=1)


def practice(**fields: object) -> Practice:
    values: dict[str, object] = {
        "bsnr": "881234500",
        "name": "Praxis",
        "kind": PracticeKind.MEMBER,
        "status": PracticeStatus.ACTIVE,
    }
    values.update(fields)
    return Practice(**values)


def user(of: Practice, kind: UserKind = UserKind.STAFF, **fields: object) -> User:
    values: dict[str, object] = {"username": "u", "kind": kind, "status": UserStatus.ACTIVE}
    values.update(fields)
    return User(practice=of, **values)


def exception(until: date) -> LockException:
    return LockException(until=until, reason="Nachfolge offen", decision_ref="V-1", decided_by="V")


def test_practice_without_end_date_is_active_without_lock_date() -> None:
    status = practice_status(practice(), JUST_BEFORE)

    assert status.state is State.ACTIVE
    assert status.may_log_in
    assert status.lock_at is None


def test_practice_locks_exactly_at_the_instant() -> None:
    ended = practice(activity_ended_on=date(2026, 5, 15))

    before = practice_status(ended, JUST_BEFORE)
    at = practice_status(ended, LOCK_2027_07_01)

    assert before.state is State.ACTIVE and before.lock_at == LOCK_2027_07_01
    assert at.state is State.LOCKED
    assert at.cause is LockCause.LIFECYCLE
    assert at.reason is not None and "01.07.2027" in at.reason and "15.05.2026" in at.reason


def test_pending_practice_cannot_log_in_until_terms_are_accepted() -> None:
    status = user_status(user(practice(status=PracticeStatus.PENDING)), JUST_BEFORE)

    assert status.state is State.PENDING
    assert status.reason is not None and "§ 1.3" in status.reason


def test_staff_and_practice_access_follow_the_practice() -> None:
    ended = practice(activity_ended_on=date(2026, 5, 15))

    for kind in (UserKind.STAFF, UserKind.PRACTICE_ACCESS):
        assert user_status(user(ended, kind), JUST_BEFORE).state is State.ACTIVE
        assert user_status(user(ended, kind), LOCK_2027_07_01).state is State.LOCKED


def test_members_own_end_locks_only_that_member_while_another_has_access() -> None:
    shared = practice()
    leaving = user(shared, UserKind.MEMBER, lanr="123456601", activity_ended_on=date(2026, 5, 15))
    user(shared, UserKind.MEMBER, username="bleibt", lanr="234567701")
    colleague = user(shared, UserKind.STAFF)

    assert user_status(leaving, JUST_BEFORE).state is State.ACTIVE
    assert user_status(leaving, LOCK_2027_07_01).state is State.LOCKED
    assert user_status(colleague, LOCK_2027_07_01).state is State.ACTIVE
    assert practice_status(shared, LOCK_2027_07_01).state is State.ACTIVE
    assert practice_status(shared, LOCK_2027_07_01).lock_at is None


# --- § 1.2: practice staff and the practice access follow the members --------------------

LOCK_2028_04_01 = datetime(2028, 4, 1, tzinfo=BERLIN)


def group_practice() -> tuple[Practice, User, User, User, User]:
    """Two members, a practice assistant and the practice access."""
    group = practice()
    first = user(group, UserKind.MEMBER, username="erste", lanr="123456601")
    second = user(group, UserKind.MEMBER, username="zweite", lanr="234567701")
    assistant = user(group, UserKind.STAFF, username="mfa")
    access = user(group, UserKind.PRACTICE_ACCESS, username="praxis")
    return group, first, second, assistant, access


def test_staff_and_practice_access_lock_when_no_member_has_access_any_more() -> None:
    group, first, second, assistant, access = group_practice()
    first.activity_ended_on = date(2026, 5, 15)  # Q2 2026: locked from 01.07.2027
    second.activity_ended_on = date(2027, 2, 10)  # Q1 2027: locked from 01.04.2028
    before = LOCK_2028_04_01 - timedelta(microseconds=1)

    assert user_status(first, LOCK_2027_07_01).state is State.LOCKED
    for derived in (assistant, access):
        assert user_status(derived, LOCK_2027_07_01).state is State.ACTIVE
        assert user_status(derived, before).state is State.ACTIVE
        assert user_status(derived, before).lock_at == LOCK_2028_04_01
        locked = user_status(derived, LOCK_2028_04_01)
        assert locked.state is State.LOCKED and locked.cause is LockCause.LIFECYCLE
        assert locked.reason is not None and "10.02.2027" in locked.reason
    whole = practice_status(group, LOCK_2028_04_01)
    assert practice_status(group, before).state is State.ACTIVE
    assert whole.state is State.LOCKED and whole.lock_at == LOCK_2028_04_01
    assert whole.reason is not None and "kein Mitglied" in whole.reason and "§ 1.2" in whole.reason


def test_a_member_without_an_end_keeps_the_practice_open() -> None:
    group, first, _, assistant, _ = group_practice()
    first.activity_ended_on = date(2026, 5, 15)

    assert user_status(assistant, datetime(2035, 1, 1, tzinfo=BERLIN)).state is State.ACTIVE
    assert practice_status(group, datetime(2035, 1, 1, tzinfo=BERLIN)).lock_at is None


def test_a_members_exception_keeps_the_staff_it_derives_from_open_too() -> None:
    group, first, second, assistant, _ = group_practice()
    first.activity_ended_on = date(2026, 5, 15)
    second.activity_ended_on = date(2027, 2, 10)
    second.lock_exception = exception(date(2028, 6, 30))
    end = datetime(2028, 7, 1, tzinfo=BERLIN)

    assert user_status(second, LOCK_2028_04_01).state is State.ACTIVE
    assert user_status(assistant, LOCK_2028_04_01).state is State.ACTIVE
    assert user_status(assistant, end).state is State.LOCKED
    assert practice_status(group, end - timedelta(microseconds=1)).lock_at == end


def test_a_member_ending_on_29_february_locks_from_the_first_of_april_a_year_later() -> None:
    group, first, second, assistant, _ = group_practice()
    first.activity_ended_on = date(2028, 2, 29)  # Q1 2028
    second.activity_ended_on = date(2027, 12, 31)  # Q4 2027: locked from 01.01.2029
    first_of_april = datetime(2029, 4, 1, tzinfo=BERLIN)

    assert user_status(second, datetime(2029, 1, 1, tzinfo=BERLIN)).state is State.LOCKED
    assert user_status(first, first_of_april - timedelta(microseconds=1)).state is State.ACTIVE
    assert user_status(first, first_of_april).state is State.LOCKED
    assert user_status(assistant, first_of_april).state is State.LOCKED
    assert practice_status(group, first_of_april - timedelta(seconds=1)).state is State.ACTIVE


def test_members_whose_access_ended_for_good_do_not_keep_the_practice_open() -> None:
    _, first, second, assistant, _ = group_practice()
    first.activity_ended_on = date(2026, 5, 15)
    second.status = UserStatus.REVOKED

    assert user_status(assistant, LOCK_2027_07_01).state is State.LOCKED


def test_the_practices_own_end_still_locks_everyone_at_once() -> None:
    group, first, _, assistant, _ = group_practice()
    group.activity_ended_on = date(2026, 5, 15)

    for person in (first, assistant):
        assert user_status(person, LOCK_2027_07_01).state is State.LOCKED
    assert practice_status(group, LOCK_2027_07_01).state is State.LOCKED


def test_a_practice_without_members_keeps_its_own_date() -> None:
    institution = practice(kind=PracticeKind.THIRD_PARTY, activity_ended_on=date(2026, 5, 15))
    third = user(institution, UserKind.THIRD_PARTY)

    assert user_status(third, JUST_BEFORE).state is State.ACTIVE
    assert user_status(third, LOCK_2027_07_01).state is State.LOCKED


def test_staff_end_date_field_does_not_lock_non_members() -> None:
    staff = user(practice(), UserKind.STAFF, activity_ended_on=date(2026, 5, 15))

    assert user_status(staff, LOCK_2027_07_01).state is State.ACTIVE


def test_practice_exception_extends_access_through_its_last_day() -> None:
    excepted = practice(activity_ended_on=date(2026, 5, 15))
    excepted.lock_exception = exception(date(2027, 9, 30))
    end = datetime(2027, 10, 1, tzinfo=BERLIN)

    assert practice_status(excepted, LOCK_2027_07_01).state is State.ACTIVE
    assert user_status(user(excepted), end - timedelta(seconds=1)).state is State.ACTIVE
    assert practice_status(excepted, end).state is State.LOCKED


def test_exception_that_ended_before_the_rule_changes_nothing() -> None:
    excepted = practice(activity_ended_on=date(2026, 5, 15))
    excepted.lock_exception = exception(date(2027, 1, 31))

    assert practice_status(excepted, LOCK_2027_07_01).lock_at == LOCK_2027_07_01


def test_user_exception_extends_that_user_only() -> None:
    ended = practice(activity_ended_on=date(2026, 5, 15))
    excepted = user(ended)
    excepted.lock_exception = exception(date(2027, 12, 31))

    assert user_status(excepted, LOCK_2027_07_01).state is State.ACTIVE
    assert user_status(user(ended), LOCK_2027_07_01).state is State.LOCKED


def test_manual_locks_carry_their_reason() -> None:
    locked_practice = practice(
        status=PracticeStatus.LOCKED,
        lock_cause=LockCause.MISUSE,
        lock_reason="Verdacht auf Missbrauch, Anruf 23.11.",
    )
    locked_user = user(
        practice(), status=UserStatus.LOCKED, lock_cause=LockCause.LOSS, lock_reason="Verlust"
    )

    via_practice = user_status(user(locked_practice), JUST_BEFORE)
    own = user_status(locked_user, JUST_BEFORE)

    assert via_practice.state is State.LOCKED and via_practice.cause is LockCause.MISUSE
    assert via_practice.reason == "Betriebsstätte gesperrt: Verdacht auf Missbrauch, Anruf 23.11."
    assert own.state is State.LOCKED and own.reason == "Verlust"


def test_pending_and_revoked_users_cannot_log_in() -> None:
    assert user_status(user(practice(), status=UserStatus.PENDING), JUST_BEFORE).state is (
        State.PENDING
    )
    assert user_status(user(practice(), status=UserStatus.REVOKED), JUST_BEFORE).state is (
        State.REVOKED
    )
