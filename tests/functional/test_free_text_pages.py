"""Free text through the served app: the admin UI refuses control and bidi characters next
to the field and keeps what was typed, the API answers a problem, the public request form
keeps a message's lines, and text stored before the rules is shown, not obeyed. On SQLite
and PostgreSQL."""

from __future__ import annotations

import re
from datetime import date

import requests
from sqlalchemy import select, update

from flexnet.db import utcnow
from flexnet.lifecycle import lock_exceptions, locks
from flexnet.models import LockCause, LockException, Practice, ServiceRequest, Token, User
from flexnet.web import state
from tests.conftest import STAFF
from tests.functional.test_malformed_requests import BSNR, Site, site
from tests.support.cli import snapshot

__all__ = ["site"]  # the fixture used here

ACTING = ("\x1b", "\x07", "\r", "\u202e", "\u2066")  # what must never reach a page raw


def field_errors(page: str) -> list[str]:
    return re.findall(r'<p class="error"[^>]*>([^<]*)</p>', page)


def test_the_lock_dialog_names_the_character_and_keeps_the_reason(site: Site) -> None:
    before = snapshot(state(site.app).database)
    typed = "Verlust gemeldet \u202eexe.txt"

    response = site.form(
        f"/admin/practices/{BSNR}/lock",
        {"what": "user", "user": "emuster", "cause": "loss", "reason": typed, "confirm": BSNR},
    )

    assert response.status_code == 400
    assert field_errors(response.text) == [
        "Grund enthält ein unsichtbares Formatzeichen (U+202E); bitte ohne dieses Zeichen eingeben"
    ]
    assert f"{typed}</textarea>" in response.text  # what was typed stays for correction
    assert snapshot(state(site.app).database) == before


def test_the_api_answers_a_problem_naming_the_field(site: Site) -> None:
    lock = {"what": "user", "id": "emuster", "cause": "misuse", "reason": "\x1b]0;x\x07"}

    response = site.call("POST", "/api/v1/locks", json=lock)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["detail"].startswith("Grund enthält ein Steuerzeichen (U+001B)")


def test_the_public_request_form_keeps_lines_and_refuses_control_characters(
    site: Site,
) -> None:
    browser = requests.Session()
    page = browser.get(f"{site.base}/requests/new", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    fields = {
        "csrf_token": token[1],
        "bsnr": BSNR,
        "kind": "unlock",
        "contact_person": "Frau Muster",
        "phone": "0391 123456",
        "message": "Guten Tag,\r\n\r\nbitte Rückruf.\r\n",
    }

    done = browser.post(f"{site.base}/requests/new", data=fields, timeout=30)
    refused = browser.post(
        f"{site.base}/requests/new",
        data=fields | {"contact_person": "Frau \x1b[2JMuster"},
        timeout=30,
    )

    assert done.status_code == 200
    with state(site.app).database.reader() as db:
        assert list(db.scalars(select(ServiceRequest.message))) == ["Guten Tag,\n\nbitte Rückruf."]
    assert refused.status_code == 400
    assert "Ansprechpartner enthält ein Steuerzeichen (U+001B)" in refused.text
    assert f'value="{BSNR}"' in refused.text  # the rest of what was typed stays


def test_text_stored_before_the_rules_is_shown_not_obeyed(site: Site) -> None:
    database = state(site.app).database
    with database.session() as db:
        lock_exceptions.grant(
            db,
            bsnr=BSNR,
            until=date(2099, 12, 31),
            reason="Vertretung",
            decision_ref="Az 1",
            decided_by="Vorstand",
            actor=STAFF,
            now=utcnow(),
        )
        locks.lock_practice(
            db, bsnr=BSNR, cause=LockCause.MANUAL, reason="Prüfung", actor=STAFF, now=utcnow()
        )
    with database.session() as db:
        db.execute(
            update(Practice).values(
                name="Praxis \u202eRELLÜM",
                street="Weg 1\r\n\x1b[2J",
                lock_reason="Grund \x1b]0;x\x07",
            )
        )
        db.execute(update(User).values(name="Erika \u2066Muster", lock_reason="\x07Grund"))
        db.execute(update(Token).values(lock_reason="Grund \u202e"))
        db.execute(update(LockException).values(reason="Vertretung \x1b]0;x\x07"))

    pages = [
        site.call("GET", path).text
        for path in (
            f"/admin/practices/{BSNR}",
            "/admin/users/emuster",
            "/admin/search?q=Praxis",
            "/admin/keys",
        )
    ]

    for page in pages:
        assert not [ch for ch in ACTING if ch in page], page
    assert "Praxis \\u202eRELLÜM" in pages[0]
    assert "Grund \\x1b]0;x\\x07" in pages[0]
