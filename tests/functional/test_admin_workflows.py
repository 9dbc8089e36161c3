"""Admin workflows: staff accounts (never without an admin, deactivation ends sessions)
and the lock dialog (confirmation by BSNR, input kept on error, unlock)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from flexnet import create_app, staff, users
from flexnet.db import utcnow
from flexnet.models import LockCause, StaffRole, UserStatus
from flexnet.otp.stock import get_token
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.support.admin import PASSWORD, csrf, enrol, password_step, signed_in
from tests.support.seed import add_login

BSNR = "881234500"


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as db:
        for name, role in (("anna", StaffRole.ADMIN), ("bernd", StaffRole.HELPDESK)):
            staff.add_staff(
                db, username=name, role=role, password=PASSWORD, actor=STAFF, now=utcnow()
            )
        add_login(
            db, BOX, bsnr=BSNR, username="emuster", password="Sommer-Regen-2026!", serial="9000001"
        )
    yield application
    state(application).database.dispose()


def post(client: FlaskClient, path: str, form_page: str, **fields: str) -> tuple[int, str]:
    response = client.post(path, data={"csrf_token": csrf(client, form_page), **fields})
    return response.status_code, response.get_data(as_text=True)


# --- staff accounts -------------------------------------------------------------------


def test_the_last_admin_can_be_neither_demoted_nor_deactivated(app: Flask) -> None:
    admin = signed_in(app, "anna")

    demoted = post(admin, "/admin/staff/anna/role", "/admin/staff", role="helpdesk")
    deactivated = post(admin, "/admin/staff/anna/deactivate", "/admin/staff", confirm="anna")

    assert demoted[0] == deactivated[0] == 409
    assert "letzte aktive Administration" in demoted[1]
    assert "Es gibt 1 aktive Administration" in demoted[1]


def test_an_added_staff_member_signs_in_and_a_deactivation_ends_the_session(
    app: Flask,
) -> None:
    admin = signed_in(app, "anna")
    status, _ = post(
        admin,
        "/admin/staff",
        "/admin/staff",
        username="dora",
        name="Dora Neu",
        role="auditor",
        password="Noch-ein-Dienst-Kennwort-7",
    )
    assert status == 302
    with state(app).database.reader() as db:
        assert staff.get_staff(db, "dora").role is StaffRole.AUDITOR
    dora = app.test_client()
    password_step(dora, "dora", "Noch-ein-Dienst-Kennwort-7")
    enrol(dora)
    assert dora.get("/admin/").status_code == 200
    assert dora.get("/admin/staff").status_code == 403  # an auditor reads, does not manage

    wrong = post(admin, "/admin/staff/dora/deactivate", "/admin/staff", confirm="dor")
    right = post(admin, "/admin/staff/dora/deactivate", "/admin/staff", confirm="dora")

    assert wrong[0] == 400 and "genau den Benutzernamen" in wrong[1]
    assert right[0] == 302
    assert dora.get("/admin/").status_code == 302  # signed out at once


def test_a_form_error_keeps_what_was_typed_but_not_the_password(app: Flask) -> None:
    admin = signed_in(app, "anna")

    status, page = post(
        admin,
        "/admin/staff",
        "/admin/staff",
        username="bernd",
        name="Zweiter Bernd",
        role="helpdesk",
        password="Noch-ein-Dienst-Kennwort-7",
    )

    assert status == 400
    assert "bereits angelegt" in page
    assert 'value="Zweiter Bernd"' in page
    assert "Noch-ein-Dienst-Kennwort-7" not in page


# --- the lock dialog ------------------------------------------------------------------


def test_a_wrong_bsnr_locks_nothing_and_keeps_the_input(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    dialog = f"/admin/practices/{BSNR}/lock"

    status, page = post(
        helpdesk,
        dialog,
        dialog,
        what="user",
        user="emuster",
        cause="misuse",
        reason="Anruf: Zugangsdaten weitergegeben",
        confirm="881234599",
    )

    assert status == 400
    assert "Die BSNR stimmt nicht" in page
    assert "Anruf: Zugangsdaten weitergegeben" in page
    with state(app).database.reader() as db:
        assert users.get_user(db, "emuster").status is UserStatus.ACTIVE


def test_locking_a_user_and_unlocking_with_reasons(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    dialog = f"/admin/practices/{BSNR}/lock"

    locked = helpdesk.post(
        dialog,
        data={
            "csrf_token": csrf(helpdesk, dialog),
            "what": "user",
            "user": "emuster",
            "cause": "misuse",
            "reason": "Anruf: Zugangsdaten weitergegeben",
            "confirm": BSNR,
        },
    )
    page = helpdesk.get("/admin/users/emuster").get_data(as_text=True)
    unlock = "/admin/users/emuster/unlock"
    unlocked = post(helpdesk, unlock, unlock, reason="neues Kennwort versandt", confirm="emuster")

    assert locked.status_code == 302
    assert "Anruf: Zugangsdaten weitergegeben" in page
    assert unlocked[0] == 302
    with state(app).database.reader() as db:
        user = users.get_user(db, "emuster")
        assert user.status is not UserStatus.LOCKED and user.lock_cause is None


def test_a_lost_key_is_locked_for_good_from_the_dialog(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    dialog = f"/admin/practices/{BSNR}/lock"

    status, _ = post(
        helpdesk,
        dialog,
        dialog,
        what="key",
        cause="loss",
        reason="Verlustmeldung per Telefon",
        all_credentials="y",
        confirm=BSNR,
    )

    assert status == 302
    with state(app).database.reader() as db:
        assert get_token(db, "9000001").status.value == "lost"
        user = users.get_user(db, "emuster")
        assert user.status is UserStatus.LOCKED and user.lock_cause is LockCause.LOSS
