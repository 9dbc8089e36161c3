"""Mistakes undone in the domain: a withdrawal whose practice the § 10.3 date still locks
keeps the lock and names the date; a self-locked key is unlocked after a false alarm,
audited with the acting person."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.lifecycle import locks, terminations
from flexnet.models import (
    AuditEntry,
    Lock,
    LockCause,
    Practice,
    PracticeStatus,
    TerminationBy,
    Token,
    TokenStatus,
)
from flexnet.otp import stock
from flexnet.otp.verify import USABLE_STATUSES
from tests.conftest import NOW, STAFF
from tests.support.yubikeys import SimulatedKey
from tests.unit.lifecycle.test_locks_and_job import run_job


def test_a_withdrawal_leaves_the_lock_of_a_date_that_still_applies_and_names_it(
    session: Session,
    make_practice: Callable[..., Practice],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    ended, kept = make_practice(), make_practice()
    ended.activity_ended_on = date(2025, 5, 15)  # § 10.3: locked from 01.07.2026
    tokens = [make_yubikey(practice=practice)[0] for practice in (ended, kept)]
    for practice in (ended, kept):
        locks.terminate(
            session,
            bsnr=practice.bsnr,
            by=TerminationBy.MEMBER,
            notice_date=date(2026, 3, 2),
            actor=STAFF,
            now=NOW - timedelta(days=300),
        )
    run_job(session, date(2026, 3, 20))  # both locked by their terminations (17.03.2026)

    outcomes = [
        terminations.withdraw(session, bsnr=practice.bsnr, reason="Irrtum", actor=STAFF, now=NOW)
        for practice in (ended, kept)
    ]

    assert [outcome.lifted for outcome in outcomes] == [False, True]
    assert ended.status is PracticeStatus.LOCKED and ended.lock_cause is LockCause.LIFECYCLE
    assert (ended.lock_reason or "").startswith("automatisch gesperrt ab 01.07.2026, § 10.3")
    assert tokens[0].lock_cause is LockCause.LIFECYCLE
    assert kept.status is PracticeStatus.ACTIVE and tokens[1].status in USABLE_STATUSES
    assert ended.terminated_by is None and kept.terminated_by is None


def test_a_self_locked_key_is_unlocked_with_a_reason_and_audited(
    session: Session,
    make_practice: Callable[..., Practice],
    make_yubikey: Callable[..., tuple[Token, SimulatedKey]],
) -> None:
    keys = [make_yubikey(practice=make_practice())[0] for _ in range(3)]
    why = Lock(LockCause.SELF_SERVICE, "Zugang sofort sperren")
    stock.lock_keys(session, {key.id: why for key in keys}, actor=STAFF, now=NOW)
    for key in keys:
        session.refresh(key)

    for key in keys[:2]:
        locks.unlock_key(session, serial=key.serial, reason="Fehlalarm", actor=STAFF, now=NOW)

    # Back as before the lock: never used and no key letter sent, so at the office.
    assert [key.status for key in keys] == [TokenStatus.ASSIGNED] * 2 + [TokenStatus.LOCKED]
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.tag == "token:yubikey:unlock")
    ).all()
    assert [(e.subject_id, e.actor) for e in entries] == [(k.serial, STAFF.name) for k in keys[:2]]
    assert json.loads(entries[0].data) == {"reason": "Fehlalarm", "cause": "self_service"}
