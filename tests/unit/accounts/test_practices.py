from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.accounts import practices
from flexnet.errors import ConflictError, NotFoundError, PreconditionError, ValidationError
from flexnet.models import AuditEntry, Practice, PracticeKind, PracticeStatus, TermsChannel
from tests.conftest import NOW, STAFF


def tags(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEntry.tag).order_by(AuditEntry.id)))


def test_new_practice_is_pending_until_terms_are_accepted(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice(terms=False)

    assert practice.status is PracticeStatus.PENDING
    assert practice.access_profile == "full"
    with pytest.raises(PreconditionError, match=r"§ 1\.3"):
        practices.require_terms_accepted(practice)


def test_accepting_terms_records_version_channel_date_and_activates(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice(terms=False)

    acceptance = practices.accept_terms(
        session,
        bsnr=practice.bsnr,
        version="2.0",
        channel=TermsChannel.PORTAL,
        accepted_on=date(2026, 11, 20),
        actor=STAFF,
        now=NOW,
    )

    assert practice.status is PracticeStatus.ACTIVE
    assert practice.terms_acceptance is acceptance
    assert (acceptance.version, acceptance.channel) == ("2.0", TermsChannel.PORTAL)
    assert tags(session) == [
        "practice:record:create",
        "practice:terms:accept",
        "practice:record:activate",
    ]


def test_later_terms_version_keeps_the_earlier_record(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice()

    practices.accept_terms(
        session,
        bsnr=practice.bsnr,
        version="2.0",
        channel=TermsChannel.PORTAL,
        accepted_on=date(2026, 11, 22),
        actor=STAFF,
        now=NOW,
    )

    assert [t.version for t in practice.terms_acceptances] == ["1.0", "2.0"]
    assert practice.terms_acceptance is not None and practice.terms_acceptance.version == "2.0"


def test_terms_date_in_the_future_is_refused(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice(terms=False)
    with pytest.raises(ValidationError, match="Zukunft"):
        practices.accept_terms(
            session,
            bsnr=practice.bsnr,
            version="1.0",
            channel=TermsChannel.PAPER,
            accepted_on=date(2026, 11, 24),
            actor=STAFF,
            now=NOW,
        )


def test_third_party_gets_the_restricted_profile(
    make_practice: Callable[..., Practice],
) -> None:
    assert make_practice(kind=PracticeKind.THIRD_PARTY).access_profile == "restricted"


def test_duplicate_bsnr_is_refused(make_practice: Callable[..., Practice]) -> None:
    make_practice(bsnr="881234500")

    with pytest.raises(ConflictError, match="881234500"):
        make_practice(bsnr="881234500")


def test_end_of_activity_is_recorded_and_audited(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice()

    practices.end_activity(
        session, bsnr=practice.bsnr, ended_on=date(2026, 5, 15), actor=STAFF, now=NOW
    )

    assert practice.activity_ended_on == date(2026, 5, 15)
    last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert last is not None and last.tag == "practice:activity:end"
    assert '"ended_on":"2026-05-15"' in last.data


def test_unknown_bsnr_is_reported(session: Session) -> None:
    with pytest.raises(NotFoundError, match="999999999"):
        practices.get_practice(session, "999999999")


# --- edits: practices move and rename ---------------------------------------------------


def audit_data(session: Session, tag: str) -> list[dict[str, object]]:
    rows = session.execute(
        select(AuditEntry.actor, AuditEntry.data)
        .where(AuditEntry.tag == tag)
        .order_by(AuditEntry.id)
    )
    return [{"actor": actor, **json.loads(data)} for actor, data in rows]


def test_an_edit_changes_name_address_phone_and_contact_and_audits_old_and_new(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice(address_extra="Haus B")

    changed = practices.edit_practice(
        session,
        bsnr=practice.bsnr,
        name="MVZ am Dom",
        street="Domplatz 5",
        zip_code="39104",
        address_extra="",
        phone="0391 123 45-6",
        contact_person="Frau Schulze",
        actor=STAFF,
        now=NOW,
    )

    assert (practice.name, practice.street, practice.zip_code, practice.city) == (
        "MVZ am Dom",
        "Domplatz 5",
        "39104",
        "Magdeburg",
    )
    assert practice.address_extra is None
    assert (practice.phone, practice.contact_person) == ("0391 123 45-6", "Frau Schulze")
    assert set(changed) == {
        "name",
        "street",
        "zip_code",
        "address_extra",
        "phone",
        "contact_person",
    }
    (entry,) = audit_data(session, "practice:record:edit")
    assert entry["actor"] == STAFF.name
    assert entry["changes"] == {
        "name": {"old": "Praxis Dr. Müller", "new": "MVZ am Dom"},
        "street": {"old": "Doctor-Eisenbart-Ring 2", "new": "Domplatz 5"},
        "zip_code": {"old": "39120", "new": "39104"},
        "address_extra": {"old": "Haus B", "new": None},
        "phone": {"old": None, "new": "0391 123 45-6"},
        "contact_person": {"old": None, "new": "Frau Schulze"},
    }
    session.flush()
    assert "mvz am dom" in practice.search_key


def test_an_edit_with_a_bad_value_changes_nothing(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice()

    for fields, message in (
        ({"zip_code": "3910"}, "Postleitzahl"),
        ({"phone": "ruf mich an"}, "Telefonnummer"),
        ({"name": "   "}, "Name"),
        ({}, "Keine Änderung"),
    ):
        with pytest.raises(ValidationError, match=message):
            practices.edit_practice(session, bsnr=practice.bsnr, actor=STAFF, now=NOW, **fields)

    assert (practice.zip_code, practice.phone, practice.name) == (
        "39120",
        None,
        "Praxis Dr. Müller",
    )
    assert audit_data(session, "practice:record:edit") == []


def test_an_edit_to_the_same_values_records_nothing(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    practice = make_practice()

    changed = practices.edit_practice(
        session, bsnr=practice.bsnr, city=" Magdeburg ", actor=STAFF, now=NOW
    )

    assert changed == {}
    assert audit_data(session, "practice:record:edit") == []
