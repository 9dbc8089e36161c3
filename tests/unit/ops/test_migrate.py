"""The schema comes only from migrations, and the migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from flexnet import resources
from flexnet.db import Base
from flexnet.ops import migrate


def test_single_head(engine: Engine) -> None:
    assert len(migrate.heads(engine)) == 1


def test_migrated_database_is_at_head(engine: Engine) -> None:
    assert migrate.is_up_to_date(engine)


def test_models_equal_the_migrated_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        # As autogenerate compares (migrations/env.py): the search indexes of one
        # database's kind are made by a migration only (migrate.NATIVE_SEARCH_OBJECTS).
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": migrate.include_name}
        )
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_migration_files_follow_the_naming_scheme() -> None:
    names = [p.name for p in (resources.migrations_dir() / "versions").glob("*.py")]

    assert names
    for name in names:
        date_part, time_part, *_ = name.split("_")
        assert len(date_part) == 8 and date_part.isdigit(), name
        assert len(time_part) == 4 and time_part.isdigit(), name
