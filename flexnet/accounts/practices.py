"""Practice records: create, edit, end of activity, terms acceptance (§ 1.3)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts.identifiers import validate_bsnr, validate_phone, validate_zip
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.days import check_day
from flexnet.errors import ConflictError, NotFoundError, PreconditionError, ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    Practice,
    PracticeKind,
    PracticeStatus,
    TermsAcceptance,
    TermsChannel,
    TermsVersion,
)
from flexnet.textrules import REASON_MAX_LENGTH, clean_line, optional_line

# § 1.1: third parties' access may be restricted; members' practices get full access.
DEFAULT_ACCESS_PROFILE = {PracticeKind.MEMBER: "full", PracticeKind.THIRD_PARTY: "restricted"}


def get_practice(session: Session, bsnr: str) -> Practice:
    practice = session.scalar(select(Practice).where(Practice.bsnr == validate_bsnr(bsnr)))
    if practice is None:
        raise NotFoundError(f"Keine Betriebsstätte mit BSNR {bsnr.strip()}")
    return practice


def add_practice(
    session: Session,
    *,
    bsnr: str,
    name: str,
    street: str,
    zip_code: str,
    city: str,
    address_extra: str | None = None,
    kind: PracticeKind = PracticeKind.MEMBER,
    actor: Actor,
    now: datetime,
) -> Practice:
    """Record a practice. It stays pending until its terms are accepted (§ 1.3)."""
    bsnr = validate_bsnr(bsnr)
    if session.scalar(select(Practice.id).where(Practice.bsnr == bsnr)) is not None:
        raise ConflictError(f"Die BSNR {bsnr} ist bereits angelegt")
    practice = Practice(
        bsnr=bsnr,
        name=clean_line(name, field="Name", max_length=200),
        address_extra=optional_line(address_extra, field="Adresszusatz", max_length=200),
        street=clean_line(street, field="Straße", max_length=200),
        zip_code=validate_zip(zip_code),
        city=clean_line(city, field="Ort", max_length=100),
        kind=kind,
        access_profile=DEFAULT_ACCESS_PROFILE[kind],
        status=PracticeStatus.PENDING,
        created_at=now,
    )
    session.add(practice)
    audit.record(
        session,
        AuditTag.PRACTICE_CREATE,
        actor=actor,
        subject=Subject("practice", bsnr),
        data={"name": practice.name, "kind": kind.value, "city": practice.city},
        now=now,
    )
    return practice


ADDRESS_FIELDS = ("name", "street", "zip_code", "city", "address_extra")
# What staff may change of a practice, each with its rule; the optional ones are cleared
# by an empty value.
_EDITABLE: Mapping[str, Callable[[str], str | None]] = {
    "name": lambda v: clean_line(v, field="Name", max_length=200),
    "street": lambda v: clean_line(v, field="Straße", max_length=200),
    "zip_code": validate_zip,
    "city": lambda v: clean_line(v, field="Ort", max_length=100),
    "address_extra": lambda v: optional_line(v, field="Adresszusatz", max_length=200),
    "phone": lambda v: validate_phone(v) if v.strip() else None,
    "contact_person": lambda v: optional_line(v, field="Ansprechpartner", max_length=200),
}


def edit_practice(
    session: Session,
    *,
    bsnr: str,
    actor: Actor,
    now: datetime,
    name: str | None = None,
    street: str | None = None,
    zip_code: str | None = None,
    city: str | None = None,
    address_extra: str | None = None,
    phone: str | None = None,
    contact_person: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Change a practice's name, address, phone number or contact person (None: leave
    it). Every letter printed later uses the new values; the old ones stay in the audit
    trail. Typing any part of the address after a letter came back undeliverable
    confirms it, and the letters waiting for it go out again. Returns what changed
    (field → old and new); every value is checked before any is written."""
    given = {
        "name": name,
        "street": street,
        "zip_code": zip_code,
        "city": city,
        "address_extra": address_extra,
        "phone": phone,
        "contact_person": contact_person,
    }
    practice = get_practice(session, bsnr)
    changes = apply_changes(practice, _EDITABLE, given)
    if practice.undeliverable_since is not None and any(
        given[field] is not None for field in ADDRESS_FIELDS
    ):
        # Staff typed the address after a letter came back: corrected or, where it was
        # right after all, confirmed. The letters waiting for it may go out.
        changes["undeliverable_since"] = {"old": practice.undeliverable_since, "new": None}
        practice.undeliverable_since = None
    if changes:
        audit.record(
            session,
            AuditTag.PRACTICE_EDIT,
            actor=actor,
            subject=Subject("practice", practice.bsnr),
            data={"changes": changes},
            now=now,
        )
    return changes


def apply_changes(
    record: Any, rules: Mapping[str, Callable[[str], Any]], given: Mapping[str, str | None]
) -> dict[str, dict[str, Any]]:
    """Check each given value by its rule, then set those that differ; returns field →
    old and new. Nothing given is an error; a bad value raises before anything is set."""
    if all(value is None for value in given.values()):
        raise ValidationError("Keine Änderung angegeben")
    cleaned = {field: rules[field](value) for field, value in given.items() if value is not None}
    changes = {
        field: {"old": getattr(record, field), "new": value}
        for field, value in cleaned.items()
        if getattr(record, field) != value
    }
    for field, change in changes.items():
        setattr(record, field, change["new"])
    return changes


def end_activity(
    session: Session,
    *,
    bsnr: str,
    ended_on: date | None,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
) -> Practice:
    """Record the end of the physician's activity (None clears it); § 10.3 locks four
    quarters later. Correcting or clearing a recorded date needs a reason. (Lifting a
    lock the old date made: ``lifecycle.activity``.)"""
    practice = get_practice(session, bsnr)
    previous = practice.activity_ended_on
    why = end_change_reason(previous, ended_on, reason)
    practice.activity_ended_on = ended_on
    audit.record(
        session,
        AuditTag.PRACTICE_ACTIVITY_END if ended_on else AuditTag.PRACTICE_ACTIVITY_CLEAR,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data=end_change_data(previous, ended_on, why),
        now=now,
    )
    return practice


def end_change_reason(
    previous: date | None, ended_on: date | None, reason: str | None
) -> str | None:
    """The checked reason for recording ``ended_on`` over ``previous``: a first date needs
    none, a correction or a clearing one (it may lift a lock, or bring one closer)."""
    if ended_on is not None:
        check_day(ended_on, field="Ende der Tätigkeit")
    if ended_on is None and previous is None:
        raise ValidationError("Es ist kein Ende der Tätigkeit erfasst, das entfallen könnte")
    if previous is not None and ended_on != previous and not (reason or "").strip():
        what = "Korrigieren" if ended_on else "Streichen"
        raise ValidationError(
            f"Zum {what} des erfassten Endes der Tätigkeit ({previous:%d.%m.%Y}) bitte einen "
            "Grund angeben"
        )
    return optional_line(reason, field="Grund", max_length=REASON_MAX_LENGTH)


def end_change_data(
    previous: date | None, ended_on: date | None, reason: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {"previous": previous.isoformat() if previous else None}
    if ended_on is not None:
        data["ended_on"] = ended_on.isoformat()
    if reason:
        data["reason"] = reason
    return data


def accept_terms(
    session: Session,
    *,
    bsnr: str,
    version: str,
    channel: TermsChannel,
    accepted_on: date,
    actor: Actor,
    now: datetime,
) -> TermsAcceptance:
    """Record the participation declaration or portal checkbox; activates a pending practice."""
    check_day(accepted_on, field="Datum der Annahme")
    practice = get_practice(session, bsnr)
    version = clean_line(version, field="Version der Nutzungsbedingungen", max_length=32)
    if accepted_on > now.astimezone(BERLIN).date():
        raise ValidationError("Das Datum der Annahme liegt in der Zukunft")
    published = published_versions(session)
    if published and version not in {one.version for one in published}:
        raise ValidationError(
            f"Die Version {version!r} ist nicht veröffentlicht; veröffentlicht: "
            + ", ".join(one.version for one in published)
        )
    acceptance = TermsAcceptance(
        practice=practice,
        version=version,
        accepted_on=accepted_on,
        channel=channel,
        recorded_at=now,
    )
    session.add(acceptance)
    practice.terms_due_version, practice.terms_due_by = terms_due(
        published, [one.version for one in practice.terms_acceptances]
    )
    audit.record(
        session,
        AuditTag.PRACTICE_TERMS_ACCEPT,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={"version": version, "channel": channel.value, "accepted_on": accepted_on.isoformat()},
        now=now,
    )
    if practice.status is PracticeStatus.PENDING:
        practice.status = PracticeStatus.ACTIVE
        audit.record(
            session,
            AuditTag.PRACTICE_ACTIVATE,
            actor=actor,
            subject=Subject("practice", practice.bsnr),
            now=now,
        )
    return acceptance


def published_versions(session: Session) -> list[TermsVersion]:
    """The published versions of the terms, oldest first (by the day they take effect)."""
    return list(
        session.scalars(select(TermsVersion).order_by(TermsVersion.effective_on, TermsVersion.id))
    )


def terms_due(
    published: Sequence[TermsVersion], accepted: Iterable[str]
) -> tuple[str | None, date | None]:
    """What a practice that accepted ``accepted`` still has to accept: the newest
    published version, by the earliest deadline among the versions newer than the newest
    it accepted (accepting the newest covers the older ones; a later version does not
    excuse a missed deadline). (None, None) if nothing is due."""
    accepted = set(accepted)
    newest = max((i for i, one in enumerate(published) if one.version in accepted), default=-1)
    due = published[newest + 1 :]
    if not due:
        return None, None
    return due[-1].version, min(one.accept_by for one in due)


def require_terms_accepted(practice: Practice) -> None:
    if practice.terms_acceptance is None:
        raise PreconditionError(
            f"Für BSNR {practice.bsnr} sind die Nutzungsbedingungen nicht angenommen (§ 1.3); "
            "erst 'flexnet terms accept' ausführen"
        )
