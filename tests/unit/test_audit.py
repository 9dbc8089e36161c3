from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import GENESIS_HASH, Actor, AuditTag, Subject
from flexnet.db import AUDIT_KEY_INFO, Database
from flexnet.models import AuditEntry
from tests.conftest import NOW

ACTOR = Actor.staff("anna")


def append(session: Session, n: int) -> list[AuditEntry]:
    return [
        audit.record(
            session,
            AuditTag.PRACTICE_CREATE,
            actor=ACTOR,
            subject=Subject("practice", f"88000000{i}"),
            data={"name": f"Praxis {i}", "umlaut": "Müller"},
            source_ip="192.0.2.7",
            now=NOW + timedelta(seconds=i),
        )
        for i in range(n)
    ]


def test_entries_chain_onto_each_other(session: Session) -> None:
    first, second, third = append(session, 3)

    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert audit.verify_chain(session) == audit.ChainReport(
        entries=3, head=third.hash, head_id=third.id, sealed=True
    )


def test_entry_fields_round_trip(session: Session) -> None:
    (entry,) = append(session, 1)
    session.expire_all()

    stored = session.get(AuditEntry, entry.id)

    assert stored is not None
    assert stored.at == NOW
    assert stored.actor_kind == "staff" and stored.actor == "anna"
    assert stored.tag == "practice:record:create"
    assert (stored.subject_kind, stored.subject_id) == ("practice", "880000000")
    assert stored.data == '{"name":"Praxis 0","umlaut":"Müller"}'


def test_altered_content_is_detected(session: Session) -> None:
    entries = append(session, 4)
    session.execute(
        update(AuditEntry).where(AuditEntry.id == entries[2].id).values(data='{"name":"x"}')
    )
    session.expire_all()

    report = audit.verify_chain(session)

    assert not report.ok
    assert report.first_broken_id == entries[2].id
    assert report.problem == "Inhalt verändert"


def test_rehashed_alteration_breaks_the_next_link(session: Session) -> None:
    entries = append(session, 3)
    victim = session.get_one(AuditEntry, entries[1].id)
    victim.actor = "mallory"
    victim.hash = audit.entry_hash(victim)
    session.flush()
    session.expire_all()

    sealed = audit.verify_chain(session)
    session.info.pop(AUDIT_KEY_INFO)
    links_only = audit.verify_chain(session)

    assert (sealed.first_broken_id, sealed.problem) == (
        entries[1].id,
        "Siegel falsch (Eintrag verändert oder anderer Schlüssel)",
    )
    assert links_only.first_broken_id == entries[2].id


def test_deleted_entry_is_detected(session: Session) -> None:
    entries = append(session, 3)
    session.execute(delete(AuditEntry).where(AuditEntry.id == entries[1].id))
    session.expire_all()

    assert audit.verify_chain(session).first_broken_id == entries[2].id


def test_deleting_the_first_entry_is_detected(session: Session) -> None:
    entries = append(session, 2)
    session.execute(delete(AuditEntry).where(AuditEntry.id == entries[0].id))
    session.expire_all()

    assert audit.verify_chain(session).first_broken_id == entries[1].id


@pytest.mark.parametrize("key", ["password", "OTP", "aes_key", "secret"])
def test_secrets_are_refused_in_audit_data(session: Session, key: str) -> None:
    with pytest.raises(ValueError, match="must not contain secrets"):
        audit.record(session, AuditTag.USER_CREATE, actor=ACTOR, data={key: "x"}, now=NOW)

    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def _append_concurrently(url: URL) -> None:
    database = Database.from_url(url)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                with database.session() as session:
                    audit.record(session, AuditTag.USER_CREATE, actor=Actor.user(f"w{n}-{i}"))
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with database.session() as session:
        report = audit.verify_chain(session)
    database.dispose()

    assert errors == []
    assert report.ok
    assert report.entries == 40


@pytest.mark.postgres
def test_concurrent_appends_do_not_fork_the_chain_on_postgresql(pg_url: URL) -> None:
    _append_concurrently(pg_url)


def test_concurrent_appends_do_not_fork_the_chain_on_sqlite(sqlite_url: URL) -> None:
    _append_concurrently(sqlite_url)


def test_entries_are_hashed_in_utc_whatever_zone_now_has(session: Session) -> None:
    from flexnet.lifecycle.rules import BERLIN

    audit.record(session, AuditTag.USER_CREATE, actor=ACTOR, now=NOW.astimezone(BERLIN))
    session.expire_all()

    assert audit.verify_chain(session).ok


def test_report_names_the_head_so_a_cut_tail_can_be_noticed(session: Session) -> None:
    entries = append(session, 3)
    before = audit.verify_chain(session)
    session.execute(delete(AuditEntry).where(AuditEntry.id == entries[2].id))
    session.expire_all()

    after = audit.verify_chain(session)

    assert before.head == entries[2].hash
    assert after.ok  # a chain alone cannot see its end cut off ...
    assert after.head != before.head  # ... but the recorded head shows it


def _rewrite_and_recompute(session: Session, victim_id: int, **changes: object) -> None:
    """What a database administrator can do: change an entry, then recompute every hash
    from it to the head so that each link fits again."""
    entries = list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.id >= victim_id).order_by(AuditEntry.id)
        )
    )
    previous = session.scalar(
        select(AuditEntry.hash).where(AuditEntry.id < victim_id).order_by(AuditEntry.id.desc())
    )
    for name, value in changes.items():
        setattr(entries[0], name, value)
    for entry in entries:
        entry.prev_hash = previous or GENESIS_HASH
        entry.hash = audit.entry_hash(entry)
        previous = entry.hash
    session.flush()
    session.expire_all()


def test_a_rewritten_and_recomputed_chain_fails_the_keyed_verification(
    session: Session,
) -> None:
    entries = append(session, 5)
    assert audit.verify_chain(session).ok

    _rewrite_and_recompute(session, entries[1].id, actor="mallory")
    report = audit.verify_chain(session)

    assert not report.ok
    assert report.first_broken_id == entries[1].id
