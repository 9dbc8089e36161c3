"""A new owner continues a practice (§ 2.3): the old owner's credentials and key end at
the takeover, the key is replaced with the reason "takeover" (return requested, no loss
fee), the new owner's terms acceptance, users and letters follow; with the same BSNR or
a new one. Concrete dates: the takeover on 1 April 2029."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.accounts import practices
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle import activity, locks
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import State, practice_status, user_status
from flexnet.models import (
    AuditEntry,
    Letter,
    LetterKind,
    LockCause,
    Practice,
    PracticeStatus,
    Takeover,
    TermsChannel,
    Token,
    TokenStatus,
    User,
    UserKind,
    UserStatus,
)
from flexnet.provisioning import issuance, takeover
from tests.conftest import STAFF
from tests.support.seed import lanr
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]
ON = date(2029, 4, 1)
NOW = datetime(2029, 4, 1, 10, 0, tzinfo=BERLIN)
NEW_OWNER = takeover.NewUser("lneu", UserKind.MEMBER, "Dr. Lena Neu", lanr(2))


@dataclass
class Old:
    practice: Practice
    owner: User
    assistant: User
    access: User
    key: Token


@pytest.fixture
def old(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> Old:
    practice = make_practice(name="Praxis Dr. Alt")
    password = "Sommer-Regen-2026!"
    owner = make_user(
        practice=practice, kind=UserKind.MEMBER, name="Dr. Otto Alt", lanr=lanr(1),
        migrated_password=password, username="oalt",
    )  # fmt: skip
    assistant = make_user(practice=practice, migrated_password=password, username="mfa")
    access = make_user(
        practice=practice, kind=UserKind.PRACTICE_ACCESS, migrated_password=password,
        username="praxis-alt",
    )  # fmt: skip
    key, _ = make_yubikey(practice=practice)
    key.last_used_at = NOW - timedelta(days=3)
    # The old owner retires: the end of his activity is known before the takeover.
    activity.record_member_end(
        session, username="oalt", ended_on=date(2029, 3, 31), reason=None, actor=STAFF, now=NOW
    )
    return Old(practice, owner, assistant, access, key)


def take_over(session: Session, old: Old, spare: Token | None, **extra: object) -> takeover.Result:
    values: dict[str, object] = {
        "bsnr": old.practice.bsnr,
        "on": ON,
        "new_name": "Praxis Dr. Neu",
        "terms_version": "2.0",
        "terms_channel": TermsChannel.PORTAL,
        "accepted_on": date(2029, 3, 20),
        "new_users": [NEW_OWNER, takeover.NewUser("mfa-neu", UserKind.STAFF, "Nina Neu")],
        "new_key": spare.serial if spare else None,
        "actor": STAFF,
        "now": NOW,
    }
    values.update(extra)
    return takeover.take_over(session, **values)  # type: ignore[arg-type]


def letters(session: Session, practice: Practice) -> list[tuple[LetterKind, str | None]]:
    rows = session.scalars(
        select(Letter).where(Letter.practice_id == practice.id).order_by(Letter.id)
    )
    return [(letter.kind, letter.user.username if letter.user else None) for letter in rows]


def test_a_takeover_with_the_same_bsnr_ends_the_old_owners_access_and_starts_the_new(
    session: Session, old: Old, make_yubikey: MakeKey
) -> None:
    spare, _ = make_yubikey(status=TokenStatus.STOCK)
    before = letters(session, old.practice)

    result = take_over(session, old, spare)

    practice = old.practice
    assert result.practice is practice and practice.name == "Praxis Dr. Neu"
    for user in (old.owner, old.assistant, old.access):
        assert user.status is UserStatus.LOCKED and user.lock_cause is LockCause.TAKEOVER
        assert "§ 2.3" in (user.lock_reason or "") and "01.04.2029" in (user.lock_reason or "")
        assert user_status(user, NOW).state is State.LOCKED
    assert old.key.status is TokenStatus.LOCKED and old.key.lock_cause is LockCause.TAKEOVER
    assert spare.status is TokenStatus.ASSIGNED and spare.practice_id == practice.id
    assert practice.terms_acceptance is not None and practice.terms_acceptance.version == "2.0"
    assert letters(session, practice)[len(before) :] == [
        (LetterKind.LOCK, None),  # the old key, asked back; no loss fee (§ 6.3 is for losses)
        (LetterKind.KEY, None),
        (LetterKind.CREDENTIALS, "lneu"),
        (LetterKind.CREDENTIALS, "mfa-neu"),
    ]
    lock_letter = session.scalars(
        select(Letter).where(Letter.practice_id == practice.id, Letter.kind == LetterKind.LOCK)
    ).one()
    assert lock_letter.token_id == old.key.id and lock_letter.fee_cents is None
    (record,) = session.scalars(select(Takeover)).all()
    assert (record.practice_id, record.predecessor_id) == (practice.id, practice.id)
    assert (record.taken_over_on, record.previous_name) == (ON, "Praxis Dr. Alt")
    assert sorted(result.ended) == ["mfa", "oalt", "praxis-alt"]


def test_the_old_owners_end_of_activity_no_longer_locks_the_successor(
    session: Session, old: Old, make_yubikey: MakeKey
) -> None:
    practices.end_activity(
        session, bsnr=old.practice.bsnr, ended_on=date(2029, 3, 31), actor=STAFF, now=NOW
    )
    take_over(session, old, make_yubikey(status=TokenStatus.STOCK)[0])
    new_owner = next(u for u in old.practice.users if u.username == "lneu")
    assistant = next(u for u in old.practice.users if u.username == "mfa-neu")
    # Q1 2029 + four quarters: the old owner's date would have locked from 1 April 2030.
    a_year_on = datetime(2030, 4, 1, tzinfo=BERLIN)

    assert old.practice.activity_ended_on is None
    recorded = session.scalars(
        select(AuditEntry.data).where(AuditEntry.tag == "practice:record:takeover")
    ).one()
    assert json.loads(recorded)["cleared"] == {"activity_ended_on": "2029-03-31"}
    assert practice_status(old.practice, a_year_on).state is not State.LOCKED
    assert practice_status(old.practice, a_year_on).lock_at is None
    for user in (new_owner, assistant):
        assert user_status(user, a_year_on).state is not State.LOCKED


def test_credentials_of_the_old_owner_are_not_transferable(
    session: Session, old: Old, make_yubikey: MakeKey
) -> None:
    take_over(session, old, make_yubikey(status=TokenStatus.STOCK)[0])

    with pytest.raises(ConflictError, match=r"§ 2\.3"):
        locks.unlock_user(
            session, username="mfa", reason="Bitte wieder freischalten", actor=STAFF, now=NOW
        )
    with pytest.raises(ConflictError, match="gesperrt"):
        issuance.reissue_password(session, username="mfa", at_once=True, actor=STAFF, now=NOW)


def test_a_takeover_with_a_new_bsnr_keeps_the_old_record_for_the_history(
    session: Session, old: Old, make_yubikey: MakeKey
) -> None:
    spare, _ = make_yubikey(status=TokenStatus.STOCK)

    result = take_over(session, old, spare, new_bsnr="889999900")

    successor = result.practice
    assert successor.bsnr == "889999900" and successor.name == "Praxis Dr. Neu"
    assert (successor.street, successor.zip_code, successor.city) == (
        old.practice.street,
        old.practice.zip_code,
        old.practice.city,
    )
    assert successor.status is PracticeStatus.ACTIVE
    assert old.practice.status is PracticeStatus.LOCKED
    assert old.practice.lock_cause is LockCause.TAKEOVER and old.practice.name == "Praxis Dr. Alt"
    assert old.key.status is TokenStatus.LOCKED and old.key.practice_id == old.practice.id
    assert [kind for kind, _ in letters(session, old.practice)][-1] is LetterKind.LOCK
    assert letters(session, successor) == [
        (LetterKind.KEY, None),
        (LetterKind.CREDENTIALS, "lneu"),
        (LetterKind.CREDENTIALS, "mfa-neu"),
    ]
    (record,) = session.scalars(select(Takeover)).all()
    assert (record.practice_id, record.predecessor_id) == (successor.id, old.practice.id)
    # The old record's later dates are the old owner's alone.
    practices.end_activity(
        session, bsnr=old.practice.bsnr, ended_on=date(2029, 3, 31), actor=STAFF, now=NOW
    )
    assert practice_status(successor, datetime(2031, 1, 1, tzinfo=BERLIN)).lock_at is None


def test_a_refused_takeover_says_why(session: Session, old: Old, make_yubikey: MakeKey) -> None:
    spare, _ = make_yubikey(status=TokenStatus.STOCK)

    with pytest.raises(ValidationError, match="Zukunft"):
        take_over(session, old, spare, on=date(2029, 4, 2))
    with pytest.raises(ValidationError, match="Mitglied"):
        take_over(session, old, spare, new_users=[])
    locks.lock_practice(
        session, bsnr=old.practice.bsnr, cause=LockCause.MISUSE, reason="Verdacht",
        actor=STAFF, now=NOW,
    )  # fmt: skip
    with pytest.raises(ConflictError, match="gesperrt"):
        take_over(session, old, spare)
