"""Requests from practices (new password, lost key, unlock, ...), filed on a public form.

Filing stores the request and nothing else: nothing is locked, changed or revealed, and
the answer is the same whether the BSNR or the users exist. A new password always
travels as a letter to the practice's registered address (issue 6), never on screen.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import users
from flexnet.accounts.identifiers import validate_bsnr, validate_phone
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.authn import ratelimit
from flexnet.authn.ratelimit import Admission
from flexnet.errors import ConflictError, FlexnetError, NotFoundError, ValidationError
from flexnet.lifecycle.rules import BERLIN, DEFAULT_LOCK_AFTER_QUARTERS
from flexnet.models import Practice, RequestKind, RequestStatus, ServiceRequest
from flexnet.provisioning import issuance, mailruns
from flexnet.textrules import clean_line, clean_text, optional_line

KIND_LABELS = {
    RequestKind.NEW_PASSWORD: "Neues Kennwort",
    RequestKind.KEY_LOST: "Yubikey verloren",
    RequestKind.KEY_DEFECTIVE: "Yubikey defekt",
    RequestKind.RESYNC: "Yubikey resynchronisieren",
    RequestKind.UNLOCK: "Zugang entsperren",
    RequestKind.NEW_USER: "Neuer Benutzer",
    RequestKind.END_OF_ACCESS: "Zugang beenden",
    RequestKind.SELF_LOCK: "Selbstsperre (bereits gesperrt)",
}
# What a practice may ask for on the public form; a self-lock files its own report.
FORM_KINDS = tuple(kind for kind in KIND_LABELS if kind is not RequestKind.SELF_LOCK)
# Both per address: a limit per BSNR alone would let anyone who knows a practice's BSNR
# silence its form. Strangers with many addresses are bounded by them; staff see each
# request filed and verify it by calling the practice back.
PER_SOURCE_PER_HOUR = 5
PER_BSNR_PER_SOURCE_PER_HOUR = 3
MESSAGE_MAX_LINES = 40


class TooManyRequests(FlexnetError):
    """The rate limit for a source address or a BSNR is reached."""

    status = 429
    title = "Zu viele Anfragen"


def check_phone(phone: str) -> str:
    """A call-back number as typed: the same rule as a practice's stored number."""
    return validate_phone(phone)


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
    contact_person = clean_line(contact_person, field="Ansprechpartner", max_length=200)
    if kind not in FORM_KINDS:
        raise ValidationError("Anliegen: bitte eines aus der Liste wählen")
    phone = check_phone(phone)
    usernames = optional_line(usernames, field="Benutzer", max_length=500) or ""
    message = clean_text(
        message, field="Nachricht", max_length=2000, max_lines=MESSAGE_MAX_LINES, required=False
    )
    source = ratelimit.source_key(source_ip)
    limits: dict[str, int | None] = {
        f"request-src:{source}": PER_SOURCE_PER_HOUR,
        f"request-bsnr:{bsnr}:{source}": PER_BSNR_PER_SOURCE_PER_HOUR,
    }
    if ratelimit.admit(session, limits, window_seconds=3600, now=now) is not Admission.ADMITTED:
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
        # The address goes beside the hashed content (deleted after the connection-data
        # period), never into the actor, which the chain keeps for years.
        actor=Actor.user("formular"),
        subject=Subject("request", str(request.id)),
        data={"bsnr": bsnr, "kind": kind.value, "known_practice": practice_id is not None},
        source_ip=source_ip,
        now=now,
    )
    return request


# --- staff's handling -------------------------------------------------------------------

_OPEN = (RequestStatus.OPEN, RequestStatus.VERIFIED)


def get_request(session: Session, request_id: int) -> ServiceRequest:
    request = session.get(ServiceRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFoundError(f"Keine Anfrage {request_id}")
    return request


def _handle(
    session: Session,
    request: ServiceRequest,
    status: RequestStatus,
    tag: AuditTag,
    note: str,
    actor: Actor,
    now: datetime,
    data: dict[str, object] | None = None,
) -> ServiceRequest:
    note = clean_line(note, field="Vermerk", max_length=1000)
    if request.status not in _OPEN:
        raise ConflictError(f"Die Anfrage {request.id} ist bereits erledigt")
    request.status = status
    request.handled_by, request.handled_at = actor.name, now
    stamp = f"{now.astimezone(BERLIN):%d.%m.%Y %H:%M} {actor.name}: {note}"
    request.staff_notes = f"{request.staff_notes}\n{stamp}".strip()
    audit.record(
        session,
        tag,
        actor=actor,
        subject=Subject("request", str(request.id)),
        data={"bsnr": request.bsnr, "kind": request.kind.value, **(data or {})},
        now=now,
    )
    return request


def verify(
    session: Session, *, request_id: int, note: str, actor: Actor, now: datetime
) -> ServiceRequest:
    """Staff confirmed the request, e.g. by calling the practice back on its known number."""
    request = get_request(session, request_id)
    if request.status is RequestStatus.VERIFIED:
        raise ConflictError(f"Die Anfrage {request.id} ist bereits bestätigt")
    return _handle(
        session, request, RequestStatus.VERIFIED, AuditTag.REQUEST_VERIFY, note, actor, now
    )


def fulfil(
    session: Session,
    *,
    request_id: int,
    note: str,
    actor: Actor,
    now: datetime,
    username: str | None = None,
    at_once: bool = True,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> ServiceRequest:
    """Done, after verification. A new password is issued here (a letter to the practice's
    registered address, § 7.3); other kinds are carried out on their own pages first."""
    request = get_request(session, request_id)
    if request.status is not RequestStatus.VERIFIED:
        raise ConflictError("Eine Anfrage wird erst nach der Bestätigung (Rückruf) erledigt")
    data: dict[str, object] = {}
    if request.kind is RequestKind.NEW_PASSWORD:
        if not username:
            raise ValidationError("Bitte den Benutzer wählen, der ein neues Kennwort erhält")
        user = users.get_user(session, username)
        if user.practice_id != request.practice_id:
            raise ValidationError(f"{user.username} gehört nicht zur BSNR {request.bsnr}")
        letter = issuance.reissue_password(
            session,
            username=user.username,
            at_once=at_once,
            actor=actor,
            now=now,
            quarters=quarters,
        )
        data = {"user": user.username, "letter": mailruns.reference(letter)}
    return _handle(
        session, request, RequestStatus.FULFILLED, AuditTag.REQUEST_FULFIL, note, actor, now, data
    )


def reject(
    session: Session, *, request_id: int, note: str, actor: Actor, now: datetime
) -> ServiceRequest:
    request = get_request(session, request_id)
    return _handle(
        session, request, RequestStatus.REJECTED, AuditTag.REQUEST_REJECT, note, actor, now
    )
