"""Two lifecycle runs at once on PostgreSQL: one acts, the other stops; nothing twice."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from flexnet import audit
from flexnet.accounts import practices
from flexnet.db import Database
from flexnet.errors import ConflictError
from flexnet.lifecycle import job
from flexnet.lifecycle.rules import start_of_day
from flexnet.models import AuditEntry, Letter, LetterKind
from tests.conftest import BOX, NOW, STAFF
from tests.support.seed import add_login

LOCK_DAY = start_of_day(date(2027, 7, 1))  # activity ended 2026-05-15 (§ 10.3)


@pytest.mark.postgres
def test_a_second_run_while_the_first_is_open_stops_and_nothing_is_done_twice(
    pg_url: URL,
) -> None:
    database = Database.from_url(pg_url)
    with database.session() as session:
        add_login(session, BOX, bsnr="881234500", now=NOW)
        practices.end_activity(
            session, bsnr="881234500", ended_on=date(2026, 5, 15), actor=STAFF, now=NOW
        )
    first, second = database.session_factory(), database.session_factory()

    try:
        report = job.run(first, now=LOCK_DAY, settings=job.JobSettings(), actor=STAFF)
        with pytest.raises(ConflictError, match="läuft bereits"):
            job.run(second, now=LOCK_DAY, settings=job.JobSettings(), actor=STAFF)
        second.rollback()
        first.commit()
        again = job.run(second, now=LOCK_DAY, settings=job.JobSettings(), actor=STAFF)
        second.commit()
    finally:
        first.close()
        second.close()

    with database.session() as session:
        lock_letters = session.scalar(select(func.count()).where(Letter.kind == LetterKind.LOCK))
        runs = session.scalar(
            select(func.count()).where(AuditEntry.tag == audit.AuditTag.LIFECYCLE_RUN.value)
        )
        chain = audit.verify_chain(session)
    database.dispose()
    assert len(report.locked) == 1
    assert again.locked == []
    assert lock_letters == 1 and runs == 2
    assert chain.ok
