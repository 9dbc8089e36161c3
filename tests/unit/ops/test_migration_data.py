"""Migrations that carry data: what an older database held is there, in the new form,
after the upgrade (and back after a downgrade)."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from flexnet import audit
from flexnet.audit import Actor
from flexnet.db import Database, make_engine
from flexnet.errors import ConfigError
from flexnet.lifecycle import job
from flexnet.ops import migrate
from tests.conftest import AUDIT_KEY

_names = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of this test's own, not migrated yet."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'old.sqlite3'}")
    else:
        make_pg_database: Callable[[str], URL] = request.getfixturevalue("make_pg_database")
        engine = make_engine(make_pg_database(f"flexnet_old{next(_names)}"))
    yield engine
    engine.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(migrate.alembic_config(engine), revision)


def rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def test_self_locks_filed_as_unlock_or_lost_key_become_self_locks(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "4419e9657435")
    with empty_engine.begin() as connection:
        for kind, message in (
            ("unlock", "Selbstsperre (account) über das Selbstbedienungsportal"),
            ("key_lost", "Selbstsperre (key) über das Selbstbedienungsportal"),
            ("unlock", "Bitte entsperren, Kennwort dreimal falsch"),
        ):
            connection.execute(
                text(
                    "INSERT INTO service_requests (created_at, bsnr, usernames, kind,"
                    " contact_person, phone, message, status, staff_notes)"
                    " VALUES (:at, '881234500', 'emuster', :kind, 'Erika Muster', '',"
                    " :message, 'open', '')"
                ),
                {"at": datetime(2026, 11, 20, tzinfo=UTC), "kind": kind, "message": message},
            )

    migrate.upgrade(empty_engine, "2a5afbc81a75")
    upgraded = rows(empty_engine, "SELECT kind, message FROM service_requests ORDER BY id")
    downgrade(empty_engine, "4419e9657435")
    downgraded = rows(empty_engine, "SELECT kind FROM service_requests ORDER BY id")

    assert upgraded == [
        ("self_lock", "Selbstsperre über das Selbstbedienungsportal: den eigenen Zugang gesperrt."),
        (
            "self_lock",
            "Selbstsperre über das Selbstbedienungsportal: den Yubikey der Praxis gesperrt.",
        ),
        ("unlock", "Bitte entsperren, Kennwort dreimal falsch"),
    ]
    assert downgraded == [("unlock",), ("key_lost",), ("unlock",)]


def test_search_keys_of_the_records_there_are_computed(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "2a5afbc81a75")
    with empty_engine.begin() as connection:
        for number, (name, city) in enumerate(
            [("Praxis Dr. Müller", "Köthen (Anhalt)"), ("Praxis Weiß", "Weißenfels")], start=1
        ):
            connection.execute(
                text(
                    "INSERT INTO practices (id, bsnr, name, street, zip_code, city, kind,"
                    " access_profile, status, created_at)"
                    " VALUES (:id, :bsnr, :name, 'Weg 1', '06366', :city, 'member',"
                    " 'default', 'active', :at)"
                ),
                {
                    "id": number,
                    "bsnr": f"88123450{number}",
                    "name": name,
                    "city": city,
                    "at": datetime(2026, 11, 20, tzinfo=UTC),
                },
            )
        for number, name in enumerate(["Jürgen Groß", None], start=1):
            connection.execute(
                text(
                    "INSERT INTO users (id, username, practice_id, kind, name,"
                    " password_must_change, failed_logins, session_epoch, status, created_at)"
                    " VALUES (:id, :username, 1, 'staff', :name, false, 0, 0, 'pending', :at)"
                ),
                {
                    "id": number,
                    "username": f"user{number}",
                    "name": name,
                    "at": datetime(2026, 11, 20, tzinfo=UTC),
                },
            )

    migrate.upgrade(empty_engine)

    assert rows(empty_engine, "SELECT search_key FROM practices ORDER BY id") == [
        ("praxis dr. mueller\nkoethen (anhalt)",),
        ("praxis weiss\nweissenfels",),
    ]
    assert rows(empty_engine, "SELECT search_key FROM users ORDER BY id") == [
        ("juergen gross",),
        ("",),
    ]


# --- the audit chain sealed ---------------------------------------------------------


def _legacy_hash(prev: str, values: dict[str, object]) -> str:
    """The chain as flexnet wrote it before the audit key (format 1), written out here on
    its own so that the test holds the migration to what older databases really hold."""
    at = values["at"]
    assert isinstance(at, datetime)
    content = [
        prev,
        at.isoformat(timespec="microseconds"),
        *(values[name] for name in ("actor_kind", "actor", "tag", "subject_kind")),
        *(values[name] for name in ("subject_id", "data", "source_ip")),
    ]
    encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def _write_legacy_chain(engine: Engine, count: int) -> None:
    prev = "0" * 64
    with engine.begin() as connection:
        for i in range(count):
            values: dict[str, object] = {
                "at": datetime(2026, 11, 1, 8, i, tzinfo=UTC),
                "actor_kind": "staff",
                "actor": "anna",
                "tag": "practice:record:create",
                "subject_kind": "practice",
                "subject_id": f"88123450{i}",
                "data": json.dumps({"name": f"Praxis Müller {i}"}, ensure_ascii=False),
                "source_ip": f"192.0.2.{i + 1}" if i % 2 == 0 else None,
            }
            prev = _legacy_hash(prev, values)
            connection.execute(
                text(
                    "INSERT INTO audit_entries (at, actor_kind, actor, tag, subject_kind,"
                    " subject_id, data, source_ip, prev_hash, hash) VALUES (:at, :actor_kind,"
                    " :actor, :tag, :subject_kind, :subject_id, :data, :source_ip, :prev, :hash)"
                ),
                {**values, "prev": _prev_of(connection), "hash": prev},
            )


def _prev_of(connection: Connection) -> str:
    last = connection.execute(text("SELECT hash FROM audit_entries ORDER BY id DESC")).first()
    return str(last[0]) if last else "0" * 64


def test_an_older_chain_is_sealed_on_upgrade_and_stays_verifiable_without_its_addresses(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine, "5f7631b39086")
    _write_legacy_chain(empty_engine, 6)
    heads_before = rows(empty_engine, "SELECT id, hash FROM audit_entries ORDER BY id")

    migrate.upgrade(empty_engine, audit_key=AUDIT_KEY)
    database = Database(empty_engine, audit_key=AUDIT_KEY)
    with database.session() as session:
        sealed = audit.verify_chain(session)
        job.run(
            session,
            now=datetime(2026, 12, 15, tzinfo=UTC),
            settings=job.JobSettings(),
            actor=Actor.system("t"),
        )
    with database.session() as session:
        without_addresses = audit.verify_chain(session)
        addresses = session.scalar(
            text("SELECT count(*) FROM audit_entries WHERE source_ip IS NOT NULL")
        )

    assert sealed.ok and sealed.sealed and sealed.entries == 6
    assert rows(empty_engine, "SELECT id, hash FROM audit_entries WHERE id <= 6 ORDER BY id") == (
        heads_before
    )  # hashes recorded outside the database stay valid
    assert without_addresses.ok and without_addresses.entries > 6
    assert addresses == 0


def test_a_legacy_entry_rewritten_after_its_address_went_fails_the_seal(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine, "5f7631b39086")
    _write_legacy_chain(empty_engine, 4)
    migrate.upgrade(empty_engine, audit_key=AUDIT_KEY)
    with empty_engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET source_ip = NULL, source_ip_salt = NULL"))
        connection.execute(text("UPDATE audit_entries SET actor = 'mallory' WHERE id = 1"))

    with Database(empty_engine, audit_key=AUDIT_KEY).reader() as session:
        report = audit.verify_chain(session)

    assert (report.first_broken_id, report.problem) == (
        1,
        "Siegel falsch (Eintrag verändert oder anderer Schlüssel)",
    )


def test_an_upgrade_without_the_audit_key_stops_and_changes_nothing(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine, "5f7631b39086")
    _write_legacy_chain(empty_engine, 2)

    with pytest.raises(ConfigError, match="FLEXNET_AUDIT_KEY"):
        migrate.upgrade(empty_engine)
    migrate.upgrade(empty_engine, audit_key=AUDIT_KEY)

    assert migrate.is_up_to_date(empty_engine)
    with Database(empty_engine, audit_key=AUDIT_KEY).reader() as session:
        assert audit.verify_chain(session).ok


def test_fees_on_loss_letters_become_the_ledger_once_per_key_and_notices_get_a_cause(
    empty_engine: Engine,
) -> None:
    migrate.upgrade(empty_engine, "3a8dd7578b63")
    at = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)  # 21.11.2026 in Berlin
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO practices (id, bsnr, name, street, zip_code, city, kind,"
                " access_profile, status, created_at) VALUES (1, '881234501', 'Praxis',"
                " 'Weg 1', '06366', 'Köthen', 'member', 'default', 'active', :at)"
            ),
            {"at": at},
        )
        for number in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO tokens (id, serial, kind, public_id, remote_validation,"
                    " practice_id, status, otp_usage_counter, otp_session_counter,"
                    " hotp_counter, created_at) VALUES (:id, :serial, 'yubico_otp', :public,"
                    " true, 1, 'lost', 0, -1, 0, :at)"
                ),
                {
                    "id": number,
                    "serial": f"700000{number}",
                    "public": f"cccccccccc0{number}",
                    "at": at,
                },
            )
        connection.execute(
            text(
                "INSERT INTO mail_runs (id, status, run_date, produced_at, produced_by,"
                " dispatched_on) VALUES (1, 'dispatched', '2026-11-21', :at, 'hd', '2026-11-21')"
            ),
            {"at": at},
        )
        letters = [
            ("loss_confirmation", "dispatched", 1, 6000, None),
            ("loss_confirmation", "due", 1, 6000, None),  # the same loss twice: one fee
            ("loss_confirmation", "cancelled", 2, 4500, None),  # never sent: no fee
            (
                "lock_notice",
                "due",
                None,
                None,
                "Kündigung durch die Praxis zum 31.12.2026 (§ 10.2)",
            ),
            ("lock_notice", "due", None, None, "automatisch gesperrt ab 01.01.2027, § 10.3"),
        ]
        for kind, status, token, fee, note in letters:
            connection.execute(
                text(
                    "INSERT INTO letters (kind, status, practice_id, token_id, run_id,"
                    " replace_at_once, fee_cents, note, created_at, created_by)"
                    " VALUES (:kind, :status, 1, :token, :run, true, :fee, :note, :at, 'hd')"
                ),
                {"kind": kind, "status": status, "token": token, "fee": fee, "note": note,
                 "at": at, "run": 1 if status == "dispatched" else None},
            )  # fmt: skip
    migrate.upgrade(empty_engine)

    fees = rows(
        empty_engine, "SELECT token_id, serial, amount_cents, owed_on, recorded_by FROM loss_fees"
    )
    assert [(*row[:3], str(row[3]), row[4]) for row in fees] == [
        (1, "7000001", 6000, "2026-11-21", "hd")
    ]
    assert rows(
        empty_engine, "SELECT cause FROM letters WHERE kind = 'lock_notice' ORDER BY id"
    ) == [("termination",), ("lifecycle",)]


def test_stored_terminate_causes_get_their_names(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "f0e7e498f224")
    at = datetime(2026, 11, 20, tzinfo=UTC)
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO nas_clients (id, name, address, secret,"
                " allow_missing_message_authenticator, active, created_at)"
                " VALUES (1, 'vpn-1', '192.0.2.1/32', :secret, false, true, :at)"
            ),
            {"secret": b"sealed", "at": at},
        )
        for n, cause in enumerate(("1", "4", "22", "99", "NAS-Reboot", None), start=1):
            connection.execute(
                text(
                    "INSERT INTO vpn_sessions (id, nas_id, acct_session_id, username,"
                    " started_at, updated_at, input_octets, output_octets, terminate_cause)"
                    " VALUES (:id, 1, :sid, 'emuster', :at, :at, 0, 0, :cause)"
                ),
                {"id": n, "sid": f"s-{n}", "at": at, "cause": cause},
            )

    migrate.upgrade(empty_engine, "c3fb71f396ed")

    assert rows(empty_engine, "SELECT terminate_cause FROM vpn_sessions ORDER BY id") == [
        ("User-Request",),
        ("Idle-Timeout",),
        ("Port-Administratively-Disabled",),
        ("99",),
        ("NAS-Reboot",),
        (None,),
    ]
