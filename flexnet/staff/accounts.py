"""Staff accounts of the association's IT service (admin, helpdesk, auditor)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts.identifiers import normalize_username
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.authn import passwords
from flexnet.errors import ConflictError, NotFoundError, PreconditionError, ValidationError
from flexnet.models import StaffAccount, StaffRole, TokenStatus, User
from flexnet.staff import factor, signin
from flexnet.textrules import optional_line

MIN_STAFF_PASSWORD_LENGTH = 12
# An enrolment code is handed over in person or by phone and used the same day.
ENROLMENT_CODE_VALIDITY = timedelta(hours=24)
# Without I, L, O, U, 0 and 1, which are read wrongly: 20 characters are about 98 bits.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
_CODE_CHARACTERS = 20


@dataclass(frozen=True)
class EnrolmentCode:
    """A one-time code for enrolling a second factor; shown once, stored as a hash."""

    username: str
    code: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class FirstAdmin:
    """The admin ``ensure_first_admin`` created: password and enrolment code, shown once."""

    account: StaffAccount
    password: str = field(repr=False)
    enrolment: EnrolmentCode


def active_admin_count(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(StaffAccount)
            .where(StaffAccount.role == StaffRole.ADMIN, StaffAccount.active.is_(True))
        )
        or 0
    )


def add_staff(
    session: Session,
    *,
    username: str,
    role: StaffRole,
    password: str,
    actor: Actor,
    now: datetime,
    name: str | None = None,
) -> StaffAccount:
    username = normalize_username(username)
    if session.scalar(select(StaffAccount.id).where(StaffAccount.username == username)):
        raise ConflictError(f"Der Mitarbeiter {username!r} ist bereits angelegt")
    if session.scalar(select(User.id).where(User.username == username)):
        raise ConflictError(f"Der Benutzername {username!r} gehört einem Praxis-Benutzer")
    password = passwords.check_transportable(password)
    if len(password) < MIN_STAFF_PASSWORD_LENGTH:
        raise ValidationError(
            f"Das Kennwort muss mindestens {MIN_STAFF_PASSWORD_LENGTH} Zeichen lang sein"
        )
    account = StaffAccount(
        username=username,
        name=optional_line(name, field="Name", max_length=200),
        role=role,
        password_hash=passwords.hash_password(password),
        # Someone else chose it: changed at the first sign-in.
        must_change_password=True,
        active=True,
        created_at=now,
    )
    session.add(account)
    audit.record(
        session,
        AuditTag.STAFF_ACCOUNT_CREATE,
        actor=actor,
        subject=Subject("staff", username),
        data={"role": role.value},
        now=now,
    )
    return account


def first_admin(session: Session) -> StaffAccount | None:
    """The longest-standing active admin: the one ``flexnet run`` names for signing in."""
    return session.scalar(
        select(StaffAccount)
        .where(StaffAccount.role == StaffRole.ADMIN, StaffAccount.active.is_(True))
        .order_by(StaffAccount.id)
        .limit(1)
    )


def ensure_first_admin(
    session: Session, *, username: str = "admin", now: datetime
) -> FirstAdmin | None:
    """Create an admin with a random password and an enrolment code if there is no
    active admin; the caller shows both exactly once."""
    if active_admin_count(session) > 0:
        return None
    password = secrets.token_urlsafe(18)
    setup = Actor.system("setup")
    account = add_staff(
        session,
        username=username,
        role=StaffRole.ADMIN,
        password=password,
        name="Erster Administrator",
        actor=setup,
        now=now,
    )
    session.flush()  # the enrolment code is issued to the new row
    return FirstAdmin(
        account, password, issue_enrolment_code(session, username=username, actor=setup, now=now)
    )


def issue_enrolment_code(
    session: Session, *, username: str, actor: Actor, now: datetime
) -> EnrolmentCode:
    """A one-time code with which the staff member enrols a second factor at their next
    sign-in (a new account, or after a factor reset); valid 24 hours, replacing an
    earlier one. Only its hash is stored; the audit names who issued it, never the code.
    An account that has a second factor gets none: it is reset first."""
    account = get_staff(session, username)
    if not account.active:
        raise ConflictError(f"{account.username} ist deaktiviert")
    if factor.has_second_factor(session, account):
        raise ConflictError(
            f"{account.username} hat einen zweiten Faktor; einen Einrichtungscode gibt es "
            "erst, wenn er zurückgesetzt ist"
        )
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_CHARACTERS))
    expires_at = now + ENROLMENT_CODE_VALIDITY
    account.enrolment_code_hash = factor.enrolment_code_hash(raw)
    account.enrolment_code_expires_at = expires_at
    audit.record(
        session,
        AuditTag.STAFF_ENROLMENT_CODE,
        actor=actor,
        subject=Subject("staff", account.username),
        data={"expires_at": expires_at.isoformat()},
        now=now,
    )
    shown = "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))
    return EnrolmentCode(account.username, shown, expires_at)


def get_staff(session: Session, username: str) -> StaffAccount:
    account = session.scalar(
        select(StaffAccount).where(StaffAccount.username == username.strip().lower())
    )
    if account is None:
        raise NotFoundError(f"Kein Mitarbeiter {username.strip()!r}")
    return account


def acting_staff(session: Session, *, named: str | None, login: str | None) -> Actor | None:
    """The staff member a command-line change is recorded for: ``named`` (``--as`` or
    ``FLEXNET_ACTOR``) must be an active account that may change things; without it the
    invoking ``login`` counts if an active account of that name exists. None if there is
    no one to name: the caller refuses the change (or, for a job, acts as the system)."""
    if named is not None and named.strip():
        account = session.scalar(
            select(StaffAccount).where(StaffAccount.username == named.strip().lower())
        )
        if account is None or not account.active:
            raise PreconditionError(
                f"{named.strip()!r} ist kein aktives Mitarbeiterkonto; nichts geändert"
            )
    else:
        account = session.scalar(
            select(StaffAccount).where(
                StaffAccount.username == (login or "").strip().lower(),
                StaffAccount.active.is_(True),
            )
        )
        if account is None:
            return None
    if account.role is StaffRole.AUDITOR:
        raise PreconditionError(
            f"{account.username} hat die Rolle auditor und darf nur lesen; nichts geändert"
        )
    return Actor.staff(account.username)


def _keep_an_admin(session: Session, account: StaffAccount) -> None:
    """Never fewer than one active admin (MD § 6(1)): someone must be able to act. The
    admins' rows are locked while counting, so two admins demoting each other at the
    same moment cannot both succeed."""
    if account.role is not StaffRole.ADMIN or not account.active:
        return
    admins = session.scalars(
        select(StaffAccount.id)
        .where(StaffAccount.role == StaffRole.ADMIN, StaffAccount.active.is_(True))
        .order_by(StaffAccount.id)
        .with_for_update()
    ).all()
    if len(admins) <= 1:
        raise ConflictError("Das ist die letzte aktive Administration; zuerst eine weitere anlegen")


def deactivate_staff(
    session: Session, *, username: str, actor: Actor, now: datetime
) -> StaffAccount:
    """A departing staff member loses access at once: account off, sessions ended, their
    Yubikey retired (it would otherwise still pass the validation protocol, MD § 6(4));
    the account stays for the audit trail."""
    account = get_staff(session, username)
    if not account.active:
        raise ConflictError(f"{account.username} ist bereits deaktiviert")
    _keep_an_admin(session, account)
    account.active = False
    account.deactivated_at = now
    ended = signin.end_all(session, account, reason="deactivated", now=now)
    retired = _retire_keys(session, account)
    audit.record(
        session,
        AuditTag.STAFF_ACCOUNT_DEACTIVATE,
        actor=actor,
        subject=Subject("staff", account.username),
        data={"sessions_ended": ended, "keys_retired": retired},
        now=now,
    )
    return account


def _retire_keys(session: Session, account: StaffAccount) -> list[str]:
    """Retire the staff member's Yubikeys for good; their serials."""
    keys = factor.staff_keys(session, account)
    for key in keys:
        key.status = TokenStatus.RETIRED
    return [key.serial for key in keys]


def change_role(
    session: Session, *, username: str, role: StaffRole, actor: Actor, now: datetime
) -> StaffAccount:
    account = get_staff(session, username)
    if account.role is role:
        raise ConflictError(f"{account.username} hat diese Rolle bereits")
    if role is not StaffRole.ADMIN:
        _keep_an_admin(session, account)
    previous = account.role
    account.role = role
    audit.record(
        session,
        AuditTag.STAFF_ROLE_CHANGE,
        actor=actor,
        subject=Subject("staff", account.username),
        data={"from": previous.value, "to": role.value},
        now=now,
    )
    return account


def reset_password(
    session: Session, *, username: str, password: str, actor: Actor, now: datetime
) -> StaffAccount:
    """A colleague forgot the password: an admin gives a new first password, which the
    colleague changes at the next sign-in (as after ``add_staff``); live sessions end.
    The own password is changed with the old one (``signin.change_password``) instead."""
    account = get_staff(session, username)
    if not account.active:
        raise ConflictError(f"{account.username} ist deaktiviert")
    if actor.name == account.username:
        raise ConflictError("Das eigene Kennwort bitte unter „Kennwort ändern“ ändern")
    password = passwords.check_transportable(password)
    if len(password) < MIN_STAFF_PASSWORD_LENGTH:
        raise ValidationError(
            f"Das Kennwort muss mindestens {MIN_STAFF_PASSWORD_LENGTH} Zeichen lang sein"
        )
    account.password_hash = passwords.hash_password(password)
    account.password_changed_at = now
    account.must_change_password = True  # someone else chose it
    ended = signin.end_all(session, account, reason="password", now=now)
    audit.record(
        session,
        AuditTag.STAFF_PASSWORD_RESET,
        actor=actor,
        subject=Subject("staff", account.username),
        data={"sessions_ended": ended},
        now=now,
    )
    return account


def reset_second_factor(
    session: Session, *, username: str, actor: Actor, now: datetime
) -> StaffAccount:
    """A lost or replaced phone or Yubikey: the app's seed is dropped and the staff
    member's Yubikey retired for good; the next sign-in enrols anew; live sessions end."""
    account = get_staff(session, username)
    keys = factor.staff_keys(session, account)
    if account.totp_enrolled_at is None and not keys:
        raise ConflictError(f"{account.username} hat noch keinen zweiten Faktor eingerichtet")
    account.totp_secret = account.totp_enrolled_at = account.totp_last_step = None
    account.enrolment_code_hash = account.enrolment_code_expires_at = None
    retired = _retire_keys(session, account)
    ended = signin.end_all(session, account, reason="totp_reset", now=now)
    audit.record(
        session,
        AuditTag.STAFF_TOTP_RESET,
        actor=actor,
        subject=Subject("staff", account.username),
        data={"sessions_ended": ended, "keys_retired": retired},
        now=now,
    )
    return account
