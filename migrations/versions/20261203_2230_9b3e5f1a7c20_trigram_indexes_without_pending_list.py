"""trigram indexes without a pending list: staff's search never reads unmerged entries

PostgreSQL's GIN indexes collect new entries in a pending list (``fastupdate``) until a
vacuum merges them, and every search reads that list from start to end: after a registry
import of many practices, up to ``gin_pending_list_limit`` (4 MB) of it, several
milliseconds per index and search, until autovacuum comes by. With ``fastupdate`` off a
write merges its entries at once; updating 12,500 practices took no longer that way
(measured for issue 17). The list already there is merged now. SQLite has no such list.

Revision ID: 9b3e5f1a7c20
Revises: 5d2a9e7c41b8
Create Date: 2026-12-03 22:30:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9b3e5f1a7c20"
down_revision: str | Sequence[str] | None = "5d2a9e7c41b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = ("ix_practices_search_key_trgm", "ix_users_search_key_trgm")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
        op.execute(f"SELECT gin_clean_pending_list('{index}'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} RESET (fastupdate)")
