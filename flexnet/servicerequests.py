"""Requests from practices (new password, lost key, unlock, ...), filed on a public form.

Filing stores the request and nothing else: nothing is locked, changed or revealed, and
the answer is the same whether the BSNR or the users exist. A new password always
travels as a letter to the practice's registered address (issue 6), never on screen.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit, ratelimit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import FlexnetError, ValidationError
from flexnet.identifiers import require_text, validate_bsnr
from flexnet.models import Practice, RequestKind, RequestStatus, ServiceRequest

KIND_LABELS = {
    RequestKind.NEW_PASSWORD: "Neues Kennwort",
    RequestKind.KEY_LOST: "Yubikey verloren",
    RequestKind.KEY_DEFECTIVE: "Yubikey defekt",
    RequestKind.RESYNC: "Yubikey resynchronisieren",
    RequestKind.UNLOCK: "Zugang entsperren",
    RequestKind.NEW_USER: "Neuer Benutzer",
    RequestKind.END_OF_ACCESS: "Zugang beenden",
}
PER_SOURCE_PER_HOUR = 5
PER_BSNR_PER_HOUR = 3
_PHONE = re.compile(r"[0-9 +()/-]{6,40}")


class TooManyRequests(FlexnetError):
    """The rate limit for a source address or a BSNR is reached."""


def file_request(
    session: Session,
    *,
    bsnr: str,
    usernames: str,
    kind: RequestKind,
    contact_person: str,
    phone: str,
    message: str,
    source_ip: str | None,
    now: datetime,
) -> ServiceRequest:
    """Validate and store a request; raises ValidationError or TooManyRequests."""
    bsnr = validate_bsnr(bsnr)
    contact_person = require_text(contact_person, "Ansprechpartner", max_length=200)
    phone = phone.strip()
    if not _PHONE.fullmatch(phone):
        raise ValidationError("Telefonnummer: bitte nur Ziffern, Leerzeichen und + ( ) / -")
    usernames = " ".join(usernames.split())[:500]
    if any(not ch.isprintable() for ch in usernames):
        raise ValidationError("Benutzer enthält Steuerzeichen")
    message = message.strip()
    if len(message) > 2000 or any(not (ch.isprintable() or ch in "\r\n") for ch in message):
        raise ValidationError("Nachricht: höchstens 2000 Zeichen, keine Steuerzeichen")
    for key, limit in (
        (f"request-src:{source_ip}", PER_SOURCE_PER_HOUR),
        (f"request-bsnr:{bsnr}", PER_BSNR_PER_HOUR),
    ):
        if source_ip is None and key.startswith("request-src"):
            continue
        if not ratelimit.hit(session, key, limit=limit, window_seconds=3600, now=now):
            raise TooManyRequests(
                "Zu viele Anfragen in kurzer Zeit. Bitte versuchen Sie es später noch einmal "
                "oder rufen Sie den IT-Service an: 0391 627 7000."
            )
    practice_id = session.scalar(select(Practice.id).where(Practice.bsnr == bsnr))
    request = ServiceRequest(
        created_at=now,
        bsnr=bsnr,
        practice_id=practice_id,
        usernames=usernames,
        kind=kind,
        contact_person=contact_person,
        phone=phone,
        message=message,
        source_ip=source_ip,
        status=RequestStatus.OPEN,
    )
    session.add(request)
    session.flush()  # the id goes into the audit entry
    audit.record(
        session,
        AuditTag.REQUEST_FILE,
        actor=Actor.user(f"formular:{source_ip or '?'}"),
        subject=Subject("request", str(request.id)),
        data={"bsnr": bsnr, "kind": kind.value, "known_practice": practice_id is not None},
        source_ip=source_ip,
        now=now,
    )
    return request
