"""Yubico validation protocol 2.0 (``/wsapi/2.0/verify``), without HTTP.

The association's other portals (KVSAonline, BD-Online, § 5.4) check key OTPs here.
Requests may be signed (``h``), answers always are: HMAC-SHA1 over the alphabetically
sorted ``key=value`` pairs with the client's base64-decoded API key.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.clients import switch
from flexnet.config import OtpSettings
from flexnet.errors import ConflictError, NotFoundError
from flexnet.models import WsapiClient
from flexnet.otp.secrets import SecretBox, SecretError, wsapi_client_context
from flexnet.otp.verify import OtpReason, RemoteCheck, verify_yubico_otp
from flexnet.textrules import clean_line

log = logging.getLogger(__name__)

_NONCE = re.compile(r"[A-Za-z0-9]{16,40}")
_CLIENT_ID = re.compile(r"[0-9]{1,9}")
# What a key can type (modhex, upper case, Dvorak); only such values are echoed back,
# so no request can smuggle a line such as "status=OK" into a signed answer.
_TYPED_OTP = re.compile(r"[A-Za-z.]{32,48}")
API_KEY_BYTES = 20
RATE_WINDOW_SECONDS = 60
_KIND = switch.Kind(
    "Prüfdienst-Client", AuditTag.WSAPI_CLIENT_ENABLE, AuditTag.WSAPI_CLIENT_DISABLE
)


class Status(enum.StrEnum):
    OK = "OK"
    BAD_OTP = "BAD_OTP"
    REPLAYED_OTP = "REPLAYED_OTP"
    REPLAYED_REQUEST = "REPLAYED_REQUEST"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    MISSING_PARAMETER = "MISSING_PARAMETER"
    NO_SUCH_CLIENT = "NO_SUCH_CLIENT"
    OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED"
    BACKEND_ERROR = "BACKEND_ERROR"


_STATUS_OF = {
    OtpReason.OK: Status.OK,
    OtpReason.REPLAYED: Status.REPLAYED_OTP,
    OtpReason.REPLAYED_REQUEST: Status.REPLAYED_REQUEST,
    OtpReason.BACKEND_ERROR: Status.BACKEND_ERROR,
}


@dataclass(frozen=True)
class Answer:
    fields: dict[str, str]  # already signed: includes "h" when a key was known
    rate_limited: bool = False

    @property
    def status(self) -> Status:
        return Status(self.fields["status"])

    def body(self) -> str:
        return "".join(f"{key}={value}\r\n" for key, value in self.fields.items())


def signature(fields: Mapping[str, str], key: bytes) -> str:
    message = "&".join(f"{k}={v}" for k, v in sorted(fields.items()) if k != "h")
    return base64.b64encode(hmac.new(key, message.encode(), hashlib.sha1).digest()).decode()


def timestamp_field(now: datetime) -> str:
    """The protocol's ``t``: UTC, e.g. ``2026-11-23T09:30:00Z0123`` (milliseconds after Z0)."""
    utc = now.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}Z0{utc.microsecond // 1000:03d}"


def malformed(now: datetime) -> Answer:
    """What to answer a request the web layer refused before reading it (a NUL in it):
    like any malformed parameter, unsigned and without echoing anything."""
    return _answer(Status.MISSING_PARAMETER, now=now, key=None)


def unsigned_error(now: datetime) -> Answer:
    """What to answer when the backend itself fails (no key to sign with)."""
    return _answer(Status.BACKEND_ERROR, now=now, key=None)


def _answer(
    status: Status,
    *,
    now: datetime,
    key: bytes | None,
    echo: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
    rate_limited: bool = False,
) -> Answer:
    fields: dict[str, str] = {}
    if echo is not None:
        fields.update(_safe_echo(echo))
    fields["t"] = timestamp_field(now)
    fields["status"] = status.value
    fields.update(extra or {})
    signed = {"h": signature(fields, key)} if key is not None else {}
    return Answer({**signed, **fields}, rate_limited)


def _safe_echo(params: Mapping[str, str]) -> dict[str, str]:
    echo = {}
    if _TYPED_OTP.fullmatch(params.get("otp", "")):
        echo["otp"] = params["otp"]
    if _NONCE.fullmatch(params.get("nonce", "")):
        echo["nonce"] = params["nonce"]
    return echo


def _client_key(client: WsapiClient, box: SecretBox) -> bytes | None:
    try:
        return box.open(client.api_key, context=wsapi_client_context(client.id))
    except SecretError:
        log.error("API key of validation client %s cannot be opened", client.id)
        return None


@dataclass(frozen=True)
class Caller:
    """A validation client whose request passed the checks, with its opened key."""

    client_id: int
    key: bytes = field(repr=False)


def check_request(
    session: Session, params: Mapping[str, str], *, box: SecretBox, now: datetime
) -> Caller | Answer:
    """First phase: parameters, client and signature; an Answer when the request fails."""
    client_id = params.get("id", "")
    if not _CLIENT_ID.fullmatch(client_id):
        return _answer(Status.MISSING_PARAMETER, now=now, key=None, echo=params)
    client = session.get(WsapiClient, int(client_id))
    if client is None or not client.active:
        return _answer(Status.NO_SUCH_CLIENT, now=now, key=None, echo=params)
    key = _client_key(client, box)
    if key is None:
        return _answer(Status.BACKEND_ERROR, now=now, key=None, echo=params)
    if not params.get("otp") or not _NONCE.fullmatch(params.get("nonce", "")):
        return _answer(Status.MISSING_PARAMETER, now=now, key=key, echo=params)
    given = params.get("h", "").replace(" ", "+")  # a '+' may arrive decoded as a space
    if (given or client.require_signature) and not hmac.compare_digest(
        given.encode(), signature(params, key).encode()
    ):
        return _answer(Status.BAD_SIGNATURE, now=now, key=key, echo=params)
    return Caller(client.id, key)


def rate_limit_key(caller: Caller) -> str:
    return f"wsapi:{caller.client_id}"


def rate_limited(caller: Caller, params: Mapping[str, str], *, now: datetime) -> Answer:
    return _answer(Status.BACKEND_ERROR, now=now, key=caller.key, echo=params, rate_limited=True)


def verify_otp(
    session: Session,
    caller: Caller,
    params: Mapping[str, str],
    *,
    box: SecretBox,
    settings: OtpSettings,
    now: datetime,
    remote: RemoteCheck | None = None,
) -> Answer:
    """Last phase: check and consume the OTP; the caller commits before answering."""
    result = verify_yubico_otp(
        session,
        params["otp"],
        box=box,
        settings=settings,
        now=now,
        nonce=params["nonce"],
        remote=remote,
        practice_keys_only=True,
    )
    status = _STATUS_OF.get(result.reason, Status.BAD_OTP)
    extra: dict[str, str] = {}
    if status is Status.OK:
        extra["sl"] = "100"  # one shared database: always fully in sync
        if params.get("timestamp") == "1" and result.decoded is not None:
            extra["timestamp"] = str(result.decoded.timestamp)
            extra["sessioncounter"] = str(result.decoded.usage_counter)
            extra["sessionuse"] = str(result.decoded.session_counter)
    log.info("wsapi client %s: %s (%s)", caller.client_id, status.value, result.reason.value)
    return _answer(status, now=now, key=caller.key, echo=params, extra=extra)


def add_client(
    session: Session,
    *,
    name: str,
    box: SecretBox,
    actor: Actor,
    now: datetime,
    require_signature: bool = True,
) -> tuple[WsapiClient, str]:
    """Create a validation client; returns it and its API key (base64), shown once."""
    name = clean_line(name, field="Name", max_length=100)
    if session.scalar(select(WsapiClient.id).where(WsapiClient.name == name)) is not None:
        raise ConflictError(f"Ein Prüfdienst-Client namens {name!r} existiert bereits")
    client = WsapiClient(
        name=name, api_key=b"", require_signature=require_signature, active=True, created_at=now
    )
    session.add(client)
    # The ciphertext is bound to the row id, which exists only after the flush.
    session.flush()
    api_key = _new_key(client, box)
    audit.record(
        session,
        AuditTag.WSAPI_CLIENT_CREATE,
        actor=actor,
        subject=Subject("wsapi_client", str(client.id)),
        data={"name": name, "require_signature": require_signature},
        now=now,
    )
    return client, api_key


def _new_key(client: WsapiClient, box: SecretBox) -> str:
    """A fresh random key sealed into ``client``; returns it (base64) to be shown once."""
    raw_key = secrets.token_bytes(API_KEY_BYTES)
    client.api_key = box.seal(raw_key, context=wsapi_client_context(client.id))
    return base64.b64encode(raw_key).decode()


def get_client(session: Session, name_or_id: str) -> WsapiClient:
    """The client by its name or by the id its requests carry (what operators have at
    hand); a value that is one client's id and another's name is refused as ambiguous."""
    wanted = " ".join(name_or_id.split())
    by_name = session.scalar(select(WsapiClient).where(WsapiClient.name == wanted))
    by_id = session.get(WsapiClient, int(wanted)) if _CLIENT_ID.fullmatch(wanted) else None
    if by_name is not None and by_id is not None and by_name is not by_id:
        raise ConflictError(
            f"{wanted!r} ist mehrdeutig: Id von {by_id.name!r} und Name des Clients mit "
            f"Id {by_name.id}; bitte den Client über die Id {by_name.id} oder den Namen "
            f"{by_id.name!r} angeben"
        )
    client = by_name or by_id
    if client is None:
        raise NotFoundError(f"Kein Prüfdienst-Client {name_or_id!r}")
    return client


def regenerate_key(
    session: Session, *, name: str, box: SecretBox, actor: Actor, now: datetime
) -> tuple[WsapiClient, str]:
    """A new API key for the client (by name or id); the old one stops working at once,
    e.g. when a staff member who knew it leaves (MD § 6(4)). Returns the client and the
    key (base64), shown exactly once; a disabled client stays disabled."""
    client = get_client(session, name)
    api_key = _new_key(client, box)
    audit.record(
        session,
        AuditTag.WSAPI_CLIENT_REGENERATE,
        actor=actor,
        subject=Subject("wsapi_client", str(client.id)),
        data={"name": client.name},
        now=now,
    )
    return client, api_key


def set_active(
    session: Session, *, name: str, active: bool, actor: Actor, now: datetime
) -> WsapiClient:
    """Disable a client (by name or id; its requests get NO_SUCH_CLIENT at once) or
    enable it again with the same key."""
    client = get_client(session, name)
    switch.set_active(
        session,
        client,
        active=active,
        kind=_KIND,
        subject=Subject("wsapi_client", str(client.id)),
        data={"name": client.name},
        actor=actor,
        now=now,
    )
    return client
