"""Staff sign-in for the admin UI: password, second factor, sessions held on the server.

A sign-in has two steps. The password opens a session that may do one thing only: pass
the second factor (``stafffactor``: a TOTP code or the staff member's Yubikey; without
one, the staff member enrols an authenticator app with the one-time enrolment code an
admin handed out, and a seed that only this session ever sees). A password chosen by
someone else (an admin, ``flexnet run``) must then be changed before anything else.
Sessions live in the database, so logout, a password change, a second-factor reset or
a deactivation ends them whatever cookie a browser still holds; they end after 15
minutes without activity and 12 hours after sign-in in any case.

Attempts are counted before they are checked, atomically in the database (so parallel
guesses cannot slip past the limit, and the limit holds across processes and nodes):
per account and address and per address; an attempt these refuse counts nowhere. Many
checked attempts at one account from everywhere only put it on alarm, when each further
address gets two: no stranger can keep a colleague out (``ratelimit.admit_guess``).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.auditformat import AuditKey
from flexnet.authn import passwords, ratelimit
from flexnet.models import StaffAccount, StaffSession

log = logging.getLogger(__name__)

IDLE = timedelta(minutes=15)
LIFETIME = timedelta(hours=12)
THROTTLE_WINDOW_SECONDS = 15 * 60
# Attempts per 15 minutes (each step counted on its own).
MAX_PER_ACCOUNT_AND_SOURCE = 5
MAX_PER_SOURCE = 20
# Checked attempts at one account from all addresses after which it is on alarm: then
# each address has two (one typo of the owner's), never none.
ACCOUNT_ALARM = 30
PER_SOURCE_UNDER_ALARM = 2
LIMITS = ratelimit.GuessLimits(
    per_account_and_source=MAX_PER_ACCOUNT_AND_SOURCE,
    per_source=MAX_PER_SOURCE,
    account_alarm=ACCOUNT_ALARM,
    per_source_under_alarm=PER_SOURCE_UNDER_ALARM,
)


class Refusal(enum.StrEnum):
    INVALID = "invalid"
    THROTTLED = "throttled"
    ENROLMENT_CODE = "enrolment_code"  # missing, wrong, expired or used


# Who failed a sign-in is not known: the audit names the account tried and the address.
SIGN_IN = Actor.system("admin-anmeldung")


@dataclass(frozen=True)
class Opened:
    """A session opened by the password; the token goes into the cookie, and nowhere else."""

    token: str
    record: StaffSession


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


# Without FLEXNET_AUDIT_KEY (tests and tools only) a key of this process stands in.
_PROCESS_KEY = AuditKey(secrets.token_bytes(32))


def _name_key(session: Session, username: str) -> str:
    """The account as it appears in counter keys and logs: a keyed pseudonym, since what
    was typed may be a password typed into the wrong field (a plain hash of it could be
    tested against a dictionary by anyone who reads the audit trail)."""
    return (audit.session_key(session) or _PROCESS_KEY).pseudonym(username)


class SignInStep(enum.StrEnum):
    """The steps a failure is recorded for (throttled each on its own)."""

    LOGIN = "password"  # the first step: username and password
    CODE = "code"  # the second factor: app code or Yubikey
    ENROL = "enrol"  # the first code of a new authenticator app
    CHANGE = "password_change"  # the old password, to change it


_SCOPES = {
    SignInStep.LOGIN: "login",
    SignInStep.CODE: "totp",
    SignInStep.ENROL: "totp",
    SignInStep.CHANGE: "password",
}


def admitted(
    session: Session,
    step: SignInStep,
    account: str,
    source_ip: str | None,
    now: datetime,
    label: Callable[[], str],
) -> bool:
    """Count this attempt before it is checked, if the limits admit it (atomically);
    a refusal is recorded (``label``: the account as the record names it)."""
    admission = ratelimit.admit_guess(
        session,
        f"staff-{_SCOPES[step]}",
        account=account,
        source=source_ip,
        limits=LIMITS,
        window_seconds=THROTTLE_WINDOW_SECONDS,
        now=now,
    )
    if admission is ratelimit.Admission.ADMITTED:
        return True
    # Only the first refusal of a window is audited: a flood costs a log line, no more.
    report = admission is ratelimit.Admission.REFUSED
    failed(session, step, label(), source_ip, "throttled", now, audited=report)
    return False


def failed(
    session: Session,
    step: SignInStep,
    account: str,
    source_ip: str | None,
    reason: str,
    now: datetime,
    *,
    audited: bool = True,
) -> None:
    """A refused step of a staff sign-in, for staff to see: a log line and an audit entry
    naming the account, the address and why (never what was typed)."""
    log.warning(
        "staff sign-in refused: step=%s account=%s source=%s reason=%s",
        step.value,
        account,
        source_ip or "-",
        reason,
    )
    if audited:
        audit.record(
            session,
            AuditTag.STAFF_SIGN_IN_FAIL,
            actor=SIGN_IN,
            subject=Subject("staff", account),
            data={"step": step.value, "reason": reason},
            source_ip=source_ip,
            now=now,
        )


def _label(session: Session, name: str) -> str:
    """The account a typed name names, or a hash of what was typed (it may be a password
    typed into the wrong field)."""
    known = _account(session, name)
    return known.username if known is not None else f"unbekannt:{_name_key(session, name)}"


def _account(session: Session, name: str) -> StaffAccount | None:
    if not name.isprintable() or "\x00" in name:
        return None
    return session.scalar(select(StaffAccount).where(StaffAccount.username == name))


def open_session(
    session: Session, *, username: str, password: str, source_ip: str | None, now: datetime
) -> Opened | Refusal:
    """Check the password; on success a session that still needs the second factor."""
    name = username.strip().lower()[:64]
    step = SignInStep.LOGIN
    if not admitted(
        session, step, _name_key(session, name), source_ip, now, label=lambda: _label(session, name)
    ):
        return Refusal.THROTTLED
    account = _account(session, name)
    # An unknown name costs a hash as well: the answer's timing tells nothing.
    checked = passwords.verify(password, account.password_hash if account else None)
    if account is None or not account.active or not checked.ok:
        reason = (
            "unknown_account"
            if account is None
            else "inactive"
            if not account.active
            else "password_wrong"
        )
        failed(session, step, _label(session, name), source_ip, reason, now)
        return Refusal.INVALID
    succeeded(session, step, _name_key(session, name), source_ip, now)
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


def succeeded(
    session: Session, step: SignInStep, account: str, source_ip: str | None, now: datetime
) -> None:
    """A success counts against no one (``ratelimit.guess_succeeded``)."""
    ratelimit.guess_succeeded(
        session,
        f"staff-{_SCOPES[step]}",
        account=account,
        source=source_ip,
        limits=LIMITS,
        window_seconds=THROTTLE_WINDOW_SECONDS,
        now=now,
    )


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
    reason = _end_reason(record, now)
    if reason is not None:
        end(session, record, reason=reason, now=now)
        return None
    record.last_seen_at = now
    return record


def end_reason_of(session: Session, token: str) -> str | None:
    """Why the session of this cookie token ended (idle, lifetime, logout, password …),
    or None if there is no such session: the sign-in page says so."""
    return session.scalar(
        select(StaffSession.end_reason).where(StaffSession.token_hash == token_hash(token))
    )


def _end_reason(record: StaffSession, now: datetime) -> str | None:
    if not record.staff.active:
        return "deactivated"
    if now - record.last_seen_at > IDLE:
        return "idle"
    if now - record.created_at > LIFETIME:
        return "lifetime"
    return None


def end(session: Session, record: StaffSession, *, reason: str, now: datetime) -> None:
    """End one session (logout, idle, lifetime)."""
    if record.ended_at is None:
        record.ended_at, record.end_reason = now, reason
        record.enrol_secret = None
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
    """End every live session of a staff member (password change, second-factor reset,
    deactivation), but ``keep``. Returns how many ended."""
    query = (
        update(StaffSession)
        .where(StaffSession.staff_id == staff.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason, enrol_secret=None)
    )
    if keep is not None:
        query = query.where(StaffSession.id != keep)
    result = session.execute(query, execution_options={"synchronize_session": False})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- password ----------------------------------------------------------------------------

MIN_PASSWORD_LENGTH = 12


def change_password(
    session: Session,
    record: StaffSession,
    *,
    old: str,
    new: str,
    policy: passwords.PasswordPolicy,
    now: datetime,
) -> passwords.PasswordChange:
    """Change the own password: the old one, the policy; the other sessions end. The
    answer never tells whether the old password was right (``passwords.PasswordChange``):
    rules about the new one alone come first, whatever the old one is."""
    staff, step, source = record.staff, SignInStep.CHANGE, record.source_ip
    problems = passwords.policy_violations(
        new, personal=[staff.username, staff.name or ""], policy=policy
    )
    if problems:
        return passwords.PasswordChange(problems)
    if not admitted(session, step, staff.username, source, now, label=lambda: staff.username):
        return passwords.PasswordChange([passwords.TOO_MANY_CHANGES], throttled=True)
    if not passwords.verify(old, staff.password_hash).ok:
        failed(session, step, staff.username, source, "old_password_wrong", now)
        return passwords.PasswordChange([passwords.wrong_or_reused(0)])
    if passwords.verify(new, staff.password_hash).ok:
        return passwords.PasswordChange([passwords.wrong_or_reused(0)])
    succeeded(session, step, staff.username, source, now)
    staff.password_hash = passwords.hash_password(new)
    staff.password_changed_at = now
    staff.must_change_password = False
    end_all(session, staff, reason="password", now=now, keep=record.id)
    audit.record(
        session,
        AuditTag.STAFF_PASSWORD_CHANGE,
        actor=Actor.staff(staff.username),
        subject=Subject("staff", staff.username),
        now=now,
    )
    return passwords.PasswordChange([])
