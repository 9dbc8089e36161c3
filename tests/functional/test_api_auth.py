"""POST /api/v1/auth: the same pipeline for portals that share the password (§ 5.4)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import users
from flexnet.clients import apiclients
from flexnet.db import utcnow
from flexnet.models import AuthEvent, User
from flexnet.web import api, state
from tests.conftest import BOX, NOW, STAFF
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

PASSWORD = "Sommer-Regen-2026!"


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    application = create_app()
    yield application
    state(application).database.dispose()


@pytest.fixture
def seeded(app: Flask) -> tuple[FlaskClient, dict[str, str], SimulatedKey]:
    now = NOW.replace(day=22)
    with state(app).database.session() as session:
        key = add_login(session, BOX, username="emuster", password=PASSWORD, now=now)
        _, with_otp = apiclients.add_client(
            session, name="BD-Online", require_otp=True, actor=STAFF, now=now
        )
        _, password_only = apiclients.add_client(
            session, name="KVSAonline", require_otp=False, actor=STAFF, now=now
        )
    return app.test_client(), {"otp": with_otp, "password": password_only}, key


def post(client: FlaskClient, key: str | None, body: object) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.post("/api/v1/auth", json=body, headers=headers)
    return response.status_code, response.get_json()


def test_client_requiring_otp(seeded: tuple[FlaskClient, dict[str, str], SimulatedKey]) -> None:
    client, keys, key = seeded

    accepted = post(
        client, keys["otp"], {"username": "emuster", "password": PASSWORD, "otp": key.otp()}
    )
    missing = post(client, keys["otp"], {"username": "emuster", "password": PASSWORD})

    assert accepted == (200, {"result": "accept", "profile": "full", "message": None})
    assert missing[0] == 400
    assert missing[1]["title"] == "Ungültige Anfrage"


def test_password_only_client_and_generic_reject(
    app: Flask, seeded: tuple[FlaskClient, dict[str, str], SimulatedKey]
) -> None:
    client, keys, _ = seeded

    good = post(client, keys["password"], {"username": "emuster", "password": PASSWORD})
    wrong = post(client, keys["password"], {"username": "emuster", "password": "Falsch-Falsch-1"})
    unknown = post(client, keys["password"], {"username": "niemand", "password": PASSWORD})

    assert good[1]["result"] == "accept"
    assert wrong == unknown == (200, {"result": "reject", "message": "Anmeldung fehlgeschlagen."})
    with state(app).database.reader() as session:
        logged = [(e.channel, e.client, e.reason) for e in session.scalars(select(AuthEvent))]
    assert logged == [
        ("api", "KVSAonline", "ok"),
        ("api", "KVSAonline", "password_wrong"),
        ("api", "KVSAonline", "user_unknown"),
    ]


@pytest.mark.parametrize("key", [None, "fx_000000000000_nope", "garbage"])
def test_missing_or_wrong_api_key(
    seeded: tuple[FlaskClient, dict[str, str], SimulatedKey], key: str | None
) -> None:
    client, _, _ = seeded

    status, body = post(client, key, {"username": "emuster", "password": PASSWORD})

    assert status == 401
    assert body["status"] == 401


def test_a_disabled_client_is_refused_like_an_unknown_key(
    app: Flask, seeded: tuple[FlaskClient, dict[str, str], SimulatedKey]
) -> None:
    client, keys, _ = seeded
    with state(app).database.session() as session:
        apiclients.set_active(session, name="KVSAonline", active=False, actor=STAFF, now=NOW)

    response = client.post(
        "/api/v1/auth",
        json={"username": "emuster", "password": PASSWORD},
        headers={"Authorization": f"Bearer {keys['password']}"},
    )
    unknown = post(client, "fx_000000000000_nope", {"username": "emuster", "password": PASSWORD})

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert (response.status_code, response.get_json()) == unknown
    with state(app).database.reader() as session:
        assert list(session.scalars(select(AuthEvent))) == []  # no login was checked


@pytest.mark.parametrize("body", [None, [], {"username": 5, "password": PASSWORD}])
def test_malformed_body(
    seeded: tuple[FlaskClient, dict[str, str], SimulatedKey], body: object
) -> None:
    client, keys, _ = seeded

    assert post(client, keys["password"], body)[0] == 400


def test_password_change_is_not_an_accept(
    app: Flask,
    seeded: tuple[FlaskClient, dict[str, str], SimulatedKey],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, keys, _ = seeded
    with state(app).database.session() as session:
        user = users.get_user(session, "emuster")
        user.password_must_change = True

    status, body = post(client, keys["password"], {"username": "emuster", "password": PASSWORD})

    assert status == 200
    assert body["result"] == "password_change_required"


def test_end_user_address_is_taken_from_the_body(
    app: Flask, seeded: tuple[FlaskClient, dict[str, str], SimulatedKey]
) -> None:
    client, keys, _ = seeded

    post(
        client,
        keys["password"],
        {"username": "emuster", "password": "Falsch-Falsch-1", "client_ip": "198.51.100.23"},
    )
    bad = post(
        client,
        keys["password"],
        {"username": "emuster", "password": PASSWORD, "client_ip": "nicht-ip"},
    )

    with state(app).database.reader() as session:
        addresses = [e.source_ip for e in session.scalars(select(AuthEvent))]
    assert addresses == ["198.51.100.23"]
    assert bad[0] == 400


def test_password_only_failures_throttle_that_path_not_the_user(
    app: Flask,
    seeded: tuple[FlaskClient, dict[str, str], SimulatedKey],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, keys, key = seeded
    frozen = utcnow()
    monkeypatch.setattr(api, "utcnow", lambda: frozen)  # all in one failure window
    threshold = state(app).settings.auth.lockout_threshold
    wrong = {"username": "emuster", "password": "Falsch-Falsch-1"}

    failed = [post(client, keys["password"], wrong) for _ in range(threshold)]
    right = post(client, keys["password"], {"username": "emuster", "password": PASSWORD})
    with_key = post(
        client, keys["otp"], {"username": "emuster", "password": PASSWORD, "otp": key.otp()}
    )

    reject = (200, {"result": "reject", "message": "Anmeldung fehlgeschlagen."})
    assert failed == [reject] * threshold
    assert right == reject
    assert with_key[1]["result"] == "accept"
    with state(app).database.reader() as session:
        reasons = [e.reason for e in session.scalars(select(AuthEvent).order_by(AuthEvent.id))]
        user = session.scalars(select(User).where(User.username == "emuster")).one()
    assert reasons == ["password_wrong"] * threshold + ["password_only_throttled", "ok"]
    assert user.failed_logins == 0
