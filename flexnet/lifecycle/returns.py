"""Yubikeys coming back after a lock or termination (§ 10.2).

A locked key is expected back at the practice's cost. Staff record its receipt with the
date and condition; the nightly job reminds by letter when it is overdue. A key back in
good condition waits as ``returned`` until it is reprogrammed: only an import with new
secrets (``flexnet yubikey import``) puts it back into stock. A lost or damaged key is
retired for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session, selectinload

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.days import check_day
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.labels import TOKEN_STATUS_LABEL
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    Letter,
    LetterKind,
    LetterStatus,
    LockCause,
    Practice,
    ReturnCondition,
    Token,
    TokenStatus,
)
from flexnet.otp import stock
from flexnet.textrules import optional_line

# Out of service and not yet back: what a receipt may be recorded for.
_AWAITED = (TokenStatus.LOCKED, TokenStatus.LOST, TokenStatus.RETIRED)


def overdue_query(locked_before: datetime) -> Select[Token]:
    """Keys locked at a practice before ``locked_before`` and not returned: only keys
    the practice had (in use, or its key letter went out), not those reported lost."""
    sent = (
        select(Letter.id)
        .where(
            Letter.token_id == Token.id,
            Letter.practice_id == Token.practice_id,
            Letter.kind == LetterKind.KEY,
            Letter.status == LetterStatus.DISPATCHED,
        )
        .exists()
    )
    return (
        select(Token)
        .where(
            Token.status == TokenStatus.LOCKED,
            Token.lock_cause != LockCause.LOSS,
            Token.practice_id.is_not(None),
            Token.returned_on.is_(None),
            Token.locked_at < locked_before,
            or_(Token.last_used_at.is_not(None), sent),
        )
        .order_by(Token.locked_at, Token.serial)
    )


@dataclass(frozen=True)
class OverdueKey:
    serial: str
    bsnr: str
    practice_name: str
    address: str  # one line: street, zip code and city
    locked_on: date
    reason: str
    reminded_on: date | None


def overdue(session: Session, *, locked_before: datetime) -> list[OverdueKey]:
    """The overdue list for staff, with the practice's address for a call or a letter."""
    tokens = session.scalars(overdue_query(locked_before).options(selectinload(Token.practice)))
    return [_overdue(token, token.practice) for token in tokens if token.practice is not None]


def _overdue(token: Token, practice: Practice) -> OverdueKey:
    extra = f"{practice.address_extra}, " if practice.address_extra else ""
    assert token.locked_at is not None  # noqa: S101 - the query selects locked keys
    return OverdueKey(
        serial=token.serial,
        bsnr=practice.bsnr,
        practice_name=practice.name,
        address=f"{extra}{practice.street}, {practice.zip_code} {practice.city}",
        locked_on=token.locked_at.astimezone(BERLIN).date(),
        reason=token.lock_reason or "",
        reminded_on=token.return_reminded_on,
    )


def record_return(
    session: Session,
    *,
    serial: str,
    received_on: date,
    condition: ReturnCondition,
    actor: Actor,
    now: datetime,
    note: str | None = None,
) -> Token:
    """Record the receipt of a key. Good condition: ``returned``, to be reprogrammed
    before it goes back to stock; damaged, or once reported lost: retired for good."""
    check_day(received_on, field="Eingangsdatum")
    note = optional_line(note, field="Anmerkung", max_length=200)
    token = session.scalar(select(Token).where(Token.serial == serial.strip()).with_for_update())
    if token is None:
        raise NotFoundError(f"Kein Yubikey mit Seriennummer {serial.strip()}")
    stock.practice_key(token)  # a staff member's key never goes back into stock
    if token.returned_on is not None:
        raise ConflictError(
            f"Yubikey {token.serial} ist bereits am {token.returned_on:%d.%m.%Y} eingegangen"
        )
    if token.status not in _AWAITED:
        raise ConflictError(_not_awaited(token))
    if received_on > now.astimezone(BERLIN).date():
        raise ValidationError("Das Eingangsdatum liegt in der Zukunft")
    if token.locked_at is not None and received_on < token.locked_at.astimezone(BERLIN).date():
        raise ValidationError("Das Eingangsdatum liegt vor der Sperre des Yubikeys")
    # Reported lost, it stays out of service for good (§ 7.2), whatever its condition.
    lost = token.status is TokenStatus.LOST or token.lock_cause is LockCause.LOSS
    reusable = condition is ReturnCondition.GOOD and not lost
    previous = token.status
    token.status = TokenStatus.RETURNED if reusable else TokenStatus.RETIRED
    token.lock_cause = token.lock_reason = token.locked_at = None
    token.returned_on = received_on
    token.return_condition = condition
    audit.record(
        session,
        AuditTag.TOKEN_RETURN,
        actor=actor,
        subject=Subject("token", token.serial),
        data={
            "received_on": received_on.isoformat(),
            "condition": condition.value,
            "was": previous.value,
            "now": token.status.value,
            "bsnr": token.practice.bsnr if token.practice else None,
            "note": note,
        },
        now=now,
    )
    _cancel_due_reminders(session, token)
    return token


def _not_awaited(token: Token) -> str:
    state = TOKEN_STATUS_LABEL[token.status.value]
    if token.status is TokenStatus.STOCK:
        return f"Yubikey {token.serial} liegt im Lager ({state}); es ist keine Rückgabe offen"
    return (
        f"Yubikey {token.serial} ist {state}, nicht gesperrt; vor der Rückgabe bitte "
        "sperren oder die Kündigung erfassen"
    )


def _cancel_due_reminders(session: Session, token: Token) -> None:
    """A key that is back needs no reminder; one still waiting for its run is dropped."""
    session.execute(
        update(Letter)
        .where(
            Letter.token_id == token.id,
            Letter.kind == LetterKind.RETURN_REMINDER,
            Letter.status == LetterStatus.DUE,
        )
        .values(status=LetterStatus.CANCELLED),
        execution_options={"synchronize_session": False},
    )
