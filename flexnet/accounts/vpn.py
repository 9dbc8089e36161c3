"""Live VPN sessions (from RADIUS accounting) and the queue of disconnects.

A lock of any cause marks the live sessions it affects in the same transaction; the
RADIUS server process sends the Disconnect-Requests (RFC 5176) after the commit and
records ACK, NAK or timeout. The queue lives in the database, so a lock made in the
web UI or the CLI reaches the NAS through whichever RADIUS process runs, and nothing
is lost when a process restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, object_session

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.db import among
from flexnet.lifecycle.rules import DEFAULT_LOCK_AFTER_QUARTERS
from flexnet.lifecycle.status import user_status
from flexnet.models import Token, TokenStatus, User, VpnSession

log = logging.getLogger(__name__)


def recent_sessions(user: User, limit: int = 5) -> list[VpnSession]:
    """The user's latest sessions, live ones first (for staff views)."""
    session = object_session(user)
    if session is None:
        return []
    return list(
        session.scalars(
            select(VpnSession)
            .where(VpnSession.user_id == user.id)
            .order_by(VpnSession.stopped_at.is_not(None), VpnSession.started_at.desc())
            .limit(limit)
        )
    )


def live_sessions(session: Session, *, user_ids: Sequence[int]) -> list[VpnSession]:
    return list(
        session.scalars(
            select(VpnSession).where(
                VpnSession.user_id.in_(user_ids), VpnSession.stopped_at.is_(None)
            )
        )
    )


def flagged_live_count(session: Session) -> int:
    """Live sessions of accounts that may not be on the VPN (for the dashboard)."""
    return int(
        session.scalar(
            select(func.count()).where(
                VpnSession.flagged.is_not(None), VpnSession.stopped_at.is_(None)
            )
        )
        or 0
    )


def request_disconnect(session: Session, *, user_ids: Sequence[int], now: datetime) -> int:
    """Queue a Disconnect-Request for every live session of these users."""
    if not user_ids:
        return 0
    result = session.execute(
        update(VpnSession)
        .where(
            among(session, VpnSession.user_id, user_ids),
            VpnSession.stopped_at.is_(None),
            VpnSession.disconnect_requested_at.is_(None),
        )
        .values(disconnect_requested_at=now),
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def request_session_disconnect(
    session: Session, *, session_id: int, actor: Actor, now: datetime
) -> bool:
    """Staff end one live session (admin UI): queued for the RADIUS server to send."""
    vpn_session = session.get(VpnSession, session_id)
    if vpn_session is None:
        return False
    queued = session.execute(
        update(VpnSession)
        .where(
            VpnSession.id == session_id,
            VpnSession.stopped_at.is_(None),
            VpnSession.disconnect_requested_at.is_(None),
        )
        .values(disconnect_requested_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    if queued:
        audit.record(
            session,
            AuditTag.VPN_DISCONNECT_REQUEST,
            actor=actor,
            subject=Subject("user", vpn_session.username),
            data={"session": vpn_session.acct_session_id},
            now=now,
        )
    return bool(queued)


def request_disconnect_for_token(session: Session, *, token: Token, now: datetime) -> int:
    """A locked key ends the sessions of every user of its practice."""
    if token.practice_id is None:
        return 0
    user_ids = list(session.scalars(select(User.id).where(User.practice_id == token.practice_id)))
    return request_disconnect(session, user_ids=user_ids, now=now)


MAX_SESSION_ID = 128  # the column's length
MAX_CONCENTRATOR = 320


@dataclass(frozen=True)
class AccountingRecord:
    status: str  # Start, Interim-Update, Stop, Accounting-On, Accounting-Off (or numbers)
    session_id: str
    username: str
    framed_ip: str | None
    calling_station: str | None
    input_octets: int
    output_octets: int
    terminate_cause: str | None
    nas_address: str  # the packet's source: the NAS client (a proxy or the concentrator)
    # The concentrator's own identity as received (RFC 2866 § 5: one of them is present).
    nas_ip_address: str | None = None  # NAS-IP-Address or NAS-IPv6-Address
    nas_identifier: str | None = None

    def concentrator(self, *, behind_proxy: bool) -> str:
        """Which concentrator sent it: behind a proxy its own identity (the proxy's
        address is shared by all of them), the source otherwise. A proxied message that
        names no concentrator (against RFC 2866) falls back to the source."""
        named = concentrator_identity(self.nas_ip_address, self.nas_identifier)
        return named if behind_proxy and named else self.nas_address


def concentrator_identity(ip_address: str | None, identifier: str | None) -> str | None:
    """A concentrator as it names itself in a proxied request (NAS-IP-Address or
    NAS-IPv6-Address, NAS-Identifier): ``ip=… id=…``; None if it names itself not at all.
    Sessions and the auth log name it alike."""
    named = [
        f"{label}={value}" for label, value in (("ip", ip_address), ("id", identifier)) if value
    ]
    return " ".join(named)[:MAX_CONCENTRATOR] if named else None


_STATUS_NAMES = {
    "1": "Start",
    "2": "Stop",
    "3": "Interim-Update",
    "7": "Accounting-On",
    "8": "Accounting-Off",
}


def record_accounting(
    session: Session,
    *,
    nas_id: int,
    record: AccountingRecord,
    now: datetime,
    behind_proxy: bool = False,
    quarters: int = DEFAULT_LOCK_AFTER_QUARTERS,
) -> VpnSession | None:
    """Store one accounting message. A session is keyed by the NAS client, the
    concentrator and its Acct-Session-Id; a Start opens a new row unless that session is
    live. A concentrator's reboot (On/Off) closes its own open sessions only. A Start or
    Interim-Update of an account that may not log in now is flagged and disconnected."""
    status = _STATUS_NAMES.get(record.status, record.status)
    concentrator = record.concentrator(behind_proxy=behind_proxy)
    if status in ("Accounting-On", "Accounting-Off"):
        session.execute(
            update(VpnSession)
            .where(
                VpnSession.nas_id == nas_id,
                VpnSession.concentrator == concentrator,
                VpnSession.stopped_at.is_(None),
            )
            .values(stopped_at=now, updated_at=now, terminate_cause="NAS-Reboot"),
            execution_options={"synchronize_session": False},
        )
        return None
    session_id = record.session_id[:MAX_SESSION_ID]  # as stored: a longer one is cut
    if not session_id:
        return None
    vpn_session = _stored_session(session, nas_id, concentrator, session_id, status)
    if vpn_session is None:
        vpn_session = _new_session(session, nas_id, concentrator, record, now)
    vpn_session.updated_at = now
    vpn_session.input_octets = max(vpn_session.input_octets, record.input_octets)
    vpn_session.output_octets = max(vpn_session.output_octets, record.output_octets)
    vpn_session.framed_ip = record.framed_ip or vpn_session.framed_ip
    if status == "Stop":
        vpn_session.stopped_at = vpn_session.stopped_at or now
        vpn_session.terminate_cause = record.terminate_cause
    elif vpn_session.stopped_at is None and vpn_session.flagged is None:
        _admit(session, vpn_session, now, quarters)
    return vpn_session


def _refusal(session: Session, vpn_session: VpnSession, now: datetime, quarters: int) -> str | None:
    """Why this session's user, practice or key may not log in now (None: it may)."""
    user = session.get(User, vpn_session.user_id) if vpn_session.user_id is not None else None
    if user is None:
        return "unknown"
    status = user_status(user, now, quarters)
    if not status.may_log_in:
        return status.state.value
    key = session.scalar(select(Token.status).where(Token.serial == vpn_session.token_serial))
    return None if key is TokenStatus.ACTIVE else "key"


def _admit(session: Session, vpn_session: VpnSession, now: datetime, quarters: int) -> None:
    """A concentrator that re-admits a session from before a lock (ocserv's cookie) or
    has no Disconnect support reports it: flag it for staff and queue a Disconnect at
    once. A user flexnet does not know is only flagged: the concentrator may serve other
    logins of its own, which are not flexnet's to cut."""
    flag = _refusal(session, vpn_session, now, quarters)
    if flag is None:
        return
    vpn_session.flagged = flag
    log.warning(
        "accounting for %s on session %s flagged: %s",
        vpn_session.username,
        vpn_session.acct_session_id,
        flag,
    )
    if flag == "unknown" or vpn_session.disconnect_requested_at is not None:
        return
    vpn_session.disconnect_requested_at = now
    audit.record(
        session,
        AuditTag.VPN_DISCONNECT_REQUEST,
        actor=Actor.system("radius"),
        subject=Subject("user", vpn_session.username),
        data={"session": vpn_session.acct_session_id, "flagged": flag},
        now=now,
    )


def _stored_session(
    session: Session, nas_id: int, concentrator: str, session_id: str, status: str
) -> VpnSession | None:
    """The live row of this session; for a Stop (perhaps a retransmitted one) the latest
    row. A Start or Interim-Update without a live row begins a new session."""
    same = select(VpnSession).where(
        VpnSession.nas_id == nas_id,
        VpnSession.concentrator == concentrator,
        VpnSession.acct_session_id == session_id,
    )
    live = session.scalar(same.where(VpnSession.stopped_at.is_(None)))
    if live is not None or status != "Stop":
        return live
    return session.scalar(same.order_by(VpnSession.id.desc()).limit(1))


def _new_session(
    session: Session, nas_id: int, concentrator: str, record: AccountingRecord, now: datetime
) -> VpnSession:
    username = record.username.strip().lower()[:64]
    user = session.scalar(select(User).where(User.username == username))
    token_serial = None
    if user is not None:
        token_serial = session.scalar(
            select(Token.serial)
            .where(Token.practice_id == user.practice_id, Token.status == TokenStatus.ACTIVE)
            .limit(1)
        )
    vpn_session = VpnSession(
        nas_id=nas_id,
        acct_session_id=record.session_id[:MAX_SESSION_ID],
        username=username,
        user_id=user.id if user else None,
        token_serial=token_serial,
        framed_ip=record.framed_ip,
        calling_station=(record.calling_station or "")[:64] or None,
        nas_address=record.nas_address,
        nas_ip_address=record.nas_ip_address,
        nas_identifier=record.nas_identifier,
        concentrator=concentrator,
        started_at=now,
        updated_at=now,
        input_octets=0,
        output_octets=0,
    )
    session.add(vpn_session)
    return vpn_session
