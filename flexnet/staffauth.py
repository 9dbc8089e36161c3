"""Staff sign-in for the admin UI: password, second factor, sessions held on the server.

A sign-in has two steps. The password opens a session that may do one thing only: pass
the second factor (a TOTP code; at the first sign-in the staff member enrols an
authenticator app first). Sessions live in the database, so logout, a password change
or a deactivation ends them whatever cookie a browser still holds; they end after 15
minutes without activity and 12 hours after sign-in in any case. Failed attempts are
counted in the database per username and per source address, so the limit holds
across processes and nodes.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flexnet import audit, passwords, ratelimit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ConflictError
from flexnet.models import StaffAccount, StaffSession
from flexnet.otp.secrets import SecretBox, staff_totp_context

log = logging.getLogger(__name__)

IDLE = timedelta(minutes=15)
LIFETIME = timedelta(hours=12)
THROTTLE_WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 5  # per window: password and second factor each
MAX_FAILURES_PER_SOURCE = 20
TOTP_ISSUER = "KV-FlexNet KVSA"
_TOTP_STEP_SECONDS = 30
_TOTP_DRIFT_STEPS = 1  # one step either side: clocks of phones drift


class Refusal(enum.StrEnum):
    INVALID = "invalid"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class Opened:
    """A session opened by the password; the token goes into the cookie, and nowhere else."""

    token: str
    record: StaffSession


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _throttle_keys(username: str, source_ip: str | None) -> dict[str, int]:
    keys = {f"staff-login:user:{username}": MAX_FAILURES_PER_ACCOUNT}
    if source_ip:
        keys[f"staff-login:ip:{source_ip}"] = MAX_FAILURES_PER_SOURCE
    return keys


def _count_failure(session: Session, keys: dict[str, int], now: datetime) -> None:
    for key in keys:
        ratelimit.record(session, key, window_seconds=THROTTLE_WINDOW_SECONDS, now=now)


def open_session(
    session: Session, *, username: str, password: str, source_ip: str | None, now: datetime
) -> Opened | Refusal:
    """Check the password; on success a session that still needs the second factor."""
    name = username.strip().lower()[:64]
    keys = _throttle_keys(name, source_ip)
    if ratelimit.over_limit(session, keys, window_seconds=THROTTLE_WINDOW_SECONDS, now=now):
        log.warning("staff login throttled: user=%r source=%s", name, source_ip)
        return Refusal.THROTTLED
    account = session.scalar(select(StaffAccount).where(StaffAccount.username == name))
    # An unknown name costs a hash as well: the answer's timing tells nothing.
    checked = passwords.verify(password, account.password_hash if account else None)
    if account is None or not account.active or not checked.ok:
        _count_failure(session, keys, now)
        log.info("staff login refused: user=%r source=%s", name, source_ip)
        return Refusal.INVALID
    token = secrets.token_urlsafe(32)
    record = StaffSession(
        token_hash=token_hash(token),
        staff=account,
        created_at=now,
        last_seen_at=now,
        source_ip=source_ip,
    )
    session.add(record)
    session.flush()
    return Opened(token, record)


def reissue_token(record: StaffSession) -> str:
    """A new cookie token for this session once the second factor is passed: a token
    seen before the sign-in completed (e.g. planted in the browser) is worth nothing."""
    token = secrets.token_urlsafe(32)
    record.token_hash = token_hash(token)
    return token


def resume(session: Session, token: str, *, now: datetime) -> StaffSession | None:
    """The live session of this cookie token, or None (and ended) if it is over."""
    record = session.scalar(
        select(StaffSession).where(
            StaffSession.token_hash == token_hash(token), StaffSession.ended_at.is_(None)
        )
    )
    if record is None:
        return None
    reason = (
        "deactivated"
        if not record.staff.active
        else "idle"
        if now - record.last_seen_at > IDLE
        else "lifetime"
        if now - record.created_at > LIFETIME
        else None
    )
    if reason is not None:
        end(session, record, reason=reason, now=now)
        return None
    record.last_seen_at = now
    return record


def end(session: Session, record: StaffSession, *, reason: str, now: datetime) -> None:
    """End one session (logout, idle, lifetime)."""
    if record.ended_at is None:
        record.ended_at, record.end_reason = now, reason
        if reason == "logout":
            audit.record(
                session,
                AuditTag.STAFF_LOGOUT,
                actor=Actor.staff(record.staff.username),
                subject=Subject("staff", record.staff.username),
                now=now,
            )


def end_all(
    session: Session, staff: StaffAccount, *, reason: str, now: datetime, keep: int | None = None
) -> int:
    """End every live session of a staff member (password change, deactivation), but
    ``keep``. Returns how many ended."""
    query = (
        update(StaffSession)
        .where(StaffSession.staff_id == staff.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    if keep is not None:
        query = query.where(StaffSession.id != keep)
    result = session.execute(query, execution_options={"synchronize_session": False})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- second factor ---------------------------------------------------------------------


def _context(staff: StaffAccount) -> str:
    return staff_totp_context(staff.id)


def begin_enrolment(session: Session, staff: StaffAccount, *, box: SecretBox) -> str:
    """A new TOTP seed for the authenticator app (shown once, as QR code and text); it
    counts only once :func:`confirm_enrolment` has seen a first code from it."""
    if staff.totp_enrolled_at is not None:
        raise ConflictError("Der zweite Faktor ist bereits eingerichtet")
    seed = pyotp.random_base32()
    staff.totp_secret = box.seal(seed.encode("ascii"), context=_context(staff))
    return seed


def provisioning_uri(staff: StaffAccount, seed: str) -> str:
    return pyotp.TOTP(seed).provisioning_uri(name=staff.username, issuer_name=TOTP_ISSUER)


def pending_seed(staff: StaffAccount, *, box: SecretBox) -> str | None:
    """The seed of an enrolment begun but not yet confirmed (to show it again)."""
    if staff.totp_secret is None or staff.totp_enrolled_at is not None:
        return None
    return box.open(staff.totp_secret, context=_context(staff)).decode("ascii")


def confirm_enrolment(
    session: Session, record: StaffSession, code: str, *, box: SecretBox, now: datetime
) -> Refusal | None:
    """The first code from the new seed: enrolled, and this session passes the factor."""
    staff = record.staff
    if staff.totp_enrolled_at is not None or staff.totp_secret is None:
        raise ConflictError("Keine Einrichtung des zweiten Faktors begonnen")
    refused = _check_code(session, record, code, box=box, now=now)
    if refused is not None:
        return refused
    staff.totp_enrolled_at = now
    audit.record(
        session,
        AuditTag.STAFF_TOTP_ENROL,
        actor=Actor.staff(staff.username),
        subject=Subject("staff", staff.username),
        now=now,
    )
    _verified(session, record, now)
    return None


def pass_second_factor(
    session: Session, record: StaffSession, code: str, *, box: SecretBox, now: datetime
) -> Refusal | None:
    """A code from the enrolled authenticator: the session may now act in its role."""
    if record.staff.totp_enrolled_at is None:
        raise ConflictError("Der zweite Faktor ist noch nicht eingerichtet")
    refused = _check_code(session, record, code, box=box, now=now)
    if refused is None:
        _verified(session, record, now)
    return refused


def _check_code(
    session: Session, record: StaffSession, code: str, *, box: SecretBox, now: datetime
) -> Refusal | None:
    """A six-digit code of the current step (± drift), each step accepted once."""
    staff = record.staff
    keys = _throttle_keys(f"{staff.username}:totp", record.source_ip)
    if ratelimit.over_limit(session, keys, window_seconds=THROTTLE_WINDOW_SECONDS, now=now):
        return Refusal.THROTTLED
    seed = box.open(staff.totp_secret or b"", context=_context(staff)).decode("ascii")
    totp = pyotp.TOTP(seed)
    typed = "".join(code.split())
    current = int(now.timestamp()) // _TOTP_STEP_SECONDS
    for step in range(current - _TOTP_DRIFT_STEPS, current + _TOTP_DRIFT_STEPS + 1):
        fresh = staff.totp_last_step is None or step > staff.totp_last_step
        if fresh and hmac.compare_digest(totp.at(step * _TOTP_STEP_SECONDS), typed):
            staff.totp_last_step = step
            return None
    _count_failure(session, keys, now)
    log.info("staff second factor refused: user=%r", staff.username)
    return Refusal.INVALID


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
