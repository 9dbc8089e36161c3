"""Alembic, driven from code: the schema is only ever built by upgrading."""

from __future__ import annotations

from collections.abc import Mapping

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Engine

from flexnet import resources
from flexnet.auditformat import AuditKey

FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s"

# Search indexes of one database's kind (``accounts/search.py``): PostgreSQL's trigram and
# pattern-operator indexes, SQLite's FTS5 tables (and their shadow tables). They are made
# by a migration, not by the models, so autogenerate must not take them for strays.
NATIVE_SEARCH_OBJECTS = (
    "ix_practices_search_key_trgm",
    "ix_users_search_key_trgm",
    "ix_practices_bsnr_pattern",
    "ix_users_username_pattern",
    "practices_fts",
    "users_fts",
)


def include_name(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
    """Alembic's filter: everything but the native search objects (``NATIVE_SEARCH_OBJECTS``,
    FTS5's shadow tables ``<name>_data`` … included)."""
    if name is None or type_ not in ("table", "index"):
        return True
    return not any(
        name == native or name.startswith(f"{native}_") for native in NATIVE_SEARCH_OBJECTS
    )


def alembic_config(engine: Engine, *, audit_key: AuditKey | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.migrations_dir()))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("timezone", "UTC")
    config.attributes["engine"] = engine
    # A migration that seals the audit chain needs the key (not in the database).
    config.attributes["audit_key"] = audit_key
    return config


def upgrade(engine: Engine, revision: str = "head", *, audit_key: AuditKey | None = None) -> None:
    command.upgrade(alembic_config(engine, audit_key=audit_key), revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision from the difference between models and database."""
    command.revision(alembic_config(engine), message=message, autogenerate=True)


def heads(engine: Engine) -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config(engine)).get_heads())


def is_known(revision: str) -> bool:
    """True if this version of flexnet has the revision (a database is not from a newer one)."""
    scripts = ScriptDirectory(str(resources.migrations_dir()))
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False


def current(engine: Engine) -> tuple[str, ...]:
    with engine.connect() as connection:
        return tuple(MigrationContext.configure(connection).get_current_heads())


def is_up_to_date(engine: Engine) -> bool:
    return set(current(engine)) == set(heads(engine))
