"""Admin pages: every route for every role, the dashboard, search, practice and user pages,
and outside text shown harmlessly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import practices, users
from flexnet.db import utcnow
from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import AuthEvent, Practice, StaffRole, TerminationBy, UserKind
from flexnet.provisioning import issuance
from flexnet.web import state
from flexnet.web.admin import ROUTE_ROLES
from tests.conftest import BOX, STAFF
from tests.support.admin import add_staff, csrf, guarded_routes, signed_in
from tests.support.seed import add_login

ROLES = {"anna": StaffRole.ADMIN, "bernd": StaffRole.HELPDESK, "carla": StaffRole.AUDITOR}


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as db:
        for name, role in ROLES.items():
            add_staff(db, name, role)
        add_login(
            db,
            BOX,
            bsnr="881234500",
            username="emuster",
            password="Sommer-Regen-2026!",
            serial="9000001",
        )
    yield application
    state(application).database.dispose()


def figure(page: str, label: str) -> int:
    """The dashboard's first figure in the row ``label`` (a link to its list)."""
    found = re.search(
        rf'<th scope="row">{re.escape(label)}</th><td[^>]*>(?:<a [^>]*>)?([\d.]+)<', page
    )
    assert found, label
    return int(found.group(1).replace(".", ""))


@pytest.fixture
def clients(app: Flask) -> dict[StaffRole, FlaskClient]:
    return {role: signed_in(app, name) for name, role in ROLES.items()}


def test_every_route_answers_each_role_as_its_table_says(
    app: Flask, clients: dict[StaffRole, FlaskClient]
) -> None:
    routes = guarded_routes(app, dict(ROUTE_ROLES))

    for endpoint, (url, methods) in routes.items():
        for role, client in clients.items():
            if "GET" in methods:
                response = client.get(url)
            else:
                response = client.post(url, data={"csrf_token": csrf(client, "/admin/")})
            if role in ROUTE_ROLES[endpoint]:
                assert response.status_code != 403, (endpoint, role)
                assert response.status_code < 500, (endpoint, role)
            else:
                assert response.status_code == 403, (endpoint, role)
                assert "Keine Berechtigung" in response.get_data(as_text=True)


def test_dashboard_counts_and_warns_while_there_is_one_admin(
    clients: dict[StaffRole, FlaskClient],
) -> None:
    page = clients[StaffRole.AUDITOR].get("/admin/").get_data(as_text=True)

    assert "Revision (nur lesen)" in page
    assert "Es gibt 1 aktive Administration" in page
    assert figure(page, "aktiv") == 1  # the practice (the first card)


def test_dashboard_counts_the_letters_due_apart_from_those_held_back(
    app: Flask, clients: dict[StaffRole, FlaskClient]
) -> None:
    now = utcnow()
    with state(app).database.session() as db:
        # The practice's key is in use: its new users' letters go with the next run.
        for name in ("neu1", "neu2"):
            issuance.add_user(
                db, username=name, bsnr="881234500", kind=UserKind.STAFF, actor=STAFF, now=now
            )
        # No terms accepted (§ 1.3): these letters wait, whatever the run.
        practices.add_practice(
            db,
            bsnr="881234600",
            name="Praxis ohne Annahme",
            street="Weg 2",
            zip_code="39104",
            city="Magdeburg",
            actor=STAFF,
            now=now,
        )
        for name in ("wartet1", "wartet2", "wartet3"):
            issuance.add_user(
                db, username=name, bsnr="881234600", kind=UserKind.STAFF, actor=STAFF, now=now
            )

    page = clients[StaffRole.AUDITOR].get("/admin/").get_data(as_text=True)

    assert figure(page, "Briefe für den nächsten Postlauf") == 2
    assert figure(page, "Briefe, die zurückgehalten werden") == 3


def test_practice_and_user_pages_say_which_letters_wait_and_why(
    app: Flask, clients: dict[StaffRole, FlaskClient]
) -> None:
    now = utcnow()
    with state(app).database.session() as db:
        issuance.add_user(
            db, username="neu", bsnr="881234500", kind=UserKind.STAFF, actor=STAFF, now=now
        )
        practices.add_practice(
            db,
            bsnr="881234600",
            name="Praxis ohne Annahme",
            street="Weg 2",
            zip_code="39104",
            city="Magdeburg",
            actor=STAFF,
            now=now,
        )
        issuance.add_user(
            db, username="spaeter", bsnr="881234600", kind=UserKind.STAFF, actor=STAFF, now=now
        )
    auditor = clients[StaffRole.AUDITOR]

    due = auditor.get("/admin/practices/881234500").get_data(as_text=True)
    held = auditor.get("/admin/practices/881234600").get_data(as_text=True)
    held_user = auditor.get("/admin/users/spaeter").get_data(as_text=True)

    assert "Zugangsdaten neu: fällig für den nächsten Versandlauf" in due
    for page in (held, held_user):
        assert "Zugangsdaten spaeter: wartet: Nutzungsbedingungen nicht angenommen" in page
        assert "nächsten Versandlauf" not in page


@pytest.mark.parametrize(
    ("query", "kind"),
    [("8812", "BSNR"), ("praxis", "Praxis"), ("emust", "Benutzer"), ("9000001", "Yubikey")],
)
def test_search_finds_by_each_kind_of_name(
    clients: dict[StaffRole, FlaskClient], query: str, kind: str
) -> None:
    page = clients[StaffRole.HELPDESK].get(f"/admin/search?q={query}").get_data(as_text=True)

    assert f"<td>{kind}</td>" in page
    assert 'href="/admin/practices/881234500"' in page


@pytest.mark.parametrize("query", ["MÜLLER", "mueller", "KOETHEN", "köthen", "JÜRGEN GROSS"])
def test_search_folds_case_and_umlauts(
    app: Flask, clients: dict[StaffRole, FlaskClient], query: str
) -> None:
    with state(app).database.session() as db:
        add_login(db, BOX, bsnr="881234511", serial="9000011")
        practice = db.scalars(select(Practice).where(Practice.bsnr == "881234511")).one()
        practice.name, practice.city = "Praxis Dr. Müller", "Köthen (Anhalt)"
        users.create_user(
            db,
            username="jgross",
            bsnr="881234511",
            kind=UserKind.STAFF,
            name="Jürgen Groß",
            actor=STAFF,
            now=utcnow(),
        )

    page = clients[StaffRole.HELPDESK].get("/admin/search", query_string={"q": query})

    assert 'href="/admin/practices/881234511"' in page.get_data(as_text=True)


def test_search_treats_wildcards_as_text(clients: dict[StaffRole, FlaskClient]) -> None:
    page = clients[StaffRole.HELPDESK].get("/admin/search?q=%25").get_data(as_text=True)

    assert "Keine Treffer" in page


def test_practice_page_shows_users_key_and_history(clients: dict[StaffRole, FlaskClient]) -> None:
    response = clients[StaffRole.AUDITOR].get("/admin/practices/881234500")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'href="/admin/users/emuster"' in page
    assert "9000001" in page
    assert "practice:record:create" in page  # from the audit trail


def test_user_page_and_unknown_records(clients: dict[StaffRole, FlaskClient]) -> None:
    client = clients[StaffRole.AUDITOR]

    assert "Benutzer emuster" in client.get("/admin/users/emuster").get_data(as_text=True)
    assert client.get("/admin/users/niemand").status_code == 404
    assert client.get("/admin/practices/999999999").status_code == 404
    assert client.get("/admin/practices/kaputt").status_code == 404


def test_outside_text_is_escaped_and_control_characters_are_shown(
    app: Flask, clients: dict[StaffRole, FlaskClient]
) -> None:
    with state(app).database.session() as db:
        db.execute(
            update(Practice).values(name="<script>alert(1)</script> Praxis \x1b[31m\u202eRot")
        )

    page = clients[StaffRole.HELPDESK].get("/admin/practices/881234500").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in page and "\u202e" not in page
    assert "\\x1b[31m\\u202eRot" in page


def test_dashboard_lists_locks_within_eight_weeks(
    app: Flask, clients: dict[StaffRole, FlaskClient]
) -> None:
    with state(app).database.session() as db:
        locks.terminate(
            db,
            bsnr="881234500",
            by=TerminationBy.MEMBER,
            notice_date=utcnow().astimezone(BERLIN).date(),
            actor=STAFF,
            now=utcnow(),
        )

    page = clients[StaffRole.AUDITOR].get("/admin/").get_data(as_text=True)

    assert "Sperren innerhalb von 8 Wochen (1)" in page
    assert "BSNR 881234500" in page


def test_every_state_changing_admin_route_refuses_a_post_without_csrf_token(
    app: Flask, clients: dict[StaffRole, FlaskClient]
) -> None:
    admin = clients[StaffRole.ADMIN]
    posting = [
        url for url, methods in guarded_routes(app, dict(ROUTE_ROLES)).values() if "POST" in methods
    ]

    answers = {url: admin.post(url, data={"confirm": "881234500"}).status_code for url in posting}

    assert len(posting) >= 15
    assert set(answers.values()) == {400}, answers
    assert "Keine Berechtigung" not in admin.get("/admin/").get_data(as_text=True)


def test_dashboard_flags_a_spike_of_rejected_logins(
    app: Flask, clients: dict[StaffRole, FlaskClient]
) -> None:
    before = clients[StaffRole.AUDITOR].get("/admin/").get_data(as_text=True)
    with state(app).database.session() as db:
        for n in range(25):
            db.add(
                AuthEvent(
                    at=utcnow() - timedelta(minutes=n),
                    channel="radius",
                    username="emuster",
                    client="asa-1",
                    source_ip="203.0.113.9",
                    outcome="reject",
                    reason="password_wrong",
                )
            )

    after = clients[StaffRole.AUDITOR].get("/admin/").get_data(as_text=True)

    assert "Auffällig viele abgelehnte Anmeldungen" not in before
    assert "Auffällig viele abgelehnte Anmeldungen in der letzten Stunde" in after


def test_admins_read_the_settings_in_force(clients: dict[StaffRole, FlaskClient]) -> None:
    page = clients[StaffRole.ADMIN].get("/admin/settings").get_data(as_text=True)

    assert "12 Zeichen" in page and "3 Werktage nach dem Yubikey" in page
    assert clients[StaffRole.HELPDESK].get("/admin/settings").status_code == 403
