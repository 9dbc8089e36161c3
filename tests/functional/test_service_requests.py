"""/requests/new: files a request and nothing else; same answer for any BSNR."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.models import AuditEntry, ServiceRequest
from flexnet.web import state
from tests.conftest import BOX
from tests.support.seed import add_login

FORM = {
    "bsnr": "881234500",
    "usernames": "emuster",
    "kind": "new_password",
    "contact_person": "Erika Muster",
    "phone": "0391 123456",
    "message": "Kennwort vergessen",
}


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as session:
        add_login(session, BOX, username="emuster", password="Sommer-Regen-2026!")
    yield application
    state(application).database.dispose()


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/requests/new").get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def post(client: FlaskClient, **changes: str) -> tuple[int, str]:
    data = {**FORM, "csrf_token": csrf_token(client), **changes}
    response = client.post("/requests/new", data=data)
    return response.status_code, response.get_data(as_text=True)


def stored(app: Flask) -> list[ServiceRequest]:
    with state(app).database.reader() as session:
        return list(session.scalars(select(ServiceRequest)))


def test_form_is_german_and_sets_strict_headers(app: Flask) -> None:
    response = app.test_client().get("/requests/new")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Anfrage an den IT-Service" in page and "nur per Brief" in page
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_request_is_filed_and_linked_for_staff(app: Flask) -> None:
    status, page = post(app.test_client())

    assert status == 200 and "Ihre Anfrage ist eingegangen" in page
    (request,) = stored(app)
    assert (request.bsnr, request.kind.value, request.status.value) == (
        "881234500",
        "new_password",
        "open",
    )
    assert request.practice_id is not None
    with state(app).database.reader() as session:
        tags = list(session.scalars(select(AuditEntry.tag)))
    assert "request:service:file" in tags


def test_unknown_bsnr_gets_the_same_answer(app: Flask) -> None:
    known = post(app.test_client())
    unknown = post(app.test_client(), bsnr="889999999")

    assert known == unknown
    assert [r.practice_id is None for r in stored(app)] == [False, True]


def test_errors_are_shown_and_the_input_kept(app: Flask) -> None:
    status, page = post(app.test_client(), bsnr="12345", contact_person="", message="Bitte rasch")

    assert status == 400
    assert "Genau 9 Ziffern." in page and "Bitte ausfüllen." in page
    assert 'value="12345"' in page and "Bitte rasch" in page and 'value="0391 123456"' in page
    assert stored(app) == []


def test_post_without_csrf_token_is_refused(app: Flask) -> None:
    response = app.test_client().post("/requests/new", data=FORM)

    assert response.status_code == 400
    assert stored(app) == []


def test_rate_limited_per_bsnr_and_address_with_a_clear_message(app: Flask) -> None:
    codes = [post(app.test_client(), phone=f"0391 12345{n}")[0] for n in range(4)]
    status, page = post(app.test_client())

    assert codes[:3] == [200, 200, 200] and codes[3] == 429 and status == 429
    assert "Zu viele Anfragen" in page
    with state(app).database.reader() as session:
        assert session.scalar(select(func.count()).select_from(ServiceRequest)) == 3


def test_json_api_needs_no_csrf_token(app: Flask) -> None:
    response = app.test_client().post("/api/v1/auth", json={"username": "x", "password": "y"})

    assert response.status_code == 401  # refused for the missing key, not for CSRF
