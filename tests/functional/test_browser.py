"""A practice user's journey in a real headless Chromium (Debian's, driven by Playwright).

Screenshots land in test-artifacts/ for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.accounts import users
from flexnet.db import utcnow
from flexnet.models import Token, TokenStatus, UserStatus
from flexnet.web import state
from tests.conftest import BOX
from tests.support.seed import add_login
from tests.support.web import served

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
LETTER_PASSWORD = "Brief-Kennwort-Start-4"
NEW_PASSWORD = "Mauer-Tinte-Kolibri-9"


@pytest.fixture
def site(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Flask]]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    app = create_app()
    with state(app).database.session() as session:
        key = add_login(session, BOX, username="emuster", now=utcnow() - timedelta(days=3))
        user = users.get_user(session, "emuster")
        # As if the credentials letter was printed: an initial password to be changed.
        users.set_password(
            session, user, LETTER_PASSWORD, now=utcnow() - timedelta(days=3), must_change=True
        )
    app.config["TEST_KEY"] = key
    with served(app) as base:
        yield base, app
    state(app).database.dispose()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_first_login_forced_change_and_self_lock(site: tuple[str, Flask], browser: Browser) -> None:
    base, app = site
    page = browser.new_page()
    blocked: list[str] = []
    page.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )

    page.goto(f"{base}/self-service/login")
    page.fill("#username", "emuster")
    page.fill("#password", LETTER_PASSWORD)
    page.fill("#otp", app.config["TEST_KEY"].otp())
    shot(page, "selfservice-1-login")
    page.click("button[type=submit]")

    page.wait_for_url(f"{base}/self-service/password")
    assert "muss geändert werden" in page.inner_text("main")
    # The stylesheet loads under the strict CSP: the header has its colour.
    assert page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor") == (
        "rgb(0, 60, 113)"
    )
    page.fill("#old", LETTER_PASSWORD)
    page.type("#new", "kurz")
    # What is still missing shows while typing (the server checks everything again).
    assert page.get_attribute("[data-rule=length]", "class") == "missing"
    assert page.get_attribute("[data-rule=classes]", "class") == "missing"
    page.fill("#new", NEW_PASSWORD)
    page.dispatch_event("#new", "input")
    page.fill("#repeat", NEW_PASSWORD)
    page.dispatch_event("#repeat", "input")
    assert page.get_attribute("[data-rule=length]", "class") == "met"
    assert page.get_attribute("[data-rule=classes]", "class") == "met"
    assert page.get_attribute("[data-rule=match]", "class") == "met"
    shot(page, "selfservice-2-forced-change")
    page.click("button[type=submit]")

    page.wait_for_url(f"{base}/self-service/")
    assert "Ihr Kennwort ist geändert" in page.inner_text("main")
    shot(page, "selfservice-3-home")

    page.click("text=Zugang sofort sperren")
    page.fill("#username", "emuster")
    page.fill("#password", NEW_PASSWORD)
    page.check("input[value=key]")
    page.check("#key_for_all")  # it hits the whole practice: said, never assumed
    shot(page, "selfservice-4-lock")
    page.click("button[type=submit]")

    assert "Der Yubikey Ihrer Praxis ist gesperrt" in page.inner_text("main")
    assert "0391 627 7000" in page.inner_text("main")
    shot(page, "selfservice-5-locked")
    assert blocked == []
    with state(app).database.reader() as session:
        user = users.get_user(session, "emuster")
        token = session.scalars(select(Token)).one()
        assert user.status is UserStatus.ACTIVE and not user.password_must_change
        assert token.status is TokenStatus.LOCKED


def test_forms_work_over_https_as_in_production(
    env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch, browser: Browser
) -> None:
    """Over HTTPS Flask-WTF also wants a same-origin Referer: the Referrer-Policy must let
    the browser send one, or every form of the site fails its CSRF check."""
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    app = create_app()  # secure cookies, as in production
    context = browser.new_context(ignore_https_errors=True)
    try:
        with served(app, tls=True) as base:
            page = context.new_page()
            page.goto(f"{base}/requests/new")
            page.fill("#bsnr", "881234500")
            page.fill("#usernames", "emuster")
            page.select_option("#kind", "new_password")
            page.fill("#contact_person", "Erika Muster")
            page.fill("#phone", "0391 123456")
            page.click("button[type=submit]")
            answer = page.inner_text("main")
    finally:
        context.close()
        state(app).database.dispose()

    assert "Ihre Anfrage ist eingegangen" in answer


def test_a_newcomer_finds_the_way_from_the_start_page(
    site: tuple[str, Flask], browser: Browser
) -> None:
    base, _ = site
    page = browser.new_page()
    targets = {
        "Zugang sofort sperren": "Zugang sofort sperren",
        "Anfrage an den IT-Service": "Anfrage an den IT-Service",
        "Anmelden zur Selbstbedienung": "Selbstbedienung – Anmeldung",
        "Anmeldung für Mitarbeiter des IT-Service": "KV-FlexNet Verwaltung – Anmeldung",
    }
    reached = {}
    for link in targets:
        page.goto(f"{base}/")
        expect(page.get_by_role("heading", level=1)).to_have_text("KV-FlexNet")
        page.get_by_role("link", name=link).click()
        reached[link] = page.get_by_role("heading", level=1).inner_text()
    shot(page, "start")

    assert reached == targets
    page.close()
