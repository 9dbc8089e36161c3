"""audit entries sealed, source addresses outside the hash

Revision ID: 04deca89a024
Revises: 5f7631b39086
Create Date: 2026-12-03 13:47:11.914861+00:00

Entries get a seal under FLEXNET_AUDIT_KEY (an HMAC; the key is not in the database) and
hash a commitment to their source address instead of the address, so that the address
can be deleted after the connection-data period (flexnet.auditformat).

The entries already there keep their hashes (format 1: over the raw address), so head
hashes recorded outside the database stay valid. Each gets its commitment and its seal
here, in this one transaction, with the key the upgrade runs with (``flexnet db
upgrade``); the seal also covers the content without the address, which is what checks
such an entry once its address has gone. An entry whose content no longer matches its
hash is left unsealed: verification with the key names it, as it named it before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from flexnet import auditformat
from flexnet.db import UTCDateTime
from flexnet.errors import ConfigError

revision: str = "04deca89a024"
down_revision: str | Sequence[str] | None = "5f7631b39086"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
_COLUMNS = (
    "id",
    "prev_hash",
    *auditformat.CONTENT,
    "source_ip",
    "hash",
)


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_ip_salt", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("source_ip_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("format", sa.SmallInteger(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("seal", sa.String(length=64), nullable=True))
    _seal_existing()


def _seal_existing() -> None:
    entries = sa.table(
        "audit_entries",
        # "at" as the model reads it (aware UTC): the hash saw it that way.
        *(sa.column(name, UTCDateTime()) if name == "at" else sa.column(name) for name in _COLUMNS),
        sa.column("source_ip_salt"),
        sa.column("source_ip_digest"),
        sa.column("seal"),
    )
    bind = op.get_bind()
    if bind.execute(sa.select(entries.c.id).limit(1)).first() is None:
        return
    raw = context.config.attributes.get("audit_key")
    if raw is None:
        raise ConfigError(
            "FLEXNET_AUDIT_KEY",
            "ist nötig, um die vorhandenen Einträge des Revisionsprotokolls zu versiegeln "
            "('flexnet init' ergänzt ihn in flexnet.env)",
        )
    key: auditformat.AuditKey = raw
    change = (
        sa.update(entries)
        .where(entries.c.id == sa.bindparam("entry_id"))
        .values(
            source_ip_salt=sa.bindparam("salt"),
            source_ip_digest=sa.bindparam("digest"),
            seal=sa.bindparam("new_seal"),
        )
    )
    last = 0
    while True:
        rows = (
            bind.execute(
                sa.select(*(entries.c[name] for name in _COLUMNS))
                .where(entries.c.id > last)
                .order_by(entries.c.id)
                .limit(_BATCH)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        bind.execute(change, [_sealed(key, dict(row)) for row in rows])
        last = rows[-1]["id"]


def _sealed(key: auditformat.AuditKey, row: dict[str, object]) -> dict[str, object]:
    address = row["source_ip"]
    salt, digest = auditformat.commit_address(address if isinstance(address, str) else None)
    row.update(source_ip_digest=digest)
    intact = auditformat.legacy_hash(row) == row["hash"]
    return {
        "entry_id": row["id"],
        "salt": salt,
        "digest": digest,
        "new_seal": auditformat.seal(key, row) if intact else None,
    }


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("seal")
        batch_op.drop_column("format")
        batch_op.drop_column("source_ip_digest")
        batch_op.drop_column("source_ip_salt")
