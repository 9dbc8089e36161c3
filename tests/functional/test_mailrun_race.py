"""Two mail runs started at once on PostgreSQL never print one letter twice."""

from __future__ import annotations

import io

import pytest
from sqlalchemy.engine import URL

from flexnet.db import Database
from flexnet.models import UserKind
from flexnet.provisioning import issuance, mailruns
from tests.conftest import BOX, NOW, STAFF
from tests.support.seed import add_login
from tests.unit.provisioning.test_mailruns import MONDAY, SETTINGS, TEMPLATES


def produce(database: Database, session_out: list[object]) -> mailruns.ProducedRun | None:
    session = database.session_factory()
    session_out.append(session)
    return mailruns.produce_run(
        session,
        today=MONDAY,
        out=io.BytesIO(),
        templates=TEMPLATES,
        settings=SETTINGS,
        actor=STAFF,
        now=NOW,
    )


@pytest.mark.postgres
def test_second_run_skips_letters_the_first_one_holds(pg_url: URL) -> None:
    database = Database.from_url(pg_url)
    with database.session() as session:
        add_login(session, BOX, bsnr="881234500", now=NOW)  # the practice's key is in use
        for name in ("anna", "bernd"):
            issuance.add_user(
                session, username=name, bsnr="881234500", kind=UserKind.STAFF, actor=STAFF, now=NOW
            )
    sessions: list[object] = []

    first = produce(database, sessions)
    second = produce(database, sessions)  # while the first run's transaction is open
    for open_session in sessions:
        open_session.commit()  # type: ignore[attr-defined]
        open_session.close()  # type: ignore[attr-defined]
    third = produce(database, sessions)
    sessions[-1].close()  # type: ignore[attr-defined]

    assert first is not None and first.letters == 2
    assert second is None and third is None
    database.dispose()
