from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from flexnet import passwords, staff
from flexnet.errors import ConflictError, ValidationError
from flexnet.models import StaffRole, User
from tests.conftest import NOW, STAFF


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
