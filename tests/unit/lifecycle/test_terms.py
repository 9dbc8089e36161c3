"""Terms of use that change (MD § 2(4), § 14.2, § 1.3): staff publish a version with the
day it takes effect and a period to accept it; a practice still on an older version
after that period is refused at login (the reply tells it to accept) or, configured so,
locked with the cause "objection" until it accepts. Concrete dates: version 2.0 takes
effect on 1 July 2030, to be accepted by 30 September 2030."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flexnet.authn import pipeline
from flexnet.authn.pipeline import Channel, Client, Outcome
from flexnet.config import Settings, TermsOverdue, parse_master_key
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle import job, terms
from flexnet.lifecycle.rules import BERLIN, start_of_day
from flexnet.lifecycle.status import State, practice_status, user_status
from flexnet.models import (
    Letter,
    LetterKind,
    LockCause,
    Practice,
    PracticeStatus,
    TermsChannel,
    TermsVersion,
    Token,
    TokenStatus,
    User,
    UserStatus,
)
from flexnet.provisioning import mailruns
from tests.conftest import BOX, STAFF, TEST_MASTER_KEY
from tests.support.pdf import page_texts
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]
PASSWORD = "Sommer-Regen-2026!"
PUBLISHED = datetime(2030, 5, 2, 9, 0, tzinfo=BERLIN)
DEADLINE_PASSED = start_of_day(date(2030, 10, 1))
LAST_MOMENT = DEADLINE_PASSED - timedelta(microseconds=1)
SETTINGS = Settings(
    instance_path=Path("/nonexistent"),
    database_url=URL.create("sqlite"),
    secret_key="s" * 32,
    master_key=parse_master_key(TEST_MASTER_KEY),
)
NAS = Client(Channel.RADIUS, "vpn-1", "198.51.100.7")


@dataclass
class Member:
    practice: Practice
    user: User
    key: SimulatedKey
    token: Token


@pytest.fixture
def make_member(
    make_practice: Callable[..., Practice], make_user: Callable[..., User], make_yubikey: MakeKey
) -> Callable[[], Member]:
    def create() -> Member:
        practice = make_practice()  # accepted version 1.0 on 1 November 2026
        user = make_user(practice=practice, migrated_password=PASSWORD)
        user.password_set_at = PUBLISHED  # within its validity period in autumn 2030
        token, key = make_yubikey(practice=practice)
        return Member(practice, user, key, token)

    return create


def publish(session: Session, version: str = "2.0", **dates: date) -> TermsVersion:
    return terms.publish(
        session,
        version=version,
        effective_on=dates.get("effective_on", date(2030, 7, 1)),
        accept_by=dates.get("accept_by", date(2030, 9, 30)),
        actor=STAFF,
        now=dates.get("now", PUBLISHED),  # type: ignore[arg-type]
    )


def accept(session: Session, practice: Practice, version: str, on: date) -> None:
    terms.accept(
        session,
        bsnr=practice.bsnr,
        version=version,
        channel=TermsChannel.PORTAL,
        accepted_on=on,
        actor=STAFF,
        now=start_of_day(on) + timedelta(hours=12),
    )


def login(session: Session, member: Member, password: str, at: datetime) -> pipeline.Decision:
    return pipeline.Authenticator(SETTINGS, BOX).authenticate(
        session,
        username=member.user.username,
        password=password,
        otp=member.key.otp(),
        client=NAS,
        now=at,
    )


def test_publishing_records_the_version_and_asks_each_practice_by_letter(
    session: Session, make_member: Callable[[], Member], make_practice: Callable[..., Practice]
) -> None:
    members = [make_member() for _ in range(3)]
    onboarding = make_practice(terms=False)

    version = publish(session)

    assert (version.version, version.effective_on, version.accept_by) == (
        "2.0",
        date(2030, 7, 1),
        date(2030, 9, 30),
    )
    assert version.published_by == STAFF.name
    asked = session.scalars(select(Letter.practice_id).where(Letter.kind == LetterKind.TERMS)).all()
    assert sorted(asked) == sorted(m.practice.id for m in members)
    assert onboarding.id not in asked
    for member in members:
        assert (member.practice.terms_due_version, member.practice.terms_due_by) == (
            "2.0",
            date(2030, 9, 30),
        )


def test_a_practice_on_the_old_version_is_refused_from_the_day_after_the_period(
    session: Session, make_member: Callable[[], Member]
) -> None:
    late, prompt = make_member(), make_member()
    publish(session)
    accept(session, prompt.practice, "2.0", date(2030, 8, 15))

    assert practice_status(late.practice, LAST_MOMENT).state is State.ACTIVE
    refused = practice_status(late.practice, DEADLINE_PASSED)
    assert refused.state is State.LOCKED and refused.cause is LockCause.OBJECTION
    assert refused.reason is not None and "2.0" in refused.reason and "30.09.2030" in refused.reason
    assert user_status(late.user, DEADLINE_PASSED).state is State.LOCKED
    assert user_status(late.user, DEADLINE_PASSED).message is not None
    assert practice_status(prompt.practice, DEADLINE_PASSED).state is State.ACTIVE
    assert prompt.practice.terms_due_version is None


def test_the_login_reply_tells_to_accept_the_new_terms_only_after_the_right_password(
    session: Session, make_member: Callable[[], Member]
) -> None:
    late = make_member()
    publish(session)

    before = login(session, late, PASSWORD, LAST_MOMENT)
    refused = login(session, late, PASSWORD, DEADLINE_PASSED)
    wrong = login(session, late, "Falsch-Falsch-1", DEADLINE_PASSED + timedelta(minutes=1))

    assert before.outcome is Outcome.ACCEPT
    assert refused.outcome is Outcome.REJECT
    assert refused.reply_message is not None
    assert "Nutzungsbedingungen" in refused.reply_message and "2.0" in refused.reply_message
    assert wrong.outcome is Outcome.REJECT and wrong.reply_message == pipeline.GENERIC_REJECT


def test_accepting_late_opens_the_access_again(
    session: Session, make_member: Callable[[], Member]
) -> None:
    late = make_member()
    publish(session)

    accept(session, late.practice, "2.0", date(2030, 10, 6))

    at = start_of_day(date(2030, 10, 6)) + timedelta(hours=13)
    assert practice_status(late.practice, at).state is State.ACTIVE
    assert login(session, late, PASSWORD, at).outcome is Outcome.ACCEPT


def test_a_later_version_does_not_excuse_the_missed_deadline_of_an_earlier_one(
    session: Session, make_member: Callable[[], Member]
) -> None:
    late = make_member()
    publish(session)
    publish(
        session,
        "3.0",
        effective_on=date(2031, 7, 1),
        accept_by=date(2031, 12, 31),
        now=datetime(2031, 3, 2, 9, 0, tzinfo=BERLIN),  # type: ignore[arg-type]
    )

    assert late.practice.terms_due_version == "3.0"
    assert late.practice.terms_due_by == date(2030, 9, 30)
    assert practice_status(late.practice, start_of_day(date(2031, 3, 3))).state is State.LOCKED
    accept(session, late.practice, "3.0", date(2031, 3, 10))  # the newest covers the older
    assert late.practice.terms_due_by is None


@pytest.mark.parametrize("mode", [TermsOverdue.REFUSE, TermsOverdue.LOCK])
def test_the_nightly_job_locks_for_objection_only_when_configured(
    session: Session, make_member: Callable[[], Member], mode: TermsOverdue
) -> None:
    late, prompt = make_member(), make_member()
    publish(session)
    accept(session, prompt.practice, "2.0", date(2030, 9, 1))
    settings = job.JobSettings(terms_overdue=mode)

    report = job.run(session, now=DEADLINE_PASSED, settings=settings, actor=STAFF)

    locked = mode is TermsOverdue.LOCK
    assert (late.practice.status is PracticeStatus.LOCKED) is locked
    assert prompt.practice.status is PracticeStatus.ACTIVE
    if locked:
        assert late.practice.lock_cause is LockCause.OBJECTION
        assert late.user.status is UserStatus.LOCKED and late.token.status is TokenStatus.LOCKED
        assert len(report.locked) == 1
        accept(session, late.practice, "2.0", date(2030, 10, 8))
        assert late.practice.status is PracticeStatus.ACTIVE
        assert late.user.status is not UserStatus.LOCKED
        assert late.token.status is not TokenStatus.LOCKED
    else:
        assert report.locked == []
        assert practice_status(late.practice, DEADLINE_PASSED).state is State.LOCKED


def test_who_has_not_accepted_the_current_version(
    session: Session, make_member: Callable[[], Member]
) -> None:
    late, prompt, other = make_member(), make_member(), make_member()
    publish(session)
    accept(session, prompt.practice, "2.0", date(2030, 8, 15))

    pending = terms.pending(session)

    assert [(p.bsnr, p.accepted_version, p.due_by) for p in pending] == [
        (late.practice.bsnr, "1.0", date(2030, 9, 30)),
        (other.practice.bsnr, "1.0", date(2030, 9, 30)),
    ]


def test_publishing_and_accepting_refuse_what_does_not_fit(
    session: Session, make_member: Callable[[], Member]
) -> None:
    member = make_member()
    publish(session)

    with pytest.raises(ConflictError, match="bereits veröffentlicht"):
        publish(session)
    with pytest.raises(ValidationError, match="vor dem Inkrafttreten"):
        publish(session, "2.1", effective_on=date(2030, 7, 1), accept_by=date(2030, 6, 30))
    with pytest.raises(ValidationError, match="Vergangenheit"):
        publish(session, "2.1", effective_on=date(2030, 3, 1), accept_by=date(2030, 4, 30))
    with pytest.raises(ValidationError, match="nicht veröffentlicht"):
        accept(session, member.practice, "2.O", date(2030, 8, 15))


def test_the_letter_asking_to_accept_is_printed_with_version_and_deadline(
    session: Session, make_member: Callable[[], Member]
) -> None:
    members = [make_member() for _ in range(2)]
    publish(session)

    out = io.BytesIO()
    produced = mailruns.produce_run(
        session,
        today=date(2030, 5, 3),
        out=out,
        templates=mailruns.templates_for(SETTINGS),
        settings=SETTINGS,
        actor=STAFF,
        now=PUBLISHED + timedelta(days=1),
    )

    assert produced is not None and produced.letters == 2
    pages = page_texts(out.getvalue())
    for member in members:
        (page,) = [text for text in pages if member.practice.bsnr in text]
        flat = " ".join(page.split())
        assert "Version 2.0" in flat and "ab dem 01.07.2030" in flat and "30.09.2030" in flat
