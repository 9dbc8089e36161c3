"""Alembic environment: the engine comes from flexnet.ops.migrate.alembic_config()."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

import flexnet.models  # noqa: F401  (registers every table on Base.metadata)
from flexnet.db import Base
from flexnet.ops import migrate

target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if connection.dialect.name == "postgresql":
            # Rebuilding a large table may take longer than a request may.
            connection.exec_driver_sql("SET statement_timeout = 0")
            connection.exec_driver_sql("SET lock_timeout = 0")
            # Session settings outlive this commit; alembic then begins its own transaction.
            connection.commit()
        if sqlite:
            # Batch mode rebuilds a table (new table, copy, drop, rename): a table other
            # rows refer to can only be dropped with the foreign key checks off, SQLite's
            # documented procedure; they are checked once the migrations are done. The
            # pragma works only outside a transaction, so it goes to the driver directly
            # (SQLAlchemy would begin one first).
            _foreign_keys(connection, on=False)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
            render_as_batch=sqlite,
            compare_type=True,
            include_name=migrate.include_name,
        )
        try:
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _refuse_dangling_references(connection)
        finally:
            if sqlite:
                _foreign_keys(connection, on=True)


def _foreign_keys(connection: Connection, *, on: bool) -> None:
    driver = connection.connection.driver_connection
    assert driver is not None  # noqa: S101 - an open connection has one
    driver.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def _refuse_dangling_references(connection: Connection) -> None:
    """After rebuilding tables without the checks: every reference must still hold,
    else the migration rolls back."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"Migration hinterließe ungültige Verweise: {broken[:5]}")


if context.is_offline_mode():
    raise SystemExit("flexnet migrations run online only: use 'flexnet db upgrade'")
run_migrations_online()
