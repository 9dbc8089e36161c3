"""An exception stored "for good" as 9999-12-31 before days had a range: the migration
brings it within the range, after which its practice's status can be computed again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session

from flexnet.db import make_engine
from flexnet.lifecycle.status import practice_status
from flexnet.models import LockException, Practice
from flexnet.ops import migrate

BEFORE = "4419e9657435"  # the last revision without the range
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'old.sqlite3'}")
    else:
        create: Callable[[str], URL] = request.getfixturevalue("make_pg_database")
        engine = make_engine(create("flexnet_far_days"))
    yield engine
    engine.dispose()


def test_an_exception_until_9999_is_brought_within_the_range(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, BEFORE)
    practices = sa.table(
        "practices",
        *(sa.column(name) for name in ("id", "bsnr", "name", "street", "zip_code", "city")),
        *(sa.column(name) for name in ("kind", "access_profile", "status", "created_at")),
        sa.column("activity_ended_on", sa.Date()),
    )
    exceptions = sa.table(
        "lock_exceptions",
        *(sa.column(name) for name in ("practice_id", "reason", "decision_ref", "decided_by")),
        sa.column("until", sa.Date()),
        sa.column("created_at"),
    )
    rows = {"881234500": date(9999, 12, 31), "881234501": date(2030, 6, 30)}
    with empty_engine.begin() as connection:
        for number, (bsnr, until) in enumerate(rows.items(), start=1):
            connection.execute(
                sa.insert(practices).values(
                    id=number,
                    bsnr=bsnr,
                    name="Praxis",
                    street="Weg 1",
                    zip_code="39104",
                    city="Halle",
                    kind="member",
                    access_profile="full",
                    status="active",
                    created_at=NOW,
                    activity_ended_on=date(2026, 5, 15),
                )
            )
            connection.execute(
                sa.insert(exceptions).values(
                    practice_id=number,
                    reason="Vertretung",
                    decision_ref="Az 1",
                    decided_by="Vorstand",
                    until=until,
                    created_at=NOW,
                )
            )

    migrate.upgrade(empty_engine)

    with Session(empty_engine) as session:
        query = sa.select(Practice.bsnr, LockException.until).join(LockException.practice)
        kept = dict(session.execute(query).all())
        practice = session.scalars(sa.select(Practice).where(Practice.bsnr == "881234500")).one()
        status = practice_status(practice, NOW)
    assert kept == {"881234500": date(2099, 12, 31), "881234501": date(2030, 6, 30)}
    assert status.lock_at == datetime(2100, 1, 1, tzinfo=status.lock_at.tzinfo)
