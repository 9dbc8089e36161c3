"""`flexnet backup` / `flexnet restore` for SQLite: online copies, and a restore that keeps
what must outlive it — no OTP accepted twice, no lock undone, no old password back."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from collections.abc import Callable
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from flexnet.accounts import users
from flexnet.audit import AuditTag
from flexnet.authn import pipeline
from flexnet.authn.pipeline import Channel, Client, Decision
from flexnet.clients import nas
from flexnet.config import generate_master_key, load_settings, parse_master_key
from flexnet.db import Database, utcnow
from flexnet.models import AuditEntry, StaffAccount, StaffRole, Token, TokenStatus, User
from flexnet.ops import backup, carryover
from flexnet.otp.secrets import SecretBox
from flexnet.staff import factor
from tests.conftest import BOX, debian_postgresql_tool
from tests.support.cli import Invoke, ok, refused, snapshot
from tests.support.seed import add_login
from tests.support.yubikeys import SimulatedKey

PASSWORD = "Sommer-Regen-2026!"
OLD, NEW = "alter-gemeinsamer-schluessel", "neuer-gemeinsamer-schluessel"
NAS = Client(Channel.RADIUS, name="vpn", source_ip="198.51.100.7")


@pytest.fixture
def database_url(sqlite_url: URL) -> URL:
    """Backup and restore are the SQLite tools; PostgreSQL has pg_dump (one test below)."""
    return sqlite_url


@pytest.fixture
def key(database: Database) -> SimulatedKey:
    with database.session() as session:
        return add_login(session, BOX, username="emuster", password=PASSWORD, serial="0815")


def login(
    database: Database, otp: str, password: str = PASSWORD, *, box: SecretBox = BOX
) -> Decision:
    with database.session() as session:
        return pipeline.Authenticator(load_settings(), box).authenticate(
            session,
            username="emuster",
            password=password,
            otp=otp,
            client=NAS,
            now=utcnow(),
        )


def restore(invoke: Invoke, source: Path, *extra: str) -> str:
    return ok(invoke("restore", str(source), "--yes", *extra)).output


def test_no_otp_is_accepted_twice_across_a_restore(
    invoke: Invoke, database: Database, key: SimulatedKey, tmp_path: Path
) -> None:
    before_backup = key.otp()
    assert login(database, before_backup).accepted
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    after_backup = key.otp()
    assert login(database, after_backup).accepted

    output = restore(invoke, tmp_path / "nightly.sqlite3")
    database.dispose()  # connections opened before the restore are of no further use

    assert "1 Zählerstände" in output
    assert not login(database, before_backup).accepted
    assert not login(database, after_backup).accepted
    assert login(database, key.otp()).accepted


def test_locks_and_password_changes_since_the_backup_survive_it(
    invoke: Invoke, database: Database, key: SimulatedKey, tmp_path: Path
) -> None:
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    ok(invoke("lock", "key", "0815", "--cause", "loss", "--reason", "Verlust gemeldet"))
    with database.session() as session:
        user = session.scalars(select(User).where(User.username == "emuster")).one()
        user.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$changed-since-the-backup"
        user.password_set_at = utcnow()

    restore(invoke, tmp_path / "nightly.sqlite3")
    database.dispose()

    with database.reader() as session:
        token = session.scalars(select(Token).where(Token.serial == "0815")).one()
        user = session.scalars(select(User).where(User.username == "emuster")).one()
        tags = session.scalars(select(AuditEntry.tag)).all()
    assert token.status is TokenStatus.LOST
    assert user.password_hash.endswith("changed-since-the-backup")
    assert not login(database, key.otp()).accepted
    assert AuditTag.DATABASE_RESTORE in tags


def test_a_revoked_password_and_an_ended_activity_since_the_backup_survive_it(
    invoke: Invoke, database: Database, key: SimulatedKey, tmp_path: Path
) -> None:
    """Neither lives in a status column: a lost letter's password was revoked (hash gone),
    the practice's activity ended (§ 10.3 locks by the date)."""
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    with database.session() as session:
        user = users.get_user(session, "emuster")
        users.revoke_issued_password(session, user, password_hash=user.password_hash)
    restore(invoke, tmp_path / "nightly.sqlite3")
    database.dispose()
    revoked = login(database, key.otp())
    ok(invoke("backup", str(tmp_path / "second.sqlite3")))
    with database.session() as session:
        practice = users.get_user(session, "emuster").practice
        practice.activity_ended_on = date(2024, 3, 31)  # locked since 2025-04-01
    restore(invoke, tmp_path / "second.sqlite3")
    database.dispose()

    assert (revoked.outcome.value, revoked.reason) == ("reject", "password_wrong")
    with database.reader() as session:
        ended = users.get_user(session, "emuster").practice.activity_ended_on
    assert ended == date(2024, 3, 31)
    assert not login(database, key.otp()).accepted


def test_an_exception_ended_since_the_backup_does_not_come_back(
    invoke: Invoke, database: Database, key: SimulatedKey, tmp_path: Path
) -> None:
    with database.session() as session:  # ended long ago: § 10.3 locks it by the date
        users.get_user(session, "emuster").practice.activity_ended_on = date(2024, 3, 31)
    grant = ["exception", "grant", "--practice", "881234500", "--until", "2027-06-30"]
    ok(invoke(*grant, "--reason", "Praxisübergabe", "--ref", "V-1", "--decided-by", "Vorstand"))
    assert login(database, key.otp()).accepted
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    ok(invoke("exception", "end", "--practice", "881234500", "--reason", "Übergabe erfolgt"))

    restore(invoke, tmp_path / "nightly.sqlite3")
    database.dispose()

    assert not login(database, key.otp()).accepted


def test_a_backup_newer_than_the_database_it_replaces_is_refused(
    invoke: Invoke, database: Database, key: SimulatedKey, tmp_path: Path
) -> None:
    """Carrying over is only right from a later state to an earlier one."""
    ok(invoke("backup", str(tmp_path / "monday.sqlite3")))
    assert login(database, key.otp()).accepted  # audited history moves on
    ok(invoke("backup", str(tmp_path / "tuesday.sqlite3")))
    restore(invoke, tmp_path / "monday.sqlite3")
    before = snapshot(database)

    refused(invoke("restore", str(tmp_path / "tuesday.sqlite3"), "--yes"), "kein früherer Stand")
    assert snapshot(database) == before


def test_a_login_during_the_restore_stops_it(
    invoke: Invoke,
    database: Database,
    key: SimulatedKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Services must be stopped: a write while the restore prepares would be lost with it
    (and its OTP accepted again), so the restore gives up and replaces nothing."""
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    carry = backup.carry_between

    def carry_while_someone_logs_in(*urls: URL, **audit: Any) -> carryover.CarriedState:
        assert login(database, key.otp()).accepted
        return carry(*urls, **audit)

    monkeypatch.setattr(backup, "carry_between", carry_while_someone_logs_in)
    before = snapshot(database)

    refused(invoke("restore", str(tmp_path / "nightly.sqlite3"), "--yes"), "anhalten")
    after = snapshot(database)
    assert after["auth_events"] == before["auth_events"] + 1  # the login is still there


def test_a_staff_demotion_and_deactivation_since_the_backup_survive_it(
    invoke: Invoke, database: Database, tmp_path: Path
) -> None:
    for name in ("admin1", "admin2"):
        ok(
            invoke(
                "staff", "add", name, "--role", "admin", "--password-stdin", input=f"{PASSWORD}\n"
            )
        )
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    # A new enrolment code since: the one in the backup must not work again.
    newer = ok(invoke("staff", "enrolment-code", "admin1")).output.rsplit(" ", 1)[-1].strip()
    with database.session() as session:
        demoted, gone = session.scalars(
            select(StaffAccount)
            .where(StaffAccount.username.in_(("admin1", "admin2")))
            .order_by(StaffAccount.username)
        )
        demoted.role = StaffRole.AUDITOR
        gone.active = False
        gone.deactivated_at = utcnow()

    restore(invoke, tmp_path / "nightly.sqlite3")
    database.dispose()

    with database.reader() as session:
        accounts = {a.username: a for a in session.scalars(select(StaffAccount))}
    assert accounts["admin1"].role is StaffRole.AUDITOR
    assert not accounts["admin2"].active
    assert accounts["admin1"].enrolment_code_hash == factor.enrolment_code_hash(newer)


def test_a_master_key_rotation_and_a_new_nas_secret_since_the_backup_survive_it(
    invoke: Invoke,
    database: Database,
    key: SimulatedKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The live database's sealed secrets are the current ones: without them the restored
    keys would not open under the new master key, and a leaked NAS secret would be back."""
    ok(invoke("nas", "add", "vpn", "--address", "127.0.0.1", "--secret-stdin", input=f"{OLD}\n"))
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    new_master = generate_master_key()
    ok(invoke("keys", "rotate", "--new-key-stdin", input=f"{new_master}\n"))
    monkeypatch.setenv("FLEXNET_MASTER_KEY", new_master)
    ok(invoke("nas", "set-secret", "vpn", "--secret-stdin", input=f"{NEW}\n"))

    restore(invoke, tmp_path / "nightly.sqlite3")
    database.dispose()

    new_box = SecretBox(parse_master_key(new_master))
    with database.reader() as session:
        (entry,) = nas.load_active(session, new_box)
    assert entry.secret == NEW.encode()
    assert login(database, key.otp(), box=new_box).accepted


def test_backup_is_consistent_while_logins_write(
    invoke: Invoke, database: Database, key: SimulatedKey, tmp_path: Path
) -> None:
    stop = threading.Event()

    def keep_logging_in() -> None:
        # With pauses: SQLite holds its write lock during the hash, and a busy 2-core
        # machine must not starve the backup's own audit entry (docs/RELIABILITY.md).
        while not stop.wait(0.05):
            login(database, key.otp())

    writer = threading.Thread(target=keep_logging_in)
    writer.start()
    try:
        for n in range(3):
            ok(invoke("backup", str(tmp_path / f"copy{n}.sqlite3")))
    finally:
        stop.set()
        writer.join()

    for n in range(3):
        copy = tmp_path / f"copy{n}.sqlite3"
        assert backup.check_backup(copy)
        assert copy.stat().st_mode & 0o777 == 0o600


def test_restore_keeps_the_replaced_database_beside_it(
    invoke: Invoke, database: Database, database_url: URL, key: SimulatedKey, tmp_path: Path
) -> None:
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    assert login(database, key.otp()).accepted
    events_before_restore = _auth_events(Path(str(database_url.database)))

    output = restore(invoke, tmp_path / "nightly.sqlite3")

    copies = list(Path(str(database_url.database)).parent.glob("*.vor-wiederherstellung-*"))
    assert len(copies) == 1 and str(copies[0]) in output
    assert _auth_events(copies[0]) == events_before_restore == 1


def test_a_bad_backup_is_refused_and_the_live_database_untouched(
    invoke: Invoke, database: Database, key: SimulatedKey, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\x17" * 5000)
    before = snapshot(database)

    refused(invoke("restore", str(garbage), "--yes"), "keine lesbare flexnet-Datenbank")
    refused(invoke("backup", str(garbage)), "existiert schon")

    assert snapshot(database) == before
    assert not list(tmp_path.glob("**/*.part"))


def test_restore_without_the_live_database_needs_a_deliberate_flag(
    invoke: Invoke, database: Database, database_url: URL, key: SimulatedKey, tmp_path: Path
) -> None:
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    database.dispose()
    live = Path(str(database_url.database))
    for path in (live, *live.parent.glob(live.name + "-*")):
        path.unlink()

    refused(invoke("restore", str(tmp_path / "nightly.sqlite3"), "--yes"), "--discard-live-state")
    result = ok(
        invoke("restore", str(tmp_path / "nightly.sqlite3"), "--yes", "--discard-live-state")
    )

    assert "WARNUNG" in result.stderr
    assert login(database, key.otp()).accepted


def test_restore_asks_first(invoke: Invoke, database: Database, tmp_path: Path) -> None:
    ok(invoke("backup", str(tmp_path / "nightly.sqlite3")))
    before = snapshot(database)

    result = invoke("restore", str(tmp_path / "nightly.sqlite3"), input="n\n")

    assert result.exit_code != 0 and "ersetzen?" in result.output
    assert snapshot(database) == before


@pytest.mark.postgres
def test_postgresql_is_pointed_to_pg_dump(
    invoke: Invoke, pg_url: URL, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLEXNET_DATABASE_URL", pg_url.render_as_string(hide_password=False))

    refused(invoke("backup", str(tmp_path / "x.sqlite3")), "pg_dump")
    assert not (tmp_path / "x.sqlite3").exists()


def _auth_events(path: Path) -> int:
    with closing(sqlite3.connect(path)) as connection:
        return int(connection.execute("SELECT count(*) FROM auth_events").fetchone()[0])


@pytest.mark.postgres
def test_postgresql_restore_with_pg_restore_then_carry_state(
    invoke: Invoke,
    pg_url: URL,
    make_pg_database: Callable[[str], URL],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The README's procedure: pg_dump; later pg_restore into a new database, db upgrade,
    db carry-state from the replaced one."""
    live = Database.from_url(pg_url)
    try:
        with live.session() as session:
            key = add_login(session, BOX, username="emuster", password=PASSWORD, serial="0815")
        dump = tmp_path / "nightly.dump"
        _pg_tool("pg_dump", "-Fc", "-f", str(dump), _libpq(pg_url))
        used_after_dump = key.otp()
        assert login(live, used_after_dump).accepted
    finally:
        live.dispose()
    restored_url = make_pg_database("flexnet_restored")
    _pg_tool("pg_restore", "--no-owner", "-d", _libpq(restored_url), str(dump))

    monkeypatch.setenv("FLEXNET_DATABASE_URL", restored_url.render_as_string(hide_password=False))
    # Neither database knows the fixture's staff account: the restore acts as the system.
    monkeypatch.delenv("FLEXNET_ACTOR")
    ok(invoke("db", "upgrade"))
    replaced = pg_url.render_as_string(hide_password=False)
    output = ok(invoke("db", "carry-state", "-", input=f"{replaced}\n")).output

    restored = Database.from_url(restored_url)
    try:
        assert "1 Zählerstände" in output
        assert not login(restored, used_after_dump).accepted
        assert login(restored, key.otp()).accepted
    finally:
        restored.dispose()


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_tool(name: str, *args: str) -> None:
    subprocess.run([debian_postgresql_tool(name), *args], check=True, capture_output=True)
