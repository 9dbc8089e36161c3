"""Checkpoints of the audit chain: signed statements of its head, kept outside the database.

A seal needs the audit key; whoever holds the key (an administrator of the nodes) could
still rewrite history and seal it anew. A checkpoint shipped elsewhere fixes the head
hash of its day: the chain up to it cannot change without ``flexnet audit verify
--checkpoint`` failing, whoever holds the key. The nightly job writes one every night
(a log line for journald/syslog and a line in ``audit-checkpoints.jsonl`` in the instance
folder, which the operator ships elsewhere); ``flexnet audit checkpoint`` writes one at
any time.

Checkpoints are signed with an Ed25519 key derived from ``FLEXNET_AUDIT_KEY``; they name
its public half, so anyone can check a checkpoint's signature without a secret. Which
public keys are the installation's own, the chain says: the current key's, and the old
ones that each key rotation recorded.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet import auditformat
from flexnet.audit import AuditKey, AuditTag, ChainReport
from flexnet.errors import ValidationError
from flexnet.models import AuditEntry

FILE_NAME = "audit-checkpoints.jsonl"
log = logging.getLogger("flexnet.audit.checkpoint")


def make(session: Session, key: AuditKey, *, now: datetime) -> dict[str, Any]:
    """A signed checkpoint of the chain's newest entry."""
    head = session.execute(
        select(AuditEntry.id, AuditEntry.hash, AuditEntry.at)
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).first()
    if head is None:
        raise ValidationError("Das Revisionsprotokoll ist leer: kein Prüfpunkt")
    return auditformat.checkpoint(
        key, entry_id=head.id, entry_hash=head.hash, entry_at=head.at, written_at=now
    )


def publish(statement: dict[str, Any], path: Path) -> str:
    """Append the checkpoint to ``path`` (created 0600) and log it; returns its line."""
    line = json.dumps(statement, sort_keys=True, separators=(",", ":"))
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, f"{line}\n".encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    log.info("audit checkpoint %s", line)
    return line


def read(path: Path) -> list[dict[str, Any]]:
    """The checkpoints in a file: one JSON object a line (as written), or one object."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(f"Prüfpunktdatei {path} nicht lesbar ({error})") from None
    try:
        single = json.loads(text)
    except json.JSONDecodeError:
        single = None  # several lines, or broken: line by line below
    if isinstance(single, dict):
        return [single]
    statements = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            statement = json.loads(line)
        except json.JSONDecodeError:
            raise ValidationError(f"{path}, Zeile {number}: kein JSON") from None
        if not isinstance(statement, dict):
            raise ValidationError(f"{path}, Zeile {number}: kein Prüfpunkt")
        statements.append(statement)
    if not statements:
        raise ValidationError(f"{path} enthält keinen Prüfpunkt")
    return statements


@dataclass(frozen=True)
class Finding:
    entry: object  # the entry id the checkpoint names (as written)
    written_at: object
    problem: str | None = None  # None: the chain matches it
    note: str | None = None  # matches, with a remark (e.g. deleted by the retention)


def check(
    session: Session, statements: Sequence[dict[str, Any]], *, key: AuditKey, chain: ChainReport
) -> list[Finding]:
    """Each checkpoint against the chain (which ``chain`` reports as verified)."""
    own_keys = known_public_keys(session, key)
    first_kept = session.scalar(select(func.min(AuditEntry.id)))
    return [_check_one(session, s, own_keys, chain, first_kept) for s in statements]


def _check_one(
    session: Session,
    statement: dict[str, Any],
    own_keys: set[str],
    chain: ChainReport,
    first_kept: int | None,
) -> Finding:
    entry, written = statement.get("entry"), statement.get("written_at")
    if statement.get("format") != auditformat.CHECKPOINT_FORMAT:
        return Finding(entry, written, "Unbekanntes Format")
    if not auditformat.checkpoint_signature_valid(statement):
        return Finding(entry, written, "Signatur ungültig (Prüfpunkt verändert)")
    if statement["public_key"] not in own_keys:
        return Finding(entry, written, "Mit einem fremden Schlüssel signiert")
    if not isinstance(entry, int) or isinstance(entry, bool):
        return Finding(entry, written, "Unbekanntes Format")
    stored = session.scalar(select(AuditEntry.hash).where(AuditEntry.id == entry))
    if stored is not None:
        if stored != statement.get("hash"):
            return Finding(entry, written, "Eintrag weicht vom Prüfpunkt ab (Geschichte verändert)")
        return Finding(entry, written)
    if first_kept is not None and entry < first_kept and _before_cut(statement, chain):
        return Finding(entry, written, note="nach Aufbewahrungsfrist gelöscht")
    if chain.head_id is None or entry > chain.head_id:
        return Finding(entry, written, "Kette endet vor dem Prüfpunkt (Einträge fehlen)")
    return Finding(entry, written, "Eintrag des Prüfpunkts fehlt")


def _before_cut(statement: dict[str, Any], chain: ChainReport) -> bool:
    try:
        at = datetime.fromisoformat(str(statement.get("entry_at")))
    except ValueError:
        return False
    return chain.purged_before is not None and at < chain.purged_before


def known_public_keys(session: Session, key: AuditKey) -> set[str]:
    """The current checkpoint key and those that key rotations recorded in the chain
    (sealed: a forged rotation entry does not verify)."""
    keys = {key.public_key}
    rotations = session.scalars(
        select(AuditEntry.data).where(AuditEntry.tag == AuditTag.AUDIT_KEY_ROTATE.value)
    )
    for data in rotations:
        named = json.loads(data)
        keys.update(
            str(named[name]) for name in ("old_public_key", "new_public_key") if name in named
        )
    return keys
