"""Alembic environment: the engine comes from flexnet.ops.migrate.alembic_config()."""

from __future__ import annotations

from alembic import context

import flexnet.models  # noqa: F401  (registers every table on Base.metadata)
from flexnet.db import Base
from flexnet.ops import migrate

target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Rebuilding a large table may take longer than a request may.
            connection.exec_driver_sql("SET statement_timeout = 0")
            connection.exec_driver_sql("SET lock_timeout = 0")
            # Session settings outlive this commit; alembic then begins its own transaction.
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=migrate.include_name,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("flexnet migrations run online only: use 'flexnet db upgrade'")
run_migrations_online()
