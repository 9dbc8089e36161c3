"""Self-service: login with password + OTP, forced and voluntary change, logout, idle time."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from passlib.hash import bcrypt
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import users
from flexnet.authn import passwords
from flexnet.cli import cli
from flexnet.db import utcnow
from flexnet.models import LockCause, StaffAccount, StaffRole, TakenOverPassword
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

PASSWORD = "Sommer-Regen-2026!"
NEW = "Mauer-Tinte-Kolibri-9"


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as session:
        key = add_login(
            session, BOX, username="emuster", password=PASSWORD, now=utcnow() - timedelta(days=3)
        )
    application.config["TEST_KEY"] = key
    yield application
    state(application).database.dispose()


def token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def login(app: Flask, client: FlaskClient, password: str = PASSWORD) -> tuple[int, str]:
    key: SimulatedKey = app.config["TEST_KEY"]
    response = client.post(
        "/self-service/login",
        data={
            "csrf_token": token(client, "/self-service/login"),
            "username": "emuster",
            "password": password,
            "otp": key.otp(),
        },
    )
    return response.status_code, response.headers.get("Location", "")


def change(client: FlaskClient, old: str, new: str, repeat: str | None = None) -> tuple[int, str]:
    response = client.post(
        "/self-service/password",
        data={
            "csrf_token": token(client, "/self-service/password"),
            "old": old,
            "new": new,
            "repeat": repeat if repeat is not None else new,
        },
    )
    return response.status_code, response.get_data(as_text=True)


def test_login_with_password_and_otp(app: Flask) -> None:
    client = app.test_client()

    status, location = login(app, client)
    home = client.get("/self-service/").get_data(as_text=True)

    assert (status, location) == (302, "/self-service/")
    assert "Kennwort ändern" in home and "Abmelden" in home


def test_wrong_password_gets_the_generic_answer(app: Flask) -> None:
    client = app.test_client()
    key: SimulatedKey = app.config["TEST_KEY"]
    response = client.post(
        "/self-service/login",
        data={
            "csrf_token": token(client, "/self-service/login"),
            "username": "emuster",
            "password": "Falsch-Falsch-1",
            "otp": key.otp(),
        },
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "Anmeldung fehlgeschlagen." in page and "Falsch-Falsch-1" not in page
    assert client.get("/self-service/").status_code == 302


def test_expired_password_allows_nothing_but_the_change(app: Flask) -> None:
    with state(app).database.session() as session:
        users.get_user(session, "emuster").password_set_at = utcnow() - timedelta(days=200)
    client = app.test_client()

    status, location = login(app, client)

    assert (status, location) == (302, "/self-service/password")
    assert client.get("/self-service/").headers["Location"] == "/self-service/password"
    assert "muss geändert werden" in client.get("/self-service/password").get_data(as_text=True)
    assert change(client, PASSWORD, NEW)[0] == 302
    assert client.get("/self-service/").status_code == 200


def test_a_weak_taken_over_hash_leads_to_the_change_at_its_first_login(app: Flask) -> None:
    with state(app).database.session() as session:
        user = users.get_user(session, "emuster")
        # As ``flexnet user import`` left it today: the old system's hash, not yet checked.
        user.password_hash, user.password_set_at = bcrypt.hash("abc"), utcnow()
        user.taken_over_password = TakenOverPassword.UNCHECKED
    client = app.test_client()

    status, location = login(app, client, password="abc")
    forced = client.get("/self-service/password").get_data(as_text=True)
    changed = change(client, "abc", NEW)
    again = login(app, app.test_client(), password=NEW)

    assert (status, location) == (302, "/self-service/password")
    assert "muss geändert werden" in forced
    assert changed[0] == 302  # at once: replacing it is no voluntary change
    assert again == (302, "/self-service/")
    with state(app).database.reader() as session:
        assert users.get_user(session, "emuster").taken_over_password is None


def test_change_checks_old_policy_and_repeat_and_ends_other_sessions(app: Flask) -> None:
    mine, other = app.test_client(), app.test_client()
    login(app, mine)
    login(app, other)

    wrong_old = change(mine, "Falsch-Falsch-1", NEW)
    weak = change(mine, PASSWORD, "passwort")
    mismatch = change(mine, PASSWORD, NEW, "Mauer-Tinte-Kolibri-8")
    done = change(mine, PASSWORD, NEW)

    assert wrong_old[0] == 400 and "stimmt das bisherige Kennwort nicht" in wrong_old[1]
    assert weak[0] == 400 and "mindestens 12 Zeichen" in weak[1]
    assert mismatch[0] == 400 and "stimmen nicht überein" in mismatch[1]
    assert done[0] == 302
    assert mine.get("/self-service/").status_code == 200
    assert other.get("/self-service/").headers["Location"] == "/self-service/login"
    with state(app).database.reader() as session:
        assert passwords.verify(NEW, users.get_user(session, "emuster").password_hash).ok


def test_logout_revokes_a_copied_cookie(app: Flask) -> None:
    client = app.test_client()
    login(app, client)
    copied = client.get_cookie("session")
    assert copied is not None

    client.post("/self-service/logout", data={"csrf_token": token(client, "/self-service/")})
    thief = app.test_client()
    thief.set_cookie("session", copied.value)

    assert thief.get("/self-service/").headers["Location"] == "/self-service/login"


def test_idle_logout_after_15_minutes(app: Flask) -> None:
    client = app.test_client()
    login(app, client)
    with client.session_transaction() as session:
        session["ss_seen"] = time.time() - 16 * 60

    assert client.get("/self-service/").headers["Location"] == "/self-service/login"


def lock_by_cli(app: Flask) -> None:
    """Staff lock the user with the CLI (same database as the app: FLEXNET_DATABASE_URL)."""
    with state(app).database.session() as session:
        session.add(StaffAccount(username="akrause", role=StaffRole.HELPDESK, password_hash="-"))
    result = CliRunner().invoke(
        cli, ["--as", "akrause", "lock", "user", "emuster", "--reason", "Kennwort weitergegeben"]
    )
    assert result.exit_code == 0, result.output


def lock_by_domain_function(app: Flask) -> None:
    with state(app).database.session() as session:
        user = users.get_user(session, "emuster")
        users.lock_one(
            session,
            user=user,
            cause=LockCause.MISUSE,
            reason="Missbrauch",
            actor=STAFF,
            now=utcnow(),
        )


def practice_activity_ended_long_ago(app: Flask) -> None:
    """§ 10.3 locks by the date alone, before any job touches the user's row."""
    with state(app).database.session() as session:
        users.get_user(session, "emuster").practice.activity_ended_on = date(2020, 3, 31)


@pytest.mark.parametrize(
    "lock", [lock_by_cli, lock_by_domain_function, practice_activity_ended_long_ago]
)
def test_a_lock_ends_the_self_service_session(app: Flask, lock: Callable[[Flask], None]) -> None:
    client = app.test_client()
    login(app, client)
    csrf = token(client, "/self-service/password")  # the form was open before the lock

    lock(app)
    response = client.post(
        "/self-service/password",
        data={"csrf_token": csrf, "old": PASSWORD, "new": NEW, "repeat": NEW},
    )

    assert response.headers["Location"] == "/self-service/login"
    assert client.get("/self-service/").headers["Location"] == "/self-service/login"
    with state(app).database.reader() as session:
        assert passwords.verify(PASSWORD, users.get_user(session, "emuster").password_hash).ok
