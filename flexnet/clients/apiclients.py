"""Clients of the HTTP API: other systems of the association, each with its own key.

Keys are random, shown once, and stored as SHA-256 (a 256-bit random key needs no slow
hash); a short public prefix finds the row without scanning.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.clients import switch
from flexnet.errors import ConflictError, NotFoundError
from flexnet.models import ApiClient, StaffRole
from flexnet.textrules import clean_line

_PREFIX = "fx"
_KIND = switch.Kind("API-Client", AuditTag.API_CLIENT_ENABLE, AuditTag.API_CLIENT_DISABLE)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> tuple[str, str]:
    """(prefix, key): the prefix finds the row, the whole key is checked by its hash."""
    prefix = secrets.token_hex(6)
    return prefix, f"{_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"


def add_client(
    session: Session,
    *,
    name: str,
    require_otp: bool,
    actor: Actor,
    now: datetime,
    role: StaffRole | None = None,
) -> tuple[ApiClient, str]:
    """Create a client; returns it and its key, which is shown exactly once. Without a
    role the client may only check logins (``/api/v1/auth``)."""
    name = clean_line(name, field="Name", max_length=100)
    if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise ConflictError(f"Ein API-Client namens {name!r} existiert bereits")
    prefix, key = _new_key()
    client = ApiClient(
        name=name,
        key_prefix=prefix,
        key_hash=_digest(key),
        require_otp=require_otp,
        active=True,
        created_at=now,
        role=role,
        created_by=actor.name,
        key_changed_at=now,
    )
    session.add(client)
    audit.record(
        session,
        AuditTag.API_CLIENT_CREATE,
        actor=actor,
        subject=Subject("api_client", name),
        data={"require_otp": require_otp, "role": role.value if role else None},
        now=now,
    )
    return client, key


def regenerate_key(session: Session, *, name: str, actor: Actor, now: datetime) -> str:
    """A new key for the client; the old one stops working at once (e.g. when the staff
    member who created it leaves, MD § 6(4)). Returns the key, shown exactly once. A
    disabled client stays disabled."""
    client = _get_client(session, name)
    client.key_prefix, key = _new_key()
    client.key_hash = _digest(key)
    client.key_changed_at = now
    audit.record(
        session,
        AuditTag.API_CLIENT_REGENERATE,
        actor=actor,
        subject=Subject("api_client", client.name),
        now=now,
    )
    return key


def set_active(
    session: Session, *, name: str, active: bool, actor: Actor, now: datetime
) -> ApiClient:
    """Disable a client (its key is refused at once, like an unknown one, e.g. while a
    system is retired or a leak is looked into) or enable it again with the same key."""
    client = _get_client(session, name)
    switch.set_active(
        session,
        client,
        active=active,
        kind=_KIND,
        subject=Subject("api_client", client.name),
        actor=actor,
        now=now,
    )
    return client


def _get_client(session: Session, name: str) -> ApiClient:
    # Locked: a concurrent regeneration or switch must not overwrite this one's change.
    query = select(ApiClient).where(ApiClient.name == " ".join(name.split())).with_for_update()
    client = session.scalar(query)
    if client is None:
        raise NotFoundError(f"Kein API-Client {name!r}")
    return client


def authenticate_client(session: Session, key: str) -> ApiClient | None:
    """The active client this key belongs to, or None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX:
        return None
    client = session.scalar(select(ApiClient).where(ApiClient.key_prefix == parts[1]))
    if client is None or not client.active:
        return None
    return client if hmac.compare_digest(client.key_hash, _digest(key)) else None
