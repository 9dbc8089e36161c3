"""Malformed requests against the served app, route by route, on SQLite and PostgreSQL:
a NUL character anywhere (path, query, form, JSON, header), JSON nested too deeply, days
near the end of the calendar. Each is a clear 400 with a German message (problem+json
under /api/v1) and changes nothing; never a server error. The routes are read from the
app's URL map, so a new route is walked too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.clients import apiclients
from flexnet.db import utcnow
from flexnet.models import StaffRole
from flexnet.web import state
from tests.conftest import BOX, STAFF
from tests.support.admin import add_staff, cookie, signed_in
from tests.support.cli import snapshot
from tests.support.seed import add_login
from tests.support.web import served

BSNR = "881234500"
SAMPLES = {
    "bsnr": BSNR,
    "username": "emuster",
    "serial": "9000001",
    "run_id": "1",
    "request_id": "1",
    "letter_id": "1",
    "session_id": "1",
    "kind": "nas",
    "action": "disable",
    "filename": "flexnet.css",
    "reference": "FN-000001",
    "fee_id": "1",
    "name": "fees",
}
# What views read from queries, forms and JSON bodies (a new name needs no entry: a NUL
# anywhere is refused, whatever the name).
NAMES = [
    "q",
    "subject",
    "actor",
    "tag",
    "from",
    "to",
    "before",
    "page",
    "per_page",
    "status",
    "all",
    "next",
    "id",
    "otp",
    "nonce",
    "h",
    "bsnr",
    "name",
    "street",
    "zip_code",
    "city",
    "address_extra",
    "kind",
    "username",
    "lanr",
    "serial",
    "reason",
    "cause",
    "what",
    "confirm",
    "note",
    "step",
    "user",
    "message",
    "contact_person",
    "phone",
    "usernames",
    "until",
    "decision_ref",
    "decided_by",
    "notice_date",
    "requested_date",
    "by",
    "version",
    "accepted_on",
    "password",
    "code",
    "address",
    "secret",
    "description",
    "attributes",
    "role",
]
_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


@dataclass
class Site:
    app: Flask
    base: str
    browser: requests.Session  # signed in to /admin as an admin
    api_key: str

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.api_key}", **kwargs.pop("headers", {})}
        return self.browser.request(
            method, self.base + path, headers=headers, allow_redirects=False, timeout=30, **kwargs
        )

    def form(self, path: str, fields: dict[str, str]) -> requests.Response:
        """A form posted as the browser does: with the CSRF token of the page."""
        page = self.browser.get(self.base + "/admin/", timeout=30).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert token, page[:500]
        return self.call("POST", path, data={"csrf_token": token[1], **fields})


@pytest.fixture
def site(env: dict[str, str], database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", database_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_COOKIE_SECURE", "0")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    app = create_app()
    with state(app).database.session() as db:
        add_staff(db, "anna", StaffRole.ADMIN)
        add_login(db, BOX, bsnr=BSNR, username="emuster", password="Sommer-Regen-2026!")
        _, key = apiclients.add_client(
            db, name="portal", require_otp=False, role=StaffRole.ADMIN, actor=STAFF, now=utcnow()
        )
    browser = requests.Session()
    browser.cookies.set("flexnet-admin", cookie(signed_in(app, "anna")))
    with served(app) as base:
        yield Site(app, base, browser, key)
    browser.close()
    state(app).database.dispose()


def routes(app: Flask) -> list[tuple[str, str, list[str]]]:
    """(rule, method, names of its string arguments) of every route but the static files."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        strings = [name for conv, name in _ARGUMENT.findall(rule.rule) if conv in ("", "string")]
        for method in sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"}):
            found.append((rule.rule, method, strings))
    assert len(found) > 70
    return found


def path(rule: str, **overrides: str) -> str:
    return _ARGUMENT.sub(lambda m: quote(overrides.get(m[2], SAMPLES[m[2]]), safe=""), rule)


def assert_refused(response: requests.Response, route: object, words: str) -> None:
    where = urlsplit(response.url).path
    if where.startswith("/wsapi/"):  # the validation protocol answers in its own words
        assert response.status_code == 200, route
        assert "status=MISSING_PARAMETER" in response.text.splitlines(), route
        return
    assert response.status_code == 400, (route, response.status_code, response.text[:300])
    if where.startswith("/api/"):
        assert response.headers["Content-Type"] == "application/problem+json", route
        body = response.json()
        assert body["status"] == 400 and body["title"] == "Ungültige Anfrage", route
        assert words in body["detail"], (route, body)
    else:
        assert response.headers["Content-Type"].startswith("text/html"), route
        assert words in response.text, (route, response.text[:300])


def test_a_nul_anywhere_in_a_request_is_a_clear_400_and_changes_nothing(site: Site) -> None:
    before = snapshot(state(site.app).database)
    nul = {name: f"1{chr(0)}" for name in NAMES}

    for rule, method, strings in routes(site.app):
        route = (rule, method)
        for name in strings:
            response = site.call(method, path(rule, **{name: SAMPLES[name] + "\x00"}))
            assert_refused(response, (*route, name), "NUL")
        assert_refused(site.call(method, path(rule), params=nul), (*route, "query"), "NUL")
        if method != "GET":
            assert_refused(site.call(method, path(rule), data=nul), (*route, "form"), "NUL")
            assert_refused(site.call(method, path(rule), json=nul), (*route, "json"), "NUL")
        header = {"X-Forwarded-Host": "a\x00b"}
        assert_refused(site.call(method, path(rule), headers=header), (*route, "header"), "NUL")

    assert snapshot(state(site.app).database) == before


def test_deep_json_is_a_400_before_any_key_is_checked(site: Site) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    nested: object = "x"
    for _ in range(40):
        nested = {"username": nested}
    headers = {"Content-Type": "application/json"}

    for rule, method, _ in routes(site.app):
        if method == "GET":
            continue
        answers = []
        for key in (site.api_key, "fx_0123456789ab_falsch", ""):
            for body in (deep, json.dumps(nested)):
                response = site.call(
                    method, path(rule), data=body, headers={**headers, "Authorization": key}
                )
                assert_refused(response, (rule, method), "verschachtelt")
                # wsapi's clock, and the admin frame's sign-out token (timed to the second)
                text = re.sub(r"(?m)^t=.*$", "", response.text)
                answers.append(re.sub(r'name="csrf_token" type="hidden" value="[^"]*"', "", text))
        # The same answer with the right key, a wrong one and none: nothing to learn.
        assert answers[0::2] == [answers[0]] * 3 and answers[1::2] == [answers[1]] * 3


def test_far_days_never_give_a_server_error(site: Site) -> None:
    """Every route with days at both ends of the calendar in its query and body: a
    refusal at most (the routes that use them have their own tests)."""
    days = dict.fromkeys(("from", "to", "today", "date"), "9999-12-31")
    days |= dict.fromkeys(
        (
            "notice_date", "requested_date", "until", "accepted_on", "terms_date", "on",
            "ended_on", "returned_on", "effective_on", "accept_by", "lock_from", "lock_to",
        ),
        "9999-12-25",
    )  # fmt: skip
    early = dict.fromkeys(days, "0001-01-01")

    for rule, method, _ in routes(site.app):
        for values in (days, early):
            answers = [site.call(method, path(rule), params=values)]
            if method != "GET":
                answers.append(site.call(method, path(rule), data=values))
                answers.append(site.call(method, path(rule), json={"by": "member", **values}))
            for response in answers:
                assert response.status_code < 500, (rule, method, response.text[:300])


def test_nul_in_complete_submissions_is_refused_before_the_database(site: Site) -> None:
    """What the issue met on PostgreSQL: a NUL in a lock reason, an id in an API path, an
    audit filter, a serial, a client's name; each submission otherwise complete."""
    before = snapshot(state(site.app).database)
    lock = {"what": "user", "id": "emuster", "cause": "misuse", "reason": "Meldung\x00"}

    answers = {
        "api lock": site.call("POST", "/api/v1/locks", json=lock),
        "api user": site.call("GET", "/api/v1/users/emuster%00"),
        "api token": site.call("GET", "/api/v1/tokens/9000001%00"),
        "audit": site.call("GET", "/admin/audit?subject=emuster%00&actor=a%00&tag=b%00"),
        "lock": site.form(
            f"/admin/practices/{BSNR}/lock",
            {"what": "user", "user": "emuster", "cause": "misuse", "reason": "Meldung\x00"}
            | {"confirm": BSNR},
        ),
        "serial": site.form(f"/admin/practices/{BSNR}/key", {"serial": "9000002\x00"}),
        "nas": site.form(
            "/admin/clients/nas",
            {"name": "vpn\x00", "address": "192.0.2.10", "secret": "s" * 32},
        ),
    }

    for what, response in answers.items():
        assert_refused(response, what, "NUL")
    assert snapshot(state(site.app).database) == before


def test_far_days_are_refused_with_the_range(site: Site) -> None:
    before = snapshot(state(site.app).database)
    terminate = {"by": "member", "notice_date": "9999-12-25", "confirm": BSNR}
    answers = {
        "audit to": site.call("GET", "/admin/audit?to=9999-12-31"),
        "audit from": site.call("GET", "/admin/audit?from=0001-01-01"),
        "terminate": site.form(f"/admin/practices/{BSNR}/terminate", terminate),
        "requested": site.form(
            f"/admin/practices/{BSNR}/terminate",
            terminate | {"notice_date": "2026-11-02", "requested_date": "9999-12-31"},
        ),
        "exception": site.form(
            f"/admin/practices/{BSNR}/exception",
            {"until": "9999-12-31", "reason": "Vertretung", "decision_ref": "Az 1"}
            | {"decided_by": "Vorstand"},
        ),
        "api termination": site.call(
            "POST",
            f"/api/v1/practices/{BSNR}/termination",
            json={"by": "member", "notice_date": "9999-12-25"},
        ),
        "api terms": site.call(
            "POST",
            f"/api/v1/practices/{BSNR}/terms",
            json={"version": "2.0", "accepted_on": "1900-01-01"},
        ),
    }

    for what, response in answers.items():
        assert_refused(response, what, "01.01.2000 bis 31.12.2099")
    assert 'value="9999-12-25"' in answers["terminate"].text  # what was typed stays
    assert snapshot(state(site.app).database) == before
