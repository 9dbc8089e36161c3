"""The lists of practices, users and Yubikeys: filters (folding case and umlauts), sorting
by column headers, paging with totals, CSV for German spreadsheets with the page's filters,
and a bounded number of statements however many practices there are."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import practices, users
from flexnet.audit import Actor
from flexnet.db import utcnow
from flexnet.lifecycle import lock_exceptions, locks
from flexnet.lifecycle.locks import LockTarget
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import LockCause, PracticeKind, StaffRole, UserKind
from flexnet.otp import stock
from flexnet.web import state
from tests.conftest import BOX
from tests.support.admin import add_staff, signed_in
from tests.support.seed import add_login

ANNA = Actor.staff("anna")
CITIES = ["Magdeburg", "Schönebeck (Elbe)", "Halle (Saale)"]


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    now = utcnow()
    with state(application).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        add_staff(db, "carla", StaffRole.AUDITOR)
        for number in range(60):
            third = number % 5 == 0
            practice = practices.add_practice(
                db,
                bsnr=f"8800{number:05d}",
                name=f"Praxis Dr. Müller-Weiß {number:02d}"
                if number % 4 == 0
                else f"Praxis {number:02d}",
                street="Breiter Weg 1",
                zip_code="39104",
                city=CITIES[number % 3],
                kind=PracticeKind.THIRD_PARTY if third else PracticeKind.MEMBER,
                actor=ANNA,
                now=now,
            )
            users.create_user(
                db,
                username=f"user{number:02d}",
                bsnr=practice.bsnr,
                kind=UserKind.THIRD_PARTY if third else UserKind.STAFF,
                name="Jörg Schäfer" if number == 7 else f"Person {number}",
                actor=ANNA,
                now=now,
            )
        add_login(db, BOX, bsnr="881234500", username="emuster", serial="9000001")
        db.flush()
        locks.lock(
            db,
            what=LockTarget.PRACTICE,
            identifier="881234500",
            cause=LockCause.MANUAL,
            reason="Verstoß",
            actor=ANNA,
            now=now,
        )
    yield application
    state(application).database.dispose()


def rows_of(page: str) -> list[str]:
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    return re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S) if body else []


def test_the_practice_list_filters_by_city_folding_umlauts_and_pages_with_totals(
    app: Flask,
) -> None:
    admin = signed_in(app, "carla")  # every role reads the lists

    page = admin.get("/admin/practices?city=SCHOENEBECK (ELBE)").get_data(as_text=True)

    assert "Betriebsstätten 1–20 von 20" in page
    assert len(rows_of(page)) == 20
    assert all("Schönebeck (Elbe)" in row for row in rows_of(page))
    everything = admin.get("/admin/practices?page=2").get_data(as_text=True)
    assert "Betriebsstätten 51–61 von 61" in everything
    assert "Seite 2 von 2" in everything


def test_the_practice_list_searches_names_without_umlauts_and_sorts_by_a_header(
    app: Flask,
) -> None:
    admin = signed_in(app, "anna")

    page = admin.get("/admin/practices?q=mueller-weiss&sort=bsnr&dir=desc").get_data(as_text=True)

    bsnrs = re.findall(r"/admin/practices/(\d{9})\"", page)
    assert bsnrs == [f"8800{n:05d}" for n in range(56, -1, -4)]
    assert 'aria-sort="descending"' in page


def test_a_filter_by_kind_and_status_shows_only_those_and_an_unknown_value_says_so(
    app: Flask,
) -> None:
    admin = signed_in(app, "anna")

    third = admin.get("/admin/practices?kind=third_party").get_data(as_text=True)
    locked = admin.get("/admin/practices?status=locked").get_data(as_text=True)
    wrong = admin.get("/admin/practices?status=bogus").get_data(as_text=True)

    assert "von 12" in third
    assert "Betriebsstätten 1–1 von 1" in locked and "881234500" in locked
    assert "Status: unbekannter Wert, der Filter wurde nicht angewandt." in wrong
    assert "von 61" in wrong


def test_the_csv_has_the_page_s_filters_a_bom_semicolons_and_german_dates(app: Flask) -> None:
    admin = signed_in(app, "anna")

    response = admin.get("/admin/practices?city=halle (saale)&format=csv")

    raw = response.get_data()
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert table[0][:3] == ["BSNR", "Name", "Zusatz"]
    assert len(table) == 1 + 20
    assert {row[5] for row in table[1:]} == {"Halle (Saale)"}
    assert {row[6] for row in table[1:]} <= {"Mitgliedspraxis", "Dritter (§ 1 Abs. 1)"}
    assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}", table[1][-1])


def test_the_user_list_finds_a_person_by_name_in_any_spelling(app: Flask) -> None:
    admin = signed_in(app, "anna")

    for query in ("Jörg Schäfer", "joerg schaefer", "SCHAEFER"):
        page = admin.get(f"/admin/users?q={query}").get_data(as_text=True)
        assert "Benutzer 1–1 von 1" in page, query
        assert "user07" in page
    csv_text = admin.get("/admin/users?q=schaefer&format=csv").get_data().decode("utf-8-sig")
    assert csv_text.splitlines()[1].startswith("user07;Jörg Schäfer;")


def test_the_key_list_filters_by_state_in_german(app: Flask) -> None:
    with state(app).database.session() as db:
        for serial, public_id in (("7000001", "cccccccccccb"), ("7000002", "cccccccccccd")):
            stock.register_remote(db, serial=serial, public_id=public_id, actor=ANNA, now=utcnow())
    admin = signed_in(app, "anna")

    stocked = admin.get("/admin/yubikeys?status=stock").get_data(as_text=True)
    locked = admin.get("/admin/yubikeys?status=locked").get_data(as_text=True)

    assert "Yubikeys 1–2 von 2" in stocked and "7000001" in stocked
    assert "9000001" in locked and "7000001" not in locked
    assert ">stock<" not in stocked and ">locked<" not in locked


def test_a_list_page_issues_the_same_few_statements_for_2000_practices(app: Flask) -> None:
    now = utcnow()
    with state(app).database.session() as db:
        for number in range(2000):
            practices.add_practice(
                db,
                bsnr=f"8700{number:05d}",
                name=f"Praxis {number}",
                street="Weg 1",
                zip_code="39104",
                city="Magdeburg",
                actor=ANNA,
                now=now,
            )
    admin = signed_in(app, "anna")
    statements: list[str] = []
    engine = state(app).database.engine

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        page = admin.get("/admin/practices?sort=users&dir=desc").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert "Betriebsstätten 1–50 von 2.061" in page
    assert len(statements) <= 12, statements[-3:]


def test_the_exceptions_in_force_are_listed_soonest_ending_first(app: Flask) -> None:
    today = utcnow().astimezone(BERLIN).date()
    with state(app).database.session() as db:
        for number, days in ((1, 200), (2, 30)):
            bsnr = f"8800{number:05d}"
            practices.end_activity(
                db, bsnr=bsnr, ended_on=today - timedelta(days=340), actor=ANNA, now=utcnow()
            )
            lock_exceptions.grant(
                db,
                bsnr=bsnr,
                until=today + timedelta(days=days),
                reason="Nachfolge in Aussicht",
                decision_ref=f"IT-2026/{number}",
                decided_by="Vorstand",
                actor=ANNA,
                now=utcnow(),
            )
    auditor = signed_in(app, "carla")

    page = auditor.get("/admin/exceptions").get_data(as_text=True)

    assert "Ausnahmen 1–2 von 2" in page
    assert page.index("IT-2026/2") < page.index("IT-2026/1")
    assert "/admin/practices/880000002" in page
