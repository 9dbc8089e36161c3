"""The fee ledger's filters, sum and steps through the Flask test client, on SQLite and
PostgreSQL alike (the browser journeys in ``test_admin_ledger_browser`` run on SQLite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.db import utcnow
from flexnet.lifecycle import locks
from flexnet.lifecycle.locks import LockTarget
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import LockCause, LossFee, StaffRole
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.support.admin import add_staff, csrf, signed_in
from tests.support.seed import add_login

PRACTICES = (("881234500", "9000001", 6000), ("881234600", "9000002", 4550))


@pytest.fixture
def app(env: dict[str, str], database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", database_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    with state(application).database.session() as db:
        add_staff(db, "bernd", StaffRole.HELPDESK)
        add_staff(db, "carla", StaffRole.AUDITOR)
        for number, (bsnr, serial, _) in enumerate(PRACTICES):
            add_login(db, BOX, bsnr=bsnr, username=f"praxis{number}", serial=serial)
    with state(application).database.session() as db:
        for bsnr, serial, cents in PRACTICES:
            locks.lock(
                db,
                what=LockTarget.KEY,
                identifier=serial,
                cause=LockCause.LOSS,
                reason=f"Verlust gemeldet (BSNR {bsnr})",
                all_practice_credentials=False,
                loss_fee_cents=cents,
                actor=STAFF,
                now=utcnow(),
            )
    yield application
    state(application).database.dispose()


def test_the_ledger_filters_sums_and_records_a_payment(app: Flask) -> None:
    bernd = signed_in(app, "bernd")
    with state(app).database.reader() as db:
        first = db.query(LossFee).filter(LossFee.serial == "9000001").one().id

    everything = bernd.get("/admin/fees").get_data(as_text=True)
    assert "Summe der Auswahl: 105,50 €" in everything
    one = bernd.get("/admin/fees?bsnr=881234600").get_data(as_text=True)
    assert "Summe der Auswahl: 45,50 €" in one and "9000001" not in one

    paid = bernd.post(
        f"/admin/fees/{first}/paid",
        data={"csrf_token": csrf(bernd, f"/admin/fees/{first}/paid"), "on": "2099-12-31"},
    )
    assert paid.status_code == 400 and "Zukunft" in paid.get_data(as_text=True)
    today = f"{utcnow().astimezone(BERLIN):%Y-%m-%d}"
    paid = bernd.post(
        f"/admin/fees/{first}/paid",
        data={"csrf_token": csrf(bernd, f"/admin/fees/{first}/paid"), "on": today},
    )
    assert paid.status_code == 302

    assert "Summe der Auswahl: 60,00 €" in bernd.get("/admin/fees?state=bezahlt").get_data(
        as_text=True
    )
    assert "Summe der Auswahl: 45,50 €" in bernd.get("/admin/fees?state=offen").get_data(
        as_text=True
    )
    again = bernd.post(
        f"/admin/fees/{first}/waive",
        data={
            "csrf_token": csrf(bernd, "/admin/fees"),
            "reason": "doch gefunden",
            "confirmed": "1",
        },
    )
    assert again.status_code == 409 and "bezahlt" in again.get_data(as_text=True)
    unknown = bernd.get("/admin/fees?state=irgendwas").get_data(as_text=True)
    assert "Stand: unbekannter Wert" in unknown


def test_an_auditor_downloads_the_ledger_and_may_not_record_a_payment(app: Flask) -> None:
    carla = signed_in(app, "carla")

    csv = carla.get("/admin/fees?format=csv").get_data()
    refused = carla.post("/admin/fees/1/paid", data={"csrf_token": csrf(carla, "/admin/fees")})

    lines = csv.decode("utf-8-sig").split("\r\n")
    assert csv.startswith(b"\xef\xbb\xbf") and len([line for line in lines[1:] if line]) == 2
    assert {line.split(";")[4] for line in lines[1:] if line} == {"60,00", "45,50"}
    assert refused.status_code == 403
