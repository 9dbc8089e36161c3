"""Eight-week notices, key returns and reminders, reprogramming, audit retention (§ 10.2/3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import practices
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle import job, locks, returns
from flexnet.lifecycle.rules import start_of_day
from flexnet.models import (
    AuditEntry,
    Letter,
    LetterKind,
    LetterStatus,
    LockCause,
    LockException,
    Practice,
    ReturnCondition,
    Token,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.otp import importer
from flexnet.otp.secrets import YubicoSecret, token_context
from tests.conftest import BOX, NOW, STAFF
from tests.support.seed import lanr
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]


def run_job(session: Session, day: date, **settings: int) -> job.JobReport:
    return job.run(
        session, now=start_of_day(day), settings=job.JobSettings(**settings), actor=STAFF
    )


def letters_of(session: Session, practice: Practice, kind: LetterKind) -> list[Letter]:
    query = select(Letter).where(Letter.practice_id == practice.id, Letter.kind == kind)
    return list(session.scalars(query.order_by(Letter.id)))


def end_activity(session: Session, practice: Practice, ended_on: date) -> None:
    practices.end_activity(session, bsnr=practice.bsnr, ended_on=ended_on, actor=STAFF, now=NOW)


@pytest.fixture
def keyed(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> tuple[Practice, Token]:
    practice = make_practice()
    token, _ = make_yubikey(practice=practice)
    token.last_used_at = NOW - timedelta(days=30)  # at the practice, in use
    session.flush()
    return practice, token


def lock(session: Session, practice: Practice, at: datetime = NOW) -> None:
    locks.lock_practice(
        session, bsnr=practice.bsnr, cause=LockCause.MANUAL, reason="Verstoß", actor=STAFF, now=at
    )


# --- the eight-week notice ------------------------------------------------------------------


def test_the_notice_goes_out_eight_weeks_ahead_and_once(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    practice, token = keyed
    end_activity(session, practice, date(2026, 5, 15))  # locked from 2027-07-01

    early = run_job(session, date(2027, 5, 5))
    due = run_job(session, date(2027, 5, 6))  # 2027-07-01 is 56 days later
    later = run_job(session, date(2027, 5, 7))

    assert (early.notices, due.notices, later.notices) == (0, 1, 0)
    (notice,) = letters_of(session, practice, LetterKind.LOCK_NOTICE)
    assert notice.effective_on == date(2027, 7, 1)
    assert notice.token_id == token.id and notice.user_id is None
    assert notice.note is not None and "§ 10.3" in notice.note
    assert len(later.upcoming) == 1  # the staff report keeps listing it


def test_a_member_ending_alone_gets_a_notice_naming_the_account(
    session: Session, keyed: tuple[Practice, Token], make_user: Callable[..., User]
) -> None:
    practice, _ = keyed
    member = make_user(practice=practice, kind=UserKind.MEMBER)
    # A colleague stays: the practice goes on (§ 1.2), only the leaving member's ends.
    make_user(practice=practice, kind=UserKind.MEMBER, name="Dr. Bleibt", lanr=lanr(2))
    member.activity_ended_on = date(2026, 5, 15)
    session.flush()

    report = run_job(session, date(2027, 6, 1))

    (notice,) = letters_of(session, practice, LetterKind.LOCK_NOTICE)
    assert report.notices == 1
    assert notice.user_id == member.id and notice.token_id is None  # the practice keeps it
    assert notice.effective_on == date(2027, 7, 1)


def test_a_dry_run_queues_no_notice(session: Session, keyed: tuple[Practice, Token]) -> None:
    practice, _ = keyed
    end_activity(session, practice, date(2026, 5, 15))

    report = job.run(
        session,
        now=start_of_day(date(2027, 6, 1)),
        settings=job.JobSettings(),
        actor=STAFF,
        dry_run=True,
    )

    assert len(report.upcoming) == 1
    assert letters_of(session, practice, LetterKind.LOCK_NOTICE) == []


# --- returns and reminders ------------------------------------------------------------------


def test_a_locked_key_not_back_gets_one_reminder_after_the_period(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    practice, token = keyed
    lock(session, practice)

    too_soon = run_job(session, (NOW + timedelta(days=27)).date())
    overdue = run_job(session, (NOW + timedelta(days=29)).date())
    again = run_job(session, (NOW + timedelta(days=60)).date())

    assert (len(too_soon.reminders), len(overdue.reminders), len(again.reminders)) == (0, 1, 0)
    (reminder,) = letters_of(session, practice, LetterKind.RETURN_REMINDER)
    assert reminder.token_id == token.id
    assert token.return_reminded_on == (NOW + timedelta(days=29)).date()


def test_the_overdue_list_names_the_practice_address_until_the_key_is_back(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    practice, token = keyed
    lock(session, practice)
    later = NOW + timedelta(days=30)

    (listed,) = returns.overdue(session, locked_before=later - timedelta(days=28))
    returns.record_return(
        session,
        serial=token.serial,
        received_on=later.date(),
        condition=ReturnCondition.GOOD,
        actor=STAFF,
        now=later,
    )

    assert (listed.serial, listed.bsnr) == (token.serial, practice.bsnr)
    assert listed.address == "Doctor-Eisenbart-Ring 2, 39120 Magdeburg"
    assert listed.locked_on == NOW.date() and listed.reason == "Verstoß"
    assert returns.overdue(session, locked_before=later) == []
    assert run_job(session, later.date()).reminders == []


@pytest.mark.parametrize(
    ("condition", "lost", "status"),
    [
        (ReturnCondition.GOOD, False, TokenStatus.RETURNED),
        (ReturnCondition.DAMAGED, False, TokenStatus.RETIRED),
        (ReturnCondition.GOOD, True, TokenStatus.RETIRED),  # lost is retired for good (§ 7.2)
    ],
)
def test_a_receipt_records_date_and_condition(
    session: Session,
    keyed: tuple[Practice, Token],
    condition: ReturnCondition,
    lost: bool,
    status: TokenStatus,
) -> None:
    _, token = keyed
    cause = LockCause.LOSS if lost else LockCause.MANUAL
    locks.lock_key(
        session,
        serial=token.serial,
        cause=cause,
        reason="x",
        actor=STAFF,
        now=NOW,
        loss_fee_cents=6000 if lost else None,
    )

    returns.record_return(
        session,
        serial=token.serial,
        received_on=NOW.date(),
        condition=condition,
        note="Gehäuse zerkratzt",
        actor=STAFF,
        now=NOW,
    )

    assert token.status is status
    assert (token.returned_on, token.return_condition) == (NOW.date(), condition)
    assert token.lock_cause is None and token.locked_at is None
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.tag == AuditTag.TOKEN_RETURN.value)
    ).one()
    assert '"note":"Gehäuse zerkratzt"' in entry.data and entry.subject_id == token.serial


def test_a_receipt_is_refused_for_a_key_in_use_twice_or_in_the_future(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    practice, token = keyed

    def receive(day: date) -> Token:
        return returns.record_return(
            session,
            serial=token.serial,
            received_on=day,
            condition=ReturnCondition.GOOD,
            actor=STAFF,
            now=NOW,
        )

    with pytest.raises(ConflictError, match="nicht gesperrt"):
        receive(NOW.date())
    lock(session, practice)
    with pytest.raises(ValidationError, match="Zukunft"):
        receive(NOW.date() + timedelta(days=1))
    receive(NOW.date())
    with pytest.raises(ConflictError, match="bereits"):
        receive(NOW.date())


def _csv_line(serial: str, key: SimulatedKey) -> bytes:
    return (
        f"{serial},{key.public_id},{key.private_id.hex()},{key.aes_key.hex()},,"
        "2026-11-23T09:00:00,\n"
    ).encode()


def test_a_returned_key_goes_back_to_stock_only_with_new_secrets(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    practice, token = keyed
    token.otp_usage_counter, token.otp_session_counter = 7, 3
    new = SimulatedKey.random()
    lock(session, practice)

    with pytest.raises(importer.ImportFailed, match="neu programmieren"):
        importer.import_keys(
            session, importer.parse(_csv_line(token.serial, new)), box=BOX, actor=STAFF, now=NOW
        )
    returns.record_return(
        session,
        serial=token.serial,
        received_on=NOW.date(),
        condition=ReturnCondition.GOOD,
        actor=STAFF,
        now=NOW,
    )
    summary = importer.import_keys(
        session, importer.parse(_csv_line(token.serial, new)), box=BOX, actor=STAFF, now=NOW
    )

    assert summary.reprogrammed == 1 and summary.total == 1
    assert token.status is TokenStatus.STOCK and token.practice is None
    assert token.public_id == new.public_id
    assert (token.otp_usage_counter, token.otp_session_counter) == (0, -1)
    assert token.returned_on is None and token.return_condition is None
    secret = YubicoSecret.from_bytes(
        BOX.open(token.secret or b"", context=token_context(token.serial))
    )
    assert (secret.private_id, secret.aes_key) == (new.private_id, new.aes_key)
    tags = session.scalars(select(AuditEntry.tag).where(AuditEntry.subject_id == token.serial))
    assert AuditTag.TOKEN_REPROGRAM.value in list(tags)


def test_reprogramming_with_the_old_secret_is_refused(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    """The same AES key (or private id) again would make captured OTPs valid again."""
    practice, token = keyed
    old = YubicoSecret.from_bytes(
        BOX.open(token.secret or b"", context=token_context(token.serial))
    )
    lock(session, practice)
    returns.record_return(
        session,
        serial=token.serial,
        received_on=NOW.date(),
        condition=ReturnCondition.GOOD,
        actor=STAFF,
        now=NOW,
    )
    same_aes = SimulatedKey(SimulatedKey.random().public_id, b"\x01" * 6, old.aes_key)

    with pytest.raises(importer.ImportFailed, match="alten Schlüssel"):
        importer.import_keys(
            session,
            importer.parse(_csv_line(token.serial, same_aes)),
            box=BOX,
            actor=STAFF,
            now=NOW,
        )
    assert token.status is TokenStatus.RETURNED


def test_a_key_locked_for_loss_with_its_practice_is_retired_when_it_turns_up(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    practice, token = keyed
    locks.lock_practice(
        session, bsnr=practice.bsnr, cause=LockCause.LOSS, reason="verloren", actor=STAFF, now=NOW
    )

    assert returns.overdue(session, locked_before=NOW + timedelta(days=1)) == []
    returns.record_return(
        session,
        serial=token.serial,
        received_on=NOW.date(),
        condition=ReturnCondition.GOOD,
        actor=STAFF,
        now=NOW,
    )
    assert token.status is TokenStatus.RETIRED


def test_a_key_the_practice_never_had_is_not_asked_back(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practice = make_practice()
    make_yubikey(practice=practice, status=TokenStatus.ASSIGNED)  # its letter never left
    lock(session, practice)

    assert returns.overdue(session, locked_before=NOW + timedelta(days=1)) == []


def test_a_new_lock_after_an_unlock_gets_a_new_reminder(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    practice, _ = keyed
    lock(session, practice)
    first = run_job(session, (NOW + timedelta(days=29)).date())
    locks.unlock_practice(session, bsnr=practice.bsnr, reason="bezahlt", actor=STAFF, now=NOW)
    relocked = NOW + timedelta(days=40)
    lock(session, practice, at=relocked)

    second = run_job(session, (relocked + timedelta(days=29)).date())

    assert len(first.reminders) == len(second.reminders) == 1


def test_a_notice_lapses_when_an_exception_moves_the_lock(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    practice, _ = keyed
    end_activity(session, practice, date(2026, 5, 15))  # locked from 2027-07-01
    run_job(session, date(2027, 6, 1))
    session.add(
        LockException(
            practice_id=practice.id,
            until=date(2027, 12, 31),
            reason="Praxisabwicklung",
            decision_ref="V-1",
            decided_by="Vorstand",
        )
    )
    session.flush()
    session.expire(practice)

    report = run_job(session, date(2027, 6, 2))

    (notice,) = letters_of(session, practice, LetterKind.LOCK_NOTICE)
    assert notice.status is LetterStatus.CANCELLED
    assert report.notices == 0 and report.upcoming == []


def test_a_damaged_key_cannot_be_reprogrammed(
    session: Session, keyed: tuple[Practice, Token]
) -> None:
    practice, token = keyed
    lock(session, practice)
    returns.record_return(
        session,
        serial=token.serial,
        received_on=NOW.date(),
        condition=ReturnCondition.DAMAGED,
        actor=STAFF,
        now=NOW,
    )

    with pytest.raises(importer.ImportFailed, match="ausgemustert"):
        importer.import_keys(
            session,
            importer.parse(_csv_line(token.serial, SimulatedKey.random())),
            box=BOX,
            actor=STAFF,
            now=NOW,
        )
    assert token.status is TokenStatus.RETIRED


# --- audit retention --------------------------------------------------------------------


def _append(session: Session, at: datetime, n: int = 1) -> None:
    for i in range(n):
        audit.record(
            session,
            AuditTag.PRACTICE_CREATE,
            actor=STAFF,
            subject=Subject("practice", f"8800000{i:02d}"),
            now=at,
        )


def test_record_many_chains_exactly_like_single_records(session: Session) -> None:
    _append(session, NOW)
    audit.record_many(
        session,
        [audit.Pending(AuditTag.USER_LOCK, Subject("user", f"u{i}"), {"i": i}) for i in range(3)],
        actor=Actor.system("test"),
        now=NOW,
    )
    _append(session, NOW)

    report = audit.verify_chain(session)

    assert report.ok and report.entries == 5
    subjects = session.scalars(select(AuditEntry.subject_id).order_by(AuditEntry.id))
    assert list(subjects) == ["880000000", "u0", "u1", "u2", "880000000"]


def test_the_purge_keeps_the_rest_verifiable_and_catches_a_deletion_beyond_it(
    session: Session,
) -> None:
    cut = NOW - relativedelta(years=10)
    _append(session, cut - timedelta(days=400), 3)
    _append(session, cut + timedelta(days=1), 2)  # the nightly runs go on

    purged = audit.purge(session, older_than=cut, actor=Actor.system("t"), now=NOW)

    assert purged == 3
    report = audit.verify_chain(session)
    assert report.ok and report.entries == 3  # two kept and the purge's own entry
    assert report.purged_before == cut
    first_kept = session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).first()
    session.execute(delete(AuditEntry).where(AuditEntry.id == first_kept))
    assert not audit.verify_chain(session).ok


def test_the_purge_never_cuts_past_a_newer_entry(session: Session) -> None:
    cut = NOW - relativedelta(years=10)
    _append(session, cut - timedelta(days=1))
    _append(session, cut + timedelta(days=1))
    _append(session, cut - timedelta(days=1))  # a clock step back: newer in the chain

    purged = audit.purge(session, older_than=cut, actor=Actor.system("t"), now=NOW)

    assert purged == 1
    assert audit.verify_chain(session).ok


def test_a_forged_purge_entry_cannot_hide_deleted_recent_entries(session: Session) -> None:
    """Anyone with write access could append a purge entry naming any hash: it counts
    only for a cut older than the retention, with the kept chain starting right there."""
    _append(session, NOW - timedelta(days=30), 12)
    victims = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))[:9]
    for recorded_before in (NOW - timedelta(days=1), NOW - relativedelta(years=11)):
        audit.record(
            session,
            AuditTag.AUDIT_PURGE,
            actor=Actor.system("lifecycle"),
            data={
                "entries": 9,
                "recorded_before": recorded_before.isoformat(),
                "anchor": victims[-1].hash,
            },
            now=NOW,
        )
    session.execute(delete(AuditEntry).where(AuditEntry.id <= victims[-1].id))

    report = audit.verify_chain(session)

    assert not report.ok and report.problem is not None and "Lücke" in report.problem


def test_the_job_purges_the_audit_trail_after_its_retention(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    make_practice()  # its creation is audited at NOW
    a_year_on = (NOW + relativedelta(years=1, days=1)).date()
    eleven_years_on = (NOW + relativedelta(years=11)).date()
    run_job(session, a_year_on)  # the nightly runs leave their entries

    kept = run_job(session, eleven_years_on, audit_years=12)
    purged = run_job(session, eleven_years_on)

    assert kept.purged["audit_entries"] == 0
    assert purged.purged["audit_entries"] > 0
    assert audit.verify_chain(session).ok
