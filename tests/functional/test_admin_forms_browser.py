"""Admin dialogs as staff meet them in a real headless Chromium (Debian's, driven by
Playwright): a dialog that chooses a person preselects exactly the person named, or
nobody; a page with several forms keeps each form's input in that form only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import servicerequests, users
from flexnet.clients import nas
from flexnet.db import utcnow
from flexnet.models import Letter, LetterKind, RequestKind, ServiceRequest, StaffRole, UserKind
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.support.admin import PASSWORD, add_staff, enrolment_code
from tests.support.seed import add_login
from tests.support.web import served

BSNR = "881234500"
# Alphabetical order is the order of the select: the first is what a browser shows
# when the page names nobody.
USERNAMES = ("anton", "berta", "carla", "dora")


@pytest.fixture
def site(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Flask]]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    app = create_app()
    with state(app).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        add_login(db, BOX, bsnr=BSNR, serial="9000001")
        for username in USERNAMES:
            users.create_user(
                db, username=username, bsnr=BSNR, kind=UserKind.STAFF, actor=STAFF, now=utcnow()
            )
    with served(app) as base:
        yield base, app
    state(app).database.dispose()


def sign_in(browser: Browser, base: str, app: Flask) -> Page:
    page = browser.new_page()
    page.goto(f"{base}/admin/")
    page.get_by_label("Benutzername").fill("anna")
    page.get_by_label("Kennwort").fill(PASSWORD)
    page.get_by_role("button", name="Weiter").click()
    seed = page.locator("code.seed").inner_text().replace(" ", "")
    page.get_by_label("Einrichtungscode").fill(enrolment_code(app, "anna"))
    page.get_by_label("Code aus der Authenticator-App").fill(pyotp.TOTP(seed).now())
    page.get_by_role("button", name="Einrichten und anmelden").click()
    expect(page.get_by_text("Angemeldet als anna")).to_be_visible()
    return page


def file_request(app: Flask, usernames: str) -> int:
    with state(app).database.session() as db:
        return servicerequests.file_request(
            db,
            bsnr=BSNR,
            usernames=usernames,
            kind=RequestKind.NEW_PASSWORD,
            contact_person="Frau Muster",
            phone="0391 123456",
            message="Kennwort vergessen",
            source_ip=None,
            now=utcnow(),
        ).id


def test_a_new_password_request_preselects_the_named_user_or_nobody(
    site: tuple[str, Flask], browser: Browser
) -> None:
    base, app = site
    named = {
        "carla": file_request(app, "carla"),
        "": file_request(app, "Frau Schmidt"),  # no username of the practice
        " ": file_request(app, "berta carla"),  # two people: staff choose
    }
    page = sign_in(browser, base, app)
    chosen = {}
    for expected, number in named.items():
        page.goto(f"{base}/admin/requests/{number}")
        chosen[expected] = page.get_by_label("Benutzer (bei neuem Kennwort)").input_value()

    assert chosen == {"carla": "carla", "": "", " ": ""}

    # Verified by call-back and fulfilled without touching the select: the letter goes
    # to the person the practice named.
    page.goto(f"{base}/admin/requests/{named['carla']}")
    page.get_by_label("bestätigt (Rückruf unter der bekannten Rufnummer)").check()
    page.get_by_label("Vermerk").fill("Rückruf bestätigt")
    page.get_by_role("button", name="Speichern").click()
    page.get_by_label("erledigen").check()
    page.get_by_label("Vermerk").fill("Brief vorgemerkt")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_text("erledigt (anna")).to_be_visible()
    page.goto(f"{base}/admin/requests/{named['']}")
    page.get_by_label("bestätigt (Rückruf unter der bekannten Rufnummer)").check()
    page.get_by_label("Vermerk").fill("Rückruf bestätigt")
    page.get_by_role("button", name="Speichern").click()
    page.get_by_label("erledigen").check()
    page.get_by_label("Vermerk").fill("Brief vorgemerkt")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_text("Bitte den Benutzer wählen")).to_be_visible()
    with state(app).database.reader() as db:
        letters = db.scalars(select(Letter).where(Letter.kind == LetterKind.NEW_PASSWORD))
        assert [letter.user.username for letter in letters if letter.user] == ["carla"]
    page.close()


def test_locking_from_a_users_page_preselects_that_user_and_from_the_practice_nobody(
    site: tuple[str, Flask], browser: Browser
) -> None:
    base, app = site
    page = sign_in(browser, base, app)
    chosen = {}
    for username in ("berta", "dora"):
        page.goto(f"{base}/admin/users/{username}")
        page.get_by_role("link", name="Sperren", exact=True).click()
        chosen[username] = page.get_by_label("Benutzer", exact=True).input_value()
    page.goto(f"{base}/admin/practices/{BSNR}")
    page.get_by_role("link", name=re.compile("^Sperren")).click()
    from_practice = page.get_by_label("Benutzer", exact=True).input_value()

    assert chosen == {"berta": "berta", "dora": "dora"}
    assert from_practice == ""

    # Submitted without a choice of user, nobody is locked and the dialog says why.
    page.get_by_label("ein Benutzer").check()
    page.get_by_label("Anlass").select_option("misuse")
    page.get_by_label("Grund").fill("Anruf: Missbrauchsverdacht")
    page.get_by_label("Zur Bestätigung die BSNR eingeben").fill(BSNR)
    page.get_by_role("button", name="Sperren").click()
    expect(page.get_by_text("Bitte einen Benutzer der Betriebsstätte wählen")).to_be_visible()
    with state(app).database.reader() as db:
        assert all(users.get_user(db, name).status.value != "locked" for name in USERNAMES)
    page.close()


def test_each_form_of_the_clients_page_keeps_only_its_own_input(
    site: tuple[str, Flask], browser: Browser
) -> None:
    base, app = site
    with state(app).database.session() as db:
        nas.add_nas(
            db,
            name="asa-1",
            address="192.0.2.1",
            secret="ein-langes-gemeinsames-Geheimnis-1",
            box=BOX,
            actor=STAFF,
            now=utcnow(),
        )
    page = sign_in(browser, base, app)
    page.goto(f"{base}/admin/clients")
    nas_form = page.locator("form[action$='/admin/clients/nas']")
    nas_form.get_by_label("Name").fill("asa-1")  # exists already: refused
    nas_form.get_by_label("Adresse oder Netz (IP/CIDR)").fill("192.0.2.7")
    nas_form.get_by_label("Gemeinsames Geheimnis").fill("noch-ein-langes-Geheimnis-22")
    nas_form.get_by_role("button", name="NAS anlegen").click()
    expect(page.get_by_role("alert").first).to_be_visible()

    others = {
        action: page.locator(f"form[action$='/admin/clients/{action}'] input[name$='-name']")
        for action in ("nas/change", "nas/secret", "profile", "api", "wsapi")
    }
    assert {action: field.input_value() for action, field in others.items()} == dict.fromkeys(
        others, ""
    )
    assert nas_form.get_by_label("Name").input_value() == "asa-1"
    assert nas_form.get_by_label("Adresse oder Netz (IP/CIDR)").input_value() == "192.0.2.7"

    # A profile saved next: the page that follows shows empty forms, its own included.
    profile_form = page.locator("form[action$='/admin/clients/profile']")
    profile_form.get_by_label("Profilname").fill("praxis")
    profile_form.get_by_label(re.compile("^Antwort-Attribute")).fill("Filter-Id=praxis")
    profile_form.get_by_role("button", name="Profil speichern").click()
    expect(page.get_by_text("Profil praxis gespeichert")).to_be_visible()
    names = page.locator(
        "form[action*='/admin/clients/'][method=post]:not(.inline) input[name$='-name']"
    )
    assert names.count() == 6
    assert [names.nth(i).input_value() for i in range(6)] == [""] * 6
    page.close()


def test_line_breaks_typed_into_the_public_form_show_as_line_breaks_to_staff(
    site: tuple[str, Flask], browser: Browser
) -> None:
    base, app = site
    public = browser.new_page()
    public.goto(f"{base}/requests/new")
    public.get_by_label("Betriebsstättennummer (BSNR, 9 Ziffern)").fill(BSNR)
    public.get_by_label("Anliegen").select_option("resync")
    public.get_by_label("Ansprechpartner in der Praxis").fill("Frau Muster")
    public.get_by_label("Telefon für den Rückruf").fill("0391 123456")
    public.get_by_label("Nachricht (optional)").fill("Yubikey blinkt nicht.\nBitte rückrufen.")
    public.get_by_role("button", name="Anfrage senden").click()
    public.close()

    page = sign_in(browser, base, app)
    page.goto(f"{base}/admin/requests/1")
    on_request = page.get_by_role("row", name=re.compile("^Nachricht")).get_by_role("cell")
    on_request_text = on_request.inner_text()
    page.goto(f"{base}/admin/practices/{BSNR}")
    on_practice = page.locator("li", has_text="Yubikey blinkt nicht.").inner_text()

    assert on_request_text == "Yubikey blinkt nicht.\nBitte rückrufen."
    assert "\\x0d" not in on_practice
    assert "Yubikey blinkt nicht.\nBitte rückrufen." in on_practice
    with state(app).database.reader() as db:
        stored = db.scalars(select(ServiceRequest)).one()
        assert stored.message == "Yubikey blinkt nicht.\nBitte rückrufen."
    page.close()
