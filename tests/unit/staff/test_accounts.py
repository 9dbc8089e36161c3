from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.audit import Actor
from flexnet.authn import passwords
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle import locks, returns
from flexnet.models import (
    AuditEntry,
    LockCause,
    ReturnCondition,
    StaffRole,
    Token,
    TokenStatus,
    User,
)
from flexnet.otp import stock
from flexnet.provisioning import issuance
from flexnet.staff import accounts as staff_accounts
from flexnet.staff import factor, signin
from tests.conftest import BOX, NOW, STAFF
from tests.support.yubikeys import SimulatedKey


def test_first_admin_is_created_once_with_a_usable_password(session: Session) -> None:
    created = staff_accounts.ensure_first_admin(session, now=NOW)

    assert created is not None
    account, password = created.account, created.password
    assert account.role is StaffRole.ADMIN and account.active
    assert passwords.verify(password, account.password_hash).ok
    assert created.enrolment.expires_at == NOW + timedelta(hours=24)
    assert staff_accounts.ensure_first_admin(session, now=NOW) is None
    assert staff_accounts.active_admin_count(session) == 1


def test_staff_password_needs_twelve_characters(session: Session) -> None:
    with pytest.raises(ValidationError, match="12 Zeichen"):
        staff_accounts.add_staff(
            session,
            username="anna",
            role=StaffRole.HELPDESK,
            password="kurz",
            actor=STAFF,
            now=NOW,
        )


def test_staff_and_practice_usernames_do_not_collide(
    session: Session, make_user: Callable[..., User]
) -> None:
    make_user(username="emuster")

    with pytest.raises(ConflictError, match="Praxis-Benutzer"):
        staff_accounts.add_staff(
            session,
            username="EMuster",
            role=StaffRole.AUDITOR,
            password="lang-genug-fuer-staff",
            actor=STAFF,
            now=NOW,
        )


def test_a_departing_staff_members_yubikey_is_retired(
    session: Session, make_yubikey: Callable[..., tuple[Token, SimulatedKey]]
) -> None:
    """Else it would go on passing the validation protocol for the portals."""
    for name in ("it-anna", "it-ben"):
        staff_accounts.add_staff(
            session, username=name, role=StaffRole.ADMIN, password="x" * 16, actor=STAFF, now=NOW
        )
    token, _ = make_yubikey(status=TokenStatus.STOCK)
    anna = staff_accounts.get_staff(session, "it-anna")
    stock.assign_to_staff(session, serial=token.serial, staff=anna, actor=STAFF, now=NOW)

    staff_accounts.deactivate_staff(session, username="it-anna", actor=STAFF, now=NOW)

    assert token.status is TokenStatus.RETIRED


# --- a staff member's Yubikey is no practice key (issue 15, item 11) ---------------------


@pytest.fixture
def staff_key(
    session: Session, make_yubikey: Callable[..., tuple[Token, SimulatedKey]]
) -> tuple[Token, SimulatedKey]:
    for name in ("it-anna", "it-ben"):
        staff_accounts.add_staff(
            session, username=name, role=StaffRole.ADMIN, password="x" * 16, actor=STAFF, now=NOW
        )
    token, key = make_yubikey(status=TokenStatus.STOCK)
    anna = staff_accounts.get_staff(session, "it-anna")
    stock.assign_to_staff(session, serial=token.serial, staff=anna, actor=STAFF, now=NOW)
    return token, key


PRACTICE_KEY_PATHS = ["lock", "loss", "resync", "return", "return_retired", "assign", "replace"]


@pytest.mark.parametrize("path", PRACTICE_KEY_PATHS)
def test_every_practice_key_path_refuses_a_staff_members_yubikey(
    session: Session,
    staff_key: tuple[Token, SimulatedKey],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
    path: str,
) -> None:
    token, key = staff_key
    serial, today = token.serial, NOW.date()
    if path == "return_retired":  # the lost key, retired by the factor reset, comes back
        staff_accounts.reset_second_factor(session, username="it-anna", actor=STAFF, now=NOW)
    practice_key, _ = make_yubikey()
    assert practice_key.practice is not None
    bsnr = practice_key.practice.bsnr
    calls: dict[str, Callable[[], object]] = {
        "lock": lambda: locks.lock_key(
            session, serial=serial, cause=LockCause.MANUAL, reason="x", actor=STAFF, now=NOW
        ),
        "loss": lambda: locks.lock_key(
            session, serial=serial, cause=LockCause.LOSS, reason="x", actor=STAFF, now=NOW
        ),
        "resync": lambda: stock.resync(
            session,
            serial=serial,
            first=key.otp(),
            second=key.otp(),
            box=BOX,
            actor=STAFF,
            now=NOW,
        ),
        "return": lambda: returns.record_return(
            session,
            serial=serial,
            received_on=today,
            condition=ReturnCondition.GOOD,
            actor=STAFF,
            now=NOW,
        ),
        "assign": lambda: stock.assign(session, serial=serial, bsnr=bsnr, actor=STAFF, now=NOW),
        "replace": lambda: issuance.replace_key(
            session,
            bsnr=bsnr,
            new_serial=serial,
            why=issuance.Replacement.DEFECTIVE,
            at_once=True,
            fee_cents=0,
            actor=STAFF,
            now=NOW,
        ),
    }
    calls["return_retired"] = calls["return"]
    before = token.status

    with pytest.raises(ConflictError, match="zweite Faktor eines Mitarbeiters"):
        calls[path]()

    session.refresh(token)
    assert (token.status, token.staff_id, token.practice_id) == (before, token.staff_id, None)
    assert token.staff_id is not None


# --- enrolment codes: the password alone never enrols a second factor --------------------


def _enrolling(session: Session, username: str) -> tuple[signin.Opened, str]:
    opened = signin.open_session(
        session, username=username, password="x" * 16, source_ip="10.0.0.1", now=NOW
    )
    assert isinstance(opened, signin.Opened)
    return opened, factor.enrolment_seed(opened.record, box=BOX)


def _confirm(
    session: Session, opened: signin.Opened, seed: str, code: str, *, at: datetime = NOW
) -> signin.Refusal | None:
    return factor.confirm_enrolment(
        session, opened.record, pyotp.TOTP(seed).at(at), enrolment_code=code, box=BOX, now=at
    )


@pytest.fixture
def newcomer(session: Session) -> str:
    staff_accounts.add_staff(
        session, username="it-neu", role=StaffRole.HELPDESK, password="x" * 16, actor=STAFF, now=NOW
    )
    session.flush()
    return "it-neu"


def test_an_enrolment_code_is_stored_as_a_hash_and_audited_without_it(
    session: Session, newcomer: str
) -> None:
    issued = staff_accounts.issue_enrolment_code(session, username=newcomer, actor=STAFF, now=NOW)

    account = staff_accounts.get_staff(session, newcomer)
    raw = issued.code.replace("-", "")
    assert len(raw) == 20 and set(raw) <= set("ABCDEFGHJKMNPQRSTVWXYZ23456789")
    assert account.enrolment_code_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert account.enrolment_code_expires_at == NOW + staff_accounts.ENROLMENT_CODE_VALIDITY
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.tag == "staff:enrolment-code:issue")
    ).all()
    assert [(e.actor, e.subject_id) for e in entries] == [(STAFF.name, newcomer)]
    assert raw not in entries[0].data and issued.code not in entries[0].data


def test_an_enrolment_code_works_once_within_24_hours(session: Session, newcomer: str) -> None:
    code = staff_accounts.issue_enrolment_code(
        session, username=newcomer, actor=STAFF, now=NOW
    ).code
    opened, seed = _enrolling(session, newcomer)
    late = NOW + staff_accounts.ENROLMENT_CODE_VALIDITY

    assert _confirm(session, opened, seed, code, at=late) is signin.Refusal.ENROLMENT_CODE
    assert _confirm(session, opened, seed, "x" + code) is signin.Refusal.ENROLMENT_CODE
    assert _confirm(session, opened, seed, code.lower().replace("-", " ")) is None
    account = staff_accounts.get_staff(session, newcomer)
    assert account.totp_enrolled_at == NOW and account.enrolment_code_hash is None


def test_a_new_enrolment_code_replaces_the_earlier_one(session: Session, newcomer: str) -> None:
    first = staff_accounts.issue_enrolment_code(
        session, username=newcomer, actor=STAFF, now=NOW
    ).code
    second = staff_accounts.issue_enrolment_code(
        session, username=newcomer, actor=STAFF, now=NOW
    ).code
    opened, seed = _enrolling(session, newcomer)

    assert _confirm(session, opened, seed, first) is signin.Refusal.ENROLMENT_CODE
    assert _confirm(session, opened, seed, second) is None


def test_no_enrolment_code_while_a_factor_is_there_or_for_a_departed_account(
    session: Session, newcomer: str, staff_key: tuple[Token, SimulatedKey]
) -> None:
    with pytest.raises(ConflictError, match="zurückgesetzt"):
        staff_accounts.issue_enrolment_code(session, username="it-anna", actor=STAFF, now=NOW)
    staff_accounts.deactivate_staff(session, username=newcomer, actor=STAFF, now=NOW)
    with pytest.raises(ConflictError, match="deaktiviert"):
        staff_accounts.issue_enrolment_code(session, username=newcomer, actor=STAFF, now=NOW)


def test_an_admin_resets_a_colleagues_password_to_one_changed_at_the_next_sign_in(
    session: Session,
) -> None:
    account = staff_accounts.add_staff(
        session,
        username="bernd",
        role=StaffRole.HELPDESK,
        password="Erstes-Kennwort-Linde-11",
        actor=STAFF,
        now=NOW,
    )
    account.must_change_password = False
    anna = Actor.staff("anna")

    with pytest.raises(ValidationError, match="12 Zeichen"):
        staff_accounts.reset_password(
            session, username="bernd", password="kurz", actor=anna, now=NOW
        )
    with pytest.raises(ConflictError, match="Kennwort ändern"):
        staff_accounts.reset_password(
            session, username="bernd", password="x" * 20, actor=Actor.staff("bernd"), now=NOW
        )
    staff_accounts.reset_password(
        session, username="bernd", password="Neues-Kennwort-Eiche-22", actor=anna, now=NOW
    )

    assert passwords.verify("Neues-Kennwort-Eiche-22", account.password_hash).ok
    assert account.must_change_password
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.tag == "staff:password:reset")
    ).one()
    assert entry.actor == "anna" and "Eiche" not in entry.data
