"""The migration that turns GIN's pending list off for the trigram indexes of staff's
search (PostgreSQL): what was pending is merged, a later write is merged at once, and
it goes down cleanly. On SQLite it changes nothing."""

from __future__ import annotations

from sqlalchemy import Engine, text

from flexnet.ops import migrate
from tests.unit.ops import test_migration_data

empty_engine = test_migration_data.empty_engine  # SQLite and PostgreSQL
rows = test_migration_data.rows
BEFORE, THIS = "5d2a9e7c41b8", "9b3e5f1a7c20"
INDEXES = ("ix_practices_search_key_trgm", "ix_users_search_key_trgm")
OPTIONS = (
    "SELECT c.relname, c.reloptions FROM pg_class c WHERE c.relname IN "
    "('ix_practices_search_key_trgm', 'ix_users_search_key_trgm') ORDER BY c.relname"
)
PENDING = "SELECT pending_tuples FROM pgstatginindex('ix_practices_search_key_trgm')"
INSERT = (
    "INSERT INTO practices (bsnr, name, street, zip_code, city, kind, access_profile,"
    " status, created_at, search_key) VALUES (:bsnr, 'Praxis', 'Ring 2', '39120',"
    " 'Köthen (Anhalt)', 'member', 'full', 'active', '2026-12-01 10:00:00', :key)"
)


def add_practices(engine: Engine, first: int) -> None:
    with engine.begin() as connection:
        for n in range(first, first + 20):
            connection.execute(
                text(INSERT), {"bsnr": f"88{n:07d}", "key": f"praxis {n}\nkoethen (anhalt)"}
            )


def test_nothing_stays_pending_in_the_trigram_indexes(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, BEFORE)
    add_practices(empty_engine, 0)
    if empty_engine.dialect.name == "sqlite":
        migrate.upgrade(empty_engine, THIS)
        test_migration_data.downgrade(empty_engine, BEFORE)
        found = "SELECT rowid FROM practices_fts WHERE practices_fts MATCH '\"koethen\"'"
        assert len(rows(empty_engine, found)) == 20
        return
    with empty_engine.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pgstattuple"))
    pending_before = rows(empty_engine, PENDING)

    migrate.upgrade(empty_engine, THIS)
    merged = rows(empty_engine, PENDING)
    add_practices(empty_engine, 100)
    after_a_write = rows(empty_engine, PENDING)
    options = rows(empty_engine, OPTIONS)
    test_migration_data.downgrade(empty_engine, BEFORE)

    assert pending_before == [(20,)]
    assert merged == after_a_write == [(0,)]
    assert options == [(index, ["fastupdate=off"]) for index in INDEXES]
    assert rows(empty_engine, OPTIONS) == [(index, None) for index in INDEXES]
