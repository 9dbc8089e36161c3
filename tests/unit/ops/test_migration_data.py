"""Migrations that carry data: what an older database held is there, in the new form,
after the upgrade (and back after a downgrade)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from flexnet.db import make_engine
from flexnet.ops import migrate

_names = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of this test's own, not migrated yet."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'old.sqlite3'}")
    else:
        make_pg_database: Callable[[str], URL] = request.getfixturevalue("make_pg_database")
        engine = make_engine(make_pg_database(f"flexnet_old{next(_names)}"))
    yield engine
    engine.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(migrate.alembic_config(engine), revision)


def rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def test_self_locks_filed_as_unlock_or_lost_key_become_self_locks(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "4419e9657435")
    with empty_engine.begin() as connection:
        for kind, message in (
            ("unlock", "Selbstsperre (account) über das Selbstbedienungsportal"),
            ("key_lost", "Selbstsperre (key) über das Selbstbedienungsportal"),
            ("unlock", "Bitte entsperren, Kennwort dreimal falsch"),
        ):
            connection.execute(
                text(
                    "INSERT INTO service_requests (created_at, bsnr, usernames, kind,"
                    " contact_person, phone, message, status, staff_notes)"
                    " VALUES (:at, '881234500', 'emuster', :kind, 'Erika Muster', '',"
                    " :message, 'open', '')"
                ),
                {"at": datetime(2026, 11, 20, tzinfo=UTC), "kind": kind, "message": message},
            )

    migrate.upgrade(empty_engine, "2a5afbc81a75")
    upgraded = rows(empty_engine, "SELECT kind, message FROM service_requests ORDER BY id")
    downgrade(empty_engine, "4419e9657435")
    downgraded = rows(empty_engine, "SELECT kind FROM service_requests ORDER BY id")

    assert upgraded == [
        ("self_lock", "Selbstsperre über das Selbstbedienungsportal: den eigenen Zugang gesperrt."),
        (
            "self_lock",
            "Selbstsperre über das Selbstbedienungsportal: den Yubikey der Praxis gesperrt.",
        ),
        ("unlock", "Bitte entsperren, Kennwort dreimal falsch"),
    ]
    assert downgraded == [("unlock",), ("key_lost",), ("unlock",)]


def test_search_keys_of_the_records_there_are_computed(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "2a5afbc81a75")
    with empty_engine.begin() as connection:
        for number, (name, city) in enumerate(
            [("Praxis Dr. Müller", "Köthen (Anhalt)"), ("Praxis Weiß", "Weißenfels")], start=1
        ):
            connection.execute(
                text(
                    "INSERT INTO practices (id, bsnr, name, street, zip_code, city, kind,"
                    " access_profile, status, created_at)"
                    " VALUES (:id, :bsnr, :name, 'Weg 1', '06366', :city, 'member',"
                    " 'default', 'active', :at)"
                ),
                {
                    "id": number,
                    "bsnr": f"88123450{number}",
                    "name": name,
                    "city": city,
                    "at": datetime(2026, 11, 20, tzinfo=UTC),
                },
            )
        for number, name in enumerate(["Jürgen Groß", None], start=1):
            connection.execute(
                text(
                    "INSERT INTO users (id, username, practice_id, kind, name,"
                    " password_must_change, failed_logins, session_epoch, status, created_at)"
                    " VALUES (:id, :username, 1, 'staff', :name, false, 0, 0, 'pending', :at)"
                ),
                {
                    "id": number,
                    "username": f"user{number}",
                    "name": name,
                    "at": datetime(2026, 11, 20, tzinfo=UTC),
                },
            )

    migrate.upgrade(empty_engine)

    assert rows(empty_engine, "SELECT search_key FROM practices ORDER BY id") == [
        ("praxis dr. mueller\nkoethen (anhalt)",),
        ("praxis weiss\nweissenfels",),
    ]
    assert rows(empty_engine, "SELECT search_key FROM users ORDER BY id") == [
        ("juergen gross",),
        ("",),
    ]
