"""Every page, rendered with realistic data (long names, umlauts, every state, many rows;
``tests.support.realistic``) in Debian's Chromium: no axe-core violation of WCAG 2.1 A/AA
(BITV 2.0), no English state word or internal value, and screenshots of the main pages
into docs/screenshots/ (1366 x 768). One seeded app and one signed-in browser context serve
all checks of this module."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.models import Letter, LossFee
from flexnet.web import state
from tests.conftest import TEST_AUDIT_KEY, TEST_MASTER_KEY, TEST_SECRET_KEY
from tests.support.admin import PASSWORD, enrolment_code
from tests.support.realistic import World, seed
from tests.support.web import served

ROOT = Path(__file__).parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# `make screenshots` points this at docs/screenshots/; `make test` leaves the tree as it
# was and writes them beside the other browser artifacts.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR", ROOT / "test-artifacts" / "screenshots"))
VIEWPORT = {"width": 1366, "height": 768}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# Words and values that must never reach a page: enum values of states, kinds and
# outcomes, internal codes, Python's way of writing spans and money, raw JSON.
FORBIDDEN_WORDS = (
    "active",
    "assigned",
    "shipped",
    "stock",
    "locked",
    "pending",
    "revoked",
    "lost",
    "returned",
    "retired",
    "open",
    "verified",
    "fulfilled",
    "rejected",
    "produced",
    "dispatched",
    "cancelled",
    "due",
    "printed",
    "accept",
    "reject",
    "challenge",
    "member",
    "third_party",
    "practice_access",
    "staff",
    "admin",
    "helpdesk",
    "auditor",
    "yubico_otp",
    "oath_hotp",
    "totp",
    "paper",
    "portal",
    "manual",
    "misuse",
    "loss",
    "lifecycle",
    "termination",
    "objection",
    "replaced",
    "throttle",
    "takeover",
    "new_password",
    "key_lost",
    "key_defective",
    "resync",
    "unlock",
    "new_user",
    "end_of_access",
    "self_lock",
    "credentials",
    "lock_notice",
    "return_reminder",
    "loss_confirmation",
    "no_coa_port",
    "ack",
    "nak",
    "timeout",
    "full",
    "restricted",
    "password-change",
    "radius",
    "self_service",
    "api",
    "good",
    "damaged",
    "None",
    "True",
    "False",
)
FORBIDDEN_PATTERNS = (
    r"\d+ days?, \d+:\d\d:\d\d",  # a timedelta as Python prints it
    r"\b\d+:\d\d:\d\d\b(?! Uhr)",  # "0:00:00"
    r"\d+\.\d\d EUR",  # money as Python prints it
    r"\{\"",  # raw JSON
    r"\bstatus\.",  # an enum's repr
)


@dataclass
class Site:
    base: str
    app: Flask
    world: World


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("everypage")
    (folder / "instance").mkdir()
    database = folder / "flexnet.sqlite3"
    shutil.copyfile(sqlite_template, database)
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("FLEXNET_")]:
            patch.delenv(name)
        patch.setenv("FLEXNET_INSTANCE", str(folder / "instance"))
        patch.setenv("FLEXNET_SECRET_KEY", TEST_SECRET_KEY)
        patch.setenv("FLEXNET_MASTER_KEY", TEST_MASTER_KEY)
        patch.setenv("FLEXNET_AUDIT_KEY", TEST_AUDIT_KEY)
        url = URL.create("sqlite+pysqlite", database=str(database))
        patch.setenv("FLEXNET_DATABASE_URL", url.render_as_string(hide_password=False))
        patch.setenv("FLEXNET_COOKIE_SECURE", "0")
        app = create_app()
        world = seed(app)
        with served(app) as base:
            yield Site(base, app, world)
        state(app).database.dispose()


def sign_in(page: Page, site: Site, username: str = "anna") -> None:
    page.goto(f"{site.base}/admin/")
    page.get_by_label("Benutzername").fill(username)
    page.get_by_label("Kennwort").fill(PASSWORD)
    page.get_by_role("button", name="Weiter").click()
    seed_text = page.locator("code.seed").inner_text().replace(" ", "")
    page.get_by_label("Einrichtungscode").fill(enrolment_code(site.app, username))
    page.get_by_label("Code aus der Authenticator-App").fill(pyotp.TOTP(seed_text).now())
    page.get_by_role("button", name="Einrichten und anmelden").click()
    expect(page.get_by_text(f"Angemeldet als {username}")).to_be_visible()


@pytest.fixture(scope="module")
def scanner(browser: Browser, site: Site) -> Iterator[Page]:
    """A signed-in admin whose pages may take axe-core in (CSP bypassed for the scan only)."""
    context: BrowserContext = browser.new_context(bypass_csp=True, viewport=VIEWPORT)
    page = context.new_page()
    sign_in(page, site)
    yield page
    context.close()


def _printed_letter(site: Site) -> int:
    with state(site.app).database.reader() as db:
        found = db.scalar(select(Letter.id).where(Letter.run_id == site.world.run_ids[0]))
    assert found is not None
    return found


def _a_fee(site: Site) -> int:
    with state(site.app).database.reader() as db:
        found = db.scalar(select(LossFee.id).order_by(LossFee.id))
    assert found is not None
    return found


def admin_pages(site: Site) -> dict[str, str]:
    """Every page staff open with GET, by name, with realistic arguments."""
    world = site.world
    bsnr, locked = world.bsnrs[0], world.locked_bsnr
    return {
        "dashboard": "/admin/",
        "search": "/admin/search?q=m%C3%BCller",
        "practices": "/admin/practices",
        "practices-filtered": "/admin/practices?status=locked",
        "practice": f"/admin/practices/{bsnr}",
        "practice-locked": f"/admin/practices/{locked}",
        "practice-new": "/admin/practices/new",
        "practice-edit": f"/admin/practices/{bsnr}/edit",
        "practice-end": f"/admin/practices/{bsnr}/end",
        "practice-terms": f"/admin/practices/{bsnr}/terms",
        "takeover": f"/admin/practices/{bsnr}/takeover",
        "lock": f"/admin/practices/{bsnr}/lock",
        "unlock": f"/admin/practices/{locked}/unlock",
        "terminate": f"/admin/practices/{bsnr}/terminate",
        "exception": f"/admin/practices/{bsnr}/exception",
        "key-assign": f"/admin/practices/{bsnr}/key",
        "user-new": f"/admin/practices/{bsnr}/users/new",
        "users": "/admin/users",
        "user": f"/admin/users/{world.usernames[1]}",
        "user-edit": f"/admin/users/{world.member}/edit",
        "user-end": f"/admin/users/{world.member}/end",
        "user-exception": f"/admin/users/{world.member}/exception",
        "keys": "/admin/keys",
        "key-list": "/admin/yubikeys",
        "key": f"/admin/yubikeys/{world.serials[0]}",
        "key-locked": f"/admin/yubikeys/{world.serials[3]}",
        "keys-overdue": "/admin/keys/overdue?days=0",
        "letters": "/admin/letters",
        "mail-run": f"/admin/letters/runs/{world.run_ids[0]}",
        "reprint": f"/admin/letters/{_printed_letter(site)}/reprint",
        "key-replace": f"/admin/practices/{bsnr}/replace",
        "user-reissue": f"/admin/users/{world.usernames[1]}/reissue",
        "user-import": "/admin/users/import",
        "registry": "/admin/registry",
        "exceptions": "/admin/exceptions",
        "exception-end": f"/admin/practices/{world.bsnrs[8]}/exception/end",
        "termination-correct": f"/admin/practices/{world.bsnrs[4]}/termination/correct",
        "termination-withdraw": f"/admin/practices/{world.bsnrs[4]}/termination/withdraw",
        "reactivate": f"/admin/practices/{world.bsnrs[4]}/reactivate",
        "fees": "/admin/fees",
        "fees-filtered": "/admin/fees?state=unbezahlt",
        "fee-invoiced": f"/admin/fees/{_a_fee(site)}/invoiced",
        "fee-paid": f"/admin/fees/{_a_fee(site)}/paid",
        "fee-waive": f"/admin/fees/{_a_fee(site)}/waive",
        "reports": "/admin/reports",
        "report-locks": "/admin/reports?name=locks-next-quarter",
        "report-keys-out": "/admin/reports?name=keys-out",
        "letter-returned": "/admin/letters/returned",
        "terms": "/admin/terms",
        "requests": "/admin/requests",
        "request": f"/admin/requests/{world.request_ids[0]}",
        "logins": "/admin/logins",
        "sessions": "/admin/sessions",
        "audit": "/admin/audit",
        "staff": "/admin/staff",
        "staff-password-reset": "/admin/staff/bernd/password-reset",
        "clients": "/admin/clients",
        "settings": "/admin/settings",
        "password": "/admin/password",
        "not-found": "/admin/practices/000000000",
    }


PUBLIC_PAGES = {
    "start": "/",
    "request-form": "/requests/new",
    "selfservice-login": "/self-service/login",
    "selflock": "/self-service/lock",
    "admin-login": "/admin/login",
    "public-not-found": "/gibt-es-nicht",
}
SCREENSHOT_PAGES = (
    "dashboard",
    "practices",
    "practice",
    "users",
    "user",
    "key-list",
    "key",
    "keys",
    "logins",
    "terms",
    "takeover",
    "audit",
    "letters",
    "mail-run",
    "requests",
    "fees",
    "reports",
    "termination-correct",
)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG
    )
    return [
        {
            "id": v["id"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"][:3]],
        }
        for v in result["violations"]
    ]


def english(text: str) -> list[str]:
    """English state words and internal values in a page's visible text. A word inside a
    name or identifier (``p00-staff``, ``asa-halle-2``) is not one."""
    found = [
        word
        for word in FORBIDDEN_WORDS
        if re.search(rf"(?<![\w\-.@/:]){re.escape(word)}(?![\w\-.@/:])", text)
    ]
    found += [pattern for pattern in FORBIDDEN_PATTERNS if re.search(pattern, text)]
    return found


def visible_text(page: Page) -> str:
    """What a reader sees: the body's text without the small technical tags (an audit
    tag or an unknown reason is shown small *beside* its German label)."""
    return str(
        page.evaluate(
            "() => { const b = document.body.cloneNode(true);"
            " b.querySelectorAll('.tag, code').forEach(e => e.remove());"
            " return b.innerText; }"
        )
    )


def test_every_admin_page_has_no_accessibility_violation_and_no_english_word(
    site: Site, scanner: Page
) -> None:
    assert AXE.exists(), "make test-tools installs axe-core (npm ci)"
    problems: dict[str, Any] = {}
    for name, path in admin_pages(site).items():
        scanner.goto(f"{site.base}{path}")
        assert scanner.locator("html").get_attribute("lang") == "de", name
        violations = axe_violations(scanner)
        words = english(visible_text(scanner))
        if violations or words:
            problems[name] = {"axe": violations, "english": words}
        if name in SCREENSHOT_PAGES:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            scanner.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"))

    # A confirmation page (asked before a VPN session is ended): reached by its form.
    scanner.goto(f"{site.base}/admin/sessions")
    scanner.get_by_role("button", name="Trennen").first.click()
    expect(scanner.get_by_role("button", name="Ja, Sitzung trennen")).to_be_visible()
    violations = axe_violations(scanner)
    if violations:
        problems["confirm"] = {"axe": violations}

    assert problems == {}


def test_every_public_page_has_no_accessibility_violation_and_no_english_word(
    site: Site, browser: Browser
) -> None:
    context = browser.new_context(bypass_csp=True, viewport=VIEWPORT)
    page = context.new_page()
    problems: dict[str, Any] = {}
    for name, path in PUBLIC_PAGES.items():
        page.goto(f"{site.base}{path}")
        assert page.locator("html").get_attribute("lang") == "de", name
        violations = axe_violations(page)
        words = english(visible_text(page))
        if violations or words:
            problems[name] = {"axe": violations, "english": words}
    # The self-service and the public form as a practice sees them on a phone.
    page.set_viewport_size({"width": 360, "height": 740})
    for name in ("request-form", "selflock", "selfservice-login"):
        page.goto(f"{site.base}{PUBLIC_PAGES[name]}")
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        if wide > 360:
            problems[f"{name}@360"] = {"scroll_width": wide}
        violations = axe_violations(page)
        if violations:
            problems[f"{name}@360"] = {"axe": violations}
    context.close()

    assert problems == {}


def test_the_english_word_check_finds_what_it_must(site: Site) -> None:
    assert english("Status: locked") == ["locked"]
    assert english("Dauer 1 day, 0:00:00") != []
    assert english("Gebühr 60.00 EUR") != []
    assert english('Daten {"why": "lost"}') != []
    assert english("Benutzer p00-staff, NAS asa-halle-2, gesperrt") == []


def test_the_scan_finds_a_field_without_a_label(site: Site, browser: Browser) -> None:
    context = browser.new_context(bypass_csp=True, viewport=VIEWPORT)
    page = context.new_page()
    page.goto(f"{site.base}/requests/new")
    page.evaluate("() => document.querySelector('main').append(document.createElement('input'))")

    assert [v["id"] for v in axe_violations(page)] == ["label"]
    context.close()
