"""/api/v1 for fees, mistakes undone and reports: the same services as the CLI, as JSON
and as the German CSV."""

from __future__ import annotations

import csv
import io

from flask import Flask

from flexnet.web import state
from tests.conftest import BOX
from tests.functional.test_api_resources import app, call  # noqa: F401 - the fixture
from tests.support.seed import add_login

BSNR = "881234500"
OTHERS = {"881234600": "9000201", "881234601": "9000202", "881234602": "9000203"}


def lose_keys(app: Flask) -> None:  # noqa: F811
    with state(app).database.session() as db:
        for bsnr, serial in OTHERS.items():
            add_login(db, BOX, bsnr=bsnr, username=f"u{serial}", password=None, serial=serial)
    for serial in OTHERS.values():
        lost = {"what": "key", "id": serial, "cause": "loss", "reason": "Verlust gemeldet"}
        assert call(app, "portal", "POST", "/locks", lost)[0] == 200


def test_fees_are_listed_invoiced_paid_and_waived(app: Flask) -> None:  # noqa: F811
    lose_keys(app)
    listed = call(app, "revision", "GET", "/fees")[1]["items"]
    ids = [item["id"] for item in listed]  # type: ignore[index]

    invoiced = call(app, "portal", "POST", f"/fees/{ids[0]}/invoiced", {})
    paid = call(app, "portal", "POST", f"/fees/{ids[0]}/paid", {})
    waived = call(app, "portal", "POST", f"/fees/{ids[1]}/waived", {"reason": "wiedergefunden"})
    twice = call(app, "portal", "POST", f"/fees/{ids[1]}/waived", {"reason": "nochmal"})
    auditor = call(app, "revision", "POST", f"/fees/{ids[2]}/paid", {})
    missing = call(app, "portal", "POST", "/fees/999/paid", {})
    still_open = call(app, "revision", "GET", "/fees?open=true")[1]["items"]
    response = app.test_client().get(
        "/api/v1/fees?format=csv",
        headers={"Authorization": f"Bearer {app.config['KEYS']['revision']}"},
    )

    assert [(i["serial"], i["amount_cents"], i["state"]) for i in listed] == [  # type: ignore[index]
        (serial, 6000, "offen") for serial in OTHERS.values()
    ]
    assert invoiced[1]["state"] == "berechnet" and paid[1]["state"] == "bezahlt"
    assert waived[1]["waive_reason"] == "wiedergefunden"
    assert twice[0] == 409 and auditor[0] == 403 and missing[0] == 404
    assert [item["serial"] for item in still_open] == ["9000203"]  # type: ignore[index]
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))
    assert [row[4] for row in rows[1:]] == ["60,00", "60,00", "60,00"]


def test_terminations_are_corrected_and_withdrawn_and_keys_unlocked(app: Flask) -> None:  # noqa: F811
    lose_keys(app)  # three more practices with keys (locked lost)
    other, serial = "881234600", "9000201"
    terminated = call(
        app, "portal", "POST", f"/practices/{BSNR}/termination",
        {"by": "association", "notice_date": "2026-11-23"},
    )  # fmt: skip
    corrected = call(
        app, "portal", "POST", f"/practices/{BSNR}/termination/correction",
        {"notice_date": "2027-02-04", "reason": "Tippfehler"},
    )  # fmt: skip
    withdrawn = call(
        app, "portal", "POST", f"/practices/{BSNR}/termination/withdrawal", {"reason": "Irrtum"}
    )
    again = call(
        app, "portal", "POST", f"/practices/{BSNR}/termination/withdrawal", {"reason": "Irrtum"}
    )
    lost_key = call(
        app, "portal", "POST", "/unlocks", {"what": "key", "id": serial, "reason": "gefunden"}
    )
    ok_lock = {"what": "practice", "id": other, "cause": "misuse", "reason": "Anruf"}
    assert call(app, "portal", "POST", "/locks", ok_lock)[0] == 200
    unlocked = call(
        app, "portal", "POST", "/unlocks", {"what": "practice", "id": other, "reason": "geklärt"}
    )

    assert terminated[1]["last_day"] == "2027-03-31"
    assert corrected[0] == 200 and corrected[1]["last_day"] == "2027-06-30"
    assert withdrawn[0] == 200 and withdrawn[1]["last_day"] is None
    assert again[0] == 409
    assert lost_key[0] == 409 and "als verloren gemeldet" in str(lost_key[1]["detail"])
    assert unlocked[:2] == (200, {"unlocked": other})


def test_exceptions_are_listed_and_ended(app: Flask) -> None:  # noqa: F811
    from datetime import date

    from flexnet.db import utcnow
    from flexnet.lifecycle import lock_exceptions
    from tests.conftest import STAFF

    until = date(utcnow().year + 1, 3, 31)
    with state(app).database.session() as db:
        lock_exceptions.grant(
            db, bsnr=BSNR, until=until, reason="Vertretung", decision_ref="AZ-1",
            decided_by="Vorstand", actor=STAFF, now=utcnow(),
        )  # fmt: skip
    listed = call(app, "revision", "GET", "/exceptions")[1]["items"]
    ended = call(app, "portal", "POST", "/exceptions/end", {"bsnr": BSNR, "reason": "vorbei"})
    after = call(app, "revision", "GET", "/exceptions")[1]["items"]

    assert listed == [
        {
            "bsnr": BSNR,
            "username": None,
            "until": until.isoformat(),
            "reason": "Vertretung",
            "decision_ref": "AZ-1",
            "decided_by": "Vorstand",
        }
    ]
    assert ended[:2] == (200, {"ended": BSNR}) and after == []


def test_reports_come_as_json_and_csv_stating_their_instant(app: Flask) -> None:  # noqa: F811
    lose_keys(app)
    fees_json = call(app, "revision", "GET", "/reports/fees")
    unknown = call(app, "revision", "GET", "/reports/everything")
    response = app.test_client().get(
        "/api/v1/reports/practices?format=csv",
        headers={"Authorization": f"Bearer {app.config['KEYS']['revision']}"},
    )

    assert fees_json[0] == 200 and fees_json[1]["report"] == "fees"
    assert [row["amount_cents"] for row in fees_json[1]["rows"]] == [6000] * 3  # type: ignore[index]
    assert str(fees_json[1]["as_of"]).endswith("+00:00")
    assert unknown[0] == 404
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))
    assert [(r["Art"], r["Status"], r["Betriebsstätten"]) for r in rows] == [
        ("Mitglied", "aktiv", "4")
    ]
    assert len({r["Stand"] for r in rows}) == 1
