"""'Zugang sofort sperren': username + password lock the account or the practice's key."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import selflock, users
from flexnet.accounts.selflock import SelfLockResult, Target
from flexnet.authn import pipeline
from flexnet.authn.pipeline import Channel, Client, Outcome
from flexnet.clients import nas
from flexnet.db import utcnow
from flexnet.models import (
    LockCause,
    ServiceRequest,
    StaffRole,
    Token,
    TokenStatus,
    User,
    UserStatus,
    VpnSession,
)
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.support.admin import add_staff, signed_in
from tests.support.seed import add_login

PASSWORD = "Sommer-Regen-2026!"


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    now = utcnow()
    with state(application).database.session() as session:
        application.config["TEST_KEY"] = add_login(
            session, BOX, username="emuster", password=PASSWORD, now=now
        )
        users.create_user(
            session,
            username="kollege",
            bsnr="881234500",
            kind=users.UserKind.STAFF,
            migrated_password=PASSWORD,
            actor=STAFF,
            now=now,
        )
        vpn_nas = nas.add_nas(
            session,
            name="vpn-1",
            address="127.0.0.1",
            secret="s" * 20,
            box=BOX,
            actor=STAFF,
            now=now,
        )
        for name in ("emuster", "kollege"):
            user = session.scalars(select(User).where(User.username == name)).one()
            session.add(
                VpnSession(
                    nas_id=vpn_nas.id,
                    acct_session_id=f"s-{name}",
                    username=name,
                    user_id=user.id,
                    started_at=now,
                    updated_at=now,
                    input_octets=0,
                    output_octets=0,
                )
            )
    yield application
    state(application).database.dispose()


def submit(client: FlaskClient, **fields: str) -> tuple[int, str]:
    page = client.get("/self-service/lock").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, page
    response = client.post("/self-service/lock", data={"csrf_token": token.group(1), **fields})
    return response.status_code, response.get_data(as_text=True)


def reload(app: Flask) -> tuple[dict[str, User], Token, list[VpnSession], list[ServiceRequest]]:
    with state(app).database.reader() as session:
        found = {u.username: u for u in session.scalars(select(User))}
        token = session.scalars(select(Token)).one()
        sessions = list(session.scalars(select(VpnSession).order_by(VpnSession.username)))
        reports = list(session.scalars(select(ServiceRequest)))
    return found, token, sessions, reports


def test_lock_my_account(app: Flask) -> None:
    status, page = submit(
        app.test_client(), username="emuster", password=PASSWORD, target="account"
    )

    found, token, sessions, reports = reload(app)
    assert status == 200 and "Ihr Zugang emuster ist gesperrt." in page
    assert "0391 627 7000" in page
    assert found["emuster"].status is UserStatus.LOCKED
    assert found["emuster"].lock_cause is LockCause.SELF_SERVICE
    assert found["kollege"].status is UserStatus.ACTIVE
    assert token.status is TokenStatus.ACTIVE
    assert [s.disconnect_requested_at is not None for s in sessions] == [True, False]
    assert [r.kind.value for r in reports] == ["self_lock"]


def test_lock_the_practice_key_without_having_it(app: Flask) -> None:
    status, page = submit(
        app.test_client(), username="emuster", password=PASSWORD, target="key", key_for_all="y"
    )

    found, token, sessions, reports = reload(app)
    assert status == 200 and "Der Yubikey Ihrer Praxis ist gesperrt" in page
    assert token.status is TokenStatus.LOCKED and token.lock_cause is LockCause.SELF_SERVICE
    assert found["emuster"].status is UserStatus.ACTIVE
    assert all(s.disconnect_requested_at is not None for s in sessions)
    assert [r.kind.value for r in reports] == ["self_lock"]


def test_staff_see_a_self_lock_as_what_happened_with_a_call_back_number_if_given(
    app: Flask,
) -> None:
    with state(app).database.session() as session:
        add_staff(session, "bernd", StaffRole.HELPDESK)
    account = submit(
        app.test_client(),
        username="emuster",
        password=PASSWORD,
        target="account",
        phone="0171 2345678",
    )
    key = submit(
        app.test_client(), username="kollege", password=PASSWORD, target="key", key_for_all="y"
    )
    staff = signed_in(app, "bernd")

    queue = staff.get("/admin/requests").get_data(as_text=True)
    first = staff.get("/admin/requests/1").get_data(as_text=True)
    second = staff.get("/admin/requests/2").get_data(as_text=True)
    public_form = app.test_client().get("/requests/new").get_data(as_text=True)

    assert account[0] == key[0] == 200
    assert queue.count("Selbstsperre") == 2 and "Zugang entsperren" not in queue
    assert "emuster hat am " in first and "den eigenen Zugang emuster gesperrt" in first
    assert "Telefon 0171 2345678" in first
    assert "kollege hat am " in second
    assert "den Yubikey der Praxis (Seriennummer key-" in second
    assert "Telefon" not in second.split("Ansprechpartner", 1)[1].split("</tr>", 1)[0]
    assert "keine Rückrufnummer angegeben" in second
    assert 'value="self_lock"' not in public_form


def test_a_malformed_call_back_number_locks_nothing_and_keeps_the_input(app: Flask) -> None:
    status, page = submit(
        app.test_client(),
        username="emuster",
        password=PASSWORD,
        target="account",
        phone="bitte mobil anrufen",
    )

    found, _, _, reports = reload(app)
    assert status == 400 and "Telefonnummer: bitte nur Ziffern" in page
    assert 'value="emuster"' in page and 'value="bitte mobil anrufen"' in page
    assert PASSWORD not in page
    assert found["emuster"].status is UserStatus.ACTIVE and reports == []


def test_wrong_password_locks_nothing_and_is_not_echoed(app: Flask) -> None:
    status, page = submit(
        app.test_client(),
        username="emuster",
        password="Falsch-Falsch-1",
        target="key",
        key_for_all="y",
    )

    found, token, _, reports = reload(app)
    assert status == 400 and "stimmen nicht" in page
    assert "Falsch-Falsch-1" not in page
    assert token.status is TokenStatus.ACTIVE and reports == []
    # Anyone may know a username: without the key a failure never counts towards a lock.
    assert found["emuster"].failed_logins == 0


def self_lock(app: Flask, password: str, now: datetime) -> SelfLockResult:
    """The self-lock at a chosen moment (the form itself always runs at the present)."""
    flexnet = state(app)
    with flexnet.database.session() as session:
        return selflock.lock_own_access(
            session,
            username="emuster",
            password=password,
            target=Target.ACCOUNT,
            client=Client(Channel.SELF_SERVICE, "self-service", "203.0.113.5"),
            now=now,
            authenticator=flexnet.authenticator,
        )


def vpn_login(app: Flask, now: datetime) -> pipeline.Decision:
    flexnet = state(app)
    with flexnet.database.session() as session:
        return flexnet.authenticator.authenticate(
            session,
            username="emuster",
            password=PASSWORD,
            otp=app.config["TEST_KEY"].otp(),
            client=Client(Channel.RADIUS, "vpn-1", "198.51.100.7"),
            now=now,
        )


def test_a_stranger_with_the_username_cannot_lock_the_owner_out(app: Flask) -> None:
    later = utcnow()
    for _ in range(state(app).settings.auth.hard_lock_after + 1):
        later += timedelta(hours=2)  # past any temporary lock and the failure window
        assert self_lock(app, "Falsch-Falsch-1", later) == SelfLockResult(locked=False)

    found, _, sessions, reports = reload(app)
    assert found["emuster"].status is UserStatus.ACTIVE
    assert found["emuster"].failed_logins == 0
    assert [s.disconnect_requested_at for s in sessions] == [None, None]
    assert reports == []
    assert vpn_login(app, later).outcome is Outcome.ACCEPT


def test_wrong_passwords_pause_the_self_lock_until_the_window_ends(app: Flask) -> None:
    now = utcnow()
    auth_settings = state(app).settings.auth
    for _ in range(auth_settings.lockout_threshold):
        self_lock(app, "Falsch-Falsch-1", now)

    paused = self_lock(app, PASSWORD, now)
    with_key = vpn_login(app, now)
    later = self_lock(app, PASSWORD, now + timedelta(seconds=auth_settings.failure_window_seconds))

    assert paused.locked is False
    assert with_key.outcome is Outcome.ACCEPT
    assert later.locked is True
    assert reload(app)[0]["emuster"].status is UserStatus.LOCKED


def test_an_expired_password_still_locks(app: Flask) -> None:
    with state(app).database.session() as session:
        user = users.get_user(session, "emuster")
        user.password_set_at = utcnow() - timedelta(days=400)

    status, _ = submit(app.test_client(), username="emuster", password=PASSWORD, target="account")

    assert status == 200
    assert reload(app)[0]["emuster"].status is UserStatus.LOCKED


def test_without_csrf_token_nothing_happens(app: Flask) -> None:
    response = app.test_client().post(
        "/self-service/lock",
        data={"username": "emuster", "password": PASSWORD, "target": "account"},
    )

    assert response.status_code == 400
    assert reload(app)[0]["emuster"].status is UserStatus.ACTIVE


def test_after_the_key_lock_its_otps_are_refused(app: Flask) -> None:
    submit(app.test_client(), username="emuster", password=PASSWORD, target="key", key_for_all="y")
    flexnet = state(app)

    with flexnet.database.session() as session:
        decision = flexnet.authenticator.authenticate(
            session,
            username="kollege",
            password=PASSWORD,
            otp=app.config["TEST_KEY"].otp(),
            client=Client(Channel.RADIUS, "vpn-1"),
            now=utcnow(),
        )

    assert decision.outcome is Outcome.REJECT
    assert decision.reason == "key_locked"
