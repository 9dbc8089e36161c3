"""Access profiles: the reply attributes a NAS gets for a group of users (staff-editable)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pyrad.dictionary import Dictionary
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ValidationError
from flexnet.models import AccessProfile
from flexnet.textrules import clean_line

# Attributes the server sets itself or that carry secrets: never from a profile.
_RESERVED = frozenset(
    {
        "User-Password",
        "CHAP-Password",
        "State",
        "Proxy-State",
        "Message-Authenticator",
        "Reply-Message",
        "Vendor-Specific",
    }
)


def list_profiles(session: Session) -> list[AccessProfile]:
    return list(session.scalars(select(AccessProfile).order_by(AccessProfile.name)))


def parse_attributes(pairs: Sequence[str], dictionary: Dictionary) -> list[list[str]]:
    """``Name=value`` pairs checked against the RADIUS dictionary."""
    parsed = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ValidationError(f"{pair!r}: erwartet Attribut=Wert")
        if name not in dictionary.attributes or name in _RESERVED:
            raise ValidationError(f"{name!r} ist kein erlaubtes Antwort-Attribut")
        value = clean_line(value, field=f"Wert von {name}", max_length=253)
        kind = dictionary.attributes[name].type
        if kind == "integer" and not (value.isascii() and value.isdigit()):
            raise ValidationError(f"{name} erwartet eine Zahl, nicht {value!r}")
        if len(value.encode()) > 253:
            raise ValidationError(f"Der Wert von {name} ist länger als 253 Bytes")
        parsed.append([name, value])
    return parsed


def set_profile(
    session: Session,
    *,
    name: str,
    attributes: list[list[str]],
    description: str | None,
    actor: Actor,
    now: datetime,
) -> AccessProfile:
    """Create or replace a profile's reply attributes."""
    name = clean_line(name, field="Profilname", max_length=64)
    profile = session.get(AccessProfile, name)
    if profile is None:
        profile = AccessProfile(name=name, description="", reply_attributes=[])
        session.add(profile)
    before = profile.reply_attributes
    profile.reply_attributes = attributes
    if description is not None:
        profile.description = clean_line(description, field="Beschreibung", max_length=200)
    audit.record(
        session,
        AuditTag.PROFILE_SET,
        actor=actor,
        subject=Subject("profile", name),
        data={"before": before, "after": attributes},
        now=now,
    )
    return profile
