"""Choices with consequences are made, never defaulted: every such select starts with
"– bitte wählen –", a form sent without a choice is refused with a German message and
keeps what was typed, and nothing happens."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.models import Practice, ServiceRequest, StaffRole, Token, TokenStatus, User
from flexnet.web import state
from tests.conftest import BOX
from tests.support.admin import add_staff, csrf, signed_in
from tests.support.seed import add_login

BSNR = "881234500"
NOBODY = "– bitte wählen –"


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        add_login(db, BOX, bsnr=BSNR, username="emuster", password="Sommer-Regen-2026!")
    yield application
    state(application).database.dispose()


def first_option(page: str, name: str) -> str:
    """The option a browser shows first for the select ``name``: the selected one, else
    the first."""
    select_html = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select_html, name
    options = re.findall(r"<option([^>]*)>([^<]*)</option>", select_html.group(1))
    chosen = [label for attrs, label in options if "selected" in attrs]
    return (chosen or [options[0][1]])[0]


SELECTS = {
    # page: the selects on it that decide something with consequences
    f"/admin/practices/{BSNR}/lock": ["cause"],
    f"/admin/practices/{BSNR}/terminate": ["by"],
    "/admin/practices/new": ["kind", "terms_channel"],
    f"/admin/practices/{BSNR}/users/new": ["kind"],
    "/admin/keys": ["condition"],
    "/admin/staff": ["role"],
}


def test_each_select_with_consequences_starts_with_a_request_to_choose(app: Flask) -> None:
    admin = signed_in(app, "anna")

    for path, names in SELECTS.items():
        page = admin.get(path).get_data(as_text=True)
        if path == "/admin/staff":  # the add form; each colleague's row has his role
            page = page[page.index("<h2>Mitarbeiter anlegen</h2>") :]
        for name in names:
            assert first_option(page, name) == NOBODY, (path, name)
    public = app.test_client().get("/requests/new").get_data(as_text=True)
    assert first_option(public, "kind") == NOBODY


def test_the_lock_dialog_without_a_cause_or_a_target_locks_nothing_and_keeps_the_reason(
    app: Flask,
) -> None:
    admin = signed_in(app, "anna")
    path = f"/admin/practices/{BSNR}/lock"
    with state(app).database.reader() as db:
        before = db.scalar(select(User.status))

    response = admin.post(
        path,
        data={
            "csrf_token": csrf(admin, path),
            "reason": "Missbrauch gemeldet von Herrn Groß",
            "confirm": BSNR,
        },
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Bitte den Anlass der Sperre wählen." in page
    assert "Bitte wählen, was gesperrt wird." in page
    assert "Missbrauch gemeldet von Herrn Groß" in page
    with state(app).database.reader() as db:
        assert db.scalar(select(Practice.status).where(Practice.bsnr == BSNR)).value == "active"
        assert db.scalar(select(User.status)) is before
        assert db.scalar(select(Token.status)) is TokenStatus.ACTIVE


def test_a_termination_without_its_kind_is_not_recorded(app: Flask) -> None:
    admin = signed_in(app, "anna")
    path = f"/admin/practices/{BSNR}/terminate"

    response = admin.post(
        path,
        data={"csrf_token": csrf(admin, path), "notice_date": "2026-11-20", "confirm": BSNR},
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Bitte wählen, wer kündigt." in page
    assert 'value="2026-11-20"' in page
    with state(app).database.reader() as db:
        assert db.scalar(select(Practice.terminated_by)) is None


def test_the_public_form_without_a_concern_files_nothing(app: Flask) -> None:
    client: FlaskClient = app.test_client()

    response = client.post(
        "/requests/new",
        data={
            "csrf_token": csrf(client, "/requests/new"),
            "bsnr": BSNR,
            "usernames": "emuster",
            "contact_person": "Frau Müller",
            "phone": "0391 123456",
        },
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Bitte Ihr Anliegen wählen." in page
    assert 'value="Frau Müller"' in page
    with state(app).database.reader() as db:
        assert db.scalar(select(func.count()).select_from(ServiceRequest)) == 0
