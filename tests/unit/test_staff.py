from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from flexnet import passwords, staff
from flexnet.errors import ConflictError, ValidationError
from flexnet.models import StaffRole, Token, TokenStatus, User
from flexnet.otp import stock
from tests.conftest import NOW, STAFF
from tests.support.yubikeys import SimulatedKey


def test_first_admin_is_created_once_with_a_usable_password(session: Session) -> None:
    created = staff.ensure_first_admin(session, now=NOW)

    assert created is not None
    account, password = created
    assert account.role is StaffRole.ADMIN and account.active
    assert passwords.verify(password, account.password_hash).ok
    assert staff.ensure_first_admin(session, now=NOW) is None
    assert staff.active_admin_count(session) == 1


def test_staff_password_needs_twelve_characters(session: Session) -> None:
    with pytest.raises(ValidationError, match="12 Zeichen"):
        staff.add_staff(
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
        staff.add_staff(
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
        staff.add_staff(
            session, username=name, role=StaffRole.ADMIN, password="x" * 16, actor=STAFF, now=NOW
        )
    token, _ = make_yubikey(status=TokenStatus.STOCK)
    anna = staff.get_staff(session, "it-anna")
    stock.assign_to_staff(session, serial=token.serial, staff=anna, actor=STAFF, now=NOW)

    staff.deactivate_staff(session, username="it-anna", actor=STAFF, now=NOW)

    assert token.status is TokenStatus.RETIRED
