"""Fixtures for tests that run flexnet's CLI against a committed database of their own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy.engine import URL

from flexnet import create_app
from flexnet.cli import cli
from flexnet.db import Database
from flexnet.models import StaffAccount, StaffRole
from flexnet.otp import wsapi
from flexnet.web import state
from tests.conftest import AUDIT_KEY, BOX, NOW, STAFF
from tests.support.cli import Invoke, ok
from tests.support.seed import add_login
from tests.support.web import served
from tests.support.yubikeys import SimulatedKey


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> URL:
    url: URL = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    return url


@pytest.fixture
def invoke(env: dict[str, str], database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """The CLI against this test's database, acting as the staff account ``STAFF`` names
    (``FLEXNET_ACTOR``), which exists there as a helpdesk account."""
    monkeypatch.setenv("FLEXNET_DATABASE_URL", database_url.render_as_string(hide_password=False))
    seed_acting_staff(database_url, monkeypatch)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return run


def seed_acting_staff(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    """Changes on the command line name a staff account: the tests' own (helpdesk role,
    no usable password), named in ``FLEXNET_ACTOR``."""
    database = Database.from_url(database_url)
    try:
        with database.session() as session:
            session.add(
                StaffAccount(username=STAFF.name, role=StaffRole.HELPDESK, password_hash="-")
            )
    finally:
        database.dispose()
    monkeypatch.setenv("FLEXNET_ACTOR", STAFF.name)


@pytest.fixture
def database(database_url: URL) -> Iterator[Database]:
    """The CLI's database, opened as a node opens it (its audit entries sealed)."""
    database = Database.from_url(database_url, audit_key=AUDIT_KEY)
    yield database
    database.dispose()


@pytest.fixture
def practice_with_terms(invoke: Invoke) -> str:
    ok(
        invoke(
            "practice",
            "add",
            "--bsnr",
            "881234500",
            "--name",
            "Praxis Dr. Müller",
            "--street",
            "Hauptstraße 1",
            "--zip",
            "39104",
            "--city",
            "Magdeburg",
        )
    )
    ok(
        invoke(
            "terms",
            "accept",
            "881234500",
            "--version",
            "1.0",
            "--channel",
            "paper",
            "--date",
            "2026-11-01",
        )
    )
    return "881234500"


# --- a live flexnet web server with a key and a validation-protocol client ----------


@dataclass
class Server:
    app: Flask
    url: str
    client_id: str
    api_key: str
    key: SimulatedKey


def seed(app: Flask, *, require_signature: bool = True) -> tuple[str, str, SimulatedKey]:
    with state(app).database.session() as session:
        key = add_login(session, BOX, serial="4711", now=NOW)
        client, api_key = wsapi.add_client(
            session,
            name="KVSAonline",
            box=BOX,
            actor=STAFF,
            now=NOW,
            require_signature=require_signature,
        )
        client_id = str(client.id)
    return client_id, api_key, key


@pytest.fixture
def app(env: dict[str, str], sqlite_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", sqlite_url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLEXNET_WSAPI_RATE_LIMIT", "5")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    application = create_app()
    yield application
    state(application).database.dispose()


@pytest.fixture
def server(app: Flask) -> Iterator[Server]:
    client_id, api_key, key = seed(app)
    with served(app) as base:
        yield Server(app, f"{base}/wsapi/2.0/verify", client_id, api_key, key)


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, driven by Playwright (installed by make test)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
