"""Rejecting invalid OTPs without a database transaction, and logging them in batches.

Most failed logins on an exposed VPN are garbage: OTPs that do not decrypt with any key.
Checking them costs microseconds; opening a transaction for each would cap the server
at a few hundred per second. So the RADIUS process keeps a snapshot of the Yubikeys'
key material and rejects such OTPs at once; their auth-log lines and per-source failure
counts are written by a background thread in batches. An id the snapshot does not know
(a key handed out since it was loaded) is looked up, sparingly (:class:`LookupBudget`).

This path can only reject. Valid OTPs, keys checked by an external service and OATH
codes always take the full pipeline (``authn.authenticate``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from flexnet.authn import pipeline, ratelimit
from flexnet.config import AuthSettings
from flexnet.db import UNAVAILABLE, Database, describe_error
from flexnet.models import AuthEvent, Token, TokenKind
from flexnet.otp import yubico
from flexnet.otp.secrets import SecretBox, SecretError, YubicoSecret, token_context

log = logging.getLogger(__name__)
REMOTE = object()  # marks keys validated by an external service: never fast-rejected


@dataclass(frozen=True)
class KeySnapshot:
    """public id -> key material (or REMOTE), for every Yubico OTP key at load time."""

    keys: dict[str, YubicoSecret | object] = field(repr=False)

    @classmethod
    def load(cls, session: Session, box: SecretBox, *, public_id: str | None = None) -> KeySnapshot:
        """Every Yubico OTP key, or only the one with ``public_id``."""
        keys: dict[str, YubicoSecret | object] = {}
        query = select(Token.serial, Token.public_id, Token.secret, Token.remote_validation).where(
            Token.kind == TokenKind.YUBICO_OTP
        )
        if public_id is not None:
            query = query.where(Token.public_id == public_id)
        rows = session.execute(query)
        for serial, public_id, secret, remote in rows:
            if public_id is None:
                continue
            if remote or secret is None:
                keys[public_id] = REMOTE
                continue
            try:
                keys[public_id] = YubicoSecret.from_bytes(
                    box.open(secret, context=token_context(serial))
                )
            except SecretError:
                keys[public_id] = REMOTE  # let the full pipeline report the backend error
        return cls(keys)

    def merged(self, other: KeySnapshot) -> KeySnapshot:
        return KeySnapshot({**self.keys, **other.keys})

    def rejects(self, otp: str) -> str | None:
        """Why ``otp`` is certainly invalid, or None if the full pipeline must decide."""
        parsed = yubico.parse(otp)
        if parsed is None:
            return None  # not a Yubico OTP: maybe an OATH code
        material = self.keys.get(parsed.public_id)
        if material is None:
            return "key_unknown"
        if not isinstance(material, YubicoSecret):
            return None
        decoded = yubico.decrypt(parsed.ciphertext, material.aes_key)
        if decoded is None or not yubico.same_private_id(decoded.private_id, material.private_id):
            return "otp_invalid"
        return None


class LookupBudget:
    """How often an id unknown to the snapshot may be looked up in the database.

    A key handed out since the last reload is found on its first press; but made-up ids
    are the cheapest garbage there is, and each look-up is a database read. So an id is
    looked up at most once per ``repeat_seconds``, and all of them at most
    ``per_second`` times a second; beyond that an unknown id is refused as before.
    """

    def __init__(self, *, per_second: int = 50, repeat_seconds: float = 5.0) -> None:
        self.per_second = per_second
        self.repeat_seconds = repeat_seconds
        self._recent: dict[str, float] = {}
        self._window = 0
        self._used = 0
        self._lock = threading.Lock()

    def allow(self, public_id: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._recent.get(public_id, float("-inf")) < self.repeat_seconds:
                return False
            if int(now) != self._window:
                self._window, self._used = int(now), 0
                self._recent = {
                    k: t for k, t in self._recent.items() if now - t < self.repeat_seconds
                }
            if self._used >= self.per_second:
                return False
            self._used += 1
            self._recent[public_id] = now
            return True


@dataclass(frozen=True)
class LoggedReject:
    at: datetime
    username: str
    client: str | None
    source_ip: str | None
    reason: str


class RejectLog:
    """Writes fast rejects in batches: one transaction per batch, not per request."""

    def __init__(
        self,
        database: Database,
        auth: AuthSettings,
        *,
        interval: float = 0.25,
        capacity: int = 100_000,
    ) -> None:
        self.database = database
        self.auth = auth
        self.interval = interval
        self._queue: queue.Queue[LoggedReject] = queue.Queue(capacity)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reject-log", daemon=True)
        self._thread.start()

    def add(self, entry: LoggedReject) -> None:
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            log.warning("reject log full: dropping an auth-log line for %r", entry.username)

    def flush(self) -> int:
        """Write everything queued now; returns how many entries were written."""
        batch: list[LoggedReject] = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if batch:
            try:
                self._write(batch)
            except UNAVAILABLE as error:
                kept = self._requeue(batch)
                log.error(
                    "database unavailable (%s): %d auth-log lines of rejects kept for the "
                    "next try, %d dropped",
                    describe_error(error),
                    kept,
                    len(batch) - kept,
                )
                return 0
            except Exception:
                log.exception("could not write %d auth-log lines of rejects", len(batch))
                return 0
        return len(batch)

    def _requeue(self, batch: list[LoggedReject]) -> int:
        """Put a batch back after a failed write, as far as the queue holds it."""
        for kept, entry in enumerate(batch):
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                return kept
        return len(batch)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def _write(self, batch: list[LoggedReject]) -> None:
        sources: dict[str, int] = {}
        for entry in batch:
            if entry.source_ip:
                sources[entry.source_ip] = sources.get(entry.source_ip, 0) + 1
        with self.database.session() as session:
            pipeline.relax_durability(session)  # logs and counters only: no replay state
            session.execute(
                insert(AuthEvent),
                [
                    {
                        "at": e.at,
                        "channel": pipeline.Channel.RADIUS.value,
                        "username": e.username,
                        "client": e.client,
                        "source_ip": e.source_ip,
                        "outcome": pipeline.Outcome.REJECT.value,
                        "reason": e.reason,
                    }
                    for e in batch
                ],
            )
            now = batch[-1].at
            for source, count in sources.items():
                ratelimit.record(
                    session,
                    pipeline.source_counter(source),
                    window_seconds=self.auth.failure_window_seconds,
                    now=now,
                    count=count,
                )
