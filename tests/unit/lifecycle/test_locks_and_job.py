"""Locks for cause and loss, terminations, and the nightly job that makes date locks durable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import practices
from flexnet.errors import ConflictError
from flexnet.lifecycle import job, lock_exceptions, locks
from flexnet.lifecycle.rules import start_of_day
from flexnet.models import (
    AuthEvent,
    Letter,
    LetterKind,
    LockCause,
    LockException,
    Practice,
    PracticeStatus,
    TerminationBy,
    Token,
    TokenStatus,
    User,
    UserKind,
    UserStatus,
)
from tests.conftest import NOW, STAFF
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]
SETTINGS = job.JobSettings()


def run_job(session: Session, day: date, *, dry_run: bool = False) -> job.JobReport:
    return job.run(
        session,
        now=start_of_day(day),
        settings=SETTINGS,
        actor=STAFF,
        dry_run=dry_run,
    )


def lock_letters(session: Session, practice: Practice) -> int:
    query = select(func.count()).where(
        Letter.practice_id == practice.id, Letter.kind == LetterKind.LOCK
    )
    return session.scalar(query) or 0


@pytest.fixture
def ended(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> tuple[Practice, User, Token]:
    """A practice whose activity ended 2026-05-15: locked from 2027-07-01 (§ 10.3)."""
    practice = make_practice()
    user = make_user(practice=practice, migrated_password="Sommer-Regen-2026!")
    token, _ = make_yubikey(practice=practice)
    practices.end_activity(
        session, bsnr=practice.bsnr, ended_on=date(2026, 5, 15), actor=STAFF, now=NOW
    )
    return practice, user, token


def test_job_locks_on_the_day_and_is_idempotent(
    session: Session, ended: tuple[Practice, User, Token]
) -> None:
    practice, user, token = ended

    before = run_job(session, date(2027, 6, 30))
    on_the_day = run_job(session, date(2027, 7, 1))
    again = run_job(session, date(2027, 7, 1))

    assert before.locked == [] and len(before.upcoming) == 1
    assert "gesperrt ab 01.07.2027" in before.upcoming[0]
    assert len(on_the_day.locked) == 1 and "§ 10.3" in on_the_day.locked[0]
    assert practice.status is PracticeStatus.LOCKED and practice.lock_cause is LockCause.LIFECYCLE
    assert user.status is UserStatus.LOCKED and token.status is TokenStatus.LOCKED
    assert lock_letters(session, practice) == 1  # asks for the Yubikey back (§ 10.2)
    assert again.locked == [] and again.upcoming == []
    assert lock_letters(session, practice) == 1


def test_dry_run_reports_and_changes_nothing(
    session: Session, ended: tuple[Practice, User, Token]
) -> None:
    practice, user, _ = ended

    report = run_job(session, date(2027, 7, 1), dry_run=True)

    assert len(report.locked) == 1
    assert practice.status is PracticeStatus.ACTIVE and user.status is UserStatus.ACTIVE
    assert lock_letters(session, practice) == 0


def test_an_exception_postpones_and_is_reported_before_it_ends(
    session: Session, ended: tuple[Practice, User, Token]
) -> None:
    practice, _, _ = ended
    session.add(
        LockException(
            practice=practice,
            until=date(2027, 9, 30),
            reason="Praxisnachfolge",
            decision_ref="VS-2027-17",
            decided_by="Vorstand",
            created_at=NOW,
        )
    )
    session.flush()

    july = run_job(session, date(2027, 7, 1))
    august = run_job(session, date(2027, 8, 15))
    october = run_job(session, date(2027, 10, 1))

    assert july.locked == []
    assert any("VS-2027-17" in line for line in august.exceptions_ending)
    assert len(october.locked) == 1 and practice.status is PracticeStatus.LOCKED


def test_termination_by_the_association_locks_after_the_quarter_end(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    practice = make_practice()
    make_user(practice=practice)

    locks.terminate(
        session,
        bsnr=practice.bsnr,
        by=TerminationBy.ASSOCIATION,
        notice_date=date(2026, 11, 6),
        actor=STAFF,
        now=NOW,
    )
    march = run_job(session, date(2027, 3, 31))
    april = run_job(session, date(2027, 4, 1))

    assert practice.access_ends_on == date(2027, 3, 31)
    assert march.locked == [] and april.locked and "Kündigung" in april.locked[0]
    assert practice.lock_cause is LockCause.TERMINATION


def test_extraordinary_termination_locks_at_once(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    practice = make_practice()
    user = make_user(practice=practice)

    locks.terminate(
        session,
        bsnr=practice.bsnr,
        by=TerminationBy.EXTRAORDINARY,
        notice_date=NOW.date(),
        reason="Missbrauch",
        actor=STAFF,
        now=NOW,
    )

    assert practice.status is PracticeStatus.LOCKED and user.status is UserStatus.LOCKED
    with pytest.raises(ConflictError, match="bereits gekündigt"):
        locks.terminate(
            session,
            bsnr=practice.bsnr,
            by=TerminationBy.MEMBER,
            notice_date=NOW.date(),
            actor=STAFF,
            now=NOW,
        )


def test_loss_report_retires_the_key_for_good_and_may_lock_all_credentials(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    practice = make_practice()
    first = make_user(practice=practice)
    second = make_user(practice=practice)
    token, _ = make_yubikey(practice=practice)

    locks.lock_key(
        session,
        serial=token.serial,
        cause=LockCause.LOSS,
        reason="telefonisch gemeldet",
        all_practice_credentials=True,
        actor=STAFF,
        now=NOW,
        loss_fee_cents=6000,
    )

    assert token.status is TokenStatus.LOST
    assert first.status is UserStatus.LOCKED and second.status is UserStatus.LOCKED
    with pytest.raises(ConflictError):
        locks.lock_key(
            session,
            serial=token.serial,
            cause=LockCause.MANUAL,
            reason="nochmal",
            actor=STAFF,
            now=NOW,
        )


def test_practice_lock_and_unlock(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    practice = make_practice()
    user = make_user(practice=practice, migrated_password="Sommer-Regen-2026!")
    token, _ = make_yubikey(practice=practice)

    locks.lock_practice(
        session,
        bsnr=practice.bsnr,
        cause=LockCause.OBJECTION,
        reason="Widerspruch ohne Grund (§ 14.2)",
        actor=STAFF,
        now=NOW,
    )
    locked = (practice.status, user.status, token.status, lock_letters(session, practice))
    locks.unlock_practice(
        session, bsnr=practice.bsnr, reason="Widerspruch zurückgenommen", actor=STAFF, now=NOW
    )

    assert locked == (PracticeStatus.LOCKED, UserStatus.LOCKED, TokenStatus.LOCKED, 1)
    assert practice.status is PracticeStatus.ACTIVE
    assert user.status is UserStatus.PENDING  # never logged in
    assert token.status is TokenStatus.ASSIGNED  # its key letter has not gone out yet
    tags = {entry.tag for entry in session.scalars(select(audit.AuditEntry))}
    assert {"practice:lock:set", "practice:lock:lift", "account:user:unlock"} <= tags


def test_a_date_lock_is_lifted_by_an_exception_not_by_unlock(
    session: Session, ended: tuple[Practice, User, Token]
) -> None:
    practice, user, _ = ended
    member = practice.users[0]
    member.kind, member.lanr = UserKind.STAFF, None
    run_job(session, date(2027, 7, 1))

    with pytest.raises(ConflictError, match="Ausnahme"):
        locks.unlock_user(session, username=user.username, reason="bitte", actor=STAFF, now=NOW)


def test_retention_purges_old_connection_logs_and_keeps_the_chain_verifiable(
    session: Session, make_practice: Callable[..., Practice]
) -> None:
    make_practice()
    old, recent = datetime(2027, 1, 1, tzinfo=NOW.tzinfo), datetime(2027, 1, 31, tzinfo=NOW.tzinfo)
    for at in (old, recent):
        session.add(
            AuthEvent(
                at=at,
                channel="radius",
                username="x",
                client="nas",
                source_ip="198.51.100.7",
                outcome="reject",
                reason="password_wrong",
            )
        )
    session.flush()

    report = run_job(session, date(2027, 2, 15))

    remaining = session.scalars(select(AuthEvent.at)).all()
    assert report.purged["auth_events"] == 1 and remaining == [recent]
    assert audit.verify_chain(session).ok


def _tags(session: Session) -> set[str]:
    return set(session.scalars(select(audit.AuditEntry.tag)))


def test_an_unlock_that_cannot_lift_a_termination_says_so_and_changes_nothing(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    practice = make_practice()
    users = [make_user(practice=practice, migrated_password="Sommer-Regen-2026!") for _ in "ab"]
    token, _ = make_yubikey(practice=practice)
    locks.terminate(
        session,
        bsnr=practice.bsnr,
        by=TerminationBy.MEMBER,
        notice_date=date(2026, 10, 1),
        actor=STAFF,
        now=NOW,
    )
    run_job(session, date(2026, 10, 16))  # the first day without access: locked for good

    with pytest.raises(ConflictError) as refused:
        locks.unlock_practice(
            session, bsnr=practice.bsnr, reason="Praxis bittet darum", actor=STAFF, now=NOW
        )
    run_job(session, date(2026, 11, 23))

    assert str(refused.value) == (
        f"BSNR {practice.bsnr} bleibt gesperrt (Kündigung durch die Praxis zum 15.10.2026 "
        "(§ 10.2)): eine Entsperrung hebt das nicht auf; nichts geändert; eine irrtümliche "
        f"Kündigung wird zurückgenommen: flexnet termination withdraw {practice.bsnr} --reason …"
    )
    assert practice.status is PracticeStatus.LOCKED
    assert practice.lock_cause is LockCause.TERMINATION
    assert [user.status for user in users] == [UserStatus.LOCKED] * 2
    assert token.status is TokenStatus.LOCKED and token.locked_at == start_of_day(
        date(2026, 10, 16)
    )
    assert lock_letters(session, practice) == 1  # no second lock letter from the next run
    assert not {"practice:lock:lift", "account:user:unlock"} & _tags(session)


def test_unlock_by_hand_does_not_lift_a_date_that_has_passed_meanwhile(
    session: Session, ended: tuple[Practice, User, Token]
) -> None:
    practice, user, _ = ended
    locks.lock_practice(
        session,
        bsnr=practice.bsnr,
        cause=LockCause.MANUAL,
        reason="Verstoß",
        actor=STAFF,
        now=start_of_day(date(2027, 6, 1)),
    )

    with pytest.raises(ConflictError, match=r"bleibt gesperrt \(automatisch gesperrt ab 01\.07"):
        locks.unlock_practice(
            session,
            bsnr=practice.bsnr,
            reason="geklärt",
            actor=STAFF,
            now=start_of_day(date(2027, 7, 2)),
        )
    unlocked_before = locks.unlock_practice(
        session,
        bsnr=practice.bsnr,
        reason="geklärt",
        actor=STAFF,
        now=start_of_day(date(2027, 6, 30)),
    )

    assert unlocked_before.status is PracticeStatus.ACTIVE
    assert user.status is UserStatus.PENDING  # unlocked; it has not logged in yet


def test_a_user_of_a_locked_practice_is_not_unlocked_alone(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    practice = make_practice()
    user = make_user(practice=practice, migrated_password="Sommer-Regen-2026!")
    locks.lock_practice(
        session,
        bsnr=practice.bsnr,
        cause=LockCause.OBJECTION,
        reason="Widerspruch",
        actor=STAFF,
        now=NOW,
    )

    with pytest.raises(ConflictError) as refused:
        locks.unlock_user(session, username=user.username, reason="bitte", actor=STAFF, now=NOW)

    assert str(refused.value) == (
        f"{user.username} bleibt gesperrt (Betriebsstätte gesperrt: Widerspruch): eine "
        "Entsperrung hebt das nicht auf; nichts geändert"
    )
    assert user.status is UserStatus.LOCKED


def test_an_exception_does_not_lift_a_termination_in_effect(
    session: Session, ended: tuple[Practice, User, Token]
) -> None:
    practice, _, _ = ended
    run_job(session, date(2027, 7, 1))  # § 10.3 locks
    locks.terminate(
        session,
        bsnr=practice.bsnr,
        by=TerminationBy.MEMBER,
        notice_date=date(2027, 7, 1),
        actor=STAFF,
        now=start_of_day(date(2027, 7, 1)),
    )  # last day 15.07.2027
    session.commit()

    with pytest.raises(ConflictError, match=r"bleibt gesperrt \(Kündigung durch die Praxis zum 15"):
        lock_exceptions.grant(
            session,
            bsnr=practice.bsnr,
            until=date(2027, 12, 31),
            reason="Praxisabwicklung",
            decision_ref="V-1",
            decided_by="Vorstand",
            actor=STAFF,
            now=start_of_day(date(2027, 7, 20)),
        )
    session.rollback()

    assert practice.status is PracticeStatus.LOCKED
    assert session.scalar(select(func.count()).select_from(LockException)) == 0


def test_reasons_typed_over_several_lines_are_kept_as_one_line_without_carriage_returns(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
) -> None:
    typed = "Anruf von Frau Muster:\r\nZugangsdaten weitergegeben\r\n"
    locked, terminated = make_practice(), make_practice()
    user = make_user(practice=locked)

    locks.lock_practice(
        session, bsnr=locked.bsnr, cause=LockCause.MISUSE, reason=typed, actor=STAFF, now=NOW
    )
    locks.terminate(
        session,
        bsnr=terminated.bsnr,
        by=TerminationBy.EXTRAORDINARY,
        notice_date=NOW.date(),
        reason=typed,
        actor=STAFF,
        now=NOW,
    )

    # A reason is one line (it goes onto the lock letter): the break becomes a space.
    wanted = "Anruf von Frau Muster: Zugangsdaten weitergegeben"
    session.refresh(user)
    letter = session.scalars(
        select(Letter).where(Letter.practice_id == locked.id, Letter.kind == LetterKind.LOCK)
    ).one()
    stored = (user.lock_reason, letter.note, terminated.termination_reason)
    assert stored == (wanted, wanted, wanted)


# --- one lock and unlock for the CLI, the API and the admin UI ------------------------


def test_what_staff_name_decides_what_is_locked_and_unlocked(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    """user | key | practice, named by username, serial or BSNR: the one dispatch behind
    ``flexnet lock``, ``POST /api/v1/locks`` and the lock dialog."""
    clinics = [make_practice() for _ in range(4)]
    staff = [[make_user(practice=p) for _ in range(3)] for p in clinics]
    keys = [make_yubikey(practice=p)[0] for p in clinics]
    why = {"cause": LockCause.MISUSE, "reason": "Anruf 23.11.", "actor": STAFF, "now": NOW}
    named = staff[0][1].username

    one = locks.lock(session, what=locks.LockTarget.USER, identifier=f" {named.upper()}", **why)
    everyone = locks.lock(
        session,
        what=locks.LockTarget.USER,
        identifier=staff[1][0].username,
        all_practice_credentials=True,
        **why,
    )
    key = locks.lock(session, what=locks.LockTarget.KEY, identifier=keys[2].serial, **why)
    lost = locks.lock(
        session,
        what=locks.LockTarget.KEY,
        identifier=keys[3].serial,
        **(why | {"cause": LockCause.LOSS}),
        loss_fee_cents=6000,
    )
    practice = locks.lock(
        session, what=locks.LockTarget.PRACTICE, identifier=clinics[3].bsnr, **why
    )

    assert (one.locked, one.text) == ([named], f"gesperrt: {named}")
    assert everyone.locked == sorted(u.username for u in staff[1])
    assert (key.locked, key.key_status, key.text) == (
        [keys[2].serial],
        TokenStatus.LOCKED,
        f"Yubikey {keys[2].serial}: gesperrt",
    )
    assert (lost.key_status, lost.text) == (TokenStatus.LOST, f"Yubikey {keys[3].serial}: verloren")
    assert practice.locked == [clinics[3].bsnr]
    assert (
        practice.text
        == f"BSNR {clinics[3].bsnr} mit allen Zugängen gesperrt; Sperrbrief vorgemerkt"
    )
    statuses = [[u.status for u in row] for row in staff]
    assert statuses == [
        [UserStatus.PENDING, UserStatus.LOCKED, UserStatus.PENDING],
        [UserStatus.LOCKED] * 3,
        [UserStatus.PENDING] * 3,  # a key lock alone leaves the users
        [UserStatus.LOCKED] * 3,
    ]
    assert [p.status for p in clinics] == [PracticeStatus.ACTIVE] * 3 + [PracticeStatus.LOCKED]

    unlocked_user = locks.unlock(
        session,
        what=locks.LockTarget.USER,
        identifier=named,
        reason="geklärt",
        actor=STAFF,
        now=NOW,
    )
    unlocked_practice = locks.unlock(
        session,
        what=locks.LockTarget.PRACTICE,
        identifier=clinics[3].bsnr,
        reason="geklärt",
        actor=STAFF,
        now=NOW,
    )
    # A key alone comes back after a false alarm: this one was locked for misuse.
    unlocked_key = locks.unlock(
        session,
        what=locks.LockTarget.KEY,
        identifier=keys[2].serial,
        reason="gefunden",
        actor=STAFF,
        now=NOW,
    )

    assert (unlocked_user, unlocked_practice) == (named, clinics[3].bsnr)
    assert staff[0][1].status is UserStatus.PENDING and clinics[3].status is PracticeStatus.ACTIVE
    assert [u.status for u in staff[3]] == [UserStatus.PENDING] * 3
    assert unlocked_key == keys[2].serial
    assert keys[2].status is not TokenStatus.LOCKED and keys[2].lock_cause is None
