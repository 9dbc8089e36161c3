"""Retention: each category of personal data ends when its period is up (the nightly job
runs this; the categories, purposes and periods are in docs/DATA_PROTECTION.md).

- connection data (``FLEXNET_CONNECTION_LOG_DAYS``, 31, as the KVS portal promises): the
  auth log, VPN sessions (finished ones after their Stop, those that never got a Stop
  after their last Interim-Update), staff sessions, and the source addresses kept with
  service requests and audit entries;
- service requests (``FLEXNET_REQUEST_RETENTION_DAYS``, 365) after they were closed;
- practices, users, their letters and staff accounts (``FLEXNET_RECORD_RETENTION_YEARS``,
  ten, § 304 SGB V) after the end of participation: anonymised (:mod:`.anonymise`);
- the audit trail (``FLEXNET_AUDIT_RETENTION_YEARS``) after its own period
  (``audit.purge``; the kept chain stays verifiable).

Each run is audited by counts, never by what was deleted. Set-based throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag
from flexnet.authn import ratelimit
from flexnet.lifecycle import anonymise
from flexnet.models import (
    AuditEntry,
    AuthEvent,
    RadiusChallenge,
    RequestStatus,
    ServiceRequest,
    StaffSession,
    VpnSession,
)

# What the job reports, in this order (German for the CLI's report).
LABELS = {
    "auth_events": "Anmeldeprotokoll",
    "vpn_sessions": "VPN-Sitzungen",
    "staff_sessions": "Sitzungen der Mitarbeiter",
    "request_addresses": "Absenderadressen von Anfragen",
    "audit_addresses": "Absenderadressen im Revisionsprotokoll",
    "service_requests": "erledigte Anfragen",
    "practices": "Betriebsstätten anonymisiert",
    "users": "Benutzer anonymisiert",
    "staff_accounts": "Mitarbeiterkonten anonymisiert",
    "letters": "Briefe anonymisiert",
    "rate_limit_counters": "Zähler der Sperrfristen",
    "radius_challenges": "abgelaufene RADIUS-Challenges",
    "audit_entries": "Revisionsprotokoll",
}
_CLOSED = (RequestStatus.FULFILLED, RequestStatus.REJECTED)


@dataclass(frozen=True)
class Periods:
    connection_days: int = 31
    request_days: int = 365
    record_years: int = 10
    audit_years: int = 10


def purge(session: Session, *, now: datetime, periods: Periods, dry_run: bool) -> dict[str, int]:
    """Everything whose period is up at ``now``: deleted, anonymised, or (``dry_run``)
    counted. Returns the counts by category (keys of ``LABELS``)."""
    system = Actor.system("lifecycle")
    connection = now - timedelta(days=periods.connection_days)
    counts = {
        name: _apply(session, model, condition, values, dry_run)
        for name, (model, condition, values) in _connection_data(connection).items()
    }
    counts["service_requests"] = _apply(
        session,
        ServiceRequest,
        and_(
            ServiceRequest.status.in_(_CLOSED),
            ServiceRequest.handled_at < now - timedelta(days=periods.request_days),
        ),
        None,
        dry_run,
    )
    due = anonymise.due(session, ended_before=now - relativedelta(years=periods.record_years))
    if dry_run:
        counts.update(due.counts(), letters=0)
    else:
        counts.update(anonymise.anonymise(session, due, now=now))
        counts["rate_limit_counters"] = ratelimit.purge(
            session, older_than=timedelta(days=1), now=now
        )
        # Expired challenges go with the next challenge; on a quiet night, here.
        expired = delete(RadiusChallenge).where(RadiusChallenge.expires_at <= now)
        counts["radius_challenges"] = int(session.execute(expired).rowcount or 0)  # type: ignore[attr-defined]
        audit.record(
            session,
            AuditTag.RETENTION_PURGE,
            actor=system,
            data={"periods": _period_data(periods), **counts},
            now=now,
        )
    counts["audit_entries"] = audit.purge(
        session,
        older_than=now - relativedelta(years=periods.audit_years),
        actor=system,
        now=now,
        dry_run=dry_run,
    )
    return counts


def _connection_data(cutoff: datetime) -> dict[str, tuple[Any, Any, dict[str, Any] | None]]:
    """Category → (model, condition, values): values None deletes the rows, otherwise
    the columns named are cleared."""
    return {
        "auth_events": (AuthEvent, AuthEvent.at < cutoff, None),
        # A session without a Stop (the concentrator restarted, the packet was lost) ends
        # by its last sign of life; a live one sends Interim-Updates and stays.
        "vpn_sessions": (
            VpnSession,
            or_(
                VpnSession.stopped_at < cutoff,
                and_(VpnSession.stopped_at.is_(None), VpnSession.updated_at < cutoff),
            ),
            None,
        ),
        # A staff session lives twelve hours at most: one not seen for the period is over.
        "staff_sessions": (StaffSession, StaffSession.last_seen_at < cutoff, None),
        "request_addresses": (
            ServiceRequest,
            and_(ServiceRequest.created_at < cutoff, ServiceRequest.source_ip.is_not(None)),
            {"source_ip": None},
        ),
        # The hash covers a commitment to the address, not the address: the chain holds.
        "audit_addresses": (
            AuditEntry,
            and_(AuditEntry.at < cutoff, AuditEntry.source_ip.is_not(None)),
            {"source_ip": None, "source_ip_salt": None},
        ),
    }


def _apply(
    session: Session, model: Any, condition: Any, values: dict[str, Any] | None, dry_run: bool
) -> int:
    if dry_run:
        return session.scalar(select(func.count()).select_from(model).where(condition)) or 0
    if values is None:
        statement: Any = delete(model).where(condition)
    else:
        statement = update(model).where(condition).values(**values)
    # SQLAlchemy brings loaded objects in line (deleted ones leave the session).
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def _period_data(periods: Periods) -> dict[str, int]:
    return {
        "connection_days": periods.connection_days,
        "request_days": periods.request_days,
        "record_years": periods.record_years,
        "audit_years": periods.audit_years,
    }
