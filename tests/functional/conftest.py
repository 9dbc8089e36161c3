"""Fixtures for tests that run flexnet's CLI against a committed database of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import URL

from flexnet.cli import cli
from flexnet.db import Database
from tests.support.cli import Invoke, ok


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> URL:
    url: URL = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    return url


@pytest.fixture
def invoke(env: dict[str, str], database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", database_url.render_as_string(hide_password=False))
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def database(database_url: URL) -> Iterator[Database]:
    database = Database.from_url(database_url)
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
