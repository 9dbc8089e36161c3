"""Keys in stock and at practices: look-up, assignment, resynchronisation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit, labels
from flexnet.accounts.practices import get_practice
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.db import rows_for_update, update_by_id
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.models import (
    Lock,
    StaffAccount,
    Token,
    TokenKind,
    TokenStatus,
)
from flexnet.otp import modhex, oath, yubico
from flexnet.otp.importer import SERIAL
from flexnet.otp.secrets import (
    SecretBox,
)
from flexnet.otp.verify import (
    USABLE_STATUSES,
    OtpReason,
    advance_counters,
    decode_for,
    status_reason,
)

_HARDWARE = (TokenKind.YUBICO_OTP, TokenKind.OATH_HOTP)


def get_token(session: Session, serial: str) -> Token:
    token = session.scalar(select(Token).where(Token.serial == serial.strip()))
    if token is None:
        raise NotFoundError(f"Kein Yubikey mit Seriennummer {serial.strip()}")
    return token


def practice_key(token: Token) -> Token:
    """``token`` if it may go the ways of a practice's key (lock, loss, resynchronisation,
    return, assignment). A staff member's Yubikey is their second factor for the admin
    UI: locking it would leave the account to enrol a new factor, so it is handled only
    on the staff page (second-factor reset, deactivation)."""
    if token.staff_id is not None:
        raise ConflictError(
            f"Yubikey {token.serial} ist der zweite Faktor eines Mitarbeiters, kein "
            "Praxis-Yubikey; bei Verlust unter „Mitarbeiter“ den zweiten Faktor zurücksetzen"
        )
    return token


def get_practice_key(session: Session, serial: str) -> Token:
    """The key with this serial, if it is no staff member's (``practice_key``)."""
    return practice_key(get_token(session, serial))


def register_remote(
    session: Session, *, serial: str, public_id: str, actor: Actor, now: datetime
) -> Token:
    """Add a key whose AES secret stays with the external validation service."""
    serial = serial.strip()
    public_id = public_id.strip().lower()
    if not SERIAL.fullmatch(serial):
        raise ValidationError(
            f"Seriennummer {serial[:20]!r} ist keine Zahl mit höchstens 12 Ziffern"
        )
    if len(public_id) != yubico.PUBLIC_ID_CHARS or not modhex.is_modhex(public_id):
        raise ValidationError("Die öffentliche ID muss 12 Modhex-Zeichen haben")
    taken = session.scalar(
        select(Token.serial).where((Token.serial == serial) | (Token.public_id == public_id))
    )
    if taken is not None:
        raise ConflictError(f"Seriennummer oder öffentliche ID ist bereits im Bestand ({taken})")
    token = Token(
        serial=serial,
        kind=TokenKind.YUBICO_OTP,
        public_id=public_id,
        secret=None,
        remote_validation=True,
        status=TokenStatus.STOCK,
        created_at=now,
    )
    session.add(token)
    audit.record(
        session,
        AuditTag.TOKEN_IMPORT,
        actor=actor,
        subject=Subject("token", serial),
        data={"remote_validation": True, "public_id": public_id},
        now=now,
    )
    return token


def assign(
    session: Session,
    *,
    serial: str,
    bsnr: str,
    actor: Actor,
    now: datetime,
    replacing: Token | None = None,
) -> Token:
    """Hand a key from stock to a practice: one Yubikey per practice (§ 2.1).

    ``replacing`` is the practice's key that this one replaces on its first use; the two
    overlap until then.
    """
    token = get_practice_key(session, serial)
    practice = get_practice(session, bsnr)
    if token.kind not in _HARDWARE:
        raise ValidationError(f"{token.serial} ist kein Yubikey")
    if token.status is not TokenStatus.STOCK:
        raise ConflictError(
            f"Yubikey {token.serial} ist nicht im Lager ({labels.token_status_label(token.status)})"
        )
    issued = [
        t.serial for t in practice.tokens if t.status in USABLE_STATUSES and t is not replacing
    ]
    if issued:
        raise ConflictError(
            f"BSNR {practice.bsnr} hat bereits den Yubikey {', '.join(issued)} (§ 2.1: einer je "
            "Betriebsstätte); für einen Ersatz den Verlust bzw. Defekt erfassen"
        )
    token.practice = practice
    token.status = TokenStatus.ASSIGNED
    audit.record(
        session,
        AuditTag.TOKEN_ASSIGN,
        actor=actor,
        subject=Subject("token", token.serial),
        data={"bsnr": practice.bsnr},
        now=now,
    )
    return token


def assign_to_staff(
    session: Session, *, serial: str, staff: StaffAccount, actor: Actor, now: datetime
) -> Token:
    """Hand a Yubikey from stock to an IT staff member as their second factor for the
    admin UI (in person, so it is active at once). Such a key never opens a VPN: it
    belongs to no practice."""
    token = get_token(session, serial)
    if token.kind is not TokenKind.YUBICO_OTP:
        raise ValidationError(f"{token.serial} ist kein Yubikey im Yubico-OTP-Modus")
    if token.status is not TokenStatus.STOCK:
        raise ConflictError(
            f"Yubikey {token.serial} ist nicht im Lager ({labels.token_status_label(token.status)})"
        )
    token.staff_id = staff.id
    token.status = TokenStatus.ACTIVE
    audit.record(
        session,
        AuditTag.TOKEN_ASSIGN_STAFF,
        actor=actor,
        subject=Subject("token", token.serial),
        data={"staff": staff.username},
        now=now,
    )
    return token


def lock_keys(
    session: Session, locks: Mapping[int, Lock], *, actor: Actor, now: datetime
) -> list[str]:
    """Lock keys in use or handed out (id → why), set-based, each audited; returns the
    serials locked now. Rows are locked first, so concurrent locks act once."""
    usable_practice_keys = (Token.status.in_(USABLE_STATUSES), Token.staff_id.is_(None))
    rows = rows_for_update(session, Token, Token.serial, list(locks), *usable_practice_keys)
    if not rows:
        return []
    update_by_id(
        session,
        Token,
        {
            id_: {
                "status": TokenStatus.LOCKED,
                "lock_cause": locks[id_].cause,
                "lock_reason": locks[id_].reason,
                "locked_at": now,
                "return_reminded_on": None,  # a new lock: a new reminder when not back
            }
            for id_, _ in rows
        },
    )
    audit.record_many(
        session,
        [
            audit.Pending(
                AuditTag.TOKEN_LOCK, Subject("token", serial), {"cause": locks[id_].cause.value}
            )
            for id_, serial in rows
        ],
        actor=actor,
        now=now,
    )
    return [serial for _, serial in rows]


def resync(
    session: Session,
    *,
    serial: str,
    first: str,
    second: str,
    box: SecretBox,
    actor: Actor,
    now: datetime,
) -> OtpReason:
    """§ 6.1 Resynchronisierung from two consecutive OTPs typed by the key's holder."""
    token = get_practice_key(session, serial)
    refused = status_reason(token)
    if refused is not None:
        return refused  # a locked, lost or returned key is replaced, not resynchronised
    before = _counters(token)
    if token.kind is TokenKind.OATH_HOTP:
        reason = oath.resync_hotp(
            session, token, first.strip(), second.strip(), box=box, now=now
        ).reason
    elif token.kind is TokenKind.YUBICO_OTP:
        reason = _resync_yubico(session, token, first, second, box=box, now=now)
    else:
        raise ValidationError(f"{token.serial} lässt sich nicht resynchronisieren")
    if reason is OtpReason.OK:
        audit.record(
            session,
            AuditTag.TOKEN_RESYNC,
            actor=actor,
            subject=Subject("token", token.serial),
            data={"before": before, "after": _counters(token)},
            now=now,
        )
    return reason


def _counters(token: Token) -> dict[str, int]:
    if token.kind is TokenKind.OATH_HOTP:
        return {"hotp_counter": token.hotp_counter}
    return {"usage": token.otp_usage_counter, "session": token.otp_session_counter}


def _resync_yubico(
    session: Session, token: Token, first: str, second: str, *, box: SecretBox, now: datetime
) -> OtpReason:
    decoded = []
    for typed in (first, second):
        parsed = yubico.parse(typed)
        if parsed is None or parsed.public_id != token.public_id:
            return OtpReason.MALFORMED
        result = decode_for(token, parsed, box)
        if isinstance(result, OtpReason):
            return result
        decoded.append(result)
    (u1, s1), (u2, s2) = decoded[0].counters(), decoded[1].counters()
    if (u2, s2) not in ((u1, s1 + 1), (u1 + 1, 0)):
        return OtpReason.BAD_OTP  # not two consecutive OTPs of this key
    # Forward only: a key's counters never fall behind what was stored, and moving
    # them back would revive OTPs that were already used.
    if advance_counters(session, token, decoded[1], now=now, nonce=None) is None:
        return OtpReason.REPLAYED
    return OtpReason.OK
