"""Locks for cause, loss reports, unlocks and terminations (§ 7.2, § 10.1, § 10.2, § 14.2).

Staff name what they lock as user, key or practice (``lock``, ``unlock``): the one
dispatch behind ``flexnet lock``, ``POST /api/v1/locks`` and the admin UI's lock dialog.
Every lock, whatever its cause, is set-based: the rows are locked first (FOR UPDATE),
so of concurrent locks one takes effect and is audited; it ends the live VPN sessions
it affects and, for a practice, asks for the Yubikey back with a lock letter (§ 10.2).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from flexnet import audit, labels
from flexnet.accounts import users, vpn
from flexnet.accounts.practices import get_practice
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.days import check_day
from flexnet.db import among, chunked, rows_for_update, update_by_id
from flexnet.errors import ConflictError, ValidationError
from flexnet.lifecycle.rules import BERLIN, DEFAULT_LOCK_AFTER_QUARTERS, termination_last_day
from flexnet.lifecycle.status import (
    EffectiveStatus,
    practice_lock_after_unlock,
    termination_reason,
    user_lock_after_unlock,
)
from flexnet.models import (
    Letter,
    LetterKind,
    LetterStatus,
    Lock,
    LockCause,
    Practice,
    PracticeStatus,
    TerminationBy,
    Token,
    TokenStatus,
    User,
    UserStatus,
)
from flexnet.otp import stock
from flexnet.otp.verify import USABLE_STATUSES
from flexnet.provisioning import fees, mailruns
from flexnet.textrules import REASON_MAX_LENGTH, clean_line, optional_line

# Causes staff choose when they lock by hand; the others come from rules or the system.
STAFF_CAUSES = (LockCause.MANUAL, LockCause.MISUSE, LockCause.LOSS, LockCause.OBJECTION)


class LockTarget(enum.StrEnum):
    """What staff lock, and how they name it: a user (username), a Yubikey (serial) or
    a practice (BSNR) with all its users and keys."""

    USER = "user"
    KEY = "key"
    PRACTICE = "practice"


@dataclass(frozen=True)
class LockOutcome:
    what: LockTarget
    locked: list[str]  # locked by this call: usernames, the key's serial or the BSNR
    key_status: TokenStatus | None = None  # a key's status now: locked, or lost for good

    @property
    def text(self) -> str:
        """What happened, in German, as the CLI prints it and the admin UI shows it."""
        if self.what is LockTarget.USER:
            return f"gesperrt: {', '.join(self.locked) or 'keiner (bereits gesperrt)'}"
        if self.what is LockTarget.KEY and self.key_status is not None:
            return f"Yubikey {self.locked[0]}: {labels.TOKEN_STATUS_LABEL[self.key_status.value]}"
        return f"BSNR {self.locked[0]} mit allen Zugängen gesperrt; Sperrbrief vorgemerkt"


def lock(
    session: Session,
    *,
    what: LockTarget,
    identifier: str,
    cause: LockCause,
    reason: str,
    actor: Actor,
    now: datetime,
    all_practice_credentials: bool = False,
    loss_fee_cents: int | None = None,
) -> LockOutcome:
    """Lock the user, key or practice staff named (§ 7.2, § 10.1, § 14.2); with
    ``all_practice_credentials`` a user's or key's lock takes every user of the
    practice along (a practice's lock always does). A key's loss owes
    ``loss_fee_cents`` (§ 6.3, ``FLEXNET_LOSS_FEE_EUR``)."""
    everyone = all_practice_credentials
    if what is LockTarget.USER:
        names = lock_user(
            session,
            username=identifier,
            cause=cause,
            reason=reason,
            actor=actor,
            now=now,
            all_practice_credentials=everyone,
        )
        return LockOutcome(what, names)
    if what is LockTarget.KEY:
        token = lock_key(
            session,
            serial=identifier,
            cause=cause,
            reason=reason,
            actor=actor,
            now=now,
            all_practice_credentials=everyone,
            loss_fee_cents=loss_fee_cents,
        )
        return LockOutcome(what, [token.serial], token.status)
    practice = lock_practice(
        session, bsnr=identifier, cause=cause, reason=reason, actor=actor, now=now
    )
    return LockOutcome(what, [practice.bsnr])


def unlock(
    session: Session,
    *,
    what: LockTarget,
    identifier: str,
    reason: str,
    actor: Actor,
    now: datetime,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> str:
    """Lift the lock of the user, practice or key named; returns its name as stored. A
    Yubikey alone only after a false alarm (``unlock_key``)."""
    if what is LockTarget.USER:
        user = unlock_user(
            session, username=identifier, reason=reason, actor=actor, now=now, quarters=quarters
        )
        return user.username
    if what is LockTarget.PRACTICE:
        practice = unlock_practice(
            session, bsnr=identifier, reason=reason, actor=actor, now=now, quarters=quarters
        )
        return practice.bsnr
    return unlock_key(session, serial=identifier, reason=reason, actor=actor, now=now).serial


# A key alone is unlocked only after a false alarm: the practice's own lock, suspected
# misuse (§ 7.2). Lost stays lost; one locked with its practice comes back with it; any
# other lock of a key (§ 10.1, a takeover) is ended by a replacement or the practice.
KEY_UNLOCK_CAUSES = frozenset({LockCause.SELF_SERVICE, LockCause.MISUSE})


def unlock_key(session: Session, *, serial: str, reason: str, actor: Actor, now: datetime) -> Token:
    """Lift a key's lock after a false alarm (a self-lock or a misuse lock), with a
    reason; the key is back in the state it had (in use, at the practice, or waiting for
    its letter). Refused, changing nothing, for a lost key and for any other lock."""
    reason = _require_reason(reason)
    token = stock.get_practice_key(session, serial)
    if token.status is TokenStatus.LOST:
        raise ConflictError(
            f"Yubikey {token.serial} ist als verloren gemeldet und bleibt ausgemustert "
            "(§ 7.2); die Betriebsstätte bekommt einen Ersatz (flexnet yubikey replace)"
        )
    if token.status is not TokenStatus.LOCKED:
        state = labels.TOKEN_STATUS_LABEL[token.status.value]
        raise ConflictError(f"Yubikey {token.serial} ist nicht gesperrt ({state})")
    practice = token.practice
    if (
        practice is not None
        and practice.status is PracticeStatus.LOCKED
        and (practice.lock_cause, practice.locked_at) == (token.lock_cause, token.locked_at)
    ):
        raise ConflictError(
            f"Yubikey {token.serial} ist mit seiner Betriebsstätte gesperrt: er kommt mit ihr "
            f"wieder (flexnet unlock practice {practice.bsnr})"
        )
    if token.lock_cause not in KEY_UNLOCK_CAUSES:
        raise ConflictError(
            "Nur eine Sperre wegen Missbrauchsverdacht oder eine Selbstsperre der Praxis wird "
            f"für einen Yubikey allein aufgehoben; Yubikey {token.serial} ist gesperrt: "
            f"{token.lock_reason}"
        )
    cause = token.lock_cause
    token.status = _status_before_lock(session, token)
    token.lock_cause = token.lock_reason = token.locked_at = None
    token.return_reminded_on = None
    audit.record(
        session,
        AuditTag.TOKEN_UNLOCK,
        actor=actor,
        subject=Subject("token", token.serial),
        data={"reason": reason, "cause": cause.value if cause else None},
        now=now,
    )
    return token


def _require_reason(reason: str) -> str:
    """A reason staff typed: one line, printable, short enough for the lock letter."""
    if not reason.strip():
        raise ValidationError("Bitte einen Grund angeben")
    return clean_line(reason, field="Grund", max_length=REASON_MAX_LENGTH)


def lock_user(
    session: Session,
    *,
    username: str,
    cause: LockCause,
    reason: str,
    actor: Actor,
    now: datetime,
    all_practice_credentials: bool = False,
) -> list[str]:
    """Staff lock the user named, or with ``all_practice_credentials`` every user of the
    practice (§ 7.2), for a cause with a reason (each user by ``users.lock_one``). Returns
    the usernames locked now (the already locked are left as they are)."""
    reason = _require_reason(reason)
    user = users.get_user(session, username)
    targets = user.practice.users if all_practice_credentials else [user]
    locked = []
    for target in targets:
        queued = users.lock_one(
            session, user=target, cause=cause, reason=reason, actor=actor, now=now
        )
        if queued is not None:
            locked.append(target.username)
    return locked


def lock_key(
    session: Session,
    *,
    serial: str,
    cause: LockCause,
    reason: str,
    actor: Actor,
    now: datetime,
    all_practice_credentials: bool = False,
    loss_fee_cents: int | None = None,
) -> Token:
    """Lock a Yubikey; reported lost, it is retired for good and never unlocked (§ 7.2),
    and the § 6.3 fee is owed (once: a loss reported again, or recorded first by a
    replacement, finds it recorded and changes nothing)."""
    reason = _require_reason(reason)
    token = stock.get_practice_key(session, serial)
    lost = cause is LockCause.LOSS
    if lost and loss_fee_cents is None:
        raise ValidationError("Für einen Verlust fehlt die Gebühr (FLEXNET_LOSS_FEE_EUR)")
    if lost and token.status is TokenStatus.LOST:
        assert loss_fee_cents is not None  # noqa: S101 - checked above
        fees.record_loss(session, token, amount_cents=loss_fee_cents, actor=actor, now=now)
        return token
    values = (
        {"status": TokenStatus.LOST, "lock_cause": None, "lock_reason": None, "locked_at": None}
        if lost
        else {"status": TokenStatus.LOCKED, "lock_cause": cause, "lock_reason": reason}
        | {"locked_at": now, "return_reminded_on": None}
    )
    changed = session.execute(
        update(Token)
        .where(Token.id == token.id, Token.status.in_((*USABLE_STATUSES, TokenStatus.LOCKED)))
        .where(Token.status != values["status"])
        .values(values),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(token)
    if not changed:
        state = labels.TOKEN_STATUS_LABEL[token.status.value]
        raise ConflictError(f"Yubikey {token.serial} ist bereits {state}")
    audit.record(
        session,
        AuditTag.TOKEN_LOSS if lost else AuditTag.TOKEN_LOCK,
        actor=actor,
        subject=Subject("token", token.serial),
        data={"cause": cause.value, "reason": reason},
        now=now,
    )
    if lost:
        assert loss_fee_cents is not None  # noqa: S101 - checked above
        fees.record_loss(session, token, amount_cents=loss_fee_cents, actor=actor, now=now)
    vpn.request_disconnect_for_token(session, token=token, now=now)
    if all_practice_credentials and token.practice is not None:
        for user in token.practice.users:
            users.lock_one(session, user=user, cause=cause, reason=reason, actor=actor, now=now)
    return token


def lock_practice(
    session: Session,
    *,
    bsnr: str,
    cause: LockCause,
    reason: str,
    actor: Actor,
    now: datetime,
) -> Practice:
    """Lock a practice with its users and keys, end their sessions, ask for the key back."""
    why = Lock(cause, _require_reason(reason))
    return _lock_one_practice(session, get_practice(session, bsnr), why, actor=actor, now=now)


def _lock_one_practice(
    session: Session, practice: Practice, why: Lock, *, actor: Actor, now: datetime
) -> Practice:
    if not lock_practices(
        session, {practice: why}, tag=AuditTag.PRACTICE_LOCK, actor=actor, now=now
    ):
        raise ConflictError(f"BSNR {practice.bsnr} ist bereits gesperrt")
    session.refresh(practice)
    return practice


def lock_practices(
    session: Session,
    locks: Mapping[Practice, Lock],
    *,
    tag: AuditTag,
    actor: Actor,
    now: datetime,
) -> list[str]:
    """Lock practices set-based, whatever their number: each practice, its users and its
    keys locked and audited, live sessions queued for disconnect, one lock letter per
    practice asking for the key back (§ 10.2). Returns the BSNRs locked now; practices
    locked already (by someone else meanwhile) are left as they are."""
    by_id = {practice.id: practice for practice in locks}
    rows = rows_for_update(
        session, Practice, Practice.bsnr, list(by_id), Practice.status != PracticeStatus.LOCKED
    )
    if not rows:
        return []
    locking = [by_id[id_] for id_, _ in rows]
    update_by_id(
        session,
        Practice,
        {
            p.id: {
                "status": PracticeStatus.LOCKED,
                "lock_cause": locks[p].cause,
                "lock_reason": locks[p].reason,
                "locked_at": now,
            }
            for p in locking
        },
    )
    audit.record_many(
        session,
        [
            audit.Pending(
                tag,
                Subject("practice", p.bsnr),
                {"cause": locks[p].cause.value, "reason": locks[p].reason},
            )
            for p in locking
        ],
        actor=actor,
        now=now,
    )
    why = {p.id: locks[p] for p in locking}
    members = _of_practices(session, User, list(why))
    users.lock_users(session, {uid: why[pid] for uid, pid in members}, actor=actor, now=now)
    keys = _of_practices(session, Token, list(why), Token.status.in_(USABLE_STATUSES))
    stock.lock_keys(session, {tid: why[pid] for tid, pid in keys}, actor=actor, now=now)
    first_key: dict[int, Token] = {}
    for tid, pid in keys:
        if pid not in first_key:  # named on the lock letter; the keys come in id order
            first_key[pid] = session.get_one(Token, tid)
    # The day the access ended: a date that passed before the nightly job ran, not the run.
    mailruns.queue_many(
        session,
        [
            mailruns.NewLetter(
                LetterKind.LOCK,
                p,
                token=first_key.get(p.id),
                note=locks[p].reason,
                effective_on=(locks[p].since or now).astimezone(BERLIN).date(),
                cause=locks[p].cause,
            )
            for p in locking
        ],
        actor=actor,
        now=now,
    )
    return [bsnr for _, bsnr in rows]


def _of_practices(
    session: Session, model: type[User] | type[Token], practice_ids: list[int], *where: Any
) -> list[tuple[int, int]]:
    """(id, practice id) of the practices' users or keys, in id order."""
    return [
        (id_, practice_id)
        for chunk in chunked(practice_ids)
        for id_, practice_id in session.execute(
            select(model.id, model.practice_id)
            .where(among(session, model.practice_id, chunk), *where)
            .order_by(model.id)
        )
        if practice_id is not None
    ]


def unlock_user(
    session: Session,
    *,
    username: str,
    reason: str,
    actor: Actor,
    now: datetime,
    by_exception: bool = False,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> User:
    """Lift a user's lock (not a practice's). The dates' § 10.3 lock is lifted only
    ``by_exception``: when an exception is granted (see ``exceptions``). An unlock that
    would leave the user locked (by the practice or the dates) is refused."""
    reason = _require_reason(reason)
    user = users.get_user(session, username)
    if user.status is not UserStatus.LOCKED:
        raise ConflictError(f"{user.username} ist nicht gesperrt")
    if user.lock_cause is LockCause.LIFECYCLE and not by_exception:
        raise ConflictError("Eine Sperre nach § 10.3 hebt nur eine Ausnahme auf")
    _refuse_takeover(user.lock_cause)
    _refuse_if_still_locked(
        user.username, user_lock_after_unlock(user, now, quarters), bsnr=user.practice.bsnr
    )
    previous = user.lock_cause
    user.status = UserStatus.ACTIVE if user.first_login_at else UserStatus.PENDING
    user.lock_cause = user.lock_reason = user.locked_at = None
    user.failed_logins, user.throttled_until = 0, None
    audit.record(
        session,
        AuditTag.USER_UNLOCK,
        actor=actor,
        subject=Subject("user", user.username),
        data={"reason": reason, "cause": previous.value if previous else None},
        now=now,
    )
    return user


def unlock_practice(
    session: Session,
    *,
    bsnr: str,
    reason: str,
    actor: Actor,
    now: datetime,
    by_exception: bool = False,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Practice:
    """Lift a practice's lock, and the locks its users and keys got with it. The dates'
    § 10.3 lock is lifted only ``by_exception``. An unlock that would leave the practice
    locked by its dates (a termination in effect, § 10.3) is refused and changes
    nothing: the nightly job would only lock it again with a second lock letter."""
    reason = _require_reason(reason)
    practice = get_practice(session, bsnr)
    if practice.status is not PracticeStatus.LOCKED:
        raise ConflictError(f"BSNR {practice.bsnr} ist nicht gesperrt")
    if practice.lock_cause is LockCause.LIFECYCLE and not by_exception:
        raise ConflictError("Eine Sperre nach § 10.3 hebt nur eine Ausnahme auf")
    _refuse_takeover(practice.lock_cause)
    _refuse_if_still_locked(
        f"BSNR {practice.bsnr}",
        practice_lock_after_unlock(practice, now, quarters),
        bsnr=practice.bsnr,
    )
    return lift_practice_lock(
        session,
        practice,
        reason=reason,
        actor=actor,
        now=now,
        by_exception=by_exception,
        quarters=quarters,
    )


def lift_practice_lock(
    session: Session,
    practice: Practice,
    *,
    reason: str,
    actor: Actor,
    now: datetime,
    by_exception: bool = False,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> Practice:
    """Lift the practice's stored lock and the locks its users and keys got with it (and
    only those), cancel its lock letters not yet printed; audited. The caller has
    decided that nothing else keeps it locked."""
    cause, locked_at = practice.lock_cause, practice.locked_at
    practice.status = PracticeStatus.ACTIVE if practice.terms_acceptance else PracticeStatus.PENDING
    practice.lock_cause = practice.lock_reason = practice.locked_at = None
    for user in practice.users:
        # A member whose own § 10.3 date has passed stays locked; the job makes it durable.
        if (
            user.status is UserStatus.LOCKED
            and (user.lock_cause, user.locked_at) == (cause, locked_at)
            and user_lock_after_unlock(user, now, quarters) is None
        ):
            unlock_user(
                session,
                username=user.username,
                reason=reason,
                actor=actor,
                now=now,
                by_exception=by_exception,
                quarters=quarters,
            )
    for token in practice.tokens:
        if token.status is TokenStatus.LOCKED and (token.lock_cause, token.locked_at) == (
            cause,
            locked_at,
        ):
            token.status = _status_before_lock(session, token)
            token.lock_cause = token.lock_reason = token.locked_at = None
    cancelled = cancel_lock_letters(session, practice, cause, locked_at)
    audit.record(
        session,
        AuditTag.PRACTICE_UNLOCK,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={
            "reason": reason,
            "cause": cause.value if cause else None,
            "letters_cancelled": [mailruns.reference(id_) for id_ in cancelled],
        },
        now=now,
    )
    return practice


def cancel_lock_letters(
    session: Session, practice: Practice, cause: LockCause | None, locked_at: datetime | None
) -> list[int]:
    """The lock letters of a lock that was lifted before they were printed: they would
    announce a lock that no longer is (a takeover's letter asking a key back stays)."""
    same_lock = Letter.cause == cause
    if locked_at is not None:
        same_lock = same_lock | (Letter.cause.is_(None) & (Letter.created_at >= locked_at))
    ids = list(
        session.scalars(
            select(Letter.id).where(
                Letter.practice_id == practice.id,
                Letter.kind == LetterKind.LOCK,
                Letter.status == LetterStatus.DUE,
                same_lock,
            )
        )
    )
    update_by_id(session, Letter, {id_: {"status": LetterStatus.CANCELLED} for id_ in ids})
    if ids and "letters" not in inspect(practice).unloaded:
        session.expire(practice, ["letters"])
    return ids


def _refuse_takeover(cause: LockCause | None) -> None:
    if cause is LockCause.TAKEOVER:
        raise ConflictError(
            "Nach einer Praxisübernahme sind Zugangsdaten und Yubikey des bisherigen Inhabers "
            "nicht übertragbar (§ 2.3): die Sperre bleibt; der neue Inhaber bekommt eigene"
        )


def _refuse_if_still_locked(who: str, still: EffectiveStatus | None, *, bsnr: str) -> None:
    if still is None:
        return
    way = (
        f"; eine irrtümliche Kündigung wird zurückgenommen: flexnet termination withdraw "
        f"{bsnr} --reason …"
        if still.cause is LockCause.TERMINATION
        else ""
    )
    raise ConflictError(
        f"{who} bleibt gesperrt ({still.reason}): eine Entsperrung hebt das nicht auf; "
        f"nichts geändert{way}"
    )


def _status_before_lock(session: Session, token: Token) -> TokenStatus:
    """In use, at the practice, or still waiting for its key letter."""
    if token.last_used_at is not None:
        return TokenStatus.ACTIVE
    sent = session.scalar(
        select(Letter.id)
        .where(Letter.token_id == token.id, Letter.kind == LetterKind.KEY)
        .where(Letter.status == LetterStatus.DISPATCHED)
        .limit(1)
    )
    return TokenStatus.SHIPPED if sent is not None else TokenStatus.ASSIGNED


def terminate(
    session: Session,
    *,
    bsnr: str,
    by: TerminationBy,
    notice_date: date,
    actor: Actor,
    now: datetime,
    requested: date | None = None,
    reason: str | None = None,
) -> Practice:
    """Record a termination (§ 10.2); the dates lock the practice when it takes effect,
    an extraordinary one at once."""
    check_day(notice_date, field="Eingang der Kündigung")
    if requested is not None:
        check_day(requested, field="Gewünschtes Ende")
    reason = optional_line(reason, field="Grund", max_length=REASON_MAX_LENGTH)
    practice = get_practice(session, bsnr)
    if practice.terminated_by is not None:
        raise ConflictError(f"BSNR {practice.bsnr} ist bereits gekündigt")
    if requested is not None and requested < notice_date:
        raise ValidationError("Das gewünschte Ende liegt vor dem Eingang der Kündigung")
    practice.terminated_by = by
    practice.termination_notice_on = notice_date
    practice.access_ends_on = termination_last_day(by, notice_date, requested)
    practice.termination_reason = reason
    audit.record(
        session,
        AuditTag.PRACTICE_TERMINATE,
        actor=actor,
        subject=Subject("practice", practice.bsnr),
        data={
            "by": by.value,
            "notice_date": notice_date.isoformat(),
            "last_day": practice.access_ends_on.isoformat() if practice.access_ends_on else None,
        },
        now=now,
    )
    if by is TerminationBy.EXTRAORDINARY:
        why = Lock(LockCause.TERMINATION, termination_reason(practice))
        _lock_one_practice(session, practice, why, actor=actor, now=now)
    return practice
