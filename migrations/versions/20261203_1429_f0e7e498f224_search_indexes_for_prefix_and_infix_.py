"""search indexes for prefix and infix search: staff's search over 50,000 practices and
150,000 users in milliseconds on both databases

PostgreSQL: trigram (pg_trgm, a trusted extension since PostgreSQL 13) GIN indexes on the
folded search keys serve LIKE '%…%'; pattern-operator B-trees serve LIKE '…%' on BSNR
and username whatever the database's collation. SQLite: an FTS5 table with the trigram
tokenizer per table, its content read from the table itself and kept in step by
triggers; prefixes use the unique indexes (GLOB). None of these is in the models: they
are of one database's kind (``flexnet.ops.migrate.NATIVE_SEARCH_OBJECTS``).

A batch migration that rebuilds ``practices`` or ``users`` on SQLite drops their
triggers: it must call ``sqlite_search_index`` again (the search tests on SQLite fail
otherwise).

Revision ID: f0e7e498f224
Revises: c6cc6d21d462
Create Date: 2026-12-03 14:29:26.137561+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "f0e7e498f224"
down_revision: str | Sequence[str] | None = "c6cc6d21d462"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("practices", "users")


def _statements(table: str) -> list[str]:
    """The FTS5 trigram table over ``table.search_key`` and the triggers that follow it
    (``table`` is one of TABLES: spelled out, never built from input)."""
    return [
        statement.replace("@T", table)
        for statement in (
            "CREATE VIRTUAL TABLE IF NOT EXISTS @T_fts USING fts5("
            "search_key, content='@T', content_rowid='id', tokenize='trigram')",
            "CREATE TRIGGER IF NOT EXISTS @T_fts_insert AFTER INSERT ON @T BEGIN "
            "INSERT INTO @T_fts(rowid, search_key) VALUES (new.id, new.search_key); END",
            "CREATE TRIGGER IF NOT EXISTS @T_fts_delete AFTER DELETE ON @T BEGIN "
            "INSERT INTO @T_fts(@T_fts, rowid, search_key) "
            "VALUES ('delete', old.id, old.search_key); END",
            "CREATE TRIGGER IF NOT EXISTS @T_fts_update AFTER UPDATE OF search_key "
            "ON @T BEGIN "
            "INSERT INTO @T_fts(@T_fts, rowid, search_key) "
            "VALUES ('delete', old.id, old.search_key); "
            "INSERT INTO @T_fts(rowid, search_key) VALUES (new.id, new.search_key); END",
            "INSERT INTO @T_fts(@T_fts) VALUES ('rebuild')",
        )
    ]


def sqlite_search_index(table: str) -> None:
    """Create (again) the FTS5 table of ``table`` and its triggers, and fill it."""
    assert table in TABLES  # noqa: S101 - a fixed name
    for statement in _statements(table):
        op.execute(statement)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table in TABLES:
            op.execute(
                f"CREATE INDEX ix_{table}_search_key_trgm ON {table} "
                "USING gin (search_key gin_trgm_ops)"
            )
        op.execute("CREATE INDEX ix_practices_bsnr_pattern ON practices (bsnr varchar_pattern_ops)")
        op.execute("CREATE INDEX ix_users_username_pattern ON users (username varchar_pattern_ops)")
    else:
        for table in TABLES:
            sqlite_search_index(table)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in (
            "ix_users_username_pattern",
            "ix_practices_bsnr_pattern",
            "ix_users_search_key_trgm",
            "ix_practices_search_key_trgm",
        ):
            op.execute(f"DROP INDEX IF EXISTS {name}")
    else:
        for table in TABLES:
            for trigger in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{trigger}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
