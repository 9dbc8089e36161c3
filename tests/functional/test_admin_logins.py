"""The login log: each decision with time, user, practice, channel, NAS, source, outcome and
the reason in German; filters, paging, CSV (a username typed by anyone never becomes a
spreadsheet formula); linked from the user's and the practice's page and the dashboard."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import insert
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.db import utcnow
from flexnet.models import AuthEvent, StaffRole
from flexnet.web import state
from tests.conftest import BOX
from tests.support.admin import add_staff, signed_in
from tests.support.seed import add_login

BSNR = "881234500"
REASONS = ["ok", "password_wrong", "otp_replayed", "user_locked_loss", "source_throttled"]


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    now = utcnow()
    with state(application).database.session() as db:
        add_staff(db, "carla", StaffRole.AUDITOR)
        add_login(db, BOX, bsnr=BSNR, username="emuster", serial="9000001")
        add_login(db, BOX, bsnr="881234600", username="kweiss", serial="9000002")
        rows = []
        for number in range(120):
            reason = REASONS[number % len(REASONS)]
            rows.append(
                {
                    "at": now - timedelta(minutes=number * 7),
                    "channel": "radius",
                    "username": "emuster" if number % 2 == 0 else "kweiss",
                    "bsnr": BSNR if number % 2 == 0 else "881234600",
                    "token_serial": "9000001" if number % 2 == 0 else "9000002",
                    "client": "vpn-magdeburg",
                    "source_ip": f"192.0.2.{number % 50}",
                    "outcome": "accept" if reason == "ok" else "reject",
                    "reason": reason,
                }
            )
        rows.append(
            {
                "at": now - timedelta(minutes=3),
                "channel": "api",
                "username": "=HYPERLINK(1)",
                "client": "kvsaonline",
                "source_ip": "198.51.100.7",
                "outcome": "reject",
                "reason": "user_unknown",
            }
        )
        db.execute(insert(AuthEvent), rows)
    yield application
    state(application).database.dispose()


def rows_of(page: str) -> list[str]:
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    return re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S) if body else []


def test_refused_logins_of_one_user_with_time_source_and_german_reason(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    page = auditor.get("/admin/logins?username=emuster&outcome=reject").get_data(as_text=True)

    rows = rows_of(page)
    assert "Einträge 1–48 von 48" in page
    assert len(rows) == 48
    assert all("emuster" in row and "abgelehnt" in row for row in rows)
    assert "Einmalkennwort schon verwendet" in page
    assert "Benutzer gesperrt (Verlust)" in page
    assert "zu viele Fehlversuche von dieser Adresse" in page
    assert "192.0.2." in rows[0] and "vpn-magdeburg" in rows[0]
    for code in ("otp_replayed", "user_locked_loss", "password_wrong", ">reject<"):
        assert code not in page, code


def test_the_log_pages_newest_first_and_an_unknown_filter_value_is_named(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    first = auditor.get("/admin/logins").get_data(as_text=True)
    second = auditor.get("/admin/logins?page=2").get_data(as_text=True)
    wrong = auditor.get("/admin/logins?outcome=maybe").get_data(as_text=True)

    assert "Einträge 1–50 von 121" in first and "Einträge 51–100 von 121" in second
    assert "=HYPERLINK(1)" in rows_of(first)[1]  # 3 minutes old, after the newest
    assert "Ergebnis: unbekannter Wert, der Filter wurde nicht angewandt." in wrong


def test_the_csv_keeps_the_filter_and_defuses_a_formula_typed_as_username(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    response = auditor.get("/admin/logins?channel=api&format=csv")

    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert table[0] == [
        "Zeit",
        "Benutzer",
        "BSNR",
        "Weg",
        "NAS / Client",
        "Konzentrator",
        "Quelle",
        "Ergebnis",
        "Grund",
    ]
    assert table[1][1:] == [
        "'=HYPERLINK(1)",
        "",
        "Portal (API)",
        "kvsaonline",
        "",
        "198.51.100.7",
        "abgelehnt",
        "Benutzer unbekannt",
    ]
    assert len(table) == 2
    assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}", table[1][0])


def test_behind_a_proxy_the_log_names_the_concentrator_shows_and_filters_it(app: Flask) -> None:
    with state(app).database.session() as db:
        db.execute(
            insert(AuthEvent),
            [
                {
                    "at": utcnow() - timedelta(seconds=number),
                    "channel": "radius",
                    "username": "emuster",
                    "client": "radius-proxy",
                    "concentrator": concentrator,
                    "outcome": "accept",
                    "reason": "ok",
                }
                for number, concentrator in enumerate(
                    ("ip=10.1.0.1 id=asa-magdeburg", "ip=10.1.0.2 id=asa-halle")
                )
            ],
        )
    auditor = signed_in(app, "carla")

    proxied = auditor.get("/admin/logins?client=radius-proxy").get_data(as_text=True)
    halle = auditor.get("/admin/logins?concentrator=asa-halle").get_data(as_text=True)
    exported = auditor.get("/admin/logins?concentrator=10.1.0.1&format=csv").get_data()

    assert [re.findall(r"Konzentrator ([^<]*)<", row) for row in rows_of(proxied)] == [
        ["ip=10.1.0.1 id=asa-magdeburg"],
        ["ip=10.1.0.2 id=asa-halle"],
    ]
    assert len(rows_of(halle)) == 1 and "asa-halle" in rows_of(halle)[0]
    table = list(csv.reader(io.StringIO(exported.decode("utf-8-sig")), delimiter=";"))
    assert [row[4:6] for row in table[1:]] == [["radius-proxy", "ip=10.1.0.1 id=asa-magdeburg"]]


def test_the_user_and_practice_pages_and_the_dashboard_lead_to_the_log(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    user_page = auditor.get("/admin/users/emuster").get_data(as_text=True)
    practice_page = auditor.get(f"/admin/practices/{BSNR}").get_data(as_text=True)
    dashboard = auditor.get("/admin/").get_data(as_text=True)

    assert "/admin/logins?username=emuster" in user_page
    assert f"/admin/logins?bsnr={BSNR}" in practice_page
    assert "/admin/logins?outcome=reject" in dashboard


def test_the_dashboard_draws_logins_per_hour_and_links_its_figures(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    page = auditor.get("/admin/").get_data(as_text=True)

    titles = re.findall(r'<title id="chart-(\w+)-title">([^<]*)</title>', page)
    summary = dict(titles)
    assert "24 angenommen, 97 abgelehnt" in summary["logins"]
    assert "Warnung: nur 0 im Lager" in summary["stock"]
    assert "Sperren nach Fristablauf in den nächsten 8 Wochen: 0" in summary["locks"]
    chart = page[page.index('id="chart-logins-title"') : page.index("</svg>")]
    accepted = re.findall(r"<title>[^<]*: (\d+) angenommen</title>", chart)
    rejected = re.findall(r"<title>[^<]*: (\d+) abgelehnt</title>", chart)
    assert sum(map(int, accepted)) == 24 and sum(map(int, rejected)) == 97
    assert 'href="/admin/practices?status=active"' in page
    assert 'href="/admin/users?status=locked"' in page
    assert "<script" not in page and "style=" not in page
