"""Key rotation: every secret sealed under the master key re-encrypted at once; every seal
of the audit chain renewed under a new audit key at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flexnet import audit, auditformat
from flexnet.audit import Actor, AuditKey, AuditTag
from flexnet.clients.nas import nas_context
from flexnet.errors import ValidationError
from flexnet.models import AuditEntry, NasClient, StaffAccount, StaffSession, Token, WsapiClient
from flexnet.otp.secrets import (
    SecretBox,
    staff_totp_context,
    token_context,
    wsapi_client_context,
)

# End reason of a staff session whose enrolment seed a master-key rotation discarded.
ENROLMENT_ENDED_BY_ROTATION = "master-key-rotated"


def rotate_master_key(
    session: Session, *, old: SecretBox, new: SecretBox, actor: Actor, now: datetime
) -> dict[str, int]:
    """Re-encrypt every secret under a new master key, in the caller's one transaction.

    Every column sealed under the master key must be handled here: a secret left behind
    does not open once the nodes run with the new key. NAS secrets above all: the RADIUS
    server cannot load its NAS list without them and drops every packet. Inactive NAS
    clients are re-encrypted too, so that one switched on again later still opens.

    An enrolment seed of a staff session (``staff_sessions.enrol_secret``) is not
    re-encrypted: such a session is ended instead. The seed is short-lived, was never
    confirmed, and its sealing context belongs to ``flexnet.staff.signin``; the staff member
    simply signs in again and enrols with a fresh seed. A failure to open any secret with
    ``old`` raises SecretError, and the caller's rollback leaves everything as it was.
    """
    tokens = 0
    for token in session.scalars(select(Token).where(Token.secret.is_not(None))):
        context = token_context(token.serial)
        token.secret = new.seal(old.open(token.secret or b"", context=context), context=context)
        tokens += 1
    clients = 0
    for client in session.scalars(select(WsapiClient)):
        context = wsapi_client_context(client.id)
        client.api_key = new.seal(old.open(client.api_key, context=context), context=context)
        clients += 1
    staff = 0
    for account in session.scalars(
        select(StaffAccount).where(StaffAccount.totp_secret.is_not(None))
    ):
        context = staff_totp_context(account.id)
        account.totp_secret = new.seal(
            old.open(account.totp_secret or b"", context=context), context=context
        )
        staff += 1
    nas_secrets = 0
    for nas_client in session.scalars(select(NasClient)):
        context = nas_context(nas_client.id)
        nas_client.secret = new.seal(old.open(nas_client.secret, context=context), context=context)
        nas_secrets += 1
    enrolments = _end_enrolments(session, now=now)
    counts = {
        "tokens": tokens,
        "wsapi_clients": clients,
        "staff_totp": staff,
        "nas_clients": nas_secrets,
        "staff_enrolments_ended": enrolments,
    }
    audit.record(session, AuditTag.MASTER_KEY_ROTATE, actor=actor, data=counts, now=now)
    return counts


def _end_enrolments(session: Session, *, now: datetime) -> int:
    """End the live staff sessions that hold an enrolment seed under the old key, and drop
    any such seed an ended session may still hold: afterwards nothing is left sealed under
    the old key. Returns how many live sessions ended (a handful at most: one per staff
    member enrolling right now)."""
    ended = 0
    for record in session.scalars(
        select(StaffSession).where(StaffSession.enrol_secret.is_not(None))
    ):
        record.enrol_secret = None
        if record.ended_at is None:
            record.ended_at, record.end_reason = now, ENROLMENT_ENDED_BY_ROTATION
            ended += 1
    return ended


def rotate_audit_key(
    session: Session,
    *,
    old: AuditKey,
    new: AuditKey,
    actor: Actor,
    now: datetime,
    retention_years: int,
) -> int:
    """Renew every seal of the audit chain under a new ``FLEXNET_AUDIT_KEY``, in the
    caller's one transaction; returns how many entries were sealed anew.

    The chain must verify with ``old`` first (else ValidationError, nothing changed): a
    rotation must not seal a rewritten history. Hashes stay as they are, so checkpoints
    and heads recorded outside the database keep matching; the rotation entry (sealed
    with ``new``) names both checkpoint keys, so checkpoints signed before it still count
    as the installation's own.
    """
    if new.public_key == old.public_key:
        raise ValidationError("Der neue Schlüssel ist der bisherige; nichts geändert")
    report = audit.verify_chain(session, retention_years=retention_years, key=old)
    if not report.ok:
        raise ValidationError(
            f"Das Revisionsprotokoll ist mit dem bisherigen Schlüssel nicht intakt (Eintrag "
            f"{report.first_broken_id}: {report.problem}); nichts geändert"
        )
    columns = [AuditEntry.__table__.c[name] for name in ("id", *audit.STORED)]
    resealed = last = 0
    while True:
        batch = session.execute(
            select(*columns).where(AuditEntry.id > last).order_by(AuditEntry.id).limit(1000)
        ).mappings()
        seals = [{"id": row["id"], "seal": auditformat.seal(new, dict(row))} for row in batch]
        if not seals:
            break
        # By primary key, many rows in one executemany.
        session.execute(update(AuditEntry), seals)
        resealed += len(seals)
        last = seals[-1]["id"]
    audit.record(
        session,
        AuditTag.AUDIT_KEY_ROTATE,
        actor=actor,
        data={
            "entries": resealed,
            "old_public_key": old.public_key,
            "new_public_key": new.public_key,
        },
        now=now,
        key=new,
    )
    return resealed
