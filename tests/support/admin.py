"""Signing in to the admin UI with Flask's test client, as a browser does it."""

from __future__ import annotations

import re

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from flexnet.db import utcnow
from flexnet.models import StaffRole
from flexnet.staff import accounts as staff_accounts
from flexnet.web import state
from tests.conftest import STAFF

PASSWORD = "Lange-Dienst-Kennwort-42"


def csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def password_step(
    client: FlaskClient, username: str, password: str = PASSWORD, next_: str = ""
) -> tuple[int, str]:
    response = client.post(
        "/admin/login",
        data={
            "csrf_token": csrf(client, "/admin/login"),
            "username": username,
            "password": password,
            "next": next_,
        },
    )
    return response.status_code, response.headers.get("Location", "")


def enrolment_code(app: Flask, username: str) -> str:
    """A one-time enrolment code for ``username``, as another admin hands it out."""
    with state(app).database.session() as db:
        issued = staff_accounts.issue_enrolment_code(
            db, username=username, actor=STAFF, now=utcnow()
        )
        return issued.code


def enrol(
    client: FlaskClient, path: str = "/admin/login/enrol", *, enrolment_code: str
) -> tuple[str, str]:
    """The enrolment page's seed, and where its first code leads (as a browser posts it
    with the enrolment code an admin handed out)."""
    page = client.get(path).get_data(as_text=True)
    seed = re.search(r'<code class="seed">([A-Z2-7 ]+)</code>', page)
    carried = re.search(r'name="next" type="hidden" value="([^"]*)"', page)
    assert seed and carried, page
    secret = seed.group(1).replace(" ", "")
    response = client.post(
        path,
        data={
            "csrf_token": csrf(client, path),
            "enrolment_code": enrolment_code,
            "code": pyotp.TOTP(secret).now(),
            "next": carried.group(1),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return secret, response.headers["Location"]


def code_step(client: FlaskClient, code: str) -> tuple[int, str]:
    response = client.post(
        "/admin/login/code",
        data={"csrf_token": csrf(client, "/admin/login/code"), "code": code},
    )
    return response.status_code, response.headers.get("Location", "")


def signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert password_step(client, username)[0] == 302
    enrol(client, enrolment_code=enrolment_code(app, username))
    return client


def cookie(client: FlaskClient) -> str:
    stored = client.get_cookie("flexnet-admin")
    assert stored is not None
    return stored.value


# Path parameters of admin routes, for tests that visit every route.
SAMPLE_VALUES = {
    "bsnr": "881234500",
    "username": "emuster",
    "serial": "9000001",
    "run_id": 1,
    "request_id": 1,
    "letter_id": 1,
    "session_id": 1,
    "fee_id": 1,
    "kind": "nas",
    "action": "disable",
}


def guarded_routes(app: Flask, roles: dict[str, object]) -> dict[str, tuple[str, set[str]]]:
    """Endpoint → (URL with sample values, methods) of every role-guarded admin route."""
    adapter = app.url_map.bind("localhost")
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in roles:
            values = {name: SAMPLE_VALUES[name] for name in rule.arguments}
            url = adapter.build(rule.endpoint, values)
            routes[rule.endpoint] = (url, set(rule.methods or ()) - {"HEAD", "OPTIONS"})
    assert set(routes) == set(roles), "a guarded endpoint has no route"
    return routes


def add_staff(db: Session, name: str, role: StaffRole, *, settled: bool = True) -> None:
    """A staff account with PASSWORD; ``settled``: as if its first password had already
    been changed (the forced change has tests of its own)."""
    account = staff_accounts.add_staff(
        db, username=name, role=role, password=PASSWORD, actor=STAFF, now=utcnow()
    )
    account.must_change_password = not settled


def change_password(client: FlaskClient, old: str, new: str) -> tuple[int, str]:
    """The forced (or own) password change; returns status and where it leads."""
    response = client.post(
        "/admin/password",
        data={
            "csrf_token": csrf(client, "/admin/password"),
            "old": old,
            "new": new,
            "repeat": new,
        },
    )
    return response.status_code, response.headers.get("Location", "")
