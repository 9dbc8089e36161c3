"""The migration that keys VPN sessions by concentrator and gives the default access
profiles a Class: existing sessions keep working, a profile an admin changed is kept."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text

from flexnet.ops import migrate
from tests.unit.ops import test_migration_data

empty_engine = test_migration_data.empty_engine  # SQLite and PostgreSQL
rows = test_migration_data.rows
BEFORE, THIS = "f0e7e498f224", "cb1816bc360b"  # 20 and 18a in between: down through them too
ADMINS = [["Filter-Id", "dritte-eigene-acl"]]


def seed(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE access_profiles SET reply_attributes = :a WHERE name = 'restricted'"),
            {"a": json.dumps(ADMINS)},
        )
        connection.execute(
            text(
                "INSERT INTO nas_clients (id, name, address, secret,"
                " allow_missing_message_authenticator, active, created_at)"
                " VALUES (1, 'vpn-1', '192.0.2.0/28', :s, false, true, '2026-12-01 10:00:00')"
            ),
            {"s": b"x"},
        )
        for session_id, stopped in (("a", None), ("b", "2026-12-01 11:00:00"), ("c", None)):
            connection.execute(
                text(
                    "INSERT INTO vpn_sessions (nas_id, acct_session_id, username, nas_address,"
                    " started_at, updated_at, stopped_at, input_octets, output_octets)"
                    " VALUES (1, :id, 'emuster', '192.0.2.3', '2026-12-01 10:00:00',"
                    " '2026-12-01 10:00:00', :stopped, 0, 0)"
                ),
                {"id": session_id, "stopped": stopped},
            )


def profiles(engine: Engine) -> dict[str, object]:
    return {
        name: json.loads(value) if isinstance(value, str) else value
        for name, value in rows(engine, "SELECT name, reply_attributes FROM access_profiles")
    }


def test_sessions_keep_their_source_and_only_shipped_profiles_get_a_class(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine, BEFORE)
    seed(empty_engine)

    migrate.upgrade(empty_engine, THIS)
    after = profiles(empty_engine)
    with empty_engine.begin() as connection:  # a new Start of the finished session "b"
        connection.execute(
            text(
                "INSERT INTO vpn_sessions (nas_id, acct_session_id, username, nas_address,"
                " concentrator, started_at, updated_at, input_octets, output_octets)"
                " VALUES (1, 'b', 'emuster', '192.0.2.3', '192.0.2.3', '2026-12-01 12:00:00',"
                " '2026-12-01 12:00:00', 0, 0)"
            )
        )
    concentrators = rows(empty_engine, "SELECT DISTINCT concentrator FROM vpn_sessions")
    test_migration_data.downgrade(empty_engine, BEFORE)

    assert after["full"] == [["Filter-Id", "flexnet-full"], ["Class", "OU=full"]]
    assert after["password-change"][-1] == ["Class", "OU=password-change"]  # type: ignore[index]
    assert after["restricted"] == ADMINS  # changed by an admin: left as it is
    assert concentrators == [("192.0.2.3",)]
    assert profiles(empty_engine)["full"] == [["Filter-Id", "flexnet-full"]]
    assert len(rows(empty_engine, "SELECT id FROM vpn_sessions WHERE acct_session_id = 'b'")) == 1
