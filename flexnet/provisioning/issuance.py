"""Issuing access: keys and users with their letters, replacement and re-issue (§ 2.1, § 7.3).

Each function is one step staff take; the letters it queues go out with the next mail
run that may carry them (see ``mailruns``). UI, API and CLI call these, never the
lower-level ``stock.assign`` or ``users.create_user`` directly, so no letter is forgotten,
and nothing is issued to a practice or user whose access is withdrawn (§ 10.1–10.3).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import users, vpn
from flexnet.accounts.practices import get_practice
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.authn import passwords
from flexnet.errors import ConflictError, NotFoundError
from flexnet.lifecycle.rules import BERLIN, DEFAULT_LOCK_AFTER_QUARTERS
from flexnet.lifecycle.status import EffectiveStatus, practice_status, user_status
from flexnet.models import (
    Letter,
    LetterKind,
    LetterStatus,
    Lock,
    LockCause,
    Practice,
    Token,
    TokenStatus,
    User,
    UserKind,
    UserStatus,
)
from flexnet.otp import stock
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.provisioning import fees, mailruns


def refuse_if_withdrawn(
    practice: Practice,
    *,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
    user: User | None = None,
) -> None:
    """Nothing new (user, Yubikey, password) for a practice, or a user, whose access is
    withdrawn (§ 10.1–10.3, § 14.2) at ``now``: the effective status decides, so a
    termination or the § 10.3 date counts before the nightly job has made it durable."""
    _refuse(f"BSNR {practice.bsnr}", practice_status(practice, now, quarters))
    if user is not None:
        _refuse(f"Der Zugang {user.username}", user_status(user, now, quarters))


def _refuse(who: str, status: EffectiveStatus) -> None:
    if status.withdrawn:
        raise ConflictError(
            f"{who} ist gesperrt ({status.reason}); dafür werden keine Benutzer, Yubikeys "
            "oder Kennwörter ausgegeben"
        )


def issue_key(
    session: Session,
    *,
    serial: str,
    bsnr: str,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Letter:
    """Assign a key from stock to a practice and queue its key letter."""
    practice = get_practice(session, bsnr)
    refuse_if_withdrawn(practice, now=now, quarters=quarters)
    token = stock.assign(session, serial=serial, bsnr=practice.bsnr, actor=actor, now=now)
    return mailruns.queue(
        session, kind=LetterKind.KEY, practice=practice, token=token, actor=actor, now=now
    )


def add_user(
    session: Session,
    *,
    username: str,
    bsnr: str,
    kind: UserKind,
    actor: Actor,
    now: datetime,
    name: str | None = None,
    lanr: str | None = None,
    migrated_password: str | None = None,
    migrated_hash: str | None = None,
    policy: passwords.PasswordPolicy = passwords.DEFAULT_POLICY,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> tuple[User, Letter | None]:
    """Add a user, the step staff take: create it (``users.create_user``, which says
    the policy) and, unless a password (or its hash) is taken over from the previous
    system, queue the credentials letter."""
    refuse_if_withdrawn(get_practice(session, bsnr), now=now, quarters=quarters)
    user = users.create_user(
        session,
        username=username,
        bsnr=bsnr,
        kind=kind,
        name=name,
        lanr=lanr,
        migrated_password=migrated_password,
        migrated_hash=migrated_hash,
        policy=policy,
        actor=actor,
        now=now,
    )
    if user.password_hash is not None:
        return user, None
    letter = mailruns.queue(
        session,
        kind=LetterKind.CREDENTIALS,
        practice=user.practice,
        user=user,
        actor=actor,
        now=now,
    )
    return user, letter


def reissue_password(
    session: Session,
    *,
    username: str,
    at_once: bool,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Letter:
    """§ 7.3: new credentials on request, free of charge (§ 6.1).

    ``at_once``: the current password stops working when the new letter is printed;
    otherwise when the new password is first used.
    """
    user = users.get_user(session, username)
    if user.status is UserStatus.REVOKED:
        raise ConflictError(f"Der Zugang {user.username} ist beendet")
    refuse_if_withdrawn(user.practice, now=now, quarters=quarters, user=user)
    pending = session.scalar(
        select(Letter.id).where(
            Letter.user_id == user.id,
            Letter.kind.in_(mailruns.PASSWORD_LETTERS),
            Letter.status == LetterStatus.DUE,
        )
    )
    if pending is not None:
        raise ConflictError(
            f"Für {user.username} ist bereits ein Kennwortbrief vorgemerkt (FN-{pending:06d})"
        )
    return mailruns.queue(
        session,
        kind=LetterKind.NEW_PASSWORD,
        practice=user.practice,
        user=user,
        replace_at_once=at_once,
        actor=actor,
        now=now,
    )


class Replacement(enum.StrEnum):
    LOST = "lost"  # retired for good at once; the § 6.3 fee is recorded
    DEFECTIVE = "defective"
    # The practice changed hands (§ 2.3): locked at once and asked back (§ 10.2), no fee.
    TAKEOVER = "takeover"


def replace_key(
    session: Session,
    *,
    bsnr: str,
    new_serial: str,
    why: Replacement,
    at_once: bool,
    fee_cents: int,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> list[Letter]:
    """Replace a practice's lost, defective or taken-over key with one from stock.

    A lost key stops working at once, whatever ``at_once`` says; so does the old owner's
    after a takeover, which is asked back with a lock letter; a defective one at once or
    on the first use of its replacement. Returns the letters queued.
    """
    practice = get_practice(session, bsnr)
    refuse_if_withdrawn(practice, now=now, quarters=quarters)
    old = _current_key(session, practice.id, lost=why is Replacement.LOST)
    overlap = why is Replacement.DEFECTIVE and not at_once
    if not overlap:
        _take_out_of_service(session, old, why, actor=actor, now=now)
    new = stock.assign(
        session,
        serial=new_serial,
        bsnr=practice.bsnr,
        actor=actor,
        now=now,
        replacing=old if overlap else None,
    )
    _cancel_due_key_letters(session, old)
    if overlap:
        old.replaced_by_id = new.id
    fee = (
        fees.record_loss(session, old, amount_cents=fee_cents, actor=actor, now=now)
        if why is Replacement.LOST
        else None
    )
    audit.record(
        session,
        AuditTag.TOKEN_REPLACE,
        actor=actor,
        subject=Subject("token", old.serial),
        data={
            "replaced_by": new.serial,
            "why": why.value,
            "old_stops": "on_first_use" if overlap else "at_once",
            "fee_cents": fee.amount_cents if fee else None,  # as owed once (§ 6.3)
        },
        now=now,
    )
    queued = []
    if why is Replacement.TAKEOVER:
        queued.append(ask_back(session, practice, old, actor=actor, now=now))
    queued.append(
        mailruns.queue(
            session, kind=LetterKind.KEY, practice=practice, token=new, actor=actor, now=now
        )
    )
    if why is Replacement.LOST:
        queued.append(
            mailruns.queue(
                session,
                kind=LetterKind.LOSS_CONFIRMATION,
                practice=practice,
                token=old,
                fee_cents=fee.amount_cents if fee else fee_cents,
                actor=actor,
                now=now,
            )
        )
    return queued


def _current_key(session: Session, practice_id: int, *, lost: bool = False) -> Token:
    """The key being replaced: in use or handed out, or locked; for a loss also one
    already reported lost (``lock key --cause loss``) that has no replacement yet, i.e.
    no loss confirmation on the list or sent."""
    token = session.scalar(
        select(Token)
        .where(
            Token.practice_id == practice_id,
            Token.status.in_((*USABLE_STATUSES, TokenStatus.LOCKED)),
        )
        .order_by(Token.id.desc())
        .limit(1)
    )
    if token is None and lost:
        confirmed = select(Letter.id).where(
            Letter.token_id == Token.id,
            Letter.kind == LetterKind.LOSS_CONFIRMATION,
            Letter.status != LetterStatus.CANCELLED,
        )
        token = session.scalar(
            select(Token)
            .where(Token.practice_id == practice_id, Token.status == TokenStatus.LOST)
            .where(~confirmed.exists())
            .order_by(Token.id.desc())
            .limit(1)
        )
    if token is None:
        raise NotFoundError("Die Betriebsstätte hat keinen Yubikey, der ersetzt werden könnte")
    return token


TAKEOVER_REASON = "Praxisübernahme: Yubikey und Zugangsdaten sind nicht übertragbar (§ 2.3)"


def _take_out_of_service(
    session: Session, token: Token, why: Replacement, *, actor: Actor, now: datetime
) -> None:
    """Lost: never to be unlocked. Defective: retired. Taken over: locked until it comes
    back (§ 10.2). Live sessions end either way."""
    if why is Replacement.TAKEOVER:
        if token.status is not TokenStatus.LOCKED:
            takeover_lock = Lock(LockCause.TAKEOVER, TAKEOVER_REASON)
            stock.lock_keys(session, {token.id: takeover_lock}, actor=actor, now=now)
            session.refresh(token)
    elif token.status is TokenStatus.LOST:
        return  # reported lost before (``lock key --cause loss``): retired and audited
    else:
        token.status = TokenStatus.LOST if why is Replacement.LOST else TokenStatus.RETIRED
        token.lock_cause = token.lock_reason = token.locked_at = None
        tag = AuditTag.TOKEN_LOSS if why is Replacement.LOST else AuditTag.TOKEN_RETIRE
        audit.record(session, tag, actor=actor, subject=Subject("token", token.serial), now=now)
    vpn.request_disconnect_for_token(session, token=token, now=now)


def ask_back(
    session: Session, practice: Practice, token: Token, *, actor: Actor, now: datetime
) -> Letter:
    """The lock letter that asks for a key back (§ 10.2), without any fee."""
    return mailruns.queue(
        session,
        kind=LetterKind.LOCK,
        practice=practice,
        token=token,
        note=token.lock_reason or TAKEOVER_REASON,
        effective_on=now.astimezone(BERLIN).date(),
        cause=token.lock_cause or LockCause.TAKEOVER,
        actor=actor,
        now=now,
    )


def _cancel_due_key_letters(session: Session, token: Token) -> None:
    session.execute(
        update(Letter)
        .where(Letter.token_id == token.id, Letter.kind == LetterKind.KEY)
        .where(Letter.status == LetterStatus.DUE)
        .values(status=LetterStatus.CANCELLED),
        execution_options={"synchronize_session": False},
    )
