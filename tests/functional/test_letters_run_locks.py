"""A mail run of many credentials letters (issue 17): its passwords are hashed on every
core while no lock is held, so logins and other writers go on meanwhile; the run is
then written in one short transaction, and every printed password works."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.engine import URL

from flexnet.authn import passwords
from flexnet.db import Database
from flexnet.models import Letter, LetterStatus, User, UserKind
from flexnet.provisioning import issuance
from tests.conftest import BOX, NOW, STAFF
from tests.support.cli import Invoke, ok
from tests.support.pdf import printed_credentials
from tests.support.seed import add_login

PRACTICES = 10
USERS_EACH = 4  # 40 credentials letters: enough for the process pool
WAIT_MS = 300  # the writer's patience: far below a run's length, far above a short write


def seed(database: Database) -> None:
    with database.session() as session:
        for practice in range(PRACTICES):
            bsnr = f"8812{practice:05d}"
            add_login(session, BOX, bsnr=bsnr, now=NOW)  # the practice's key is in use
            for n in range(USERS_EACH):
                issuance.add_user(
                    session,
                    username=f"p{practice}u{n}",
                    bsnr=bsnr,
                    kind=UserKind.STAFF,
                    actor=STAFF,
                    now=NOW,
                )


class Writer(threading.Thread):
    """Another writer (a login, staff) touching a letter of the run again and again,
    waiting for a lock at most WAIT_MS each time."""

    def __init__(self, url: URL) -> None:
        super().__init__(daemon=True)
        self.database = Database.from_url(url, timeout_ms=WAIT_MS)
        if self.database.engine.dialect.name == "sqlite":  # whatever the default

            @event.listens_for(self.database.engine, "connect")
            def _patience(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute(f"PRAGMA busy_timeout = {WAIT_MS}")

        self.stop = threading.Event()
        self.writes = 0
        self.errors: list[str] = []

    def run(self) -> None:
        with self.database.reader() as session:
            letter_id = session.scalars(select(Letter.id).order_by(Letter.id)).first()
        while not self.stop.is_set():
            try:
                with self.database.session() as session:
                    session.execute(
                        update(Letter)
                        .where(Letter.id == letter_id)
                        .values(created_by=Letter.created_by)
                    )
                self.writes += 1
            except Exception as error:  # noqa: BLE001 - reported by the test
                self.errors.append(f"{type(error).__name__}: {error}")
            time.sleep(0.02)
        self.database.dispose()


def test_a_run_of_credentials_letters_holds_no_lock_while_hashing(
    invoke: Invoke, database: Database, database_url: URL, tmp_path: Path
) -> None:
    seed(database)
    writer = Writer(database_url)
    writer.start()
    try:
        result = ok(invoke("letters", "run", "--out", str(tmp_path / "run.pdf")))
    finally:
        writer.stop.set()
        writer.join()

    assert f"{PRACTICES * USERS_EACH} Briefe" in result.output
    assert writer.errors == []
    assert writer.writes >= 5
    printed = printed_credentials((tmp_path / "run.pdf").read_bytes())
    assert len(printed) == PRACTICES * USERS_EACH
    with database.reader() as session:
        stored = {user.username: user.password_hash for user in session.scalars(select(User))}
        statuses = set(session.scalars(select(Letter.status)))
    assert all(passwords.verify(printed[name], stored[name]).ok for name in printed)
    assert statuses == {LetterStatus.PRINTED}
