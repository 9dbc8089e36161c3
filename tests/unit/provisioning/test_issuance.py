"""Issuance refuses a practice whose access is withdrawn (§ 10.1–10.3, § 14.2): no new
user, no Yubikey, no password letter; a lock for loss or misuse (§ 7.2) is remedied by
exactly these, so it does not stand in their way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet.accounts import practices
from flexnet.errors import ConflictError
from flexnet.lifecycle import locks
from flexnet.models import (
    Letter,
    LetterKind,
    LockCause,
    Practice,
    TerminationBy,
    Token,
    TokenStatus,
    User,
    UserKind,
)
from flexnet.provisioning import issuance, mailruns
from flexnet.provisioning.issuance import Replacement
from tests.conftest import NOW, STAFF
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]


def _locked_by_hand(session: Session, practice: Practice) -> None:
    locks.lock_practice(
        session,
        bsnr=practice.bsnr,
        cause=LockCause.MANUAL,
        reason="Verstoß gegen die Nutzungsbedingungen (§ 10.1)",
        actor=STAFF,
        now=NOW,
    )


def _terminated_last_month(session: Session, practice: Practice) -> None:
    # Two weeks' notice ran out on 15 October: locked by the dates, the job has not run.
    locks.terminate(
        session,
        bsnr=practice.bsnr,
        by=TerminationBy.MEMBER,
        notice_date=date(2026, 10, 1),
        actor=STAFF,
        now=NOW,
    )


def _terminated_at_once(session: Session, practice: Practice) -> None:
    locks.terminate(
        session,
        bsnr=practice.bsnr,
        by=TerminationBy.EXTRAORDINARY,
        notice_date=NOW.date(),
        reason="Missbrauch des Zugangs",
        actor=STAFF,
        now=NOW,
    )


def _activity_ended_long_ago(session: Session, practice: Practice) -> None:
    # Ended in Q2 2025: § 10.3 locked from 1 July 2026, the job has not run.
    practices.end_activity(
        session, bsnr=practice.bsnr, ended_on=date(2025, 5, 15), actor=STAFF, now=NOW
    )


WITHDRAWN = {
    "locked by hand": (_locked_by_hand, "Verstoß"),
    "terminated, last day passed": (_terminated_last_month, "Kündigung durch die Praxis"),
    "terminated extraordinarily": (_terminated_at_once, "außerordentliche Kündigung"),
    "activity ended (§ 10.3)": (_activity_ended_long_ago, "§ 10.3"),
}


@pytest.mark.parametrize("how", list(WITHDRAWN))
def test_nothing_is_issued_to_a_practice_whose_access_is_withdrawn(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
    how: str,
) -> None:
    practice = make_practice()
    make_user(practice=practice, username="alt", migrated_password="Sommer-Regen-2026!")
    current, _ = make_yubikey(practice=practice)
    spares = [make_yubikey(status=TokenStatus.STOCK)[0] for _ in range(2)]
    withdraw, why = WITHDRAWN[how]
    withdraw(session, practice)
    letters_before = session.scalar(select(func.count()).select_from(Letter))
    refusals = []

    for attempt in (
        lambda: issuance.add_user(
            session,
            username="neu",
            bsnr=practice.bsnr,
            kind=UserKind.STAFF,
            actor=STAFF,
            now=NOW,
        ),
        lambda: issuance.issue_key(
            session, serial=spares[0].serial, bsnr=practice.bsnr, actor=STAFF, now=NOW
        ),
        lambda: issuance.replace_key(
            session,
            bsnr=practice.bsnr,
            new_serial=spares[1].serial,
            why=Replacement.LOST,
            at_once=True,
            fee_cents=6000,
            actor=STAFF,
            now=NOW,
        ),
        lambda: issuance.reissue_password(
            session, username="alt", at_once=True, actor=STAFF, now=NOW
        ),
    ):
        with pytest.raises(ConflictError) as refused:
            attempt()
        refusals.append(refused.value.message)

    for message in refusals:
        assert f"BSNR {practice.bsnr} ist gesperrt" in message and why in message
        assert "keine Benutzer, Yubikeys oder Kennwörter" in message
    assert session.scalar(select(func.count()).select_from(Letter)) == letters_before
    assert [user.username for user in practice.users] == ["alt"]
    assert [spare.status for spare in spares] == [TokenStatus.STOCK] * 2
    assert current.status is not TokenStatus.LOST


def test_a_practice_locked_for_a_loss_gets_its_replacement_key_and_passwords(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> None:
    practice = make_practice()
    make_user(practice=practice, username="alt", migrated_password="Sommer-Regen-2026!")
    lost, _ = make_yubikey(practice=practice)
    spare, _ = make_yubikey(status=TokenStatus.STOCK)
    locks.lock_practice(
        session,
        bsnr=practice.bsnr,
        cause=LockCause.LOSS,
        reason="Einbruch: Yubikey und Zugangsdaten gestohlen (§ 7.2)",
        actor=STAFF,
        now=NOW,
    )

    queued = issuance.replace_key(
        session,
        bsnr=practice.bsnr,
        new_serial=spare.serial,
        why=Replacement.LOST,
        at_once=True,
        fee_cents=6000,
        actor=STAFF,
        now=NOW,
    )
    letter = issuance.reissue_password(session, username="alt", at_once=True, actor=STAFF, now=NOW)

    assert lost.status is TokenStatus.LOST and spare.status is TokenStatus.ASSIGNED
    assert [one.kind for one in queued] == [LetterKind.KEY, LetterKind.LOSS_CONFIRMATION]
    assert letter.kind is LetterKind.NEW_PASSWORD


def test_a_termination_not_yet_in_effect_still_allows_issuing(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practice = make_practice()
    spare, _ = make_yubikey(status=TokenStatus.STOCK)
    locks.terminate(
        session,
        bsnr=practice.bsnr,
        by=TerminationBy.MEMBER,
        notice_date=NOW.date(),
        actor=STAFF,
        now=NOW,
    )

    user, letter = issuance.add_user(
        session, username="neu", bsnr=practice.bsnr, kind=UserKind.STAFF, actor=STAFF, now=NOW
    )
    issuance.issue_key(session, serial=spare.serial, bsnr=practice.bsnr, actor=STAFF, now=NOW)

    assert user.username == "neu" and letter is not None
    assert spare.status is TokenStatus.ASSIGNED


def test_letters_queued_before_the_access_ended_wait(
    session: Session, make_practice: Callable[..., Practice], make_yubikey: MakeKey
) -> None:
    practice = make_practice()
    spare, _ = make_yubikey(status=TokenStatus.STOCK)
    issuance.issue_key(session, serial=spare.serial, bsnr=practice.bsnr, actor=STAFF, now=NOW)
    issuance.add_user(
        session, username="neu", bsnr=practice.bsnr, kind=UserKind.STAFF, actor=STAFF, now=NOW
    )
    locks.terminate(
        session,
        bsnr=practice.bsnr,
        by=TerminationBy.MEMBER,
        notice_date=NOW.date(),
        actor=STAFF,
        now=NOW,
    )
    last_day = practice.access_ends_on
    assert last_day is not None

    on_last_day = mailruns.due_letters(session, today=last_day, delay_days=3)
    day_after = mailruns.due_letters(session, today=last_day + timedelta(days=1), delay_days=3)

    assert [letter.kind for letter in on_last_day.due] == [LetterKind.KEY]
    assert day_after.due == []
    assert {w.letter.kind for w in day_after.waiting} == {LetterKind.KEY, LetterKind.CREDENTIALS}
    for waiting in day_after.waiting:
        assert waiting.reason.startswith("Betriebsstätte ist gesperrt: Kündigung durch die Praxis")
