"""Yubico OTP verification against a key's stored replay state.

The (usage counter, session counter) pair must be strictly greater than the stored one.
The advance is one conditional UPDATE; its row count decides, so two processes that
race with the same OTP cannot both succeed. The caller commits before it answers.
A cryptographically valid OTP is used up here, whatever the caller decides afterwards.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.config import OtpSettings
from flexnet.models import Token, TokenKind, TokenStatus
from flexnet.otp import yubico
from flexnet.otp.secrets import SecretBox, SecretError, YubicoSecret, token_context

log = logging.getLogger(__name__)

# Keys that may authenticate: handed to a practice and neither locked nor lost.
USABLE_STATUSES = (TokenStatus.ASSIGNED, TokenStatus.SHIPPED, TokenStatus.ACTIVE)
# Warn while a key still has this many power-ups left before its counter is exhausted.
COUNTER_WARNING_AT = yubico.MAX_USAGE_COUNTER - 0x100
# yubikey-val's tolerances for OTPs delayed within one key session (phishing relay).
_TICKS_PER_SECOND = 8
_DELAY_ABSOLUTE_SECONDS = 20
_DELAY_RELATIVE = 0.3


class OtpReason(enum.StrEnum):
    OK = "ok"
    MALFORMED = "otp_malformed"
    UNKNOWN_KEY = "key_unknown"
    KEY_NOT_ASSIGNED = "key_not_assigned"
    KEY_RETURNED = "key_returned"
    KEY_RETIRED = "key_retired"
    KEY_LOCKED = "key_locked"
    KEY_LOST = "key_lost"
    BAD_OTP = "otp_invalid"
    REPLAYED = "otp_replayed"
    REPLAYED_REQUEST = "otp_replayed_request"
    DELAYED = "otp_delayed"
    BACKEND_ERROR = "backend_error"


_STATUS_REASON = {
    TokenStatus.STOCK: OtpReason.KEY_NOT_ASSIGNED,
    TokenStatus.RETURNED: OtpReason.KEY_RETURNED,
    TokenStatus.RETIRED: OtpReason.KEY_RETIRED,
    TokenStatus.LOCKED: OtpReason.KEY_LOCKED,
    TokenStatus.LOST: OtpReason.KEY_LOST,
}


class RemoteCheck(Protocol):
    def check(self, otp: str) -> OtpReason: ...


@dataclass(frozen=True)
class OtpResult:
    reason: OtpReason
    token: Token | None = None
    decoded: yubico.OtpToken | None = None

    @property
    def ok(self) -> bool:
        return self.reason is OtpReason.OK


@dataclass(frozen=True)
class Decrypted:
    """An OTP decrypted already (the RADIUS fast path does it with its key snapshot), with
    the sealed secret whose key material decrypted it: it stands for a key row only
    while that row holds the same sealed secret (a reprogrammed key has a new one)."""

    sealed_secret: bytes = field(repr=False)
    token: yubico.OtpToken


@dataclass(frozen=True)
class Presented:
    """An OTP as typed, with what is known about it already, so that the hot path parses
    and decrypts it once: ``parsed`` is None when it is no Yubico OTP (maybe OATH)."""

    text: str = field(repr=False)
    parsed: yubico.ParsedOtp | None = None
    decrypted: Decrypted | None = None

    @classmethod
    def typed(cls, text: str) -> Presented:
        return cls(text, yubico.parse(text))


def status_reason(token: Token) -> OtpReason | None:
    """Why this key may not authenticate, or None if it may."""
    return _STATUS_REASON.get(token.status)


# Built once: every authentication runs these two statements.
_FIND_YUBIKEY = select(Token).where(
    Token.public_id == bindparam("public_id"), Token.kind == TokenKind.YUBICO_OTP
)
_NEWER = or_(
    Token.otp_usage_counter < bindparam("otp_usage_counter"),
    and_(
        Token.otp_usage_counter == bindparam("otp_usage_counter"),
        Token.otp_session_counter < bindparam("otp_session_counter"),
    ),
)
_ADVANCE = (
    update(Token)
    .where(Token.id == bindparam("token_id"), _NEWER)
    .values(
        {
            column: bindparam(column)
            for column in (
                "otp_usage_counter",
                "otp_session_counter",
                "otp_timestamp",
                "last_used_at",
                "wsapi_last_nonce",
            )
        }
    )
    .returning(Token.status)
)


def find_yubikey(session: Session, public_id: str) -> Token | None:
    return session.scalar(_FIND_YUBIKEY, {"public_id": public_id})


def verify_yubico_otp(
    session: Session,
    otp: str,
    *,
    box: SecretBox,
    settings: OtpSettings,
    now: datetime,
    nonce: str | None = None,
    remote: RemoteCheck | None = None,
    presented: Presented | None = None,
    practice_keys_only: bool = False,
) -> OtpResult:
    """Parse (unless the caller did), find the key by its public id and check the OTP;
    ``presented``: what the caller knows of ``otp`` already (parsed, decrypted).
    ``practice_keys_only``: a staff member's key is unknown here, and its OTP stays
    unused (the validation protocol answers for practices' keys, never for staff's)."""
    parsed = presented.parsed if presented is not None else yubico.parse(otp)
    if parsed is None:
        return OtpResult(OtpReason.MALFORMED)
    token = find_yubikey(session, parsed.public_id)
    if token is None or (practice_keys_only and token.staff_id is not None):
        return OtpResult(OtpReason.UNKNOWN_KEY)
    if token.remote_validation:
        return check_remote(token, otp, remote)
    decrypted = presented.decrypted if presented is not None else None
    return check_yubico_otp(
        session,
        token,
        parsed,
        box=box,
        settings=settings,
        now=now,
        nonce=nonce,
        decrypted=decrypted,
    )


def check_remote(token: Token, otp: str, remote: RemoteCheck | None) -> OtpResult:
    """The external service keeps the secret and the replay state of such keys."""
    if remote is None:
        log.error("key %s needs external validation, which is not configured", token.serial)
        return OtpResult(OtpReason.BACKEND_ERROR, token)
    reason = remote.check(otp)
    if reason is OtpReason.OK:
        # Asked first all the same, so that the service consumes the OTP.
        reason = status_reason(token) or OtpReason.OK
    return OtpResult(reason, token)


def check_yubico_otp(
    session: Session,
    token: Token,
    parsed: yubico.ParsedOtp,
    *,
    box: SecretBox,
    settings: OtpSettings,
    now: datetime,
    nonce: str | None = None,
    decrypted: Decrypted | None = None,
) -> OtpResult:
    """Check one parsed OTP of ``token`` and, if good, consume it.

    A cryptographically valid OTP is consumed whatever else fails (locked key, delay);
    the key's status is decided by the row as the counter advance left it, so a lock
    that lands between our read and the update still wins. ``decrypted``: the OTP as
    decrypted already, taken only if it was done with this row's current secret.
    """
    decoded: yubico.OtpToken | OtpReason
    if decrypted is not None and decrypted.sealed_secret == token.secret:
        decoded = decrypted.token
    else:
        decoded = decode_for(token, parsed, box)
    if isinstance(decoded, OtpReason):
        return OtpResult(decoded, token)
    delayed = settings.delay_check and _delayed(token, decoded, now)
    status_at_update = advance_counters(session, token, decoded, now=now, nonce=nonce)
    if status_at_update is None:
        return OtpResult(_replay_reason(session, token, decoded, nonce), token, decoded)
    refused = _STATUS_REASON.get(status_at_update)
    if refused is not None:
        return OtpResult(refused, token, decoded)
    if delayed:
        return OtpResult(OtpReason.DELAYED, token, decoded)
    if status_at_update is not TokenStatus.ACTIVE:
        _activate(session, token, now=now)
    if decoded.usage_counter >= COUNTER_WARNING_AT and token.counter_warned_at is None:
        _warn_counter(session, token, decoded, now=now)
    return OtpResult(OtpReason.OK, token, decoded)


def decode_for(
    token: Token, parsed: yubico.ParsedOtp, box: SecretBox
) -> yubico.OtpToken | OtpReason:
    """Decrypt with the key's own secret and check its private id (no trust on first use)."""
    if token.secret is None:
        return OtpReason.BACKEND_ERROR  # an externally validated key has no local secret
    try:
        secret = YubicoSecret.from_bytes(
            box.open(token.secret, context=token_context(token.serial))
        )
    except SecretError:
        log.error("secret of key %s cannot be opened (master key?)", token.serial)
        return OtpReason.BACKEND_ERROR
    decoded = yubico.decrypt(parsed.ciphertext, secret.aes_key)
    if decoded is None or not yubico.same_private_id(decoded.private_id, secret.private_id):
        return OtpReason.BAD_OTP
    return decoded


def advance_counters(
    session: Session, token: Token, decoded: yubico.OtpToken, *, now: datetime, nonce: str | None
) -> TokenStatus | None:
    """Store the OTP's counters if they are newer.

    Returns the key's status as the update saw it, or None if the counters were not
    newer (a replay). One statement: the row lock of the update orders racing requests.
    """
    usage, session_counter = decoded.counters()
    values = {
        "otp_usage_counter": usage,
        "otp_session_counter": session_counter,
        "otp_timestamp": decoded.timestamp,
        "last_used_at": now,
        "wsapi_last_nonce": nonce,
    }
    status = session.connection().execute(_ADVANCE, {"token_id": token.id, **values}).scalar()
    if status is None:
        return None
    # The row is written; mirror it in the identity map without another SELECT.
    for name, value in {**values, "status": status}.items():
        set_committed_value(token, name, value)
    return TokenStatus(status)


def _replay_reason(
    session: Session, token: Token, decoded: yubico.OtpToken, nonce: str | None
) -> OtpReason:
    """A repeated validation-protocol request (same OTP, same nonce) is told apart."""
    if nonce is None:
        return OtpReason.REPLAYED
    session.refresh(token, ["otp_usage_counter", "otp_session_counter", "wsapi_last_nonce"])
    stored = (token.otp_usage_counter, token.otp_session_counter)
    if stored == decoded.counters() and token.wsapi_last_nonce == nonce:
        return OtpReason.REPLAYED_REQUEST
    return OtpReason.REPLAYED


def _delayed(token: Token, decoded: yubico.OtpToken, now: datetime) -> bool:
    """An OTP typed long before it arrives (relayed by a phisher), within one key session."""
    if (
        token.last_used_at is None
        or token.otp_timestamp is None
        or decoded.usage_counter != token.otp_usage_counter
    ):
        return False
    key_seconds = (decoded.timestamp - token.otp_timestamp) / _TICKS_PER_SECOND
    server_seconds = (now - token.last_used_at).total_seconds()
    deviation = abs(server_seconds - key_seconds)
    if server_seconds <= 0:
        return deviation > _DELAY_ABSOLUTE_SECONDS
    return deviation > _DELAY_ABSOLUTE_SECONDS and deviation / server_seconds > _DELAY_RELATIVE


def _activate(session: Session, token: Token, *, now: datetime) -> None:
    """First use of a handed-out key. Only the request that flips the status audits it."""
    result = session.execute(
        update(Token)
        .where(Token.id == token.id, Token.status.in_((TokenStatus.ASSIGNED, TokenStatus.SHIPPED)))
        .values(status=TokenStatus.ACTIVE),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        set_committed_value(token, "status", TokenStatus.ACTIVE)
        audit.record(
            session,
            AuditTag.TOKEN_ACTIVATE,
            actor=Actor.system("otp"),
            subject=Subject("token", token.serial),
            now=now,
        )
        _retire_replaced(session, token, now=now)


def _retire_replaced(session: Session, token: Token, *, now: datetime) -> None:
    """A replacement key's first use retires the key it replaces (§ 7.3, staff's choice)."""
    retired = session.scalars(
        update(Token)
        .where(Token.replaced_by_id == token.id, Token.status.in_(USABLE_STATUSES))
        .values(status=TokenStatus.RETIRED)
        .returning(Token.serial),
        execution_options={"synchronize_session": False},
    ).all()
    for serial in retired:
        audit.record(
            session,
            AuditTag.TOKEN_RETIRE,
            actor=Actor.system("otp"),
            subject=Subject("token", serial),
            data={"replaced_by": token.serial},
            now=now,
        )


def _warn_counter(
    session: Session, token: Token, decoded: yubico.OtpToken, *, now: datetime
) -> None:
    result = session.execute(
        update(Token)
        .where(Token.id == token.id, Token.counter_warned_at.is_(None))
        .values(counter_warned_at=now),
        execution_options={"synchronize_session": False},
    )
    set_committed_value(token, "counter_warned_at", now)
    if result.rowcount == 1:  # type: ignore[attr-defined]
        log.warning(
            "key %s: usage counter %d of %d, replace it soon",
            token.serial,
            decoded.usage_counter,
            yubico.MAX_USAGE_COUNTER,
        )
        audit.record(
            session,
            AuditTag.TOKEN_COUNTER_WARNING,
            actor=Actor.system("otp"),
            subject=Subject("token", token.serial),
            data={"usage_counter": decoded.usage_counter, "limit": yubico.MAX_USAGE_COUNTER},
            now=now,
        )
