"""HOTP and TOTP via pyotp with atomic counter advance; resynchronisation."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy.orm import Session

from flexnet.models import Practice, Token, TokenKind, TokenStatus
from flexnet.otp import oath
from flexnet.otp.secrets import token_context
from flexnet.otp.verify import OtpReason
from tests.conftest import BOX, NOW

SEED = bytes(range(20))


def make_token(
    session: Session,
    practice: Practice,
    kind: TokenKind,
    digits: int = 6,
    status: TokenStatus = TokenStatus.ACTIVE,
) -> Token:
    serial = f"{kind.value}-{os.urandom(3).hex()}"
    token = Token(
        serial=serial,
        kind=kind,
        secret=BOX.seal(SEED, context=token_context(serial)),
        digits=digits,
        status=status,
        practice=practice,
        created_at=NOW,
    )
    session.add(token)
    session.flush()
    return token


@pytest.fixture
def hotp_token(session: Session, make_practice: Callable[..., Practice]) -> Token:
    return make_token(session, make_practice(), TokenKind.OATH_HOTP)


def reference_hotp(digits: int = 6) -> pyotp.HOTP:
    return pyotp.HOTP(base64.b32encode(SEED).decode(), digits=digits)


def test_hotp_accepts_within_the_look_ahead_window_once(
    session: Session, hotp_token: Token
) -> None:
    code = reference_hotp().at(3)

    first = oath.verify_hotp(session, hotp_token, code, box=BOX, window=10, now=NOW)
    again = oath.verify_hotp(session, hotp_token, code, box=BOX, window=10, now=NOW)

    assert first.ok
    assert hotp_token.hotp_counter == 4
    assert again.reason is OtpReason.BAD_OTP  # counter moved past it


def test_hotp_outside_the_window_is_refused(session: Session, hotp_token: Token) -> None:
    code = reference_hotp().at(10)

    assert oath.verify_hotp(session, hotp_token, code, box=BOX, window=10, now=NOW).reason is (
        OtpReason.BAD_OTP
    )
    assert hotp_token.hotp_counter == 0


def test_hotp_eight_digits(session: Session, make_practice: Callable[..., Practice]) -> None:
    token = make_token(session, make_practice(), TokenKind.OATH_HOTP, digits=8)

    assert oath.verify_hotp(session, token, reference_hotp(8).at(0), box=BOX, window=5, now=NOW).ok
    assert (
        oath.verify_hotp(session, token, reference_hotp(6).at(1), box=BOX, window=5, now=NOW).reason
        is OtpReason.MALFORMED
    )


def test_hotp_of_a_locked_key_is_consumed_and_refused(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    token = make_token(session, make_practice(), TokenKind.OATH_HOTP, status=TokenStatus.LOST)

    result = oath.verify_hotp(session, token, reference_hotp().at(0), box=BOX, window=5, now=NOW)

    assert result.reason is OtpReason.KEY_LOST
    assert token.hotp_counter == 1


def test_hotp_resync_from_two_consecutive_codes(session: Session, hotp_token: Token) -> None:
    far = reference_hotp()

    bad = oath.resync_hotp(session, hotp_token, far.at(500), far.at(502), box=BOX, now=NOW)
    good = oath.resync_hotp(session, hotp_token, far.at(500), far.at(501), box=BOX, now=NOW)

    assert bad.reason is OtpReason.BAD_OTP
    assert good.ok
    assert hotp_token.hotp_counter == 502
    assert oath.verify_hotp(session, hotp_token, far.at(503), box=BOX, window=10, now=NOW).ok


def test_totp_accepts_neighbouring_steps_and_never_a_step_twice(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    token = make_token(session, make_practice(), TokenKind.TOTP)
    totp = pyotp.TOTP(base64.b32encode(SEED).decode())
    previous_step = totp.at(NOW - timedelta(seconds=30))

    assert oath.verify_totp(session, token, previous_step, box=BOX, now=NOW).ok
    assert oath.verify_totp(session, token, previous_step, box=BOX, now=NOW).reason is (
        OtpReason.REPLAYED
    )
    assert oath.verify_totp(session, token, totp.at(NOW), box=BOX, now=NOW).ok
    assert (
        oath.verify_totp(
            session, token, totp.at(NOW + timedelta(seconds=90)), box=BOX, now=NOW
        ).reason
        is OtpReason.BAD_OTP
    )


def test_hotp_with_the_token_id_typed_first(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    token = make_token(session, make_practice(), TokenKind.OATH_HOTP)
    token.public_id = "ubnucbdefghi"
    session.flush()

    result = oath.verify_hotp(
        session, token, "ubnucbdefghi" + reference_hotp().at(0), box=BOX, window=5, now=NOW
    )

    assert result.ok
