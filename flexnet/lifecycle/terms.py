"""Terms of use that change (MD § 2(4), § 14.2, § 1.3).

Staff publish a version with the day it takes effect and the last day to accept it;
each practice on an older version gets a letter asking it to accept. From the day after
that period a practice still on an older version is refused at login, with a reply
telling it to accept the new terms (``status``); with ``FLEXNET_TERMS_OVERDUE=lock`` the
nightly job also locks it with the cause "objection" (§ 14.2). Accepting (portal API,
command line, admin UI) opens the access again and lifts that lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from flexnet import audit
from flexnet.accounts import practices
from flexnet.audit import Actor, AuditTag
from flexnet.days import check_day
from flexnet.db import update_by_id
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle import locks
from flexnet.lifecycle.rules import BERLIN, DEFAULT_LOCK_AFTER_QUARTERS
from flexnet.lifecycle.status import WITHDRAWING_CAUSES
from flexnet.models import (
    LetterKind,
    LockCause,
    Practice,
    PracticeStatus,
    TermsAcceptance,
    TermsChannel,
    TermsVersion,
)
from flexnet.provisioning import mailruns
from flexnet.textrules import clean_line


def publish(
    session: Session,
    *,
    version: str,
    effective_on: date,
    accept_by: date,
    actor: Actor,
    now: datetime,
) -> TermsVersion:
    """Publish a version: every practice that has not accepted it (or a newer one) must
    by ``accept_by``; those that accepted an earlier one get a letter asking them to."""
    version = clean_line(version, field="Version der Nutzungsbedingungen", max_length=32)
    check_day(effective_on, field="Inkrafttreten")
    check_day(accept_by, field="Annahme bis")
    if accept_by < effective_on:
        raise ValidationError("Das Ende der Annahmefrist liegt vor dem Inkrafttreten")
    if accept_by < now.astimezone(BERLIN).date():
        raise ValidationError("Das Ende der Annahmefrist liegt in der Vergangenheit")
    if session.scalar(select(TermsVersion.id).where(TermsVersion.version == version)):
        raise ConflictError(f"Die Version {version} ist bereits veröffentlicht")
    published = TermsVersion(
        version=version,
        effective_on=effective_on,
        accept_by=accept_by,
        published_by=actor.name,
        published_at=now,
    )
    session.add(published)
    session.flush()  # the refresh below reads it with the others
    asked = _refresh_all(session)
    mailruns.queue_many(
        session,
        [
            mailruns.NewLetter(LetterKind.TERMS, practice, note=version, effective_on=accept_by)
            for practice in asked
        ],
        actor=actor,
        now=now,
    )
    audit.record(
        session,
        AuditTag.TERMS_PUBLISH,
        actor=actor,
        data={
            "version": version,
            "effective_on": effective_on.isoformat(),
            "accept_by": accept_by.isoformat(),
            "letters": len(asked),
        },
        now=now,
    )
    return published


def _refresh_all(session: Session) -> list[Practice]:
    """Each practice's terms still to accept, set-based; returns the practices to ask by
    letter: those that accepted some version and now have one due, whose access is not
    withdrawn (unless for objection to the terms, § 14.2)."""
    published = practices.published_versions(session)
    accepted: dict[int, list[str]] = {}
    for practice_id, version in session.execute(
        select(TermsAcceptance.practice_id, TermsAcceptance.version)
    ):
        accepted.setdefault(practice_id, []).append(version)
    rows = session.execute(
        select(Practice.id, Practice.terms_due_version, Practice.terms_due_by)
    ).all()
    changes = {}
    for id_, due_version, due_by in rows:
        new = practices.terms_due(published, accepted.get(id_, []))
        if new != (due_version, due_by):
            changes[id_] = {"terms_due_version": new[0], "terms_due_by": new[1]}
    update_by_id(session, Practice, changes)
    session.expire_all()
    ask = [id_ for id_ in changes if id_ in accepted and changes[id_]["terms_due_version"]]
    return list(
        session.scalars(
            select(Practice)
            .where(Practice.id.in_(ask))
            .where(
                (Practice.status != PracticeStatus.LOCKED)
                | Practice.lock_cause.not_in(WITHDRAWING_CAUSES - {LockCause.OBJECTION})
            )
            .order_by(Practice.bsnr)
        )
    )


def accept(
    session: Session,
    *,
    bsnr: str,
    version: str,
    channel: TermsChannel,
    accepted_on: date,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> TermsAcceptance:
    """Record an acceptance (§ 1.3); if it settles what was due, a lock for objection
    to the terms (§ 14.2) is lifted with it."""
    acceptance = practices.accept_terms(
        session,
        bsnr=bsnr,
        version=version,
        channel=channel,
        accepted_on=accepted_on,
        actor=actor,
        now=now,
    )
    practice = acceptance.practice
    if (
        practice.status is PracticeStatus.LOCKED
        and practice.lock_cause is LockCause.OBJECTION
        and practice.terms_due_version is None
    ):
        locks.unlock_practice(
            session,
            bsnr=practice.bsnr,
            reason=f"Nutzungsbedingungen {acceptance.version} angenommen",
            actor=actor,
            now=now,
            quarters=quarters,
        )
    return acceptance


@dataclass(frozen=True)
class Pending:
    """A practice that has not accepted the newest version (``flexnet terms pending``)."""

    bsnr: str
    name: str
    accepted_version: str | None  # the latest it accepted
    accepted_on: date | None
    due_version: str
    due_by: date


def pending(session: Session) -> list[Pending]:
    """Practices (that accepted some version) still to accept the newest one, by BSNR."""
    rows = session.scalars(
        select(Practice)
        .where(Practice.terms_due_version.is_not(None), Practice.terms_due_by.is_not(None))
        .where(Practice.status != PracticeStatus.PENDING)
        .options(selectinload(Practice.terms_acceptances))
        .order_by(Practice.bsnr)
    )
    result = []
    for practice in rows:
        latest = practice.terms_acceptance
        assert practice.terms_due_version is not None and practice.terms_due_by is not None  # noqa: S101
        result.append(
            Pending(
                practice.bsnr,
                practice.name,
                latest.version if latest else None,
                latest.accepted_on if latest else None,
                practice.terms_due_version,
                practice.terms_due_by,
            )
        )
    return result


def versions(session: Session) -> list[TermsVersion]:
    return practices.published_versions(session)


def accepted_counts(session: Session) -> dict[str, int]:
    """How many practices' latest acceptance is each version (the lists of who accepted
    which version: ``flexnet terms pending``, the API's list filter)."""
    counts: dict[str, int] = {}
    for practice in session.scalars(
        select(Practice).options(selectinload(Practice.terms_acceptances))
    ):
        latest = practice.terms_acceptance
        if latest is not None:
            counts[latest.version] = counts.get(latest.version, 0) + 1
    return counts
