"""Reading the auth log (``auth_events``) for staff: filtered lists and hourly counts.

The pipeline writes one line per decision (``pipeline._record``); the lifecycle job deletes
lines older than ``FLEXNET_CONNECTION_LOG_DAYS``. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, cast, func, select
from sqlalchemy.orm import Session

from flexnet.models import AuthEvent


@dataclass(frozen=True)
class AuthFilter:
    username: str | None = None
    bsnr: str | None = None
    channel: str | None = None  # radius, api, self_service
    outcome: str | None = None  # accept, reject, challenge
    client: str | None = None  # NAS or API client name
    concentrator: str | None = None  # behind a proxy: part of the concentrator's name
    source: str | None = None  # the user's address (prefix)
    since: datetime | None = None
    until: datetime | None = None


def events(chosen: AuthFilter) -> Select[AuthEvent]:
    """The log lines matching ``chosen`` (the caller orders and pages)."""
    query = select(AuthEvent)
    if chosen.username:
        query = query.where(AuthEvent.username == chosen.username.strip().lower())
    if chosen.bsnr:
        query = query.where(AuthEvent.bsnr == chosen.bsnr)
    if chosen.channel:
        query = query.where(AuthEvent.channel == chosen.channel)
    if chosen.outcome:
        query = query.where(AuthEvent.outcome == chosen.outcome)
    if chosen.client:
        query = query.where(AuthEvent.client == chosen.client)
    if chosen.concentrator:
        query = query.where(AuthEvent.concentrator.contains(chosen.concentrator, autoescape=True))
    if chosen.source:
        query = query.where(AuthEvent.source_ip.startswith(chosen.source, autoescape=True))
    if chosen.since:
        query = query.where(AuthEvent.at >= chosen.since)
    if chosen.until:
        query = query.where(AuthEvent.at < chosen.until)
    return query


def _hour(session: Session) -> ColumnElement[Any]:
    """Hours since the epoch of a line's time, in the database (one GROUP BY)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", AuthEvent.at) / 3600), Integer)
    return cast(func.strftime("%s", AuthEvent.at), Integer) / 3600


@dataclass(frozen=True)
class Hour:
    start: datetime  # UTC
    accepted: int
    rejected: int


def per_hour(session: Session, *, now: datetime, hours: int = 7 * 24) -> list[Hour]:
    """Accepted and refused logins per hour for the last ``hours`` (oldest first, every
    hour present, the current one last)."""
    first = int(now.timestamp()) // 3600 - hours + 1
    since = datetime.fromtimestamp(first * 3600, UTC)
    hour = _hour(session).label("hour")
    counted = session.execute(
        select(hour, AuthEvent.outcome, func.count())
        .where(AuthEvent.at >= since)
        .group_by(hour, AuthEvent.outcome)
    ).all()
    accepted: dict[int, int] = {}
    rejected: dict[int, int] = {}
    for number, outcome, count in counted:
        if outcome in ("accept", "reject"):
            target = accepted if outcome == "accept" else rejected
            target[int(number)] = target.get(int(number), 0) + count
    return [
        Hour(since + timedelta(hours=i), accepted.get(first + i, 0), rejected.get(first + i, 0))
        for i in range(hours)
    ]
