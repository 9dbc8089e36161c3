"""The auth log: one line per login decision, and the per-source failure counts.

This module is its only writer. A decision of the pipeline is written in the pipeline's
own transaction (:func:`record`); a reject decided before any transaction, such as the
RADIUS fast path's certainly invalid OTPs, is queued here and written in batches by a
background thread (:class:`RejectLog`): one transaction per batch, not per request.
Lines carry who, where, what and why, never a secret.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from flexnet import metrics
from flexnet.authn import ratelimit
from flexnet.authn.decision import Channel, Client, Decision, Outcome, Reason
from flexnet.config import AuthSettings
from flexnet.db import UNAVAILABLE, Database, describe_error, insert_rows
from flexnet.models import AuthEvent, User

log = logging.getLogger("flexnet.authn.pipeline")  # the name operators' filters know

MAX_USERNAME_CHARS = 64

# A Core insert: the log line needs none of the unit of work's bookkeeping, and one
# prepared statement serves every request.
_AUTH_EVENT_INSERT = insert(AuthEvent)


def shown_username(username: str) -> str:
    """The username as logged: printable, at most 64 characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in username)[:MAX_USERNAME_CHARS]


def source_counter(source_ip: str) -> str:
    """The rate-limit counter of failures from one source (the pipeline and the batches):
    an IPv6 address by its /64, as the web's limits count it."""
    return f"auth-src:{ratelimit.source_key(source_ip)}"


def relax_durability(session: Session) -> None:
    """Commit this transaction without waiting for the disk (PostgreSQL only).

    Only for transactions that change no replay state: a crash may lose their auth-log
    line and failure counts, never let an OTP or password through twice.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))


def record(
    session: Session,
    decision: Decision,
    *,
    username: str,
    client: Client,
    now: datetime,
    user: User | None = None,
) -> Decision:
    """Write the decision's auth-log line (in the caller's transaction) and a log line."""
    if user is not None and decision.user_id is None:
        decision = replace(decision, user_id=user.id)
    shown_name = shown_username(username)
    if not decision.durable:
        relax_durability(session)
    session.connection().execute(
        _AUTH_EVENT_INSERT,
        {
            "at": now,
            "channel": client.channel.value,
            "username": shown_name,
            "user_id": user.id if user else None,
            "bsnr": user.practice.bsnr if user else None,
            "token_serial": decision.token_serial,
            "client": client.name,
            "concentrator": client.concentrator,
            "source_ip": client.source_ip,
            "outcome": decision.outcome.value,
            "reason": decision.reason.value,
        },
    )
    _log_line(client, shown_name, decision.outcome, decision.reason)
    metrics.decided(session, client.channel.value, decision.outcome.value, decision.reason.value)
    return decision


def _log_line(client: Client, shown_name: str, outcome: Outcome, reason: Reason) -> None:
    log.info(
        "auth %s: user=%r client=%s source=%s outcome=%s reason=%s",
        client.channel.value,
        shown_name,
        f"{client.name} ({client.concentrator})" if client.concentrator else client.name,
        client.source_ip,
        outcome.value,
        reason.value,
    )


@dataclass(frozen=True)
class LoggedReject:
    at: datetime
    username: str
    client: str | None
    source_ip: str | None
    reason: str
    concentrator: str | None = None


class RejectLog:
    """Rejects decided without a transaction, written in batches: their auth-log lines
    and, per source, one count for all of a batch's failures from it."""

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

    def reject(self, *, username: str, client: Client, now: datetime, reason: Reason) -> None:
        """Queue the auth-log line of a reject the caller has answered already (no log
        line of its own: a flood of garbage must not flood the journal too)."""
        self.add(
            LoggedReject(
                now,
                shown_username(username),
                client.name,
                client.source_ip,
                reason,
                client.concentrator,
            )
        )
        metrics.decided_now(client.channel.value, Outcome.REJECT.value, reason.value)

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
        sources: dict[str, int] = {}  # by counter: one /64 is one source
        for entry in batch:
            if entry.source_ip:
                counter = source_counter(entry.source_ip)
                sources[counter] = sources.get(counter, 0) + 1
        rows = [
            {
                "at": e.at,
                "channel": Channel.RADIUS.value,
                "username": e.username,
                "client": e.client,
                "concentrator": e.concentrator,
                "source_ip": e.source_ip,
                "outcome": Outcome.REJECT.value,
                "reason": str(e.reason),
            }
            for e in batch
        ]
        with self.database.session() as session:
            relax_durability(session)  # logs and counters only: no replay state
            insert_rows(session, AuthEvent.metadata.tables[AuthEvent.__tablename__], rows)
            now = batch[-1].at
            for counter, count in sorted(sources.items()):
                ratelimit.record(
                    session,
                    counter,
                    window_seconds=self.auth.failure_window_seconds,
                    now=now,
                    count=count,
                )
