"""The IT staff's journey in a real headless Chromium (Debian's, driven by Playwright):
sign-in with TOTP enrolment, onboarding a practice until both letters are produced and
dispatched, a reset request fulfilled with a new-password letter, a loss report that
locks the key and asks for the live VPN session to be disconnected.

Screenshots land in test-artifacts/ (a few are copied to docs/screenshots/ by hand).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select, update
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import users
from flexnet.authn import passwords
from flexnet.clients import nas
from flexnet.db import utcnow
from flexnet.models import MailRun, StaffRole, User, VpnSession
from flexnet.otp import importer
from flexnet.staff import accounts as staff_accounts
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.functional.test_browser import ARTIFACTS
from tests.functional.test_cli_keys import ykman_line
from tests.support.admin import PASSWORD, enrolment_code
from tests.support.pdf import page_texts, printed_credentials
from tests.support.web import served
from tests.support.yubikeys import SimulatedKey

BSNR = "881234577"
SERIAL = "7000001"


@pytest.fixture
def site(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Flask]]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    app = create_app()
    with state(app).database.session() as db:
        staff_accounts.add_staff(
            db, username="anna", role=StaffRole.ADMIN, password=PASSWORD, actor=STAFF, now=utcnow()
        )
        keys = importer.parse(ykman_line(SERIAL, SimulatedKey.random()).encode())
        importer.import_keys(db, keys, box=BOX, actor=STAFF, now=utcnow())
        nas.add_nas(
            db,
            name="asa-1",
            address="192.0.2.1",
            secret="ein-langes-gemeinsames-Geheimnis-1",
            box=BOX,
            actor=STAFF,
            now=utcnow(),
        )
    with served(app) as base:
        yield base, app
    state(app).database.dispose()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)


def sign_in(page: Page, base: str, app: Flask) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("Benutzername").fill("anna")
    page.get_by_label("Kennwort").fill(PASSWORD)
    page.get_by_role("button", name="Weiter").click()
    expect(page.get_by_role("heading", name="Zweiten Faktor einrichten")).to_be_visible()
    shot(page, "enrol")
    seed = page.locator("code.seed").inner_text().replace(" ", "")
    page.get_by_label("Einrichtungscode").fill(enrolment_code(app, "anna"))
    page.get_by_label("Code aus der Authenticator-App").fill(pyotp.TOTP(seed).now())
    page.get_by_role("button", name="Einrichten und anmelden").click()
    # The first password came from someone else: it is changed before anything else.
    expect(page.get_by_role("heading", name="Kennwort ändern")).to_be_visible()
    page.get_by_label("Bisheriges Kennwort").fill(PASSWORD)
    page.get_by_label("Neues Kennwort", exact=True).fill("Eigenes-Wort-Tulpe-93")
    page.get_by_label("Neues Kennwort wiederholen").fill("Eigenes-Wort-Tulpe-93")
    page.get_by_role("button", name="Kennwort ändern").click()
    expect(page.get_by_text("Angemeldet als anna")).to_be_visible()
    shot(page, "dashboard")


def produce_run(page: Page, base: str, tmp_path: Path, name: str) -> bytes:
    page.goto(f"{base}/admin/letters")
    with page.expect_download() as download:
        page.get_by_role("button", name="Versandlauf erzeugen und PDF herunterladen").click()
    target = tmp_path / f"{name}.pdf"
    download.value.save_as(target)
    page.goto(f"{base}/admin/letters")
    page.get_by_role("button", name="Versand bestätigen").first.click()
    page.get_by_role("button", name="Ja, Versand bestätigen").click()  # it starts the clock
    expect(page.get_by_text("Versand bestätigt")).to_be_visible()
    return target.read_bytes()


def test_staff_onboard_a_practice_reset_a_password_and_handle_a_loss(
    site: tuple[str, Flask], browser: Browser, tmp_path: Path
) -> None:
    base, app = site
    page = browser.new_page(accept_downloads=True)
    sign_in(page, base, app)

    # Onboarding: the practice with its terms, a user, the key from stock.
    page.get_by_role("link", name="Praxen").click()
    page.get_by_role("main").get_by_role("link", name="Neue Betriebsstätte").click()
    for label, value in {
        "BSNR (9 Ziffern)": BSNR,
        "Name der Betriebsstätte": "Praxis Dr. Weiß",
        "Straße und Hausnummer": "Breiter Weg 1",
        "PLZ": "39104",
        "Ort": "Magdeburg",
        "Nutzungsbedingungen: Version": "1.0",
    }.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Art", exact=True).select_option("member")
    page.get_by_label("angenommen über").select_option("paper")
    page.get_by_label("angenommen am").fill(f"{utcnow().date() - timedelta(days=1)}")
    page.get_by_role("button", name="Anlegen").click()
    expect(page.get_by_role("heading", name=re.compile(f"Betriebsstätte {BSNR}"))).to_be_visible()
    page.get_by_role("link", name="Benutzer anlegen").click()
    page.get_by_label("Benutzername").fill("dr-weiss")
    page.get_by_label("Art").select_option("staff")
    page.get_by_role("button", name="Anlegen").click()
    page.get_by_role("link", name="Yubikey zuweisen").click()
    page.get_by_label("Seriennummer aus dem Lager").fill(SERIAL)
    page.get_by_role("button", name="Zuweisen").click()
    expect(page.get_by_text("Begleitschreiben ist vorgemerkt")).to_be_visible()
    shot(page, "practice")

    # First the key letter; the credentials letter waits for it (§ 3.2).
    page.goto(f"{base}/admin/letters")
    expect(page.get_by_text("Begleitschreiben mit dem Yubikey noch nicht versandt")).to_be_visible()
    shot(page, "letters")
    key_pdf = produce_run(page, base, tmp_path, "keys")
    assert SERIAL in "\n".join(page_texts(key_pdf)) and printed_credentials(key_pdf) == {}
    with state(app).database.session() as db:  # as if the key letter left a week ago
        week_ago = utcnow().date() - timedelta(days=7)
        db.execute(update(MailRun).values(run_date=week_ago, dispatched_on=week_ago))
    printed = printed_credentials(produce_run(page, base, tmp_path, "credentials"))
    assert set(printed) == {"dr-weiss"}
    with state(app).database.reader() as db:
        user = users.get_user(db, "dr-weiss")
        assert passwords.verify(printed["dr-weiss"], user.password_hash).ok

    # The practice asks for a new password; staff call back, then fulfil.
    page.goto(f"{base}/requests/new")
    page.get_by_label("Betriebsstättennummer (BSNR, 9 Ziffern)").fill(BSNR)
    page.get_by_label("Betroffene Benutzer").fill("dr-weiss")
    page.get_by_label("Anliegen").select_option("new_password")
    page.get_by_label("Ansprechpartner in der Praxis").fill("Frau Weiß")
    page.get_by_label("Telefon für den Rückruf").fill("0391 123456")
    page.get_by_role("button").last.click()
    page.goto(f"{base}/admin/requests")
    page.get_by_role("link", name="1", exact=True).click()
    page.get_by_label("bestätigt (Rückruf unter der bekannten Rufnummer)").check()
    page.get_by_label("Vermerk").fill("Rückruf unter 0391 999999, Frau Weiß bestätigt")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_text("Anfrage 1: bestätigt.")).to_be_visible()
    page.get_by_label("erledigen").check()
    page.get_by_label("Benutzer (bei neuem Kennwort)").select_option("dr-weiss")
    page.get_by_label("Vermerk").fill("neues Kennwort per Brief")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_text("erledigt (anna")).to_be_visible()
    reset = printed_credentials(produce_run(page, base, tmp_path, "new-password"))
    assert set(reset) == {"dr-weiss"} and reset["dr-weiss"] != printed["dr-weiss"]

    # A loss report: the key is locked for good, the live session is to be disconnected.
    with state(app).database.session() as db:
        user_id = db.scalar(select(User.id).where(User.username == "dr-weiss"))
        db.add(
            VpnSession(
                nas_id=1,
                acct_session_id="s-1",
                username="dr-weiss",
                user_id=user_id,
                started_at=utcnow(),
                updated_at=utcnow(),
                input_octets=0,
                output_octets=0,
            )
        )
    page.goto(f"{base}/admin/practices/{BSNR}")
    page.get_by_role("link", name=re.compile("^Sperren")).click()
    page.get_by_label("der Yubikey").check()
    page.get_by_label("Anlass").select_option("loss")
    page.get_by_label("Grund").fill("Verlust telefonisch gemeldet")
    page.get_by_label("Zugleich alle Zugänge der Betriebsstätte sperren").check()
    page.get_by_label("Zur Bestätigung die BSNR eingeben").fill(BSNR)
    shot(page, "lock")
    page.get_by_role("button", name="Sperren").click()
    expect(page.get_by_text(f"Yubikey {SERIAL}: verloren")).to_be_visible()
    expect(page.get_by_text("Trennung: angefordert")).to_be_visible()
    expect(page.get_by_text(f"{SERIAL} (verloren")).to_be_visible()
    shot(page, "after-loss")
    with state(app).database.reader() as db:
        live = db.scalars(select(VpnSession)).one()
        assert live.disconnect_requested_at is not None
        assert users.get_user(db, "dr-weiss").status.value == "locked"
    page.close()
