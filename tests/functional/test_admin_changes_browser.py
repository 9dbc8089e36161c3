"""Data that changes, as IT staff do it in Debian's Chromium (Playwright): edit a practice
with its phone and contact person, a member's end of activity, a terms version published
and who has not accepted it, a letter back as undeliverable and the address confirmed, a
takeover; and a keyboard-only journey (Tab, Enter, Space) through sign-in, search and a
lock. One signed-in page serves the workflows."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import practices, users
from flexnet.db import utcnow
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import Letter, LetterKind, StaffRole, UserKind
from flexnet.provisioning import issuance, mailruns
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.support.admin import PASSWORD, add_staff, enrolment_code
from tests.support.seed import add_login
from tests.support.web import served

BSNRS = ("881234500", "881234600", "881234700")
LANR = "123456601"  # check digit 6


@pytest.fixture
def site(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Flask]]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    app = create_app()
    with state(app).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        for number, bsnr in enumerate(BSNRS):
            add_login(db, BOX, bsnr=bsnr, username=f"mfa{number}", serial=f"900000{number}")
        users.create_user(
            db,
            username="drweiss",
            bsnr=BSNRS[0],
            kind=UserKind.MEMBER,
            name="Dr. Anna Weiß",
            lanr=LANR,
            actor=STAFF,
            now=utcnow(),
        )
    with served(app) as base:
        yield base, app
    state(app).database.dispose()


def sign_in(page: Page, base: str, app: Flask) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("Benutzername").fill("anna")
    page.get_by_label("Kennwort").fill(PASSWORD)
    page.get_by_role("button", name="Weiter").click()
    seed = page.locator("code.seed").inner_text().replace(" ", "")
    page.get_by_label("Einrichtungscode").fill(enrolment_code(app, "anna"))
    page.get_by_label("Code aus der Authenticator-App").fill(pyotp.TOTP(seed).now())
    page.get_by_role("button", name="Einrichten und anmelden").click()
    expect(page.get_by_text("Angemeldet als anna")).to_be_visible()


def said(page: Page, text: str | re.Pattern[str]) -> None:
    """The message the last action left on the page (flashed after post/redirect/get)."""
    expect(page.get_by_role("status").first).to_contain_text(text)


def dispatched_letter(app: Flask, username: str) -> str:
    """A new-password letter for ``username``, printed and sent: its reference."""
    settings = state(app).settings
    today = utcnow().astimezone(BERLIN).date()
    with state(app).database.session() as db:
        issuance.reissue_password(db, username=username, at_once=True, actor=STAFF, now=utcnow())
        produced = mailruns.produce_run(
            db,
            today=today,
            out=io.BytesIO(),
            templates=mailruns.templates_for(settings),
            settings=settings,
            actor=STAFF,
            now=utcnow(),
        )
        assert produced is not None
        mailruns.confirm_dispatch(
            db, run_id=produced.run.id, dispatched_on=today, today=today, actor=STAFF, now=utcnow()
        )
        letter = db.scalars(
            select(Letter).where(
                Letter.kind == LetterKind.NEW_PASSWORD, Letter.user_id.is_not(None)
            )
        ).one()
        return mailruns.reference(letter)


def test_staff_change_practice_and_member_data_terms_letters_and_owners_in_the_browser(
    site: tuple[str, Flask], browser: Browser
) -> None:
    base, app = site
    page = browser.new_page()
    sign_in(page, base, app)
    today = utcnow().astimezone(BERLIN).date()

    # The practice moves and names a phone number and a contact person for call-backs.
    page.goto(f"{base}/admin/practices/{BSNRS[0]}")
    page.get_by_role("link", name="Angaben ändern").click()
    page.get_by_label("Ort", exact=True).fill("Wernigerode")
    page.get_by_label("Telefon für Rückrufe").fill("0345 123 45 67")
    page.get_by_label("Ansprechpartner in der Praxis").fill("Frau Lüdecke")
    page.get_by_role("button", name="Speichern").click()
    said(page, "Telefon: – → 0345 123 45 67")
    expect(page.get_by_role("cell", name="Frau Lüdecke", exact=True)).to_be_visible()

    # A member's own end of activity: the lock date follows; a correction needs a reason.
    page.goto(f"{base}/admin/users/drweiss")
    page.get_by_role("link", name="Ende der Tätigkeit").click()
    page.get_by_label(re.compile("^Ende der Tätigkeit")).fill(f"{today - timedelta(days=3)}")
    page.get_by_role("button", name="Erfassen").click()
    said(page, re.compile("Ende der Tätigkeit für drweiss: .*Sperre ab"))
    page.get_by_role("link", name="Ende der Tätigkeit").click()
    page.get_by_label(re.compile("^Ende der Tätigkeit")).fill("")
    page.get_by_role("button", name="Erfassen").click()
    expect(page.get_by_text(re.compile("Zum Streichen des erfassten Endes"))).to_be_visible()
    page.get_by_label(re.compile("^Grund")).fill("Irrtum: Tätigkeit geht weiter")
    page.get_by_role("button", name="Erfassen").click()
    said(page, "Ende der Tätigkeit für drweiss gestrichen")

    # A new terms version: the practices on the old one are listed until they accept.
    page.goto(f"{base}/admin/terms")
    page.get_by_label("Version (z. B. 2.0)").fill("2027-1")
    page.get_by_label("gilt ab").fill(f"{today}")
    page.get_by_label("anzunehmen bis (letzter Tag)").fill(f"{today + timedelta(days=42)}")
    page.get_by_role("button", name="Veröffentlichen und Briefe vormerken").click()
    said(page, "3 Betriebsstätten haben sie noch nicht angenommen")
    expect(page.get_by_text("Betriebsstätten 1–3 von 3")).to_be_visible()
    page.get_by_role("link", name=BSNRS[1]).click()
    page.get_by_role("link", name="Nutzungsbedingungen angenommen").click()
    page.get_by_label("Version", exact=True).select_option("2027-1")
    page.get_by_label("angenommen über").select_option("portal")
    page.get_by_role("button", name="Annahme erfassen").click()
    said(page, re.compile("Nutzungsbedingungen 2027-1 am .* angenommen"))
    page.goto(f"{base}/admin/terms")
    expect(page.get_by_text("Betriebsstätten 1–2 von 2")).to_be_visible()

    # A letter comes back: recorded from the practice page, then the address confirmed.
    reference = dispatched_letter(app, "mfa2")
    page.goto(f"{base}/admin/practices/{BSNRS[2]}")
    letters = page.get_by_role("listitem").filter(has_text=reference)
    letters.get_by_role("link", name="unzustellbar zurück?").click()
    expect(page.get_by_label(re.compile("Briefnummer"))).to_have_value(reference)
    page.get_by_role("button", name="Als unzustellbar erfassen").click()
    said(page, f"Brief {reference}")
    page.get_by_label(re.compile("Die Anschrift ist richtig")).check()
    page.get_by_role("button", name="Speichern").click()
    said(page, re.compile("Unzustellbar seit: .* → –"))
    with state(app).database.reader() as db:
        assert practices.get_practice(db, BSNRS[2]).undeliverable_since is None

    # The practice changes hands: the old owner's users end, the new owner's are created.
    page.goto(f"{base}/admin/practices/{BSNRS[0]}")
    page.get_by_role("link", name="Praxisübernahme").click()
    page.get_by_label("Erster Tag des neuen Inhabers").fill(f"{today}")
    page.get_by_label("Name der Praxis unter dem neuen Inhaber").fill("Praxis Dr. Eva Neu")
    page.get_by_label("Mitglieder des neuen Inhabers").fill("dr-neu; 234567701; Dr. Eva Neu")
    page.get_by_label("Angenommene Version der Nutzungsbedingungen").select_option("2027-1")
    page.get_by_label("angenommen über").select_option("paper")
    page.get_by_label("Zur Bestätigung die bisherige BSNR eingeben").fill(BSNRS[0])
    page.get_by_role("button", name="Übernahme erfassen").click()
    expect(
        page.get_by_text(re.compile("Zugänge des bisherigen Inhabers beendet: drweiss, mfa0"))
    ).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("Praxis Dr. Eva Neu"))).to_be_visible()
    with state(app).database.reader() as db:
        assert users.get_user(db, "dr-neu").practice.bsnr == BSNRS[0]
    page.close()


def test_a_keyboard_alone_signs_in_searches_and_locks_a_user(
    site: tuple[str, Flask], browser: Browser
) -> None:
    base, app = site
    page = browser.new_page()
    page.goto(f"{base}/admin/")

    def tab_to(name: str) -> None:
        """Tab until the element named ``name`` has the focus (the order is the page's)."""
        for _ in range(40):
            page.keyboard.press("Tab")
            focused = page.evaluate(
                "() => { const e = document.activeElement;"
                " return (e.labels && e.labels[0] ? e.labels[0].innerText : '')"
                " + '|' + (e.innerText || '') + '|' + (e.getAttribute('aria-label') || ''); }"
            )
            if name in focused:
                return
        raise AssertionError(f"{name} not reached by Tab")

    def submit() -> None:
        with page.expect_navigation():
            page.keyboard.press("Enter")

    tab_to("Benutzername")
    page.keyboard.type("anna")
    tab_to("Kennwort")
    page.keyboard.type(PASSWORD)
    submit()
    seed = page.locator("code.seed").inner_text().replace(" ", "")
    tab_to("Einrichtungscode")
    page.keyboard.type(enrolment_code(app, "anna"))
    tab_to("Code aus der Authenticator-App")
    page.keyboard.type(pyotp.TOTP(seed).now())
    submit()
    expect(page.get_by_text("Angemeldet als anna")).to_be_visible()

    tab_to("Suche nach BSNR")
    page.keyboard.type("drweiss")
    submit()
    tab_to("drweiss")
    submit()
    expect(page.get_by_role("heading", name=re.compile("Benutzer drweiss"))).to_be_visible()
    tab_to("Sperren")
    submit()
    expect(page.get_by_label("ein Benutzer")).to_be_checked()
    tab_to("Anlass")
    for _ in range(10):  # the arrow keys choose in a closed select
        if page.get_by_label("Anlass").input_value() == "misuse":
            break
        page.keyboard.press("ArrowDown")
    assert page.get_by_label("Anlass").input_value() == "misuse"
    tab_to("Grund")
    page.keyboard.type("Anruf: Zugangsdaten weitergegeben")
    tab_to("Zur Bestätigung die BSNR")
    page.keyboard.type(BSNRS[0])
    tab_to("Sperren")
    submit()
    expect(page.get_by_text(re.compile("gesperrt", re.I)).first).to_be_visible()
    with state(app).database.reader() as db:
        assert users.get_user(db, "drweiss").status.value == "locked"
    page.close()
