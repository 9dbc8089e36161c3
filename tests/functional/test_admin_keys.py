"""The Yubikey pages: the stock with its figures linked to the list and a warning when it
runs low, the keys not returned (paged, the span chosen), and one key's page with its
state in German and the resynchronisation; auditors read, only staff who act change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.db import utcnow
from flexnet.models import LockCause, StaffRole, Token, TokenStatus
from flexnet.web import state
from tests.conftest import BOX
from tests.support.admin import add_staff, csrf, signed_in
from tests.support.seed import add_login

OVERDUE = 55


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    now = utcnow()
    with state(application).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        add_staff(db, "carla", StaffRole.AUDITOR)
        for number in range(OVERDUE + 1):
            add_login(
                db,
                BOX,
                bsnr=f"8812{number:05d}",
                username=f"user{number:02d}",
                serial=f"90{number:05d}",
            )
        db.flush()
        db.execute(
            update(Token)
            .where(Token.serial != f"90{OVERDUE:05d}")
            .values(
                status=TokenStatus.LOCKED,
                lock_cause=LockCause.MANUAL,
                lock_reason="Verstoß gegen die Nutzungsbedingungen",
                locked_at=now - timedelta(days=40),
                last_used_at=now - timedelta(days=50),
            )
        )
    yield application
    state(application).database.dispose()


def test_the_keys_not_returned_are_paged_and_the_span_can_be_chosen(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    first = auditor.get("/admin/keys/overdue").get_data(as_text=True)
    second = auditor.get("/admin/keys/overdue?page=2").get_data(as_text=True)
    longer = auditor.get("/admin/keys/overdue?days=60").get_data(as_text=True)
    wrong = auditor.get("/admin/keys/overdue?days=viele").get_data(as_text=True)

    assert "Yubikeys 1–50 von 55" in first and "Seite 1 von 2" in first
    assert "Yubikeys 51–55 von 55" in second
    assert "Keine Yubikeys für diese Auswahl." in longer
    assert "Tage seit der Sperre: bitte eine Zahl von 0 bis 3650" in wrong
    assert "Yubikeys 1–50 von 55" in wrong


def test_a_key_s_page_shows_its_state_and_cause_in_german(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    page = auditor.get("/admin/yubikeys/9000000").get_data(as_text=True)

    heading = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert heading and "gesperrt" in heading.group(1)
    assert "Verstoß oder wichtiger Grund – Verstoß gegen die Nutzungsbedingungen" in page
    assert "/admin/practices/881200000" in page
    assert ">locked<" not in page and "manual" not in page
    assert "Resynchronisieren" not in page  # an auditor reads only


def test_an_auditor_may_not_resync_and_wrong_otps_are_refused_in_german(app: Flask) -> None:
    auditor = signed_in(app, "carla")
    admin = signed_in(app, "anna")
    path = f"/admin/yubikeys/90{OVERDUE:05d}"

    refused = auditor.post(f"{path}/resync", data={"csrf_token": csrf(auditor, path)})
    wrong = admin.post(
        f"{path}/resync",
        data={
            "csrf_token": csrf(admin, path),
            "first": "cccccccccccccccccccccccccccccccccccccccccccc",
            "second": "cccccccccccccccccccccccccccccccccccccccccccb",
        },
    )

    assert refused.status_code == 403
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 400
    assert "Resynchronisierung nicht möglich" in page
    assert "cccccccccccc" not in page  # a used OTP is not shown again


def test_the_stock_page_links_each_figure_and_warns_when_stock_runs_low(app: Flask) -> None:
    auditor = signed_in(app, "carla")

    page = auditor.get("/admin/keys").get_data(as_text=True)

    assert "Nur noch 0 Yubikeys im Lager" in page
    assert 'href="/admin/yubikeys?status=locked"' in page
    assert ">55</a>" in page
    assert "Rückgabe erfassen" not in page  # the forms are for staff who act
