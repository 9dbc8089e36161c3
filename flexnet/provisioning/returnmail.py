"""Letters the post brings back undeliverable (``flexnet letters returned``).

A returned letter is marked so (with the day) and sent again as a new letter; all of
the practice's letters wait until staff correct or confirm its address
(``practices.edit_practice``). A key letter's Yubikey is back in the house, so the
practice's password letters wait for the re-sent key letter, whose dispatch starts the
§ 3.2 clock anew. A password letter's password travelled unprotected: it stops at once.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import users
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.models import Letter, LetterKind, LetterStatus, Token, TokenStatus
from flexnet.provisioning import mailruns


def record_return(
    session: Session, *, letter_id: int, returned_on: date, today: date, actor: Actor, now: datetime
) -> Letter | None:
    """A dispatched letter came back from the post undeliverable. Its practice's letters
    wait until the address is corrected or confirmed, and a new letter of the same kind
    is queued (returned). A key letter: the Yubikey is back in the association's hands,
    so the practice's password letters wait again, and the re-sent key letter's dispatch
    starts the § 3.2 clock anew. A password letter: its password travelled unprotected,
    so it stops working at once; a new letter is due if it was still in use."""
    letter = session.get(Letter, letter_id, with_for_update=True, populate_existing=True)
    if letter is None:
        raise NotFoundError(f"Keinen Brief FN-{letter_id:06d}")
    _returnable(letter, returned_on, today)
    letter.status, letter.returned_on = LetterStatus.RETURNED, returned_on
    practice = letter.practice
    if practice.undeliverable_since is None:
        practice.undeliverable_since = returned_on
    again = True
    if letter.kind is LetterKind.KEY and letter.token is not None:
        again = _key_back(session, letter.token, actor=actor, now=now)
    elif letter.kind in mailruns.PASSWORD_LETTERS and letter.user is not None:
        again = users.revoke_issued_password(
            session, letter.user, password_hash=letter.issued_password_hash
        )
        if again:
            audit.record(
                session,
                AuditTag.USER_PASSWORD_REVOKE,
                actor=actor,
                subject=Subject("user", letter.user.username),
                data={"letter": mailruns.reference(letter), "returned_on": returned_on.isoformat()},
                now=now,
            )
    resend = _resend(session, letter, actor=actor, now=now) if again else None
    audit.record(
        session,
        AuditTag.LETTER_RETURN,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={
            "letter": mailruns.reference(letter),
            "kind": letter.kind.value,
            "returned_on": returned_on.isoformat(),
            "resend": mailruns.reference(resend) if resend else None,
        },
        now=now,
    )
    return resend


def _returnable(letter: Letter, returned_on: date, today: date) -> None:
    if letter.status is LetterStatus.RETURNED:
        raise ConflictError(
            f"Brief {mailruns.reference(letter)} ist bereits als unzustellbar erfasst"
        )
    run = letter.run
    if letter.status is not LetterStatus.DISPATCHED or run is None or run.dispatched_on is None:
        raise ConflictError(f"Brief {mailruns.reference(letter)} wurde nicht versandt")
    if returned_on > today:
        raise ValidationError("Das Datum der Rücksendung liegt in der Zukunft")
    if returned_on < run.dispatched_on:
        raise ValidationError(
            f"Das Datum der Rücksendung liegt vor dem Versand ({run.dispatched_on:%d.%m.%Y})"
        )
    token = letter.token
    if letter.kind is LetterKind.KEY and token is not None and token.last_used_at is not None:
        raise ConflictError(f"Der Yubikey {token.serial} wurde bereits benutzt: er ist angekommen")


def _key_back(session: Session, token: Token, *, actor: Actor, now: datetime) -> bool:
    """The key of a returned key letter is in the building again; True if it is still
    the practice's to send (not locked or replaced meanwhile)."""
    if token.status is TokenStatus.SHIPPED:
        token.status = TokenStatus.ASSIGNED
        audit.record(
            session,
            AuditTag.TOKEN_SHIP,
            actor=actor,
            subject=Subject("token", token.serial),
            data={"back": "returned by the post"},
            now=now,
        )
    return token.status is TokenStatus.ASSIGNED


def _resend(session: Session, letter: Letter, *, actor: Actor, now: datetime) -> Letter:
    new = mailruns.queue(
        session,
        kind=letter.kind,
        practice=letter.practice,
        user=letter.user,
        token=letter.token,
        replace_at_once=True,
        fee_cents=letter.fee_cents,
        note=letter.note,
        effective_on=letter.effective_on,
        actor=actor,
        now=now,
    )
    new.resend_of_id = letter.id
    return new
