"""Assignment and resynchronisation of keys."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from flexnet.config import OtpSettings
from flexnet.models import Token, TokenStatus
from flexnet.otp import stock
from flexnet.otp.verify import OtpReason, verify_yubico_otp
from tests.conftest import BOX, NOW, STAFF
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]


def resync(session: Session, token: Token, first: str, second: str) -> OtpReason:
    return stock.resync(
        session, serial=token.serial, first=first, second=second, box=BOX, actor=STAFF, now=NOW
    )


def verify(session: Session, otp: str) -> OtpReason:
    return verify_yubico_otp(session, otp, box=BOX, settings=OtpSettings(), now=NOW).reason


def test_resync_with_old_otps_cannot_revive_used_ones(
    session: Session, make_yubikey: MakeKey
) -> None:
    token, key = make_yubikey()
    otps = [key.otp() for _ in range(5)]
    for otp in otps:
        assert verify(session, otp) is OtpReason.OK

    assert resync(session, token, otps[0], otps[1]) is OtpReason.REPLAYED
    assert [verify(session, otp) for otp in otps[2:]] == [OtpReason.REPLAYED] * 3


def test_resync_moves_forward_with_two_consecutive_otps(
    session: Session, make_yubikey: MakeKey
) -> None:
    token, key = make_yubikey()
    first, second, third = key.otp(), key.otp(), key.otp()

    assert resync(session, token, first, third) is OtpReason.BAD_OTP
    assert resync(session, token, first, second) is OtpReason.OK
    assert (token.otp_usage_counter, token.otp_session_counter) == (1, 1)
    assert verify(session, second) is OtpReason.REPLAYED
    assert verify(session, third) is OtpReason.OK


@pytest.mark.parametrize("status", [TokenStatus.LOST, TokenStatus.LOCKED, TokenStatus.RETIRED])
def test_unusable_keys_are_not_resynchronised(
    session: Session, make_yubikey: MakeKey, status: TokenStatus
) -> None:
    token, key = make_yubikey(status=status)

    assert resync(session, token, key.otp(), key.otp()) is not OtpReason.OK
    assert token.otp_session_counter == -1
