"""OATH one-time passwords via pyotp: HOTP (a Yubikey slot in OATH-HOTP mode) and TOTP.

HOTP looks ahead a few counter values; TOTP accepts the neighbouring 30-second steps.
Each acceptance advances the stored counter (or last step) with one conditional UPDATE
whose row count decides, so a code can never be used twice, even by racing requests.
"""

from __future__ import annotations

import base64
import hmac
from datetime import datetime

import pyotp
from sqlalchemy import or_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from flexnet.models import Token, TokenKind
from flexnet.otp.secrets import SecretBox, SecretError, token_context
from flexnet.otp.verify import OtpReason, OtpResult, status_reason

TOTP_STEP_SECONDS = 30
TOTP_DRIFT_STEPS = 1
RESYNC_WINDOW = 1000


def _seed_b32(token: Token, box: SecretBox) -> str | None:
    if token.secret is None:
        return None
    try:
        seed = box.open(token.secret, context=token_context(token.serial))
    except SecretError:
        return None
    return base64.b32encode(seed).decode("ascii")


def _well_formed(code: str, digits: int) -> bool:
    return len(code) == digits and code.isascii() and code.isdigit()


def _without_token_id(token: Token, code: str) -> str:
    """A Yubikey slot in OATH-HOTP mode may type its token id (modhex) before the digits."""
    token_id = token.public_id or ""
    if token_id and code.lower().startswith(token_id):
        return code[len(token_id) :]
    return code


def _find_hotp(hotp: pyotp.HOTP, code: str, start: int, window: int) -> int | None:
    for counter in range(start, start + window):
        if hmac.compare_digest(hotp.at(counter), code):
            return counter
    return None


def _advance_hotp(session: Session, token: Token, next_counter: int, now: datetime) -> bool:
    result = session.execute(
        update(Token)
        .where(Token.id == token.id, Token.hotp_counter < next_counter)
        .values(hotp_counter=next_counter, last_used_at=now),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(token, "hotp_counter", next_counter)
    set_committed_value(token, "last_used_at", now)
    return True


def verify_hotp(
    session: Session, token: Token, code: str, *, box: SecretBox, window: int, now: datetime
) -> OtpResult:
    """Accept the code for one of the next ``window`` counter values, once."""
    digits = token.digits or 6
    code = _without_token_id(token, code)
    if token.kind is not TokenKind.OATH_HOTP or not _well_formed(code, digits):
        return OtpResult(OtpReason.MALFORMED, token)
    seed = _seed_b32(token, box)
    if seed is None:
        return OtpResult(OtpReason.BACKEND_ERROR, token)
    matched = _find_hotp(pyotp.HOTP(seed, digits=digits), code, token.hotp_counter, window)
    if matched is None:
        return OtpResult(OtpReason.BAD_OTP, token)
    advanced = _advance_hotp(session, token, matched + 1, now)
    refused = status_reason(token)
    if refused is not None:
        return OtpResult(refused, token)
    return OtpResult(OtpReason.OK if advanced else OtpReason.REPLAYED, token)


def verify_totp(
    session: Session, token: Token, code: str, *, box: SecretBox, now: datetime
) -> OtpResult:
    """Accept the code of the current step or a neighbouring one, never a step twice."""
    digits = token.digits or 6
    if token.kind is not TokenKind.TOTP or not _well_formed(code, digits):
        return OtpResult(OtpReason.MALFORMED, token)
    seed = _seed_b32(token, box)
    if seed is None:
        return OtpResult(OtpReason.BACKEND_ERROR, token)
    totp = pyotp.TOTP(seed, digits=digits, interval=TOTP_STEP_SECONDS)
    current = totp.timecode(now)
    steps = range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1)
    matched = next((s for s in steps if hmac.compare_digest(totp.generate_otp(s), code)), None)
    if matched is None:
        return OtpResult(OtpReason.BAD_OTP, token)
    result = session.execute(
        update(Token)
        .where(
            Token.id == token.id,
            or_(Token.totp_last_step.is_(None), Token.totp_last_step < matched),
        )
        .values(totp_last_step=matched, last_used_at=now),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return OtpResult(OtpReason.REPLAYED, token)
    set_committed_value(token, "totp_last_step", matched)
    refused = status_reason(token)
    return OtpResult(refused or OtpReason.OK, token)


def resync_hotp(
    session: Session, token: Token, first: str, second: str, *, box: SecretBox, now: datetime
) -> OtpResult:
    """§ 6.1 Resynchronisierung: two consecutive codes anywhere in a wide window."""
    digits = token.digits or 6
    if not (_well_formed(first, digits) and _well_formed(second, digits)):
        return OtpResult(OtpReason.MALFORMED, token)
    seed = _seed_b32(token, box)
    if seed is None:
        return OtpResult(OtpReason.BACKEND_ERROR, token)
    hotp = pyotp.HOTP(seed, digits=digits)
    for counter in range(token.hotp_counter, token.hotp_counter + RESYNC_WINDOW):
        if hmac.compare_digest(hotp.at(counter), first) and hmac.compare_digest(
            hotp.at(counter + 1), second
        ):
            advanced = _advance_hotp(session, token, counter + 2, now)
            return OtpResult(OtpReason.OK if advanced else OtpReason.REPLAYED, token)
    return OtpResult(OtpReason.BAD_OTP, token)
