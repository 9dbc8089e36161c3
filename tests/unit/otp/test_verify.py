"""Yubico OTP verification with replay protection, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.config import OtpSettings
from flexnet.models import AuditEntry, Practice, Token, TokenStatus
from flexnet.otp.secrets import SecretBox
from flexnet.otp.verify import COUNTER_WARNING_AT, OtpReason, OtpResult, verify_yubico_otp
from tests.conftest import BOX, NOW
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]
SETTINGS = OtpSettings()


def check(
    session: Session,
    otp: str,
    *,
    settings: OtpSettings = SETTINGS,
    now=NOW,
    box: SecretBox = BOX,
    nonce: str | None = None,
) -> OtpResult:
    return verify_yubico_otp(session, otp, box=box, settings=settings, now=now, nonce=nonce)


def test_fresh_otp_is_accepted_once(session: Session, make_yubikey: MakeKey) -> None:
    token, key = make_yubikey()
    otp = key.otp()

    first = check(session, otp)
    second = check(session, otp)

    assert first.ok and first.token is token
    assert second.reason is OtpReason.REPLAYED
    session.expire_all()
    assert (token.otp_usage_counter, token.otp_session_counter) == (1, 0)
    assert token.last_used_at == NOW


def test_older_otp_after_newer_is_a_replay(session: Session, make_yubikey: MakeKey) -> None:
    _, key = make_yubikey()
    older, newer = key.otp(), key.otp()

    assert check(session, newer).ok
    assert check(session, older).reason is OtpReason.REPLAYED


def test_session_counter_wrap_and_replug_are_accepted(
    session: Session, make_yubikey: MakeKey
) -> None:
    _, key = make_yubikey()
    assert check(session, key.craft(usage=3, session=0xFF)).ok
    assert check(session, key.craft(usage=4, session=0)).ok  # wrapped into the next use
    key.device.session = 4
    key.replug()  # usage 5, session 0
    assert check(session, key.otp()).ok
    assert check(session, key.craft(usage=4, session=0xFF)).reason is OtpReason.REPLAYED


def test_caps_lock_bit_does_not_count(session: Session, make_yubikey: MakeKey) -> None:
    _, key = make_yubikey()

    assert check(session, key.craft(usage=0x8000 | 5, session=1)).ok
    # Without the flag it is the same counter pair: a replay, not a newer OTP.
    assert check(session, key.craft(usage=5, session=1)).reason is OtpReason.REPLAYED
    assert check(session, key.craft(usage=5, session=2)).ok


def test_unknown_public_id(session: Session) -> None:
    assert check(session, SimulatedKey.random().otp()).reason is OtpReason.UNKNOWN_KEY


def test_malformed_input_is_a_result_not_an_exception(session: Session) -> None:
    assert check(session, "' OR 1=1 --").reason is OtpReason.MALFORMED


def test_otp_of_another_aes_key_is_bad(session: Session, make_yubikey: MakeKey) -> None:
    _, key = make_yubikey()

    assert check(session, key.craft(1, 1, aes_key=bytes(16))).reason is OtpReason.BAD_OTP


def test_private_id_must_match_the_imported_one(session: Session, make_yubikey: MakeKey) -> None:
    _, key = make_yubikey()

    result = check(session, key.craft(1, 1, private_id=b"\x01" * 6))

    assert result.reason is OtpReason.BAD_OTP


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (TokenStatus.STOCK, OtpReason.KEY_NOT_ASSIGNED),
        (TokenStatus.RETURNED, OtpReason.KEY_RETURNED),
        (TokenStatus.RETIRED, OtpReason.KEY_RETIRED),
        (TokenStatus.LOCKED, OtpReason.KEY_LOCKED),
        (TokenStatus.LOST, OtpReason.KEY_LOST),
    ],
)
def test_keys_that_may_not_authenticate_have_distinct_reasons(
    session: Session,
    make_yubikey: MakeKey,
    make_practice: Callable[..., Practice],
    status: TokenStatus,
    reason: OtpReason,
) -> None:
    token, key = make_yubikey(status=status)
    otp = key.otp()

    assert check(session, otp).reason is reason
    # The valid OTP was used up all the same: unlocking the key does not revive it.
    practice = token.practice or make_practice()
    token.practice = practice
    token.status = TokenStatus.ACTIVE
    token.lock_cause = token.lock_reason = token.locked_at = None
    session.flush()
    assert check(session, otp).reason is OtpReason.REPLAYED
    assert check(session, key.otp()).ok


def test_wrong_master_key_is_a_backend_error(session: Session, make_yubikey: MakeKey) -> None:
    _, key = make_yubikey()

    result = check(session, key.otp(), box=SecretBox(b"\x07" * 32))

    assert result.reason is OtpReason.BACKEND_ERROR


def test_first_use_activates_a_shipped_key_and_audits_once(
    session: Session, make_yubikey: MakeKey
) -> None:
    token, key = make_yubikey(status=TokenStatus.SHIPPED)

    assert check(session, key.otp()).ok
    assert check(session, key.otp()).ok

    assert token.status is TokenStatus.ACTIVE
    tags = list(
        session.scalars(select(AuditEntry.tag).where(AuditEntry.subject_id == token.serial))
    )
    assert tags == ["token:yubikey:activate"]


def test_counter_near_exhaustion_warns_once(session: Session, make_yubikey: MakeKey) -> None:
    token, key = make_yubikey()

    assert check(session, key.craft(COUNTER_WARNING_AT - 1, 0)).ok
    assert token.counter_warned_at is None
    assert check(session, key.craft(COUNTER_WARNING_AT, 0)).ok
    assert check(session, key.craft(COUNTER_WARNING_AT, 1)).ok

    assert token.counter_warned_at == NOW
    entries = list(
        session.scalars(select(AuditEntry).where(AuditEntry.tag == "token:counter:warn"))
    )
    assert len(entries) == 1
    assert f'"usage_counter":{COUNTER_WARNING_AT}' in entries[0].data


def test_delay_check_is_off_by_default(session: Session, make_yubikey: MakeKey) -> None:
    _, key = make_yubikey()
    assert check(session, key.craft(2, 0, timestamp=1000)).ok

    # The key says 1 s passed, the server saw an hour: accepted unless the check is on.
    assert check(session, key.craft(2, 1, timestamp=1008), now=NOW + timedelta(hours=1)).ok


def test_delay_check_rejects_an_otp_typed_long_before_it_arrived(
    session: Session, make_yubikey: MakeKey
) -> None:
    settings = OtpSettings(delay_check=True)
    _, key = make_yubikey()
    assert check(session, key.craft(2, 0, timestamp=1000), settings=settings).ok
    on_time = check(
        session,
        key.craft(2, 1, timestamp=1000 + 8 * 60),
        settings=settings,
        now=NOW + timedelta(seconds=61),
    )
    late_otp = key.craft(2, 2, timestamp=1000 + 8 * 61)

    late = check(session, late_otp, settings=settings, now=NOW + timedelta(hours=1))
    again = check(session, late_otp, settings=settings, now=NOW + timedelta(hours=1))
    next_session = check(
        session, key.craft(3, 0, timestamp=5), settings=settings, now=NOW + timedelta(days=1)
    )

    assert on_time.ok
    assert late.reason is OtpReason.DELAYED
    assert again.reason is OtpReason.REPLAYED  # a delayed OTP is used up as well
    assert next_session.ok  # a new key session has a new clock


def test_same_otp_and_nonce_again_is_a_replayed_request(
    session: Session, make_yubikey: MakeKey
) -> None:
    _, key = make_yubikey()
    otp = key.otp()

    assert check(session, otp, nonce="abcdefghijklmnop").ok
    assert check(session, otp, nonce="abcdefghijklmnop").reason is OtpReason.REPLAYED_REQUEST
    assert check(session, otp, nonce="bbcdefghijklmnop").reason is OtpReason.REPLAYED


def test_a_lock_landing_after_the_read_still_wins(session: Session, make_yubikey: MakeKey) -> None:
    from sqlalchemy import update

    token, key = make_yubikey()
    otp = key.otp()
    # Another transaction locks the key after this request loaded it.
    session.execute(
        update(Token).where(Token.id == token.id).values(status=TokenStatus.LOST),
        execution_options={"synchronize_session": False},
    )

    assert check(session, otp).reason is OtpReason.KEY_LOST
