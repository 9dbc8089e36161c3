from __future__ import annotations

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
