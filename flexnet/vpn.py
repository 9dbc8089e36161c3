"""Live VPN sessions (from RADIUS accounting) and the queue of disconnects.

A lock of any cause marks the live sessions it affects in the same transaction; the
RADIUS server process sends the Disconnect-Requests (RFC 5176) after the commit and
records ACK, NAK or timeout. The queue lives in the database, so a lock made in the
web UI or the CLI reaches the NAS through whichever RADIUS process runs, and nothing
is lost when a process restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flexnet.models import Token, User, VpnSession


def live_sessions(session: Session, *, user_ids: Sequence[int]) -> list[VpnSession]:
    return list(
        session.scalars(
            select(VpnSession).where(
                VpnSession.user_id.in_(user_ids), VpnSession.stopped_at.is_(None)
            )
        )
    )


def request_disconnect(session: Session, *, user_ids: Sequence[int], now: datetime) -> int:
    """Queue a Disconnect-Request for every live session of these users."""
    if not user_ids:
        return 0
    result = session.execute(
        update(VpnSession)
        .where(
            VpnSession.user_id.in_(user_ids),
            VpnSession.stopped_at.is_(None),
            VpnSession.disconnect_requested_at.is_(None),
        )
        .values(disconnect_requested_at=now),
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def request_disconnect_for_token(session: Session, *, token: Token, now: datetime) -> int:
    """A locked key ends the sessions of every user of its practice."""
    if token.practice_id is None:
        return 0
    user_ids = list(session.scalars(select(User.id).where(User.practice_id == token.practice_id)))
    return request_disconnect(session, user_ids=user_ids, now=now)
