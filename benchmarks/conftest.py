"""Benchmarks reuse the test suite's real databases (SQLite file, a started PostgreSQL)."""

from __future__ import annotations

import os

# A durable PostgreSQL (fsync on) so that figures match production, not a RAM disk.
os.environ.setdefault("FLEXNET_BENCH_DURABLE_PG", "1")

from tests.conftest import (  # noqa: F401  (fixtures, found by name)
    env,
    make_pg_database,
    pg_template,
    pg_url,
    postgresql_server,
    sqlite_template,
    sqlite_url,
)
