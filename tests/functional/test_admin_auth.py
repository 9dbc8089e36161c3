"""Staff sign-in to /admin: password, TOTP (enrolled at first sign-in), server-side
sessions (logout, idle, lifetime, deactivation), throttling, roles, safe redirects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.config import OtpSettings
from flexnet.db import utcnow
from flexnet.models import StaffAccount, StaffRole, StaffSession
from flexnet.otp import importer, stock
from flexnet.otp.stock import get_token
from flexnet.otp.verify import verify_yubico_otp
from flexnet.staff import accounts as staff_accounts
from flexnet.web import state
from flexnet.web.admin import ROUTE_ROLES
from tests.conftest import BOX, STAFF
from tests.functional.test_cli_keys import ykman_line
from tests.support.admin import (
    PASSWORD,
    add_staff,
    change_password,
    code_step,
    cookie,
    csrf,
    enrol,
    enrolment_code,
    guarded_routes,
    password_step,
    signed_in,
)
from tests.support.yubikeys import SimulatedKey


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as db:
        for name, role in (
            ("anna", StaffRole.ADMIN),
            ("bernd", StaffRole.HELPDESK),
            ("carla", StaffRole.AUDITOR),
        ):
            add_staff(db, name, role)
    yield application
    state(application).database.dispose()


def test_first_sign_in_enrols_the_second_factor_before_anything_else(app: Flask) -> None:
    client = app.test_client()

    handed_out = enrolment_code(app, "anna")
    status, location = password_step(client, "anna")
    before = client.get("/admin/")
    client.get(location)  # the page shows the seed, its image the QR code
    qr = client.get("/admin/login/enrol/qr.svg")
    wrong = client.post(
        "/admin/login/enrol",
        data={
            "csrf_token": csrf(client, "/admin/login/enrol"),
            "enrolment_code": handed_out,
            "code": "000000",
        },
    )
    _, after = enrol(client, location, enrolment_code=handed_out)

    assert (status, location) == (302, "/admin/login/enrol?next=/admin/")
    assert before.status_code == 302 and before.headers["Location"].startswith("/admin/login")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml"
    assert wrong.status_code == 401 and "Der Code stimmt nicht" in wrong.get_data(as_text=True)
    assert after == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200 and "Angemeldet als anna" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get("/admin/login/enrol/qr.svg").status_code == 404  # shown once only


def test_later_sign_ins_ask_for_a_fresh_code_and_refuse_a_replayed_one(app: Flask) -> None:
    first = app.test_client()
    password_step(first, "anna")
    secret, _ = enrol(first, enrolment_code=enrolment_code(app, "anna"))
    used = pyotp.TOTP(secret).now()

    second = app.test_client()
    status, location = password_step(second, "anna")
    replayed = code_step(second, used)

    assert (status, location) == (302, "/admin/login/code?next=/admin/")
    assert replayed[0] == 401
    assert second.get("/admin/").status_code == 302
    with state(app).database.session() as db:  # the next time step's code is fresh
        account = db.query(StaffAccount).filter_by(username="anna").one()
        next_code = pyotp.TOTP(secret).at(((account.totp_last_step or 0) + 1) * 30)
    assert code_step(second, next_code) == (302, "/admin/")


def test_wrong_password_keeps_the_name_and_says_what_failed(app: Flask) -> None:
    client = app.test_client()
    response = client.post(
        "/admin/login",
        data={"csrf_token": csrf(client, "/admin/login"), "username": "anna", "password": "x"},
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "Benutzername oder Kennwort ist falsch" in page
    assert 'value="anna"' in page and 'value="x"' not in page


def test_failures_are_throttled_in_the_database_even_with_the_right_password(
    app: Flask,
) -> None:
    client = app.test_client()
    for _ in range(5):
        assert password_step(client, "bernd", "falsch-falsch")[0] == 401

    assert password_step(client, "bernd")[0] == 429
    assert password_step(app.test_client(), "bernd")[0] == 429  # a new browser too
    assert password_step(client, "anna")[0] == 302  # others are not affected


def test_logout_ends_the_session_on_the_server(app: Flask) -> None:
    client = signed_in(app, "anna")
    stolen = cookie(client)

    client.post("/admin/logout", data={"csrf_token": csrf(client, "/admin/")})
    replay = app.test_client()
    replay.set_cookie("flexnet-admin", stolen)

    assert replay.get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    ("column", "age", "reason"),
    [
        ("last_seen_at", timedelta(minutes=16), "idle"),
        ("created_at", timedelta(hours=13), "lifetime"),
    ],
)
def test_sessions_end_after_idle_time_and_lifetime(
    app: Flask, column: str, age: timedelta, reason: str
) -> None:
    client = signed_in(app, "carla")
    with state(app).database.session() as db:
        db.execute(update(StaffSession).values({column: utcnow() - age}))

    assert client.get("/admin/").status_code == 302
    with state(app).database.session() as db:
        ended = db.query(StaffSession).one()
        assert ended.end_reason == reason and ended.ended_at is not None


def test_deactivation_ends_live_sessions(app: Flask) -> None:
    client = signed_in(app, "bernd")
    with state(app).database.session() as db:
        db.execute(
            update(StaffAccount).where(StaffAccount.username == "bernd").values(active=False)
        )

    assert client.get("/admin/").status_code == 302


def test_the_password_step_alone_opens_no_page(app: Flask) -> None:
    client = app.test_client()
    password_step(client, "anna")

    for endpoint, (url, methods) in guarded_routes(app, dict(ROUTE_ROLES)).items():
        method = "GET" if "GET" in methods else "POST"
        response = client.open(
            url, method=method, data={"csrf_token": csrf(client, "/admin/login")}
        )
        assert response.status_code == 302, endpoint
        assert response.headers["Location"].startswith("/admin/login"), endpoint


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin/", "/other"])
def test_next_never_leads_off_the_admin_ui(app: Flask, target: str) -> None:
    client = app.test_client()
    _, enrol_page = password_step(client, "anna", next_=target)

    _, location = enrol(client, enrol_page, enrolment_code=enrolment_code(app, "anna"))

    assert location == "/admin/"


def test_next_leads_back_to_the_page_asked_for(app: Flask) -> None:
    client = app.test_client()
    asked = client.get("/admin/search?q=8812")
    login_page = client.get(asked.headers["Location"]).get_data(as_text=True)
    carried = re.search(r'id="next" name="next" type="hidden" value="([^"]*)"', login_page)
    assert carried, login_page

    _, enrol_page = password_step(client, "anna", next_=carried.group(1))
    _, after = enrol(client, enrol_page, enrolment_code=enrolment_code(app, "anna"))

    assert after == "/admin/search?q=8812"


def test_the_cookie_is_host_only_secure_httponly_and_strict(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    application = create_app()
    with state(application).database.session() as db:
        staff_accounts.add_staff(
            db, username="anna", role=StaffRole.ADMIN, password=PASSWORD, actor=STAFF, now=utcnow()
        )
    client = application.test_client()

    page = client.get("/admin/login", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    response = client.post(
        "/admin/login",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/admin/login"},  # checked for HTTPS (CSRF)
        data={"csrf_token": token.group(1), "username": "anna", "password": PASSWORD},
    )

    header = response.headers["Set-Cookie"]
    assert header.startswith("__Host-flexnet-admin=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in header
    assert "Domain" not in header
    state(application).database.dispose()


# --- from the security review -------------------------------------------------------


def enrol_page_seed(client: FlaskClient) -> str:
    page = client.get("/admin/login/enrol").get_data(as_text=True)
    found = re.search(r'<code class="seed">([A-Z2-7 ]+)</code>', page)
    assert found, page
    return found.group(1).replace(" ", "")


def test_each_enrolling_session_gets_its_own_seed_and_the_others_end(app: Flask) -> None:
    """Whoever else passed the password earlier (e.g. the admin who chose it) holds no
    usable seed once the owner has enrolled."""
    early, owner = app.test_client(), app.test_client()
    password_step(early, "anna")
    password_step(owner, "anna")
    early_seed = enrol_page_seed(early)

    owner_seed, _ = enrol(owner, enrolment_code=enrolment_code(app, "anna"))
    ended = early.get("/admin/login/code")
    password_step(early, "anna")  # signing in again with the seed seen before
    late_code = code_step(early, pyotp.TOTP(early_seed).now())

    assert early_seed != owner_seed
    assert ended.headers["Location"] == "/admin/login"
    assert late_code[0] == 401
    assert early.get("/admin/").status_code == 302


def test_a_password_chosen_by_someone_else_is_changed_first(app: Flask) -> None:
    with state(app).database.session() as db:
        db.execute(update(StaffAccount).values(must_change_password=True))
    client, other = app.test_client(), signed_in(app, "carla")
    password_step(client, "carla")
    code = pyotp.TOTP(_seed_of(app, "carla")).at(utcnow() + timedelta(seconds=30))

    status, location = code_step(client, code)
    blocked = client.get("/admin/search?q=1")
    weak = change_password(client, PASSWORD, "kurz")
    changed = change_password(client, PASSWORD, "Eigenes-Wort-Tulpe-93")

    assert (status, location) == (302, "/admin/password?next=/admin/")
    assert blocked.headers["Location"].startswith("/admin/password")
    assert weak[0] == 400
    assert changed == (302, "/admin/")
    assert client.get("/admin/search?q=1").status_code == 200
    assert other.get("/admin/").status_code == 302  # the other session ended


def _seed_of(app: Flask, username: str) -> str:
    with state(app).database.reader() as db:
        account = db.query(StaffAccount).filter_by(username=username).one()
        return BOX.open(account.totp_secret or b"", context=f"staff-totp:{account.id}").decode()


def test_an_admin_resets_a_lost_second_factor(app: Flask) -> None:
    admin, bernd = signed_in(app, "anna"), signed_in(app, "bernd")

    response = admin.post(
        "/admin/staff/bernd/totp-reset",
        data={"csrf_token": csrf(admin, "/admin/staff"), "confirm": "bernd"},
    )
    again = app.test_client()
    _, location = password_step(again, "bernd")
    handed_out = re.search(r'id="enrolment-code">([A-Z0-9-]+)<', response.get_data(as_text=True))
    assert handed_out, response.get_data(as_text=True)
    enrol(again, location, enrolment_code=handed_out.group(1))
    replay = app.test_client()
    password_step(replay, "bernd")
    with state(app).database.session() as db:  # as if the factor were gone once more
        db.execute(
            update(StaffAccount)
            .where(StaffAccount.username == "bernd")
            .values(totp_enrolled_at=None)
        )
    used_again = replay.post(
        "/admin/login/enrol",
        data={
            "csrf_token": csrf(replay, "/admin/login/enrol"),
            "enrolment_code": handed_out.group(1),
            "code": "123456",
        },
    )

    assert response.status_code == 200
    assert bernd.get("/admin/").status_code == 302
    assert location == "/admin/login/enrol?next=/admin/"
    assert again.get("/admin/").status_code == 200
    assert used_again.status_code == 401 and "Einrichtungscode" in used_again.get_data(as_text=True)


@pytest.mark.parametrize(
    "target", ["/admin/\r\nSet-Cookie:x=1", "/admin/..//evil.example", "/admin/\\\\evil"]
)
def test_odd_next_values_fall_back_to_the_dashboard(app: Flask, target: str) -> None:
    client = app.test_client()
    _, enrol_page = password_step(client, "anna", next_=target)

    _, location = enrol(client, enrol_page, enrolment_code=enrolment_code(app, "anna"))

    assert location == "/admin/"


def test_bad_input_gets_a_clear_answer_not_a_server_error(app: Flask) -> None:
    client = app.test_client()
    assert password_step(client, "an\x00na")[0] == 400  # a NUL is refused before any view
    password_step(client, "anna")
    enrol(client, enrolment_code=enrolment_code(app, "anna"))
    other = app.test_client()
    password_step(other, "anna")

    arabic_digits = code_step(other, "١٢٣٤٥٦")
    huge = client.get("/admin/requests/99999999999999999999")

    assert arabic_digits[0] == 400
    assert huge.status_code == 404
    assert client.get("/admin/search?q=a%00b").status_code == 400


def test_a_stranger_cannot_lock_a_colleague_out_from_another_address(app: Flask) -> None:
    stranger = app.test_client()
    stranger.environ_base["REMOTE_ADDR"] = "198.51.100.66"
    for _ in range(6):
        password_step(stranger, "bernd", "falsch-falsch")
    colleague = app.test_client()
    colleague.environ_base["REMOTE_ADDR"] = "10.1.2.3"

    assert password_step(stranger, "bernd")[0] == 429
    assert password_step(colleague, "bernd")[0] == 302


def test_every_admin_view_is_guarded_or_part_of_the_sign_in(app: Flask) -> None:
    sign_in = {
        "admin.login",
        "admin.code",
        "admin.enrol",
        "admin.enrol_qr",
        "admin.logout",
    }
    admin_views = {
        rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin.")
    }

    assert admin_views - sign_in == set(ROUTE_ROLES)


def test_many_colleagues_signing_in_from_one_office_address_are_not_throttled(
    app: Flask,
) -> None:
    for _ in range(25):  # more than the per-address limit of 20
        client = app.test_client()
        assert password_step(client, "carla")[0] == 302


# --- a Yubikey as second factor -------------------------------------------------------------


def handed_a_yubikey(app: Flask, username: str) -> SimulatedKey:
    key = SimulatedKey.random()
    with state(app).database.session() as db:
        keys = importer.parse(ykman_line("7000009", key).encode())
        importer.import_keys(db, keys, box=BOX, actor=STAFF, now=utcnow())
        stock.assign_to_staff(
            db,
            serial="7000009",
            staff=staff_accounts.get_staff(db, username),
            actor=STAFF,
            now=utcnow(),
        )
    return key


def test_a_staff_members_yubikey_replaces_the_app_and_a_replay_is_refused(app: Flask) -> None:
    key = handed_a_yubikey(app, "bernd")
    client, other = app.test_client(), app.test_client()

    _, location = password_step(client, "bernd")
    otp = key.otp()
    signed = code_step(client, otp)
    password_step(other, "bernd")
    replayed = code_step(other, otp)

    assert location == "/admin/login/code?next=/admin/"  # no app to enrol
    assert signed == (302, "/admin/")
    assert client.get("/admin/").status_code == 200
    assert replayed[0] == 401


def test_someone_elses_yubikey_does_not_pass(app: Flask) -> None:
    key = handed_a_yubikey(app, "bernd")
    client = app.test_client()
    password_step(client, "anna")
    enrol(client, enrolment_code=enrolment_code(app, "anna"))  # anna uses the app
    again = app.test_client()
    password_step(again, "anna")

    assert code_step(again, key.otp())[0] == 401


def test_a_lost_staff_yubikey_is_retired_by_the_factor_reset(app: Flask) -> None:
    key = handed_a_yubikey(app, "bernd")
    admin, bernd = signed_in(app, "anna"), app.test_client()
    password_step(bernd, "bernd")
    assert code_step(bernd, key.otp())[0] == 302

    response = admin.post(
        "/admin/staff/bernd/totp-reset",
        data={"csrf_token": csrf(admin, "/admin/staff"), "confirm": "bernd"},
    )
    client = app.test_client()
    _, location = password_step(client, "bernd")

    assert response.status_code == 200 and 'id="enrolment-code"' in response.get_data(as_text=True)
    assert bernd.get("/admin/").status_code == 302  # the live session ended with the key
    assert location == "/admin/login/enrol?next=/admin/"  # the key no longer counts
    with state(app).database.reader() as db:
        assert get_token(db, "7000009").status.value == "retired"
    assert client.get("/admin/login/code").headers["Location"].startswith("/admin/login/enrol")
    with state(app).database.reader() as db:  # the engine refuses the retired key as well
        refused = verify_yubico_otp(db, key.otp(), box=BOX, settings=OtpSettings(), now=utcnow())
        assert not refused.ok
