"""What cannot be undone or hits others is asked once more: a role change (with a warning
when an admin demotes himself), ending a VPN session, confirming a dispatch; and in the
self-service, locking the practice's key for everyone. Nothing happens before the yes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.audit import Actor
from flexnet.clients import nas
from flexnet.db import utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    MailRun,
    MailRunStatus,
    StaffAccount,
    StaffRole,
    Token,
    TokenStatus,
    User,
    VpnSession,
)
from flexnet.web import state
from tests.conftest import BOX
from tests.support.admin import add_staff, csrf, signed_in
from tests.support.seed import add_login

BSNR = "881234500"
PASSWORD = "Sommer-Regen-2026!"


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        add_staff(db, "dieter", StaffRole.ADMIN)
        add_staff(db, "bernd", StaffRole.HELPDESK)
        add_login(db, BOX, bsnr=BSNR, username="emuster", password=PASSWORD, serial="9000001")
        nas.add_nas(
            db,
            name="asa-1",
            address="192.0.2.1",
            secret="ein-langes-gemeinsames-Geheimnis-1",
            box=BOX,
            actor=Actor.staff("anna"),
            now=utcnow(),
        )
        user_id = db.scalar(select(User.id).where(User.username == "emuster"))
        db.add(
            VpnSession(
                nas_id=1,
                acct_session_id="s-1",
                username="emuster",
                user_id=user_id,
                framed_ip="10.8.0.7",
                started_at=utcnow(),
                updated_at=utcnow(),
                input_octets=0,
                output_octets=0,
            )
        )
        db.add(
            MailRun(
                status=MailRunStatus.PRODUCED,
                run_date=utcnow().date(),
                produced_at=utcnow(),
                produced_by="bernd",
            )
        )
    yield application
    state(application).database.dispose()


def post(client: FlaskClient, path: str, page: str, **fields: str) -> tuple[int, str]:
    response = client.post(path, data={"csrf_token": csrf(client, page), **fields})
    return response.status_code, response.get_data(as_text=True)


def hidden(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))


def test_a_role_change_is_asked_once_more_and_an_admin_demoting_himself_is_warned(
    app: Flask,
) -> None:
    admin = signed_in(app, "anna")

    status, asked = post(admin, "/admin/staff/anna/role", "/admin/staff", role="helpdesk")
    with state(app).database.reader() as db:
        unchanged = db.scalar(select(StaffAccount.role).where(StaffAccount.username == "anna"))
    done = admin.post("/admin/staff/anna/role", data=hidden(asked))

    assert status == 200 and unchanged is StaffRole.ADMIN
    assert "Ja, Rolle auf Helpdesk ändern" in asked
    assert "Sie ändern Ihre eigene Rolle" in asked
    assert hidden(asked)["role"] == "helpdesk" and hidden(asked)["confirmed"] == "1"
    assert done.status_code == 302
    with state(app).database.reader() as db:
        role = db.scalar(select(StaffAccount.role).where(StaffAccount.username == "anna"))
        assert role is StaffRole.HELPDESK


def test_another_s_role_change_is_asked_without_the_warning(app: Flask) -> None:
    admin = signed_in(app, "anna")

    _, asked = post(admin, "/admin/staff/bernd/role", "/admin/staff", role="auditor")

    assert "Ja, Rolle auf Revision (nur lesen) ändern" in asked
    assert "Sie ändern Ihre eigene Rolle" not in asked


def test_ending_a_vpn_session_and_confirming_a_dispatch_are_asked_once_more(app: Flask) -> None:
    helpdesk = signed_in(app, "bernd")
    today = utcnow().astimezone(BERLIN).date().isoformat()

    _, session_asked = post(helpdesk, "/admin/sessions/1/disconnect", "/admin/sessions")
    _, run_asked = post(
        helpdesk, "/admin/letters/runs/1/dispatched", "/admin/letters", dispatched_on=today
    )
    with state(app).database.reader() as db:
        assert db.scalars(select(VpnSession)).one().disconnect_requested_at is None
        assert db.scalars(select(MailRun)).one().status is MailRunStatus.PRODUCED

    assert "emuster (10.8.0.7" in session_asked and "Ja, Sitzung trennen" in session_asked
    assert "nicht mehr storniert werden" in run_asked
    helpdesk.post("/admin/sessions/1/disconnect", data=hidden(session_asked))
    helpdesk.post("/admin/letters/runs/1/dispatched", data=hidden(run_asked))
    with state(app).database.reader() as db:
        assert db.scalars(select(VpnSession)).one().disconnect_requested_at is not None
        assert db.scalars(select(MailRun)).one().status is MailRunStatus.DISPATCHED


def test_the_self_service_locks_the_practice_s_key_only_when_told_it_hits_everyone(
    app: Flask,
) -> None:
    client = app.test_client()
    page = client.get("/self-service/lock").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token

    response = client.post(
        "/self-service/lock",
        data={
            "csrf_token": token.group(1),
            "username": "emuster",
            "password": PASSWORD,
            "target": "key",
            "phone": "0391 555",
        },
    )

    answer = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Bitte bestätigen, dass der Yubikey für die ganze Praxis gesperrt wird." in answer
    assert 'value="0391 555"' in answer
    with state(app).database.reader() as db:
        assert db.scalar(select(Token.status)) is TokenStatus.ACTIVE
