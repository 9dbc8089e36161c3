"""The migration that lets an auth-log line name the concentrator behind a proxy: lines
written before keep theirs without one, and it goes down cleanly."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from flexnet.ops import migrate
from tests.unit.ops import test_migration_data

empty_engine = test_migration_data.empty_engine  # SQLite and PostgreSQL
rows = test_migration_data.rows
BEFORE, THIS = "9b3e5f1a7c20", "42858cc42b1b"
INSERT = (
    "INSERT INTO auth_events (at, channel, username, client, outcome, reason)"
    " VALUES ('2026-12-01 10:00:00', 'radius', :username, 'radius-proxy', 'accept', 'ok')"
)


def test_earlier_lines_name_no_concentrator_and_new_ones_can(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, BEFORE)
    with empty_engine.begin() as connection:
        connection.execute(text(INSERT), {"username": "emuster"})

    migrate.upgrade(empty_engine, THIS)
    with empty_engine.begin() as connection:
        connection.execute(text(INSERT), {"username": "kweiss"})
        connection.execute(
            text("UPDATE auth_events SET concentrator = :c WHERE username = 'kweiss'"),
            {"c": "ip=10.1.0.1 id=" + "a" * 300},
        )
    after = rows(empty_engine, "SELECT username, concentrator FROM auth_events ORDER BY id")
    test_migration_data.downgrade(empty_engine, BEFORE)

    assert [tuple(r) for r in after] == [
        ("emuster", None),
        ("kweiss", "ip=10.1.0.1 id=" + "a" * 300),
    ]
    assert len(rows(empty_engine, "SELECT username FROM auth_events")) == 2
    columns = {c["name"] for c in inspect(empty_engine).get_columns("auth_events")}
    assert "concentrator" not in columns
