"""The second factor of a staff sign-in: an authenticator app (TOTP) or the staff
member's own Yubikey; enrolling an app needs a one-time enrolment code from an admin.

Every code is checked once and counted before it is checked (``signin.admitted``);
each TOTP step and each Yubikey OTP is accepted once, also when two sessions race (a
conditional UPDATE decides).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

import pyotp
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.config import OtpSettings
from flexnet.errors import ConflictError
from flexnet.models import StaffAccount, StaffSession, Token, TokenStatus
from flexnet.otp import yubico
from flexnet.otp.secrets import SecretBox, staff_totp_context
from flexnet.otp.verify import verify_yubico_otp
from flexnet.staff.signin import Refusal, SignInStep, admitted, end_all, failed, succeeded

TOTP_ISSUER = "KV-FlexNet KVSA"
TOTP_DIGITS = 6
_TOTP_STEP_SECONDS = 30
_TOTP_DRIFT_STEPS = 1  # one step either side: clocks of phones drift


def _enrol_context(record: StaffSession) -> str:
    return f"staff-totp-enrol:{record.id}"


def enrolment_seed(record: StaffSession, *, box: SecretBox) -> str:
    """The TOTP seed this session enrols (made on first use, shown to this session only:
    another session of the account gets a seed of its own)."""
    if record.staff.totp_enrolled_at is not None:
        raise ConflictError("Der zweite Faktor ist bereits eingerichtet")
    if record.enrol_secret is None:
        seed = pyotp.random_base32()
        record.enrol_secret = box.seal(seed.encode("ascii"), context=_enrol_context(record))
        return seed
    return box.open(record.enrol_secret, context=_enrol_context(record)).decode("ascii")


def provisioning_uri(staff: StaffAccount, seed: str) -> str:
    return pyotp.TOTP(seed).provisioning_uri(name=staff.username, issuer_name=TOTP_ISSUER)


def enrolment_code_hash(code: str) -> str:
    """What is stored of an enrolment code: it is random (about 98 bits), so SHA-256 is
    enough; spaces, dashes and case as typed do not matter."""
    typed = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(typed.encode("utf-8", "replace")).hexdigest()


def _enrolment_code_valid(staff: StaffAccount, code: str, now: datetime) -> bool:
    stored, until = staff.enrolment_code_hash, staff.enrolment_code_expires_at
    if stored is None or until is None or now >= until:
        return False
    return hmac.compare_digest(stored, enrolment_code_hash(code))


def confirm_enrolment(
    session: Session,
    record: StaffSession,
    code: str,
    *,
    enrolment_code: str,
    box: SecretBox,
    now: datetime,
) -> Refusal | None:
    """The enrolment code an admin handed out and the first code from this session's
    seed: enrolled (the enrolment code is used up), this session passes the factor, and
    every other session of the account ends. The password alone never enrols a factor:
    whoever has it could otherwise make the account theirs after a factor reset."""
    staff, step, source = record.staff, SignInStep.ENROL, record.source_ip
    if staff.totp_enrolled_at is not None or record.enrol_secret is None:
        raise ConflictError("Keine Einrichtung des zweiten Faktors begonnen")
    seed = enrolment_seed(record, box=box)
    if not admitted(session, step, staff.username, source, now, label=lambda: staff.username):
        return Refusal.THROTTLED
    if not _enrolment_code_valid(staff, enrolment_code, now):
        failed(session, step, staff.username, source, "enrolment_code_wrong", now)
        return Refusal.ENROLMENT_CODE
    refused = _check_code(session, record, seed, code, now, step)
    if refused is not None:
        return refused
    staff.totp_secret = box.seal(seed.encode("ascii"), context=staff_totp_context(staff.id))
    staff.totp_enrolled_at = now
    staff.enrolment_code_hash = staff.enrolment_code_expires_at = None
    record.enrol_secret = None
    end_all(session, staff, reason="enrolled", now=now, keep=record.id)
    audit.record(
        session,
        AuditTag.STAFF_TOTP_ENROL,
        actor=Actor.staff(staff.username),
        subject=Subject("staff", staff.username),
        now=now,
    )
    _verified(session, record, now)
    return None


def has_second_factor(session: Session, staff: StaffAccount) -> bool:
    """An enrolled authenticator app, or a Yubikey handed to this staff member."""
    return staff.totp_enrolled_at is not None or bool(staff_keys(session, staff))


def staff_keys(session: Session, staff: StaffAccount) -> list[Token]:
    """The Yubikeys handed to this staff member and in use."""
    return list(
        session.scalars(
            select(Token).where(Token.staff_id == staff.id, Token.status == TokenStatus.ACTIVE)
        )
    )


def pass_second_factor(
    session: Session,
    record: StaffSession,
    code: str,
    *,
    box: SecretBox,
    otp_settings: OtpSettings,
    now: datetime,
) -> Refusal | None:
    """A code from the enrolled authenticator, or a touch of the staff member's own
    Yubikey (a 44-character OTP): the session may now act in its role."""
    staff, step = record.staff, SignInStep.CODE
    if not has_second_factor(session, staff):
        raise ConflictError("Der zweite Faktor ist noch nicht eingerichtet")
    if not admitted(
        session, step, staff.username, record.source_ip, now, label=lambda: staff.username
    ):
        return Refusal.THROTTLED
    typed = code.strip()
    if yubico.parse(typed) is not None:
        refused = _check_yubikey(session, record, typed, box, otp_settings, now)
    elif staff.totp_secret is not None and staff.totp_enrolled_at is not None:
        seed = box.open(staff.totp_secret, context=staff_totp_context(staff.id)).decode("ascii")
        refused = _check_code(session, record, seed, typed, now, SignInStep.CODE)
    else:
        failed(session, SignInStep.CODE, staff.username, record.source_ip, "no_app", now)
        refused = Refusal.INVALID
    if refused is None:
        _verified(session, record, now)
    return refused


def _check_yubikey(
    session: Session,
    record: StaffSession,
    otp: str,
    box: SecretBox,
    otp_settings: OtpSettings,
    now: datetime,
) -> Refusal | None:
    """The OTP of the key handed to this staff member; replay-safe like every OTP (the
    counters advance with a conditional UPDATE). The attempt is counted already."""
    staff, step, source = record.staff, SignInStep.CODE, record.source_ip
    result = verify_yubico_otp(session, otp, box=box, settings=otp_settings, now=now)
    if not result.ok or result.token is None or result.token.staff_id != staff.id:
        reason = f"yubikey_{result.reason.value}" if not result.ok else "yubikey_not_own"
        failed(session, step, staff.username, source, reason, now)
        return Refusal.INVALID
    succeeded(session, step, staff.username, record.source_ip, now)
    return None


def _check_code(
    session: Session,
    record: StaffSession,
    seed: str,
    code: str,
    now: datetime,
    step: SignInStep,
) -> Refusal | None:
    """A six-digit code of the current step (± drift); each step is accepted once, also
    when two sessions race with the same code (a conditional UPDATE decides). The
    attempt is counted already."""
    staff, source = record.staff, record.source_ip
    typed = "".join(code.split())
    if len(typed) != TOTP_DIGITS or not all(ch in "0123456789" for ch in typed):
        failed(session, step, staff.username, source, "code_malformed", now)
        return Refusal.INVALID
    totp = pyotp.TOTP(seed)
    current = int(now.timestamp()) // _TOTP_STEP_SECONDS
    for tick in range(current - _TOTP_DRIFT_STEPS, current + _TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(tick * _TOTP_STEP_SECONDS), typed) and _claim_step(
            session, staff, tick
        ):
            succeeded(session, step, staff.username, source, now)
            return None
    failed(session, step, staff.username, source, "code_wrong", now)
    return Refusal.INVALID


def _claim_step(session: Session, staff: StaffAccount, step: int) -> bool:
    claimed = session.execute(
        update(StaffAccount)
        .where(
            StaffAccount.id == staff.id,
            or_(StaffAccount.totp_last_step.is_(None), StaffAccount.totp_last_step < step),
        )
        .values(totp_last_step=step),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    if claimed:
        session.expire(staff, ["totp_last_step"])
    return bool(claimed)


def _verified(session: Session, record: StaffSession, now: datetime) -> None:
    record.verified_at = now
    record.staff.last_login_at = now
    audit.record(
        session,
        AuditTag.STAFF_LOGIN,
        actor=Actor.staff(record.staff.username),
        subject=Subject("staff", record.staff.username),
        source_ip=record.source_ip,
        now=now,
    )
