"""Sends the Disconnect-Requests (RFC 5176) that locks queued in vpn_sessions.

Runs as a thread of the RADIUS process. Each queued session is claimed with a
conditional UPDATE, so several processes never send the same request twice; the
result (ack, nak, timeout, no_coa_port) is stored and audited.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from datetime import datetime, timedelta

from pyrad import packet as rp
from pyrad.client import Client as RadClient
from pyrad.client import Timeout
from pyrad.dictionary import Dictionary
from sqlalchemy import ColumnElement, and_, or_, select, update

from flexnet import audit, metrics
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.clients import nas
from flexnet.db import UNAVAILABLE, Database, describe_error, utcnow
from flexnet.models import NasClient, VpnSession
from flexnet.otp.secrets import SecretBox

log = logging.getLogger(__name__)
STALE_CLAIM_SECONDS = 300


def identification(vpn_session: VpnSession, now: datetime) -> dict[str, str | int]:
    """What a Disconnect-Request says (RFC 5176 § 3): the concentrator as its accounting
    named itself (a proxy routes by it), the session and user, and when (§ 3.4)."""
    attributes: dict[str, str | int] = {}
    try:
        address = ipaddress.ip_address(vpn_session.nas_ip_address or "")
    except ValueError:
        pass  # none named (or not an address): the NAS-Identifier or the target alone
    else:
        name = "NAS-IP-Address" if address.version == 4 else "NAS-IPv6-Address"
        attributes[name] = str(address)
    if vpn_session.nas_identifier:
        attributes["NAS-Identifier"] = vpn_session.nas_identifier
    attributes["Acct-Session-Id"] = vpn_session.acct_session_id
    attributes["User-Name"] = vpn_session.username
    attributes["Event-Timestamp"] = int(now.timestamp())
    return attributes


class DisconnectDispatcher:
    def __init__(
        self,
        database: Database,
        box: SecretBox,
        dictionary: Dictionary,
        *,
        interval: float = 1.0,
        timeout: float = 2.0,
        retries: int = 2,
    ) -> None:
        self.database = database
        self.box = box
        self.dictionary = dictionary
        self.interval = interval
        self.timeout = timeout
        self.retries = retries
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="disconnect", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + self.timeout * (self.retries + 1))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except UNAVAILABLE as error:
                metrics.database_unavailable("disconnect")
                log.error("disconnect dispatcher: database unavailable (%s)", describe_error(error))
            except Exception:
                log.exception("disconnect dispatcher: round failed, retrying")

    def run_once(self) -> int:
        """Send every queued disconnect; returns how many were handled."""
        handled = 0
        for session_id in self._queued():
            if self._claim(session_id):
                try:
                    self._send(session_id)
                except Exception:
                    log.exception("disconnect of session %d failed", session_id)
                    self._finish(session_id, "error", "?", utcnow())
                handled += 1
        return handled

    def _claimable(self, now: datetime) -> ColumnElement[bool]:
        """Queued, or claimed by a process that died before it finished (stale)."""
        stale = now - timedelta(seconds=STALE_CLAIM_SECONDS)
        return or_(
            VpnSession.disconnect_result.is_(None),
            and_(
                VpnSession.disconnect_result == "sending",
                VpnSession.disconnect_requested_at < stale,
            ),
        )

    def _queued(self) -> list[int]:
        with self.database.reader() as session:
            query = (
                select(VpnSession.id)
                .where(VpnSession.disconnect_requested_at.is_not(None), self._claimable(utcnow()))
                .limit(50)
            )
            return list(session.scalars(query))

    def _claim(self, session_id: int) -> bool:
        now = utcnow()
        with self.database.session() as session:
            # The claim time goes into requested_at, so a stale claim is taken by one only.
            claimed = session.execute(
                update(VpnSession)
                .where(VpnSession.id == session_id, self._claimable(now))
                .values(disconnect_result="sending", disconnect_requested_at=now),
            ).rowcount  # type: ignore[attr-defined]
        return bool(claimed)

    def _send(self, session_id: int) -> None:
        with self.database.reader() as session:
            vpn_session = session.get_one(VpnSession, session_id)
            client = session.get_one(NasClient, vpn_session.nas_id)
            secret = self.box.open(client.secret, context=nas.nas_context(client.id))
            target = vpn_session.nas_address or client.address.split("/")[0]
            port, name = client.coa_port, client.name
            attributes = identification(vpn_session, utcnow())
        result = "no_coa_port" if port is None else self._request(target, port, secret, attributes)
        self._finish(session_id, result, name, utcnow())

    def _request(
        self, address: str, port: int, secret: bytes, attributes: dict[str, str | int]
    ) -> metrics.DisconnectResult:
        client = RadClient(server=address, secret=secret, dict=self.dictionary, coaport=port)
        client.timeout = self.timeout
        client.retries = self.retries
        request = client.CreateCoAPacket(
            code=rp.DisconnectRequest, **{k.replace("-", "_"): v for k, v in attributes.items()}
        )
        request.add_message_authenticator()
        try:
            reply = client.SendPacket(request)
        except Timeout:
            return "timeout"
        except OSError as error:
            log.warning("disconnect to %s:%d failed: %s", address, port, error)
            return "timeout"
        finally:
            client._CloseSocket()  # pyrad has no public close; its socket would leak
        return "ack" if reply.code == rp.DisconnectACK else "nak"

    def _finish(
        self, session_id: int, result: metrics.DisconnectResult, nas_name: str, now: datetime
    ) -> None:
        with self.database.session() as session:
            vpn_session = session.get_one(VpnSession, session_id)
            vpn_session.disconnect_result = result
            if result == "ack":
                vpn_session.stopped_at = vpn_session.stopped_at or now
                vpn_session.terminate_cause = vpn_session.terminate_cause or "Admin-Reset"
            audit.record(
                session,
                AuditTag.VPN_DISCONNECT,
                actor=Actor.system("radius"),
                subject=Subject("user", vpn_session.username),
                data={"nas": nas_name, "session": vpn_session.acct_session_id, "result": result},
                now=now,
            )
        metrics.disconnected(result)
        log.info("disconnect of %s on %s: %s", vpn_session.username, nas_name, result)
