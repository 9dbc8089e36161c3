"""Sign-in of staff: what the audit trail keeps of a name nobody has."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.auditformat import AuditKey
from flexnet.db import AUDIT_KEY_INFO
from flexnet.models import AuditEntry
from flexnet.staff import signin
from tests.conftest import AUDIT_KEY, NOW

# A password typed into the username field: it must not be recoverable from the trail.
TYPED = "sommer-regen-2026!"


def failed_subjects(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(AuditEntry.subject_id)
            .where(AuditEntry.tag == "staff:session:fail")
            .order_by(AuditEntry.id)
        )
    )


def sign_in_as_nobody(session: Session) -> signin.Opened | signin.Refusal:
    return signin.open_session(
        session, username=TYPED, password="x" * 16, source_ip="10.0.0.1", now=NOW
    )


def test_an_unknown_name_is_kept_as_a_keyed_pseudonym_that_no_dictionary_finds(
    session: Session,
) -> None:
    sign_in_as_nobody(session)
    sign_in_as_nobody(session)

    first, second = failed_subjects(session)

    plain_hash = hashlib.sha256(TYPED.encode()).hexdigest()[:16]
    assert first == second == f"unbekannt:{AUDIT_KEY.pseudonym(TYPED)}"
    assert plain_hash not in first and TYPED not in first


def test_another_installation_gives_the_same_name_another_pseudonym(session: Session) -> None:
    sign_in_as_nobody(session)
    session.info[AUDIT_KEY_INFO] = AuditKey(bytes(32))
    sign_in_as_nobody(session)

    first, second = failed_subjects(session)

    assert first != second
