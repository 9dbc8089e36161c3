"""Access requests (Art. 15 DSGVO): everything flexnet stores about a user or a practice.

A report holds every column of every row that belongs to the person or practice, never
a password, hash or key (``NEVER``), and nothing about anyone else beyond what is the
practice's own: a user's report has the practice's record (it is what the user works
under), the letters to the user and to the practice as a whole, the requests naming the
user, its logins, VPN sessions and the audit entries about it or by it; a practice's
report has all of that for all its users. Producing one is audited (never its content).
The PDF is :mod:`flexnet.ops.privacypdf`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.accounts import practices, users
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.db import Base
from flexnet.models import (
    AuditEntry,
    AuthEvent,
    Letter,
    PasswordHistory,
    Practice,
    ServiceRequest,
    User,
    VpnSession,
)
from flexnet.provisioning import mailruns

# Never in a report: secrets, and the hashes of passwords (not personal data the person
# could use, but what an attacker would); the audit chain's technical fields.
NEVER = {
    "users": {"password_hash", "next_password_hash"},
    "password_history": {"password_hash"},
    "letters": {"issued_password_hash"},
    "tokens": {"secret", "wsapi_last_nonce"},
    "audit_entries": {"source_ip_salt", "source_ip_digest", "seal", "prev_hash"},
}


@dataclass(frozen=True)
class Report:
    kind: str  # "user" or "practice"
    key: str  # username or BSNR
    generated_at: datetime
    sections: dict[str, Any]

    def as_json(self) -> bytes:
        document = {
            "auskunft_nach": "Art. 15 DSGVO",
            "ueber": {"art": self.kind, "kennung": self.key},
            "erstellt_am": self.generated_at.isoformat(),
            **self.sections,
        }
        return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def row(record: Base | None) -> dict[str, Any] | None:
    """Every column of a row except those ``NEVER`` names, as JSON values."""
    if record is None:
        return None
    table = record.__table__
    hidden = NEVER.get(str(getattr(table, "name", "")), set())
    values = {c.key: getattr(record, c.key) for c in table.columns if c.key not in hidden}
    if isinstance(record, AuditEntry):
        values["data"] = json.loads(record.data)
    if isinstance(record, Letter):
        values["reference"] = mailruns.reference(record)
        values["dispatched_on"] = record.run.dispatched_on if record.run else None
    if isinstance(record, VpnSession):
        values["nas"] = record.nas.name
    return {name: _value(value) for name, value in values.items()}


def _value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # only secrets are bytes, and those are hidden above
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):
        return value.value  # an enumeration
    return value


def _rows(records: Iterable[Base]) -> list[dict[str, Any]]:
    return [r for r in (row(record) for record in records) if r is not None]


def for_user(session: Session, username: str, *, actor: Actor, now: datetime) -> Report:
    user = users.get_user(session, username)
    practice = user.practice
    sections = {
        "benutzer": row(user),
        "kennwortwechsel": _password_dates(session, [user.id]),
        "ausnahme_von_der_sperre": row(user.lock_exception),
        "betriebsstaette": row(practice),
        "nutzungsbedingungen": _rows(practice.terms_acceptances),
        "uebernahmen": _rows([*practice.taken_over, *practice.handed_over]),
        "briefe": _rows(
            session.scalars(
                select(Letter)
                .where(
                    or_(
                        Letter.user_id == user.id,
                        and_(Letter.practice_id == practice.id, Letter.user_id.is_(None)),
                    )
                )
                .order_by(Letter.id)
            )
        ),
        "yubikeys": _rows(practice.tokens),
        "anfragen": _rows(_requests_naming(session, practice, user.username)),
        **_traces(session, [user]),
    }
    return _done(session, "user", user.username, sections, actor, now)


def for_practice(session: Session, bsnr: str, *, actor: Actor, now: datetime) -> Report:
    practice = practices.get_practice(session, bsnr)
    members = list(practice.users)
    requests = list(
        session.scalars(
            select(ServiceRequest)
            .where(
                or_(
                    ServiceRequest.practice_id == practice.id,
                    ServiceRequest.bsnr == practice.bsnr,
                )
            )
            .order_by(ServiceRequest.id)
        )
    )
    sections = {
        "betriebsstaette": row(practice),
        "ausnahme_von_der_sperre": row(practice.lock_exception),
        "nutzungsbedingungen": _rows(practice.terms_acceptances),
        "benutzer": [
            {
                **(row(user) or {}),
                "ausnahme_von_der_sperre": row(user.lock_exception),
                "kennwortwechsel": _password_dates(session, [user.id]),
            }
            for user in members
        ],
        "briefe": _rows(
            session.scalars(
                select(Letter).where(Letter.practice_id == practice.id).order_by(Letter.id)
            )
        ),
        "yubikeys": _rows(practice.tokens),
        "anfragen": _rows(requests),
        **_traces(
            session,
            members,
            practice=practice,
            serials=[token.serial for token in practice.tokens],
            request_ids=[str(request.id) for request in requests],
        ),
    }
    return _done(session, "practice", practice.bsnr, sections, actor, now)


def _done(
    session: Session,
    kind: str,
    key: str,
    sections: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> Report:
    audit.record(
        session,
        AuditTag.PRIVACY_EXPORT,
        actor=actor,
        subject=Subject(kind, key),
        data={
            name: len(v) if isinstance(v, list) else int(v is not None)
            for name, v in sections.items()
        },
        now=now,
    )
    return Report(kind, key, now, sections)


def _password_dates(session: Session, user_ids: list[int]) -> list[str]:
    """When earlier passwords were set (their hashes stay out)."""
    return [
        _value(at)
        for at in session.scalars(
            select(PasswordHistory.set_at)
            .where(PasswordHistory.user_id.in_(user_ids))
            .order_by(PasswordHistory.id)
        )
    ]


def _requests_naming(session: Session, practice: Practice, username: str) -> list[ServiceRequest]:
    """The practice's requests whose list of usernames names this user."""
    candidates = session.scalars(
        select(ServiceRequest)
        .where(
            or_(ServiceRequest.practice_id == practice.id, ServiceRequest.bsnr == practice.bsnr),
            ServiceRequest.usernames.contains(username, autoescape=True),
        )
        .order_by(ServiceRequest.id)
    )
    return [r for r in candidates if username in re.split(r"[\s,;]+", r.usernames.lower())]


def _traces(
    session: Session,
    members: list[User],
    *,
    practice: Practice | None = None,
    serials: list[str] | None = None,
    request_ids: list[str] | None = None,
) -> dict[str, Any]:
    """Logins, VPN sessions and audit entries of these users (and of the practice, its
    keys and requests)."""
    ids = [user.id for user in members]
    names = [user.username for user in members]
    logins = or_(AuthEvent.user_id.in_(ids), AuthEvent.username.in_(names))
    if practice is not None:
        logins = or_(logins, AuthEvent.bsnr == practice.bsnr)
    about = or_(
        and_(AuditEntry.subject_kind == "user", AuditEntry.subject_id.in_(names)),
        and_(AuditEntry.actor_kind == "user", AuditEntry.actor.in_(names)),
    )
    if practice is not None:
        about = or_(
            about,
            and_(AuditEntry.subject_kind == "practice", AuditEntry.subject_id == practice.bsnr),
            and_(AuditEntry.subject_kind == "token", AuditEntry.subject_id.in_(serials or [])),
            and_(
                AuditEntry.subject_kind == "request", AuditEntry.subject_id.in_(request_ids or [])
            ),
        )
    return {
        "anmeldeprotokoll": _rows(
            session.scalars(select(AuthEvent).where(logins).order_by(AuthEvent.id))
        ),
        "vpn_sitzungen": _rows(
            session.scalars(
                select(VpnSession)
                .where(or_(VpnSession.user_id.in_(ids), VpnSession.username.in_(names)))
                .order_by(VpnSession.id)
            )
        ),
        "revisionsprotokoll": _rows(
            session.scalars(select(AuditEntry).where(about).order_by(AuditEntry.id))
        ),
    }
