"""Errors people meet, in German: every HTTP error page, a form sent with a stale or
refused CSRF token (shown again as typed, nothing changed), and a staff session that
ended for inactivity (the sign-in page says so and leads back to the page)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import NoReturn

import pyotp
import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.db import utcnow
from flexnet.models import Practice, ServiceRequest, StaffAccount, StaffRole, StaffSession
from flexnet.web import state
from tests.support.admin import add_staff, csrf, enrol, enrolment_code, password_step, signed_in

ENGLISH = re.compile(r"Bad Request|Not Found|CSRF|referrer|Method Not Allowed|Forbidden|Internal")


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()

    def boom() -> NoReturn:
        raise RuntimeError("unexpected")

    def crowded() -> NoReturn:
        abort(429)

    application.add_url_rule("/admin/test-boom", "test_boom", boom)
    application.add_url_rule("/requests/test-crowded", "test_crowded", crowded)
    with state(application).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        add_staff(db, "carla", StaffRole.AUDITOR)
    yield application
    state(application).database.dispose()


def german(page: str) -> None:
    assert '<html lang="de">' in page
    assert not ENGLISH.search(page), ENGLISH.search(page)


def test_every_error_page_is_german_and_keeps_the_admin_frame(app: Flask) -> None:
    admin = signed_in(app, "anna")
    auditor = signed_in(app, "carla")
    stranger = app.test_client()

    cases = {
        (admin, "GET", "/admin/no-such-page"): (404, "Seite nicht gefunden"),
        (admin, "GET", "/admin/practices/881234599"): (404, "Seite nicht gefunden"),
        (admin, "GET", "/admin/logout"): (405, "Nicht möglich"),
        (auditor, "GET", "/admin/staff"): (403, "Keine Berechtigung"),
        (admin, "GET", "/admin/test-boom"): (500, "Interner Fehler"),
        (stranger, "GET", "/requests/test-crowded"): (429, "Zu viele Anfragen"),
        (stranger, "GET", "/no-such-page"): (404, "Seite nicht gefunden"),
        (stranger, "PUT", "/requests/new"): (405, "Nicht möglich"),
    }
    for (client, method, path), (status, title) in cases.items():
        response = client.open(path, method=method)
        page = response.get_data(as_text=True)
        assert response.status_code == status, path
        assert f"<h1>{title}</h1>" in page, path
        german(page)
        # Signed-in staff keep their navigation on an error page; strangers get none.
        assert ('aria-label="Bereiche"' in page) is (client is not stranger), path


def test_a_stale_form_is_shown_again_as_typed_and_nothing_is_saved(app: Flask) -> None:
    admin = signed_in(app, "anna")
    typed = {
        "bsnr": "881234500",
        "name": "Praxis Dr. Weiß & Kollegen",
        "street": "Breiter Weg 1",
        "zip_code": "39104",
        "city": "Magdeburg",
        "kind": "member",
    }

    response = admin.post("/admin/practices/new", data={"csrf_token": "abgelaufen", **typed})

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    german(page)
    assert "Das Formular war zu lange geöffnet" in page
    assert 'value="Praxis Dr. Weiß &amp; Kollegen"' in page
    assert 'value="Breiter Weg 1"' in page
    with state(app).database.reader() as db:
        assert db.scalar(select(func.count()).select_from(Practice)) == 0
    # The page carries a fresh token: sending it again works.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    again = admin.post("/admin/practices/new", data={"csrf_token": token.group(1), **typed})
    assert again.status_code == 302


def test_a_valid_token_without_the_sites_referrer_changes_nothing_over_https(
    app: Flask,
) -> None:
    client = app.test_client()
    form = {
        "bsnr": "881234500",
        "usernames": "dr-weiss",
        "kind": "new_password",
        "contact_person": "Frau Weiß",
        "phone": "0391 123456",
    }
    page = client.get("/requests/new", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token

    response = client.post(
        "/requests/new",
        data={"csrf_token": token.group(1), **form},
        base_url="https://localhost",
        headers={"Referer": "https://evil.example/form"},
    )

    answer = response.get_data(as_text=True)
    assert response.status_code == 400
    german(answer)
    assert "keinen oder einen fremden Referer" in answer
    assert 'value="Frau Weiß"' in answer
    with state(app).database.reader() as db:
        assert db.scalar(select(func.count()).select_from(ServiceRequest)) == 0


def test_a_stale_sign_in_form_keeps_the_username_but_never_the_password(app: Flask) -> None:
    client = app.test_client()

    response = client.post(
        "/admin/login",
        data={"csrf_token": "alt", "username": "anna", "password": "Geheim-Wort-77"},
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'value="anna"' in page
    assert "Geheim-Wort-77" not in page


def test_a_session_ended_for_inactivity_says_so_and_leads_back_to_the_page(
    app: Flask,
) -> None:
    admin = app.test_client()
    password_step(admin, "anna")
    secret, _ = enrol(admin, enrolment_code=enrolment_code(app, "anna"))
    with state(app).database.session() as db:
        db.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=16)))

    response = admin.get("/admin/audit?actor=anna")

    assert response.status_code == 302
    login = response.headers["Location"]
    assert login.startswith("/admin/login?") and "ended=idle" in login
    page = admin.get(login).get_data(as_text=True)
    assert "nach 15 Minuten ohne Aktivität beendet" in page
    carried = re.search(r'name="next" type="hidden" value="([^"]*)"', page)
    assert carried and carried.group(1) == "/admin/audit?actor=anna"
    # Signing in again leads back to the page that was open.
    status, code_page = password_step(admin, "anna", next_=carried.group(1))
    assert status == 302
    with state(app).database.reader() as db:
        last_step = db.scalar(select(StaffAccount.totp_last_step)) or 0
    signed = admin.post(
        code_page,
        data={
            "csrf_token": csrf(admin, code_page),
            "code": pyotp.TOTP(secret).at((last_step + 1) * 30),
            "next": carried.group(1),
        },
    )
    assert signed.headers["Location"] == "/admin/audit?actor=anna"


def test_a_form_sent_after_the_session_ended_returns_to_the_page_it_was_on(
    app: Flask,
) -> None:
    admin: FlaskClient = signed_in(app, "anna")
    token = csrf(admin, "/admin/practices/new")
    with state(app).database.session() as db:
        db.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=20)))

    response = admin.post(
        "/admin/practices/new",
        data={"csrf_token": token, "bsnr": "881234500"},
        headers={"Referer": "http://localhost/admin/practices/new"},
    )

    assert response.status_code == 302
    assert "next=/admin/practices/new" in response.headers["Location"]
