"""Access requests (Art. 15 DSGVO): a report holds what the database holds about the person
or practice, nothing about others beyond the practice's own, never a password or key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.accounts import servicerequests
from flexnet.audit import AuditTag
from flexnet.lifecycle import locks
from flexnet.models import (
    AuditEntry,
    AuthEvent,
    LockCause,
    NasClient,
    Practice,
    RequestKind,
    Token,
    User,
    UserKind,
    VpnSession,
)
from flexnet.ops import privacy, privacypdf
from flexnet.provisioning import issuance, letters
from tests.conftest import NOW, STAFF
from tests.support.pdf import page_texts
from tests.support.yubikeys import SimulatedKey
from tests.unit.models.test_personal_data import personal

MakeKey = Callable[..., tuple[Token, SimulatedKey]]


@dataclass
class Two:
    practice: Practice
    alice: User  # the member whose data is asked for
    bob: User  # a colleague at the same practice
    other: User  # a user of another practice


def traces(session: Session, nas: NasClient, user: User, address: str) -> None:
    session.add(
        AuthEvent(
            at=NOW,
            channel="radius",
            username=user.username,
            user_id=user.id,
            bsnr=user.practice.bsnr,
            client=nas.name,
            source_ip=address,
            outcome="accept",
            reason="ok",
        )
    )
    session.add(
        VpnSession(
            nas=nas,
            acct_session_id=f"s-{user.username}",
            username=user.username,
            user_id=user.id,
            framed_ip=f"10.8.0.{user.id}",
            calling_station=address,
            started_at=NOW,
            updated_at=NOW,
        )
    )


@pytest.fixture
def two(session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey) -> Two:
    practice = make_practice(name="Praxis Dr. Albrecht")
    elsewhere = make_practice(name="Praxis Dr. Fremd")
    make_yubikey(practice=practice)

    def add(practice: Practice, username: str, name: str, **extra: object) -> User:
        user, _ = issuance.add_user(
            session,
            username=username,
            bsnr=practice.bsnr,
            kind=UserKind.MEMBER if "lanr" in extra else UserKind.STAFF,
            name=name,
            actor=STAFF,
            now=NOW,
            **extra,  # type: ignore[arg-type]
        )
        return user

    alice = add(practice, "aalbrecht", "Dr. Alice Albrecht", lanr="123456601")
    bob = add(practice, "bbauer", "Bob Bauer")
    other = add(elsewhere, "ffremd", "Frieda Fremd")
    nas = NasClient(name="vpn-1", address="192.0.2.10", secret=b"x")
    session.add(nas)
    for user, address in ((alice, "198.51.100.1"), (bob, "198.51.100.2"), (other, "198.51.100.3")):
        traces(session, nas, user, address)
    for names, contact in (("aalbrecht", "Alice Albrecht"), ("bbauer", "Bob Bauer")):
        servicerequests.file_request(
            session,
            bsnr=practice.bsnr,
            usernames=names,
            kind=RequestKind.NEW_PASSWORD,
            contact_person=contact,
            phone="0391 1234567",
            message=f"Bitte neues Kennwort für {contact}",
            source_ip=None,
            now=NOW,
        )
    locks.lock_user(
        session,
        username="bbauer",
        cause=LockCause.MANUAL,
        reason="Bob Bauer hat die Praxis verlassen",
        actor=STAFF,
        now=NOW + timedelta(hours=1),
    )
    session.flush()
    return Two(practice, alice, bob, other)


def test_a_users_report_holds_their_data_and_nothing_of_their_colleague(
    session: Session, two: Two
) -> None:
    report = privacy.for_user(session, "aalbrecht", actor=STAFF, now=NOW)
    text = report.as_json().decode()
    document = json.loads(text)

    assert document["benutzer"]["name"] == "Dr. Alice Albrecht"
    assert document["benutzer"]["lanr"] == "123456601"
    assert document["betriebsstaette"]["name"] == "Praxis Dr. Albrecht"  # the practice's own
    assert [e["username"] for e in document["anmeldeprotokoll"]] == ["aalbrecht"]
    assert [s["calling_station"] for s in document["vpn_sitzungen"]] == ["198.51.100.1"]
    assert [r["contact_person"] for r in document["anfragen"]] == ["Alice Albrecht"]
    letters_to = {letter["user_id"] for letter in document["briefe"]}
    assert letters_to <= {two.alice.id, None} and two.alice.id in letters_to
    assert {e["tag"] for e in document["revisionsprotokoll"]} >= {"account:user:create"}
    assert len(document["yubikeys"]) == 1 and "secret" not in document["yubikeys"][0]
    for foreign in ("bbauer", "Bob Bauer", "ffremd", "Frieda", "Fremd", "198.51.100.2"):
        assert foreign not in text, foreign
    assert "password_hash" not in text and "$argon2" not in text


def test_a_practices_report_holds_all_its_users_and_nothing_of_another_practice(
    session: Session, two: Two
) -> None:
    report = privacy.for_practice(session, two.practice.bsnr, actor=STAFF, now=NOW)
    text = report.as_json().decode()
    document = json.loads(text)

    assert sorted(u["username"] for u in document["benutzer"]) == ["aalbrecht", "bbauer"]
    assert len(document["anfragen"]) == 2 and len(document["vpn_sitzungen"]) == 2
    assert any(
        e["tag"] == "account:user:lock" and e["subject_id"] == "bbauer"
        for e in document["revisionsprotokoll"]
    )
    bob = next(u for u in document["benutzer"] if u["username"] == "bbauer")
    assert bob["lock_reason"] == "Bob Bauer hat die Praxis verlassen"
    for foreign in ("ffremd", "Frieda", "Praxis Dr. Fremd", "198.51.100.3"):
        assert foreign not in text, foreign
    assert "$argon2" not in text


def test_every_report_is_audited_without_its_content(session: Session, two: Two) -> None:
    privacy.for_user(session, "aalbrecht", actor=STAFF, now=NOW)
    privacy.for_practice(session, two.practice.bsnr, actor=STAFF, now=NOW)

    entries = list(
        session.scalars(select(AuditEntry).where(AuditEntry.tag == AuditTag.PRIVACY_EXPORT.value))
    )

    assert [(e.subject_kind, e.subject_id) for e in entries] == [
        ("user", "aalbrecht"),
        ("practice", two.practice.bsnr),
    ]
    assert all("Albrecht" not in e.data for e in entries)


def test_the_pdf_reads_in_german_with_the_persons_data(session: Session, two: Two) -> None:
    report = privacy.for_user(session, "aalbrecht", actor=STAFF, now=NOW)
    templates = letters.load_templates(letters.default_letters_dir())

    text = "\n".join(page_texts(privacypdf.render(report, templates)))

    assert "Auskunft nach Art. 15 DSGVO" in text
    assert "Dr. Alice Albrecht" in text and "LANR" in text and "123456601" in text
    assert "Anmeldeprotokoll" in text and "198.51.100.1" in text
    assert "Bob Bauer" not in text and "$argon2" not in text


def test_a_report_has_every_registered_personal_column_of_its_rows(
    session: Session, two: Two
) -> None:
    """What docs/DATA_PROTECTION.md lists as personal is in the report, but the secrets."""
    report = privacy.for_user(session, "aalbrecht", actor=STAFF, now=NOW).sections
    sections = {
        "users": [report["benutzer"]],
        "practices": [report["betriebsstaette"]],
        "letters": report["briefe"],
        "tokens": report["yubikeys"],
        "service_requests": report["anfragen"],
        "auth_events": report["anmeldeprotokoll"],
        "vpn_sessions": report["vpn_sitzungen"],
        "audit_entries": report["revisionsprotokoll"],
    }

    for table, rows in sections.items():
        wanted = {c.split(".")[1] for c in personal() if c.startswith(f"{table}.")}
        wanted -= privacy.NEVER.get(table, set())
        assert rows, table
        for shown in rows:
            assert wanted <= set(shown), (table, wanted - set(shown))
