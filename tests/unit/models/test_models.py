"""Invariants enforced by the database itself, whatever code writes the rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flexnet.models import (
    LockCause,
    LockException,
    Practice,
    Token,
    TokenKind,
    TokenStatus,
    User,
    UserKind,
    UserStatus,
)
from tests.conftest import NOW


def assert_refused(session: Session, obj: object) -> None:
    savepoint = session.begin_nested()
    session.add(obj)
    with pytest.raises(IntegrityError):
        session.flush()
    savepoint.rollback()


def test_lock_without_reason_is_refused(session: Session, make_user: Callable[..., User]) -> None:
    user = make_user()
    savepoint = session.begin_nested()
    user.status = UserStatus.LOCKED
    with pytest.raises(IntegrityError):
        session.flush()
    savepoint.rollback()


def test_lock_with_cause_reason_and_time_is_accepted(
    session: Session, make_user: Callable[..., User]
) -> None:
    user = make_user()
    user.status = UserStatus.LOCKED
    user.lock_cause = LockCause.LOSS
    user.lock_reason = "Verlustmeldung per Telefon"
    user.locked_at = NOW
    session.flush()

    assert user.status is UserStatus.LOCKED


def test_member_without_lanr_is_refused(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice()
    assert_refused(session, User(username="x1", practice_id=practice.id, kind=UserKind.MEMBER))
    assert_refused(
        session, User(username="x2", practice_id=practice.id, kind=UserKind.STAFF, lanr="123456601")
    )


def test_issued_token_needs_a_practice(session: Session) -> None:
    token = Token(
        serial="1234567",
        kind=TokenKind.YUBICO_OTP,
        public_id="cccccccccccb",
        secret=b"ciphertext",
        status=TokenStatus.ASSIGNED,
    )
    assert_refused(session, token)


def test_yubico_token_needs_a_12_character_public_id(session: Session) -> None:
    token = Token(serial="7654321", kind=TokenKind.YUBICO_OTP, public_id="ccc", secret=b"c")
    assert_refused(session, token)


def test_exception_has_exactly_one_subject(
    session: Session, make_user: Callable[..., User]
) -> None:
    user = make_user()
    both = LockException(
        practice_id=user.practice_id,
        user_id=user.id,
        until=NOW.date(),
        reason="r",
        decision_ref="a",
        decided_by="b",
    )
    assert_refused(session, both)
    neither = LockException(until=NOW.date(), reason="r", decision_ref="a", decided_by="b")
    assert_refused(session, neither)


def test_uppercase_username_is_refused_by_the_schema(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    assert_refused(
        session, User(username="MMueller", practice_id=make_practice().id, kind=UserKind.STAFF)
    )


def test_unknown_enum_value_is_refused_by_the_schema(
    session: Session, make_user: Callable[..., User]
) -> None:
    user = make_user()
    savepoint = session.begin_nested()
    with pytest.raises(IntegrityError):
        session.execute(
            text("UPDATE users SET status = 'superuser' WHERE id = :id"), {"id": user.id}
        )
    savepoint.rollback()


def test_datetimes_come_back_aware_in_utc(session: Session, make_user: Callable[..., User]) -> None:
    user = make_user()
    session.expire_all()

    created = session.get_one(User, user.id).created_at

    assert isinstance(created, datetime)
    assert created == NOW
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0


def test_token_repr_shows_no_secret() -> None:
    token = Token(serial="1", kind=TokenKind.TOTP, secret=b"SECRET-BYTES", status=TokenStatus.STOCK)

    assert "SECRET" not in repr(token)
