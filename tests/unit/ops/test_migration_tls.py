"""The migration that gives NAS clients a pinned TLS certificate: existing NAS keep
working without one, one certificate belongs to one NAS, and it goes down cleanly."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from flexnet.ops import migrate
from tests.unit.ops import test_migration_data

empty_engine = test_migration_data.empty_engine  # SQLite and PostgreSQL
rows = test_migration_data.rows
BEFORE, THIS = "cb1816bc360b", "5d2a9e7c41b8"
INSERT = (
    "INSERT INTO nas_clients (id, name, address, secret, allow_missing_message_authenticator,"
    " active, created_at) VALUES (:id, :name, :address, :s, false, true, '2026-12-01 10:00:00')"
)


def test_existing_nas_have_no_certificate_and_a_certificate_pins_one_nas(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine, BEFORE)
    with empty_engine.begin() as connection:
        for number in (1, 2):
            connection.execute(
                text(INSERT),
                {"id": number, "name": f"vpn-{number}", "address": f"192.0.2.{number}", "s": b"x"},
            )

    migrate.upgrade(empty_engine, THIS)
    before = rows(empty_engine, "SELECT name, tls_fingerprint FROM nas_clients ORDER BY id")
    with empty_engine.begin() as connection:
        connection.execute(
            text("UPDATE nas_clients SET tls_fingerprint = :f WHERE id = 1"), {"f": "ab" * 32}
        )
    with pytest.raises(IntegrityError), empty_engine.begin() as connection:
        connection.execute(
            text("UPDATE nas_clients SET tls_fingerprint = :f WHERE id = 2"), {"f": "ab" * 32}
        )
    test_migration_data.downgrade(empty_engine, BEFORE)

    assert [tuple(r) for r in before] == [("vpn-1", None), ("vpn-2", None)]
    assert len(rows(empty_engine, "SELECT name FROM nas_clients")) == 2
    columns = {c["name"] for c in inspect(empty_engine).get_columns("nas_clients")}
    assert "tls_fingerprint" not in columns
