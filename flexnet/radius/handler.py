"""One RADIUS datagram in, one answer (or silence) out. No sockets here.

Silence is an answer too: a dropped packet (malformed, unknown NAS, missing
Message-Authenticator) and, by default, any internal error are not answered, so the
concentrator fails over to its second server. Nothing here ever turns an error into
an Access-Accept.

The server's event loop calls :meth:`RadiusHandler.receive`, which decides what needs
neither the database nor a hash on the spot (a malformed packet, an unknown NAS, a
retransmission, an OTP the fast path refuses) and hands the rest on as :class:`Later`,
with what it has decoded, to a pool thread. Nothing is parsed twice.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from pyrad import packet as rp
from pyrad.dictionary import Dictionary
from sqlalchemy import select

from flexnet import metrics
from flexnet.accounts import vpn
from flexnet.authn import authlog, pipeline
from flexnet.authn.pipeline import Authenticator, Channel, Client, Decision, Outcome, Reason
from flexnet.clients import nas
from flexnet.config import Settings
from flexnet.db import UNAVAILABLE, Database, describe_error, utcnow
from flexnet.models import AccessProfile
from flexnet.otp.secrets import SecretBox
from flexnet.otp.verify import Presented, RemoteCheck
from flexnet.radius import methods, packets, status
from flexnet.radius.droplog import DropLog
from flexnet.radius.fastpath import KeySnapshot, LookupBudget
from flexnet.radius.packets import Port
from flexnet.radius.state import IN_FLIGHT, Challenge, ChallengeStore, DuplicateCache, altered

log = logging.getLogger(__name__)

ASK_FOR_OTP = "Bitte geben Sie das Einmalkennwort Ihres Yubikeys ein."
ASK_AGAIN = "Bitte geben Sie das neue Kennwort noch einmal ein."
MISMATCH = "Die Kennwörter stimmen nicht überein. Bitte geben Sie ein neues Kennwort ein."
MAX_NEW_PASSWORD_TRIES = 3
_ROUNDS = {  # what the next answer to a challenge carries, as logged
    "otp": "OTP after the password",
    "new_password": "new password",
    "confirm": "new password repeated",
}
RELOAD_RETRY_SECONDS = 5.0
MAX_OCTETS = 2**63 - 1  # the BIGINT column; 64-bit gigaword counters can claim more
USER_NAME = 1
NAS_IP_ADDRESS = 4
STATE = 24
CALLING_STATION = 31
NAS_IDENTIFIER = 32
NAS_IPV6_ADDRESS = 95


@dataclass(frozen=True)
class Later:
    """The rest of a request's work, for a pool thread: it needs the database or a hash
    (or may, like a NAS list due for reloading). ``step`` may hand on a Later again."""

    step: Callable[[], Handled]

    def run(self) -> bytes | None:
        outcome = self.step()
        while isinstance(outcome, Later):
            outcome = outcome.step()
        return outcome


Handled = bytes | None | Later  # an answer, silence, or the rest of the work


def finish(outcome: Handled) -> bytes | None:
    """The answer, after doing in the calling thread whatever was left."""
    return outcome.run() if isinstance(outcome, Later) else outcome


@dataclass(frozen=True)
class _Attempt:
    """An Access-Request with a password and an OTP, as decoded once."""

    request: rp.AuthPacket
    username: str
    password: str
    otp: Presented
    client: nas.NasEntry
    origin: Client
    now: datetime


class _Drop(Exception):
    """The packet is dropped without an answer; the message is logged, the cause (a
    fixed code) counted."""

    def __init__(self, cause: metrics.DropCause, message: str) -> None:
        super().__init__(message)
        self.cause = cause


class RadiusHandler:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        dictionary: Dictionary | None = None,
        remote: RemoteCheck | None = None,
        clock: Callable[[], datetime] = utcnow,
        refresh_seconds: float = 30.0,
    ) -> None:
        self.database = database
        self.settings = settings
        self.box = SecretBox(settings.master_key)
        self.dictionary = dictionary or packets.load_dictionary()
        self.authenticator = Authenticator(settings, self.box, remote)
        self.clock = clock
        self.duplicates = DuplicateCache()
        self.challenges = ChallengeStore(database, self.box, clock=clock)
        self._refresh_seconds = refresh_seconds
        self._loaded_at = float("-inf")
        self._nas: list[nas.NasEntry] = []
        self._disabled: list[tuple[str, nas.IpNetwork]] = []
        self.drops = DropLog(log)
        self._profiles: dict[str, list[list[str]]] = {}
        self._keys = KeySnapshot({})
        self._lock = threading.Lock()
        self._database_down = False  # to say once when it is back
        self._lookups = LookupBudget()
        self.reject_log = authlog.RejectLog(database, settings.auth)

    def close(self) -> None:
        """Write what the reject log still holds (called when the server stops)."""
        self.reject_log.close()

    # --- entry points ------------------------------------------------------------------

    def receive(self, data: bytes, source: tuple[str, int], port: Port) -> Handled:
        """One datagram, as far as it can be decided without blocking: the answer, silence,
        or :class:`Later` for a pool thread. Called in the server's event loop, so nothing
        here waits for the database: a NAS list due for reloading, a key to look up, a
        challenge, accounting's write and every OTP the fast path lets through go on as
        Later, and so does everything with it (duplicate claim, metrics timer)."""
        started = time.perf_counter()
        try:
            outcome = self._receive(data, source, port)
        except Exception:  # never out into the event loop
            metrics.dropped("internal_error")
            log.exception("unexpected error on a packet from %s; no answer", source[0])
            outcome = None
        if isinstance(outcome, Later):
            return Later(partial(self._timed, outcome, port, started))
        _observe(port, started)
        return outcome

    def handle(self, data: bytes, source: tuple[str, int], port: Port) -> bytes | None:
        """One datagram decided completely in the calling thread."""
        return finish(self.receive(data, source, port))

    def _receive(self, data: bytes, source: tuple[str, int], port: Port) -> Handled:
        checked = packets.check(data, port)
        if isinstance(checked, str):
            metrics.dropped("malformed")
            self.drops.warning(
                (source[0], checked), "dropped packet from %s: %s", source[0], checked
            )
            return None
        if self._reload_due():
            return Later(partial(self._from_address, checked, source, port, reload=True))
        return self._from_address(checked, source, port)

    def _from_address(
        self, checked: packets.Checked, source: tuple[str, int], port: Port, *, reload: bool = False
    ) -> Handled:
        if reload:
            try:
                self._refresh()
            except Exception as error:
                if isinstance(error, UNAVAILABLE):
                    metrics.database_unavailable("reload")
                metrics.dropped("nas_list_unavailable")
                log.exception("NAS list unavailable, dropping packet from %s", source[0])
                return None
        client = nas.match(self._nas, source[0])
        if client is None:
            self._unknown(source[0])
            return None
        return self._handle_from(client, checked, source, port)

    @staticmethod
    def _timed(later: Later, port: Port, started: float) -> bytes | None:
        try:
            return later.run()
        finally:
            _observe(port, started)

    def handle_from(
        self, client: nas.NasEntry, data: bytes, source: tuple[str, int], port: Port
    ) -> bytes | None:
        """One packet from a NAS identified otherwise than by its address (RADIUS over
        TLS: by its pinned certificate, with the secret RFC 6614 fixes), decided exactly as
        one that came over UDP, completely in the calling thread."""
        with metrics.RADIUS_SECONDS.labels(port.value).time():
            checked = packets.check(data, port)
            if isinstance(checked, str):
                metrics.dropped("malformed")
                self.drops.warning(
                    (client.name, checked), "dropped packet from NAS %s: %s", client.name, checked
                )
                return None
            return finish(self._handle_from(client, checked, source, port))

    def client_for_certificate(self, fingerprint: str) -> nas.NasEntry | None:
        """The enabled NAS that pinned this client certificate (SHA-256), or None."""
        self._refresh()
        return nas.match_certificate(self._nas, fingerprint)

    def _handle_from(
        self, client: nas.NasEntry, checked: packets.Checked, source: tuple[str, int], port: Port
    ) -> Handled:
        data = checked.data
        if data[0] == status.STATUS_SERVER:
            return Later(partial(self._status, data, port, client))
        key = (source, data[0], data[1], data[4:20])
        cached = self.duplicates.claim(key)
        if cached is IN_FLIGHT:
            metrics.dropped("duplicate_in_flight")
            log.info("duplicate of a request in progress from %s dropped", source[0])
            return None
        if isinstance(cached, bytes):
            log.info("duplicate request from %s answered from cache", source[0])
            return cached
        if port is Port.AUTH:
            return self._settle(key, client, source, partial(self._access, checked, client))
        return self._settle(key, client, source, partial(self._accounting, data, source[0], client))

    def _settle(
        self,
        key: tuple[object, ...],
        client: nas.NasEntry,
        source: tuple[str, int],
        step: Callable[[], Handled],
    ) -> Handled:
        """Run a step of a request claimed in the duplicate cache. An answer is kept for
        retransmissions, silence forgets the claim (a retransmission is then evaluated);
        a step that hands the rest on keeps the claim for it."""
        try:
            outcome = step()
            if isinstance(outcome, Later):
                return Later(partial(self._settle, key, client, source, outcome.step))
            if outcome is not None and len(outcome) > packets.MAX_PACKET:
                raise _Drop(  # a NAS discards it anyway (RFC 2865 § 3)
                    "answer_too_large", "the answer (Proxy-State echoed) would exceed 4096 octets"
                )
        except _Drop as dropped:
            outcome = None
            metrics.dropped(dropped.cause)
            self.drops.warning(
                (client.name, str(dropped)),
                "dropped packet from %s (NAS %s): %s",
                source[0],
                client.name,
                dropped,
            )
        except Exception:
            outcome = None
            metrics.dropped("internal_error")
            log.exception("unexpected error on a packet from %s; no answer", client.name)
        if outcome is None:
            self.duplicates.forget(key)
        else:
            self.duplicates.store(key, outcome)
        return outcome

    def _status(self, data: bytes, port: Port, client: nas.NasEntry) -> bytes | None:
        """Status-Server: alive only while the database answers (else silence: the proxy
        fails over to another server)."""
        try:
            reply = status.answer(data, port, client, self.dictionary)
            status.check_database(self.database)
        except status.StatusRefused as refused:
            metrics.dropped("status_refused")
            self.drops.warning(
                (client.name, str(refused)),
                "dropped packet to the %s port (NAS %s): %s",
                port.value,
                client.name,
                refused,
            )
            return None
        except UNAVAILABLE as error:
            self._database_down = True
            metrics.database_unavailable("status")
            metrics.dropped("database_unavailable")
            log.error(
                "database unavailable (%s): Status-Server from %s not answered",
                describe_error(error),
                client.name,
            )
            return None
        return reply

    def _unknown(self, address: str) -> None:
        disabled = nas.match_disabled(self._disabled, address)
        metrics.dropped("unknown_client" if disabled is None else "disabled_client")
        if disabled is None:
            self.drops.warning(address, "dropped packet from unknown client %s", address)
            return
        self.drops.warning(
            disabled,
            "dropped packet from %s: NAS %s is disabled (`flexnet nas enable %s` admits it)",
            address,
            disabled,
            disabled,
        )

    # --- NAS clients and profiles ------------------------------------------------------

    def _reload_due(self) -> bool:
        return time.monotonic() - self._loaded_at >= self._refresh_seconds

    def _refresh(self) -> None:
        if not self._reload_due():
            return
        with self._lock:
            if not self._reload_due():
                return  # another worker reloaded while this one waited
            try:
                self._reload()
            except UNAVAILABLE as error:
                if not self._nas:
                    raise  # nothing loaded yet: no client is known, every packet drops
                metrics.database_unavailable("reload")
                # The database is away, so nothing is decided anyway; keep the last lists
                # (fast rejects go on) and try again in a few seconds, not per packet.
                self._loaded_at = time.monotonic() - self._refresh_seconds + RELOAD_RETRY_SECONDS
                log.error(
                    "database unavailable (%s): NAS clients, profiles and keys not reloaded",
                    describe_error(error),
                )

    def _reload(self) -> None:
        with self.database.reader() as session:
            self._nas = nas.load_active(session, self.box)
            self._disabled = nas.load_disabled(session)
            self._profiles = {
                p.name: p.reply_attributes for p in session.scalars(select(AccessProfile))
            }
            self._keys = KeySnapshot.load(session, self.box)
            self._loaded_at = time.monotonic()

    # --- Access-Request ------------------------------------------------------------------

    def _access(self, packet: packets.Checked, client: nas.NasEntry) -> Handled:
        try:
            request = rp.AuthPacket(packet=packet.data, secret=client.secret, dict=self.dictionary)
        except rp.PacketError as error:
            raise _Drop("undecodable", f"undecodable: {error}") from None
        self._check_message_authenticator(request, packet, client)
        return self._guarded(request, client, partial(self._decide, request, packet, client))

    def _guarded(
        self, request: rp.AuthPacket, client: nas.NasEntry, step: Callable[[], Handled]
    ) -> Handled:
        """A step of deciding an Access-Request, never an accept on an error; and so is
        each step it hands on."""
        cause: metrics.DropCause
        try:
            outcome = step()
        except UNAVAILABLE as error:
            self._database_down = True
            cause = "database_unavailable"
            metrics.database_unavailable("access")
            log.error(
                "database unavailable (%s): Access-Request from %s not decided",
                describe_error(error),
                client.name,
            )
        except Exception:
            cause = "internal_error"
            log.exception("internal error on Access-Request from %s", client.name)
        else:
            if isinstance(outcome, Later):
                return Later(partial(self._guarded, request, client, outcome.step))
            if self._database_down:
                self._database_down = False
                log.warning("database reachable again: deciding Access-Requests")
            return outcome
        # Never an accept: silence makes the NAS fail over to its second server.
        if self.settings.radius_reject_on_error:
            return self._reply(request, rp.AccessReject, pipeline.GENERIC_REJECT)
        metrics.dropped(cause)
        return None

    def _check_message_authenticator(
        self, request: rp.AuthPacket, packet: packets.Checked, client: nas.NasEntry
    ) -> None:
        """BlastRADIUS (CVE-2024-3596): no Message-Authenticator, no answer."""
        if request.message_authenticator:
            if not request.verify_message_authenticator():
                raise _Drop("message_authenticator_invalid", "invalid Message-Authenticator")
            return
        if packet.values(packets.PROXY_STATE):
            raise _Drop(
                "proxy_state_without_message_authenticator",
                "Proxy-State without Message-Authenticator",
            )
        if not client.allow_missing_message_authenticator:
            raise _Drop(
                "message_authenticator_missing",
                "Access-Request without Message-Authenticator; only for an old NAS that "
                f"cannot send it: `flexnet nas set {client.name} "
                "--allow-missing-message-authenticator yes` admits it",
            )

    def _decide(
        self, request: rp.AuthPacket, packet: packets.Checked, client: nas.NasEntry
    ) -> Handled:
        username = _text(packet.values(USER_NAME))
        hidden = packet.values(packets.USER_PASSWORD)
        typed = (
            packets.decode_password(hidden[0], client.secret, request.authenticator)
            if len(hidden) == 1
            else None
        )
        origin = Client(
            Channel.RADIUS,
            client.name,
            _station(packet.values(CALLING_STATION)),
            _concentrator(packet) if client.proxy else None,
        )
        now = self.clock()
        if username is None or typed is None:
            return Later(partial(self._refuse, request, packet, username, origin, now))
        states = packet.values(STATE)
        if states:
            return Later(
                partial(self._continue, request, states[0], username, typed, client, origin, now)
            )
        parts = packets.split_pap(typed)
        otp = parts.presented()
        if otp is None:
            pending = Challenge(
                "otp",
                username.lower(),
                client.id,
                source=origin.source_ip or "",
                password=parts.password,
            )
            return Later(partial(self._challenge, request, pending, ASK_FOR_OTP))
        return self._login(_Attempt(request, username, parts.password, otp, client, origin, now))

    def _refuse(
        self,
        request: rp.AuthPacket,
        packet: packets.Checked,
        username: str | None,
        origin: Client,
        now: datetime,
    ) -> bytes:
        """No single printable User-Name or no single User-Password: refused, and said why
        in the auth log (EAP, CHAP and MS-CHAP are named)."""
        method = None if packet.values(packets.USER_PASSWORD) else methods.refused(packet)
        with self.database.session() as session:
            pipeline.record_rejection(
                session, username or "?", origin, now, method or Reason.RADIUS_ATTRIBUTES
            )
        if method is Reason.METHOD_EAP:
            reply = request.CreateReply()
            reply.code = rp.AccessReject
            reply.AddAttribute("EAP-Message", methods.eap_failure(packet))
            return bytes(reply.ReplyPacket())
        return self._reply(request, rp.AccessReject, pipeline.GENERIC_REJECT)

    def _login(self, attempt: _Attempt) -> Handled:
        """The fast path judges the OTP from the keys in memory; only one it lets through
        goes on to the database and the password hash."""
        verdict = self._keys.judge(attempt.otp)
        parsed = attempt.otp.parsed
        if (
            verdict is Reason.KEY_UNKNOWN
            and parsed is not None
            and self._lookups.allow(parsed.public_id)
        ):
            return Later(partial(self._look_up, attempt, parsed.public_id))
        return self._judged(attempt, verdict)

    def _look_up(self, attempt: _Attempt, public_id: str) -> Handled:
        """A key handed out since the last reload is looked up at once (one indexed read),
        not refused until the next one; the fast path then judges its OTP as usual. (A
        flood of made-up ids is kept from the database by the lookup budget.)"""
        with self.database.reader() as session:
            found = KeySnapshot.load(session, self.box, public_id=public_id)
        if found.keys:
            with self._lock:  # not over a snapshot a concurrent reload has just put in place
                self._keys = self._keys.merged(found)
        return self._judged(attempt, self._keys.judge(attempt.otp))

    def _judged(self, attempt: _Attempt, verdict: Presented | Reason) -> Handled:
        if isinstance(verdict, Reason):
            # Garbage costs microseconds: no transaction, a batched auth-log line.
            self.reject_log.reject(
                username=attempt.username, client=attempt.origin, now=attempt.now, reason=verdict
            )
            return self._reply(attempt.request, rp.AccessReject, pipeline.GENERIC_REJECT)
        return Later(partial(self._authenticate, attempt, verdict))

    def _authenticate(self, attempt: _Attempt, otp: Presented) -> bytes:
        with self.database.session() as session:
            decision = self.authenticator.authenticate(
                session,
                username=attempt.username,
                password=attempt.password,
                otp=otp,
                client=attempt.origin,
                now=attempt.now,
            )
        if decision.outcome is Outcome.CHALLENGE:
            pending = Challenge(
                "new_password",
                attempt.username.lower(),
                attempt.client.id,
                user_id=decision.user_id,
            )
            return self._challenge(attempt.request, pending, decision.reply_message or "")
        return self._answer(attempt.request, decision)

    def _continue(
        self,
        request: rp.AuthPacket,
        state: bytes,
        username: str,
        typed: str,
        client: nas.NasEntry,
        origin: Client,
        now: datetime,
    ) -> Handled:
        pending = self.challenges.take(state, username=username.lower(), nas_id=client.id)
        if pending is None:
            change = altered(state)
            log.warning(
                "answer to a challenge from NAS %s for %s rejected: %s",
                client.name,
                authlog.shown_username(username),
                "State came back altered (" + change + ")"
                if change
                else "State unknown, used, expired or of another user or NAS",
            )
            with self.database.session() as session:
                pipeline.record_rejection(
                    session, username, origin, now, Reason.CHALLENGE_STATE_UNKNOWN
                )
            return self._reply(request, rp.AccessReject, pipeline.GENERIC_REJECT)
        if pending.kind == "otp":
            otp = Presented.typed(typed.strip())
            return self._login(
                _Attempt(request, username, pending.password, otp, client, origin, now)
            )
        return self._new_password(request, pending, typed, origin, now)

    def _new_password(
        self, request: rp.AuthPacket, pending: Challenge, typed: str, origin: Client, now: datetime
    ) -> bytes:
        """RSA's New-PIN mode for an expired or initial password, checked by the policy."""
        if pending.user_id is None:  # set when the challenge was issued; never missing
            return self._reply(request, rp.AccessReject, pipeline.GENERIC_REJECT)
        if pending.kind == "new_password":
            with self.database.reader() as session:
                problems = pipeline.new_password_problems(
                    session,
                    user_id=pending.user_id,
                    password=typed,
                    policy=self.settings.password_policy,
                )
            if problems:
                return self._retry_new_password(request, pending, " ".join(problems))
            confirm = Challenge(
                "confirm",
                pending.username,
                pending.nas_id,
                password=typed,
                user_id=pending.user_id,
                tries=pending.tries,
            )
            return self._challenge(request, confirm, ASK_AGAIN)
        if typed != pending.password:
            return self._retry_new_password(request, pending, MISMATCH)
        with self.database.session() as session:
            decision = self.authenticator.finish_password_change(
                session, user_id=pending.user_id, new_password=typed, client=origin, now=now
            )
        return self._answer(request, decision)

    def _retry_new_password(
        self, request: rp.AuthPacket, pending: Challenge, message: str
    ) -> bytes:
        if pending.tries + 1 >= MAX_NEW_PASSWORD_TRIES:
            return self._reply(request, rp.AccessReject, pipeline.GENERIC_REJECT)
        again = Challenge(
            "new_password",
            pending.username,
            pending.nas_id,
            user_id=pending.user_id,
            tries=pending.tries + 1,
        )
        return self._challenge(request, again, message)

    # --- replies -----------------------------------------------------------------------

    def _challenge(self, request: rp.AuthPacket, pending: Challenge, message: str) -> bytes:
        state = self.challenges.issue(pending)
        log.info(
            "Access-Challenge to NAS %s for %s: round %s%s",
            next((e.name for e in self._nas if e.id == pending.nas_id), pending.nas_id),
            authlog.shown_username(pending.username),
            _ROUNDS[pending.kind],
            f", try {pending.tries + 1}" if pending.tries else "",
        )
        reply = request.CreateReply()
        reply.code = rp.AccessChallenge
        reply.AddAttribute("State", state)
        _add_message(reply, message)
        return bytes(reply.ReplyPacket())

    def _answer(self, request: rp.AuthPacket, decision: Decision) -> bytes:
        if not decision.accepted:
            return self._reply(
                request, rp.AccessReject, decision.reply_message or pipeline.GENERIC_REJECT
            )
        attributes = self._profiles.get(decision.profile or "")
        if attributes is None:
            # Never a bare Accept: the NAS would apply its own, possibly full, default.
            raise LookupError(f"access profile {decision.profile!r} does not exist")
        reply = request.CreateReply()
        reply.code = rp.AccessAccept
        for name, value in attributes:
            kind = self.dictionary.attributes[name].type
            reply.AddAttribute(name, int(value) if kind == "integer" else value)
        if not any(name == "Session-Timeout" for name, _ in attributes):
            # Bounded even where no Disconnect reaches the concentrator (ocserv).
            reply.AddAttribute("Session-Timeout", self.settings.session_timeout_hours * 3600)
        if decision.reply_message:
            _add_message(reply, decision.reply_message)
        return bytes(reply.ReplyPacket())

    @staticmethod
    def _reply(request: rp.AuthPacket, code: int, message: str) -> bytes:
        reply = request.CreateReply()
        reply.code = code
        _add_message(reply, message)
        return bytes(reply.ReplyPacket())

    # --- Accounting-Request ------------------------------------------------------------

    def _accounting(self, data: bytes, address: str, client: nas.NasEntry) -> Handled:
        try:
            request = rp.AcctPacket(packet=data, secret=client.secret, dict=self.dictionary)
        except rp.PacketError as error:
            raise _Drop("undecodable", f"undecodable: {error}") from None
        if not request.VerifyAcctRequest():
            raise _Drop(
                "accounting_authenticator_invalid", "invalid accounting Request Authenticator"
            )
        if request.message_authenticator and not request.verify_message_authenticator():
            raise _Drop(
                "message_authenticator_invalid", "invalid Message-Authenticator on accounting"
            )
        try:
            record = _accounting_record(request, address)
        except (ValueError, TypeError, struct.error) as error:
            raise _Drop("undecodable", f"undecodable accounting attribute: {error}") from None
        record, cleaned = _without_nul(record)
        if cleaned:
            self.drops.warning(
                (client.name, "nul"),
                "accounting from NAS %s: zero bytes in %s removed (trailing) or replaced",
                client.name,
                ", ".join(cleaned),
            )
        return Later(partial(self._store_accounting, request, record, client))

    def _store_accounting(
        self, request: rp.AcctPacket, record: vpn.AccountingRecord, client: nas.NasEntry
    ) -> bytes | None:
        try:
            with self.database.session() as session:
                vpn.record_accounting(
                    session,
                    nas_id=client.id,
                    record=record,
                    now=self.clock(),
                    behind_proxy=client.proxy,
                    quarters=self.settings.lock_after_quarters,
                )
        except Exception as error:
            if isinstance(error, UNAVAILABLE):
                metrics.database_unavailable("accounting")
            metrics.dropped("accounting_not_stored")
            log.exception(
                "accounting from %s not stored; no answer, the NAS will retry", client.name
            )
            return None
        return bytes(request.CreateReply().ReplyPacket())


def _observe(port: Port, started: float) -> None:
    metrics.RADIUS_SECONDS.labels(port.value).observe(time.perf_counter() - started)


def _add_message(reply: rp.Packet, message: str) -> None:
    # Reply-Message values are at most 253 octets; longer German text is split.
    encoded = message.encode("utf-8")
    while encoded:
        cut = min(len(encoded), 253)
        while cut < len(encoded) and (encoded[cut] & 0xC0) == 0x80:
            cut -= 1  # never split a UTF-8 sequence
        reply.AddAttribute("Reply-Message", encoded[:cut].decode("utf-8"))
        encoded = encoded[cut:]


def _text(values: list[bytes]) -> str | None:
    if len(values) != 1:
        return None
    try:
        text = values[0].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def _concentrator(packet: packets.Checked) -> str | None:
    """Which concentrator a proxy asks for (RFC 2865 § 5.4, 5.32; RFC 3162 § 2.1), named
    as its sessions are: without it, every line of the auth log would name the proxy."""
    address = None
    for values, size in ((packet.values(NAS_IP_ADDRESS), 4), (packet.values(NAS_IPV6_ADDRESS), 16)):
        if len(values) == 1 and len(values[0]) == size:
            address = str(ipaddress.ip_address(values[0]))
            break
    return vpn.concentrator_identity(address, _identity(_text(packet.values(NAS_IDENTIFIER))))


def _station(values: list[bytes]) -> str | None:
    """The user's address from Calling-Station-Id, if it is one. Anything else (a MAC
    address, a phone number, garbage) is no address to count failures under, and a
    value longer than the column would break the whole transaction."""
    text = _text(values)
    if not text or "%" in text:  # an IPv6 zone index names a local interface: no source
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _first(request: rp.Packet, name: str) -> object | None:
    values = request.get(name)
    return values[0] if values else None


def _accounting_record(request: rp.AcctPacket, address: str) -> vpn.AccountingRecord:
    """The fields of an accounting message (pyrad raises ValueError for a value of the
    wrong length for its type)."""
    return vpn.AccountingRecord(
        status=_attribute_text(request, "Acct-Status-Type") or "",
        session_id=_attribute_text(request, "Acct-Session-Id") or "",
        username=_attribute_text(request, "User-Name") or "",
        framed_ip=_attribute_text(request, "Framed-IP-Address"),
        calling_station=_attribute_text(request, "Calling-Station-Id"),
        input_octets=_octets(request, "Acct-Input-Octets", "Acct-Input-Gigawords"),
        output_octets=_octets(request, "Acct-Output-Octets", "Acct-Output-Gigawords"),
        terminate_cause=_attribute_text(request, "Acct-Terminate-Cause"),
        nas_address=address,
        nas_ip_address=_attribute_text(request, "NAS-IP-Address")
        or _attribute_text(request, "NAS-IPv6-Address"),
        nas_identifier=_identity(_attribute_text(request, "NAS-Identifier")),
    )


def _without_nul(record: vpn.AccountingRecord) -> tuple[vpn.AccountingRecord, list[str]]:
    """The record without zero bytes, and the fields that had some. A NAS should send
    none (RFC 2865 5), PostgreSQL refuses them in text, and a message that cannot be
    stored is never answered: the NAS would retry it for ever. Trailing ones (C string
    padding) go, others become U+FFFD, the same way each time, so that Start and Stop of
    one session still match."""
    changes: dict[str, Any] = {}
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        if isinstance(value, str) and "\x00" in value:
            changes[item.name] = value.rstrip("\x00").replace("\x00", "\ufffd")
    return dataclasses.replace(record, **changes), sorted(changes)


def _identity(text: str | None) -> str | None:
    """A NAS-Identifier as a key and for a Disconnect: printable (a NUL would break the
    write on PostgreSQL and with it the answer), at most its 253 octets."""
    if not text:
        return None
    return "".join(c if c.isprintable() else "\ufffd" for c in text)[:253]


def _attribute_text(request: rp.Packet, name: str) -> str | None:
    value = _first(request, name)
    if isinstance(value, bytes):  # pyrad hands out text that is not UTF-8 as bytes
        value = value.decode("utf-8", errors="replace")
    return None if value is None else str(value)


def _octets(request: rp.Packet, octets: str, gigawords: str) -> int:
    low = _first(request, octets)
    high = _first(request, gigawords)
    total = (int(high) if isinstance(high, int) else 0) * 2**32 + (
        int(low) if isinstance(low, int) else 0
    )
    return min(total, MAX_OCTETS)
