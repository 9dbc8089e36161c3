"""Access requests (Art. 15 DSGVO) from outside: the CLI writes JSON and PDF, the API
answers admins only, and the button on the admin pages downloads the report in Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flexnet import create_app
from flexnet.audit import AuditTag
from flexnet.clients import apiclients
from flexnet.db import Database, utcnow
from flexnet.models import AuditEntry, StaffRole, UserKind
from flexnet.provisioning import issuance
from flexnet.staff import accounts as staff_accounts
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.functional.test_admin_browser import sign_in
from tests.support.admin import PASSWORD
from tests.support.cli import Invoke, ok, refused
from tests.support.pdf import page_texts
from tests.support.seed import add_login
from tests.support.web import served

BSNR = "881234500"


def seed(db: Session) -> None:
    """One practice with two colleagues, and another practice."""
    add_login(db, BOX, bsnr=BSNR)
    add_login(db, BOX, bsnr="881234599")
    for username, name, bsnr in (
        ("aalbrecht", "Dr. Alice Albrecht", BSNR),
        ("bbauer", "Bob Bauer", BSNR),
        ("ffremd", "Frieda Fremd", "881234599"),
    ):
        issuance.add_user(
            db,
            username=username,
            bsnr=bsnr,
            kind=UserKind.STAFF,
            name=name,
            actor=STAFF,
            now=utcnow(),
        )


def test_the_cli_writes_json_and_pdf_for_one_user_and_audits_it(
    invoke: Invoke, database: Database, tmp_path: Path
) -> None:
    with database.session() as db:
        seed(db)
    out = tmp_path / "auskunft.json"

    done = ok(invoke("privacy", "export", "--user", "aalbrecht", "--out", str(out)))
    again = invoke("privacy", "export", "--user", "aalbrecht", "--out", str(out))
    unknown = invoke("privacy", "export", "--user", "niemand", "--out", str(tmp_path / "n.json"))

    document = json.loads(out.read_text(encoding="utf-8"))
    pdf_text = "\n".join(page_texts(out.with_suffix(".pdf").read_bytes()))
    assert "aalbrecht" in done.output
    assert document["benutzer"]["name"] == "Dr. Alice Albrecht"
    assert "Dr. Alice Albrecht" in pdf_text and "Bob Bauer" not in pdf_text
    assert "bbauer" not in out.read_text(encoding="utf-8")
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.with_suffix(".pdf").stat().st_mode & 0o777 == 0o600
    refused(again, "existiert bereits")
    refused(unknown, "Kein Benutzer")
    assert not (tmp_path / "n.json").exists() and not (tmp_path / "n.pdf").exists()
    with database.session() as db:
        exported = db.scalar(
            select(func.count()).where(AuditEntry.tag == AuditTag.PRIVACY_EXPORT.value)
        )
    assert exported == 1  # the refused ones left nothing
    assert ok(invoke("audit", "verify")).exit_code == 0


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    application = create_app()
    keys = {}
    with state(application).database.session() as db:
        seed(db)
        for name, role in (("dsb", StaffRole.ADMIN), ("portal", StaffRole.HELPDESK)):
            _, keys[name] = apiclients.add_client(
                db, name=name, require_otp=False, role=role, actor=STAFF, now=utcnow()
            )
        staff_accounts.add_staff(
            db, username="anna", role=StaffRole.ADMIN, password=PASSWORD, actor=STAFF, now=utcnow()
        )
    application.config["KEYS"] = keys
    yield application
    state(application).database.dispose()


def test_the_api_answers_admins_only(app: Flask) -> None:
    client = app.test_client()

    def get(key: str, path: str) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {app.config['KEYS'][key]}"}
        response = client.get(f"/api/v1/privacy{path}", headers=headers)
        return response.status_code, response.get_data(as_text=True)

    user = get("dsb", "/users/aalbrecht")
    practice = get("dsb", f"/practices/{BSNR}")
    helpdesk = get("portal", "/users/aalbrecht")
    unknown = get("dsb", "/practices/881234577")

    assert user[0] == 200 and json.loads(user[1])["benutzer"]["name"] == "Dr. Alice Albrecht"
    assert "Bob Bauer" not in user[1]
    assert practice[0] == 200 and "Bob Bauer" in practice[1] and "Frieda" not in practice[1]
    assert helpdesk[0] == 403 and "Alice" not in helpdesk[1]
    assert unknown[0] == 404


def test_an_admin_downloads_the_report_from_the_user_page(
    app: Flask, browser: Browser, tmp_path: Path
) -> None:
    with served(app) as base:
        page = browser.new_page(accept_downloads=True)
        sign_in(page, base, app)
        page.goto(f"{base}/admin/users/aalbrecht")
        with page.expect_download() as pdf_download:
            page.get_by_role("button", name="als PDF").click()
        pdf = tmp_path / "auskunft.pdf"
        pdf_download.value.save_as(pdf)
        page.goto(f"{base}/admin/practices/{BSNR}")
        with page.expect_download() as json_download:
            page.get_by_role("button", name="als JSON").click()
        practice_report = tmp_path / "auskunft.json"
        json_download.value.save_as(practice_report)

    text = "\n".join(page_texts(pdf.read_bytes()))
    assert pdf_download.value.suggested_filename == "auskunft-aalbrecht.pdf"
    assert "Auskunft nach Art. 15 DSGVO" in text and "Dr. Alice Albrecht" in text
    assert "Bob Bauer" not in text
    usernames = [u["username"] for u in json.loads(practice_report.read_text())["benutzer"]]
    assert sorted(usernames) == ["aalbrecht", "bbauer"]
